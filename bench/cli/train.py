"""``vib-bench train``: train models into a run directory."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BenchError
from .common import (add_data, add_device, add_plugins, add_progress, add_threads, device, parse_list,
                     parse_overrides, set_threads)


def cmd_train(args) -> int:
    from ..train_stage import TrainOptions, run_training
    from ..training import Cadence, TrainConfig

    set_threads(args.threads)
    seeds = parse_list(args.seeds, int, "seed") or [0]
    models = parse_list(args.models or "*", what="model pattern")
    if not models:
        raise BenchError("--models is empty")
    cadence = Cadence.parse(args.checkpoint_every)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, train_split=args.train_split,
                      snapshot_every=args.snapshot_every, snapshot_n=args.snapshot_n)
    opts = TrainOptions(out=Path(args.out), models=models, dataset=args.dataset, seeds=seeds, config=cfg,
                        overrides=parse_overrides(args.set), data_dir=args.data_dir, plugins=args.plugin,
                        device=device(args.device), resume=args.resume, progress=args.progress, stack=args.stack,
                        cadence=cadence)
    failed = run_training(opts)
    if failed:
        print(f"{len(failed)} model(s) failed: " + ", ".join(f"{m} seed {s}" for m, s in failed), file=sys.stderr)
        return 1
    return 0


def add_stack(p):
    """``--stack``, shared with ``run``."""
    p.add_argument("--stack", choices=["auto", "on", "off"], default="auto",
                   help="train the model-seeds of one architecture as one stacked computation: auto (default: "
                        "groups of two or more), on (every stackable group, even a group of one) or off "
                        "(one model at a time)")


def add_train_args(p):
    p.add_argument("--models", default="*", help="comma-separated names or wildcards (default: all)")
    p.add_argument("--dataset", default="digits", help="mnist, fashion-mnist or digits (default: digits)")
    add_data(p)
    p.add_argument("--epochs", type=int, default=20, help="passes over the training split (the paper: 200)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--batch-size", type=int, default=100, help="examples per optimisation step (the paper's)")
    p.add_argument("--lr", type=float, default=1e-4,
                   help="Adam's learning rate, decayed x0.97 every 2 epochs (the paper's 1e-4)")
    p.add_argument("--train-split", choices=["train", "trainval"], default="train",
                   help="train: hold out the validation split (default); trainval: all training data")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model argument, e.g. --set hidden=64,64 --set k=16 (repeatable)")
    p.add_argument("--snapshot-every", type=int, default=0, metavar="EPOCHS",
                   help="save every layer's activations on a fixed sample every EPOCHS epochs (information plane)")
    p.add_argument("--snapshot-n", type=int, default=2000, metavar="N", help="size of that sample (default 2000)")
    add_plugins(p)
    add_device(p)
    add_threads(p)
    add_stack(p)
    p.add_argument("--checkpoint-every", default="60s", metavar="N|Ns",
                   help="write the resume checkpoint every N epochs, or (Ns) at most once per N seconds; always "
                        "after the last epoch (default 60s). --resume continues from the last one, bit-identical")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run; finished work is kept")
    add_progress(p)


def register(sub) -> None:
    p = sub.add_parser("train", help="train models into a run directory",
                       description="Train registered models with the paper's recipe (Adam 1e-4, betas 0.5/0.999, "
                                   "x0.97 every 2 epochs, batch 100, weight EMA) into RUN_DIR, evaluate them on the "
                                   "test split, and record everything in RUN_DIR/results.json. Deterministic per "
                                   "seed; --resume continues after an interruption with identical weights.",
                       epilog="examples:\n"
                              "  vib-bench train --models mlp,vib_beta1e-3 --dataset mnist --epochs 20 --out runs/q\n"
                              "  vib-bench train --models 'vib*' --dataset digits --epochs 30 --lr 1e-3 "
                              "--set hidden=64,64 --set k=16 --out runs/tiny\n"
                              "  vib-bench train --models mlp --dataset mnist --seeds 0,1,2 --out runs/q --resume")
    add_train_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.set_defaults(func=cmd_train)
