"""``vib-bench list models|datasets|attacks|estimators [PATTERN...]``."""

from __future__ import annotations

from .common import add_plugins, load_plugins


def cmd_list(args) -> int:
    from .. import catalog

    if args.what in ("models", "attacks") and catalog.answers(args.plugin) and catalog.matches(args.what, args.pattern):
        print("\n".join((catalog.model_lines if args.what == "models" else catalog.attack_lines)(args.pattern)))
        return 0
    if args.what == "estimators" and catalog.answers(args.plugin):
        print("\n".join(catalog.estimator_lines()))
        return 0
    load_plugins(args.plugin)
    if args.what == "models":
        from models import describe_model, list_models

        for name in list_models(args.pattern):
            print(f"{name:24s} {describe_model(name)}")
    elif args.what == "suites":
        from ..suite import list_suites, load_suite

        for name in list_suites():
            print(f"{name:12s} {load_suite(name).get('description', '')}")
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
    p = sub.add_parser(
        "list",
        help="list registered models, attacks, data sets, suites or estimators",
        description="List what vib-bench knows about: registered models and attacks (with wildcards), "
        "data sets, shipped suites, MI estimators.",
        epilog="examples:\n  vib-bench list models 'vib*'\n  vib-bench list attacks 'apgd*'\n  vib-bench list suites",
    )
    p.add_argument("what", choices=["models", "attacks", "datasets", "suites", "estimators"])
    p.add_argument("pattern", nargs="*", help="wildcards (models and attacks; default: all)")
    add_plugins(p)
    p.set_defaults(func=cmd_list)
