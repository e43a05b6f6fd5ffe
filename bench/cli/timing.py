"""``vib-bench time RUN_DIR``: inference and training throughput of a run's models."""

from __future__ import annotations

from ..timing_options import TimingOptions
from .common import add_device, add_threads, add_trust_plugins, device, set_threads
from .flags import add_flags, flag_values


def cmd_time(args) -> int:
    from ..rundir import require_run_dir
    from ..timing import time_run

    set_threads(args.threads)
    values = flag_values(args, TimingOptions)
    time_run(
        require_run_dir(args.run_dir),
        {"min_run_time": values["min_run_time"]},
        device=device(args.device),
        fresh=values["fresh"],
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "time",
        help="measure inference and training throughput of a run's models",
        description="Inference examples/s at batch 1, 100 and 1000 and training examples/s at batch 100 "
        "of every trained model (first seed), with torch.utils.benchmark; medians and IQR, "
        "with the machine recorded so that only like machines are compared.",
        epilog="examples:\n  vib-bench time runs/quick --threads 1\n"
        "  vib-bench time runs/quick --fresh --min-run-time 2",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with trained models")
    add_flags(p, TimingOptions)  # --min-run-time, --fresh: from the one declaration
    add_threads(p, "CPU threads for torch (default: torch's; compare only timings taken with the same)")
    add_device(p)
    add_trust_plugins(p)
    p.set_defaults(func=cmd_time)
