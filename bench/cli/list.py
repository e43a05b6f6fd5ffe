"""``vib-bench list models|datasets|attacks|estimators [PATTERN...]``."""

from __future__ import annotations

from .common import add_plugins, load_plugins


def cmd_list(args) -> int:
    load_plugins(args.plugin)
    if args.what == "models":
        from models import describe_model, list_models

        for name in list_models(args.pattern):
            print(f"{name:24s} {describe_model(name)}")
    elif args.what == "datasets":
        from ..data import DATASETS

        for name, (desc, _) in DATASETS.items():
            print(f"{name:16s} {desc}")
    elif args.what == "attacks":
        from attacks import describe_attacks

        for line in describe_attacks(args.pattern):
            print(line)
    else:
        from ..info import ESTIMATORS

        for name, est in ESTIMATORS.items():
            print(f"{name:16s} {est.description}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("list", help="list registered models, data sets, attacks or estimators")
    p.add_argument("what", choices=["models", "datasets", "attacks", "estimators"])
    p.add_argument("pattern", nargs="*", help="wildcards (models only)")
    add_plugins(p)
    p.set_defaults(func=cmd_list)
