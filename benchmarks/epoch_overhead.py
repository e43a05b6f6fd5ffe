"""Per-epoch overhead of training: what an epoch costs beyond its optimisation steps.

Overhead is everything an epoch does besides its steps: validation, the epoch log and status files,
snapshots and the resume checkpoint. This script trains models in this process (``train_run``, the
train stage itself) and marks the end of every epoch of the first member: the return of
``MemberFiles.epoch_done`` (called after the epoch's checkpoint and file writes, whether or not it
rewrites the files), or, in code from before it existed, its status write at the end of every epoch. So

  * wall time of epoch e = the time between the ends of epochs e-1 and e (e >= 2);
  * step time of epoch e = ``epoch_time_s`` of the train log, summed over the members of the job;
  * overhead fraction = 1 - step / wall; printed for the steady state (epochs 2 to E-1) and for the
    last epoch (which always writes a checkpoint), and the run's whole-run fraction (epochs 2 to E).

It needs no timing fields of its own in the code it measures, so the same script measures the code
from before the overhead work (put that checkout first on PYTHONPATH). ``--val-every 1,auto``
measures validation every epoch (as before the validation cadence) and the automatic cadence one
after the other in the same run of the script (the JSON then holds ``runs``, one entry per setting).
The default is four MLP models of the ``quick`` suite at the paper's width (1024, 1024), one stack of four, on digits::

    OMP_NUM_THREADS=1 python benchmarks/epoch_overhead.py --threads 1
    OMP_NUM_THREADS=1 python benchmarks/epoch_overhead.py --threads 1 --dataset mnist --models mlp,dropout \
        --set hidden=512,512 --epochs 3                                                # (long-running)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# this checkout, after PYTHONPATH's entries (a checkout named there wins) and before site-packages
sys.path.insert(
    1 + len([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    str(Path(__file__).resolve().parent.parent),
)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,dropout,confidence_penalty,label_smoothing")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--seeds", default="0")
    p.add_argument("--set", action="append", default=None, help="model arguments (default: hidden=1024,1024)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--stack", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="keep the run directory here (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument(
        "--val-every",
        default=None,
        metavar="N,...",
        help="validation cadences to measure in turn (epochs, or auto); default: the code's own",
    )
    args = p.parse_args(argv)
    args.set = args.set or ["hidden=1024,1024"]
    if args.val_every is None:
        out = measure(args, None)
    else:
        settings = [0 if v.strip() == "auto" else int(v) for v in args.val_every.split(",")]
        out = {"runs": [measure(args, v) for v in settings]}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


def measure(args, val_every: int | None) -> dict:
    """Train once (``val_every``: the validation cadence, 0 auto; None: the code's default) and time it."""
    import torch

    import bench
    from bench import rundir
    from bench.cli.common import parse_overrides
    from bench.data import load_dataset
    from bench.overrides import overrides_per_model
    from models import list_models

    try:
        from bench.train.recipe import TrainConfig
        from bench.train.stage import train_run
    except ImportError:  # code from before the training package (bench/training.py, bench/train_stage.py)
        from bench.train_stage import train_run
        from bench.training import TrainConfig

    torch.set_num_threads(args.threads)
    names = list_models(args.models.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    data = load_dataset(args.dataset)
    per_model = overrides_per_model(names, parse_overrides(args.set), data.in_shape, data.num_classes)
    first = (names[0], seeds[0])
    marks: list[tuple[int, float]] = []
    real = rundir.write_status
    try:
        from bench.train.member_files import MemberFiles
    except ImportError:  # code from before the training package, or before MemberFiles
        try:
            from bench.member_files import MemberFiles
        except ImportError:
            MemberFiles = None  # noqa: N806
    real_done = getattr(MemberFiles, "epoch_done", None)

    def watch(mdir, status, *a, **kw):
        real(mdir, status, *a, **kw)
        if (status.get("model"), status.get("seed")) == first and status.get("state") == "running":
            marks.append((int(status["epochs_done"]), time.perf_counter()))

    def done(self, epoch, *a, **kw):
        real_done(self, epoch, *a, **kw)
        if (self.name, self.seed) == first:
            marks.append((int(epoch), time.perf_counter()))

    if real_done is not None:
        MemberFiles.epoch_done = done
    else:
        rundir.write_status = watch
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(args.out or tmp) / ("run" if val_every is None else f"run_val{val_every}")
            cadence = {}
            if val_every is not None:
                try:
                    from bench.train.recipe import Cadence
                except ImportError:  # before the training package
                    from bench.training import Cadence

                cadence = {"cadence": Cadence(val_epochs=val_every)}
            train_run(
                out,
                data,
                per_model,
                seeds,
                TrainConfig(epochs=args.epochs),
                progress=False,
                log=lambda *_: None,
                stack=args.stack,
                **cadence,
            )
            logs = {(n, s): rundir.read_train_log(rundir.model_dir(out, n, s)) for n in names for s in seeds}
            status = json.loads((rundir.model_dir(out, *first) / rundir.STATUS).read_text())
            stack_size = status.get("stack_size", 1)
    finally:
        rundir.write_status = real
        if real_done is not None:
            MemberFiles.epoch_done = real_done
    ends = {}
    for epoch, t in marks:
        ends.setdefault(epoch, t)  # the first write that reports the epoch done
    walls = {e: ends[e] - ends[e - 1] for e in range(2, args.epochs + 1)}
    # the first member's job: itself alone, or its whole stack (members' times are shares of the stack's)
    steps = {e: logs[first][e - 1]["epoch_time_s"] * stack_size for e in walls}
    steady = list(range(2, args.epochs))
    frac = {
        "steady": 1 - sum(steps[e] for e in steady) / sum(walls[e] for e in steady),
        "last": 1 - steps[args.epochs] / walls[args.epochs],
        "run": 1 - sum(steps.values()) / sum(walls.values()),
    }
    out = {
        "code": str(Path(bench.__file__).resolve().parent.parent),
        "models": names,
        "seeds": seeds,
        "dataset": args.dataset,
        "set": args.set,
        "epochs": args.epochs,
        "job_size": stack_size,
        "step_s_per_epoch": statistics.mean(steps[e] for e in steady),
        "wall_s_per_epoch": statistics.mean(walls[e] for e in steady),
        "overhead_fraction_steady": frac["steady"],
        "overhead_fraction_last_epoch": frac["last"],
        "overhead_fraction_run": frac["run"],
        "val_every": status.get("val_every", 1),
    }
    print(f"code: {out['code']}")
    print(
        f"{','.join(names)} x seeds {args.seeds} on {args.dataset} ({' '.join(args.set)}), {args.epochs} epochs, "
        f"{args.threads} thread(s); measured: the job of {first[0]} seed {first[1]} ({stack_size} member(s)); "
        f"validation every {out['val_every']} epoch(s) and the last"
    )
    print(f"{'epoch':>5} {'step s':>8} {'wall s':>8} {'overhead':>9}")
    for e in walls:
        print(f"{e:5d} {steps[e]:8.3f} {walls[e]:8.3f} {1 - steps[e] / walls[e]:9.3f}")
    print(
        f"overhead fraction: steady state (epochs 2-{args.epochs - 1}) {frac['steady']:.3f}, "
        f"last epoch {frac['last']:.3f}, epochs 2-{args.epochs} {frac['run']:.3f}"
    )
    return out


if __name__ == "__main__":
    main()
