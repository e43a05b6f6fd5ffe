"""The ``vib-bench`` command line.

Every subcommand lives in a module that exposes ``register(subparsers)``; user mistakes raise
``BenchError`` and come out as one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from .errors import BenchError

# Modules that add subcommands (each has ``register(subparsers)``), in --help order.
COMMAND_MODULES = ["bench.cli", "bench.suite", "bench.attack", "bench.leaderboard", "bench.compare",
                   "bench.report", "bench.info", "bench.mi"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        sub = self.prog.removeprefix("vib-bench").strip()
        raise BenchError(f"{sub}: {message}" if sub else message)


# ------------------------------------------------------------------------------ shared arguments
def parse_list(text: str | None, kind=str, what="value") -> list | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(kind(part))
        except ValueError:
            raise BenchError(f"bad {what} {part!r} in {text!r}") from None
    return out


def parse_value(text: str):
    """``64,64`` -> [64, 64]; ``1e-3`` -> 0.001; ``true`` -> True; otherwise the string."""
    if "," in text:
        return [parse_value(p) for p in text.split(",") if p.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise BenchError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def add_device(p):
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")


def add_data(p):
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the IDX files (default: $VIB_BENCH_DATA/<dataset>/, then download)")


def add_plugins(p):
    p.add_argument("--plugin", action="append", default=[], metavar="FILE",
                   help="Python file that registers extra models or attacks (repeatable)")


def add_progress(p):
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="hide progress bars (they are hidden anyway when stderr is not a terminal)")


def resolve_models(patterns_text: str | None, default="*") -> list[str]:
    from models import list_models

    patterns = parse_list(patterns_text or default, what="model pattern")
    if not patterns:
        raise BenchError("--models is empty")
    return list_models(patterns)


def set_threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise BenchError(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)


# ------------------------------------------------------------------------------ list and train
def cmd_list(args) -> int:
    from . import plugins
    from .data import DATASETS

    plugins.load_plugins(args.plugin)
    plugins.load_entry_points()
    if args.what == "models":
        from models import _registry, list_models

        for name in list_models(args.pattern):
            doc = (_registry._MODELS[name].__doc__ or "").strip().splitlines()
            print(f"{name:24s} {doc[0] if doc else ''}")
    elif args.what == "datasets":
        for name, (desc, _) in DATASETS.items():
            print(f"{name:16s} {desc}")
    elif args.what == "attacks":
        from attacks import describe_attacks

        for line in describe_attacks():
            print(line)
    else:
        from .mi import ESTIMATORS

        for name, est in ESTIMATORS.items():
            print(f"{name:16s} {est.description}")
    return 0


def train_config_from_args(args):
    from .train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, train_split=args.train_split,
                       snapshot_every=args.snapshot_every, snapshot_n=args.snapshot_n).validate()


def cmd_train(args) -> int:
    from . import plugins
    from .data import load_dataset
    from .env import resolve_device
    from .runs import train_run

    set_threads(args.threads)
    plugins.load_plugins(args.plugin)
    plugins.load_entry_points()
    names = resolve_models(args.models)
    seeds = parse_list(args.seeds, int, "seed") or [0]
    if any(s < 0 for s in seeds):
        raise BenchError("--seeds must be non-negative integers")
    cfg = train_config_from_args(args)
    overrides = parse_overrides(args.set)
    device = resolve_device(args.device)
    dataset = load_dataset(args.dataset, args.data_dir)
    from .train import overrides_per_model

    per_model = overrides_per_model(names, overrides, dataset.in_shape, dataset.num_classes)
    print(f"training {len(names)} model(s) x {len(seeds)} seed(s) on {dataset.name} "
          f"({len(dataset.split(cfg.train_split)[0])} examples, {cfg.epochs} epochs) on {device} -> {args.out}")
    data = train_run(args.out, dataset, per_model, seeds, cfg, plugin_paths=args.plugin,
                     device=device, resume=args.resume, progress=args.progress)
    from .runs import failed_models

    failed = failed_models(data, names, seeds)
    if failed:
        print(f"{len(failed)} model(s) failed: " + ", ".join(f"{m} seed {s}" for m, s in failed), file=sys.stderr)
        return 1
    return 0


def add_train_args(p, epochs_default=None):
    p.add_argument("--models", default="*", help="comma-separated names or wildcards (default: all)")
    p.add_argument("--dataset", default="digits", help="mnist, fashion-mnist or digits (default: digits)")
    add_data(p)
    p.add_argument("--epochs", type=int, default=epochs_default if epochs_default is not None else 20)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--train-split", choices=["train", "trainval"], default="train",
                   help="train: hold out the validation split (default); trainval: all training data")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model argument, e.g. --set hidden=64,64 --set k=16 (repeatable)")
    p.add_argument("--snapshot-every", type=int, default=0, metavar="EPOCHS",
                   help="save every layer's activations on a fixed sample every EPOCHS epochs (information plane)")
    p.add_argument("--snapshot-n", type=int, default=2000, metavar="N", help="size of that sample (default 2000)")
    add_plugins(p)
    add_device(p)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run; finished work is kept")
    add_progress(p)


def register(sub) -> None:
    p = sub.add_parser("list", help="list registered models, data sets, attacks or estimators")
    p.add_argument("what", choices=["models", "datasets", "attacks", "estimators"])
    p.add_argument("pattern", nargs="*", help="wildcards (models only)")
    add_plugins(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="train models into a run directory")
    add_train_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="vib-bench", description="Benchmark and adversarial-robustness suite for classifier regularizers.")
    parser.add_argument("--version", action="version", version=f"vib-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except BenchError as e:
        print(f"vib-bench: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vib-bench: interrupted (finished work is saved; rerun with --resume)", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user error: one line unless asked for the traceback
        if os.environ.get("VIB_BENCH_DEBUG"):
            raise
        msg = " ".join(str(e).split())[:300]
        print(f"vib-bench: internal error: {type(e).__name__}: {msg} (set VIB_BENCH_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
