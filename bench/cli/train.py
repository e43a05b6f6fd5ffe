"""``vib-bench train``: train models into a run directory."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BenchError
from ..train.options import TrainSettings
from .common import add_data, add_device, add_plugins, add_progress, add_threads, device, parse_overrides, set_threads
from .flags import add_flags, flag_values


def cmd_train(args) -> int:
    from ..train.recipe import Cadence
    from ..train.stage import TrainOptions, run_training

    set_threads(args.threads)
    st = TrainSettings(**flag_values(args, TrainSettings), overrides=parse_overrides(args.set))
    if not st.models:
        raise BenchError("--models is empty")
    opts = TrainOptions(
        out=Path(st.out),
        models=st.models,
        dataset=st.dataset,
        seeds=st.seeds or [0],
        config=st.config(),
        overrides=st.overrides,
        data_dir=args.data_dir,
        plugins=args.plugin,
        device=device(args.device),
        resume=st.resume,
        progress=args.progress,
        stack=st.stack,
        cadence=Cadence.parse(st.checkpoint_every).with_val_every(st.val_every),
    )
    failed = run_training(opts)
    if failed:
        print(f"{len(failed)} model(s) failed: " + ", ".join(f"{m} seed {s}" for m, s in failed), file=sys.stderr)
        return 1
    return 0


def add_stack(p):
    """``--stack``, shared with ``run``."""
    add_flags(p, TrainSettings, ["stack"])


def add_train_args(p):
    """The flags of ``train``: the stage's from :class:`bench.train.options.TrainSettings`, in this order."""
    add_flags(p, TrainSettings, ["models", "dataset"])
    add_data(p)
    add_flags(
        p,
        TrainSettings,
        ["epochs", "seeds", "batch_size", "lr", "train_split", "overrides", "snapshot_every", "snapshot_n"],
    )
    add_plugins(p)
    add_device(p)
    add_threads(p)
    add_stack(p)
    add_flags(p, TrainSettings, ["val_every", "checkpoint_every", "resume"])
    add_progress(p)


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train models into a run directory",
        description="Train registered models with the paper's recipe (Adam 1e-4, betas 0.5/0.999, "
        "x0.97 every 2 epochs, batch 100, weight EMA) into RUN_DIR, evaluate them on the "
        "test split, and record everything in RUN_DIR/results.json. Deterministic per "
        "seed; --resume continues after an interruption with identical weights.",
        epilog="examples:\n"
        "  vib-bench train --models mlp,vib_beta1e-3 --dataset mnist --epochs 20 --out runs/q\n"
        "  vib-bench train --models 'vib*' --dataset digits --epochs 30 --lr 1e-3 "
        "--set hidden=64,64 --set k=16 --out runs/tiny\n"
        "  vib-bench train --models mlp --dataset mnist --seeds 0,1,2 --out runs/q --resume",
    )
    add_train_args(p)
    add_flags(p, TrainSettings, ["out"])
    p.set_defaults(func=cmd_train)
