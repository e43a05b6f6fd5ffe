"""``vib-bench time RUN_DIR``: inference and training throughput of a run's models."""

from __future__ import annotations

from .common import add_device, add_trust_plugins, add_threads, device, set_threads


def cmd_time(args) -> int:
    from ..rundir import require_run_dir
    from ..timing import time_run

    set_threads(args.threads)
    time_run(require_run_dir(args.run_dir), {"min_run_time": args.min_run_time}, device=device(args.device),
             fresh=args.fresh)
    return 0


def register(sub) -> None:
    p = sub.add_parser("time", help="measure inference and training throughput of a run's models",
                       description="Inference examples/s at batch 1, 100 and 1000 and training examples/s at batch 100 "
                                   "of every trained model (first seed), with torch.utils.benchmark; medians and IQR, "
                                   "with the machine recorded so that only like machines are compared.",
                       epilog="examples:\n  vib-bench time runs/quick --threads 1\n"
                              "  vib-bench time runs/quick --fresh --min-run-time 2")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with trained models")
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement (default 0.5)")
    p.add_argument("--fresh", action="store_true", help="time models that were timed before again")
    add_threads(p, "CPU threads for torch (default: torch's; compare only timings taken with the same)")
    add_device(p)
    add_trust_plugins(p)
    p.set_defaults(func=cmd_time)
