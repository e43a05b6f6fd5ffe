"""``vib-bench run --suite NAME|FILE``: a whole benchmark suite in one run directory."""

from __future__ import annotations

from pathlib import Path

from ..run_options import RunOptions
from .common import add_data, add_device, add_plugins, add_progress, add_threads, device, set_threads
from .flags import add_flags, flag_values
from .train import add_stack

EXAMPLES = """examples:
  vib-bench run --suite smoke                      # the offline smoke benchmark (about 2 minutes on 2 cores)
  vib-bench run --suite quick --dry-run            # what the quick suite would run, and a time estimate
  vib-bench run --suite quick --out runs/quick --resume --threads 1
  vib-bench run --suite my_suite.toml --models 'vib*' --seeds 0,1,2
  vib-bench run --suite quick --executor ray       # Ray tasks on a local Ray instance (pip install "vib-bench[ray]")
  vib-bench run --suite paper --executor ray --ray-address auto --out /shared/runs/paper   # on a Ray cluster
"""


def cmd_run(args) -> int:
    from ..campaign import run_suite
    from ..suite import load_suite

    set_threads(args.threads)
    suite = load_suite(args.suite)
    out = Path(args.out or f"runs/{suite['name']}")
    say = (lambda *_: None) if args.quiet else print
    detail = print if args.verbose else (lambda *_: None)
    values = {**flag_values(args, RunOptions), "suite": suite, "out": out}
    outcome = run_suite(
        RunOptions(
            **values,
            device=device(args.device),
            data_dir=args.data_dir,
            plugins=args.plugin,
            progress=args.progress,
            stack=args.stack,
        ),
        log=say,
        detail=detail,
    )
    if args.dry_run:
        print("\n".join(outcome.plan_lines))
        print("nothing was run (--dry-run)")
        return 0
    if not args.quiet:
        print(outcome.leaderboard.read_text())
    print(
        f"suite {suite['name']} finished in {outcome.seconds:.0f} s: {outcome.leaderboard}"
        + (f"; {len(outcome.failed)} model-seed(s) failed" if outcome.failed else "")
    )
    return 1 if outcome.failed else 0


def register(sub) -> None:
    from ..suite import list_suites

    p = sub.add_parser(
        "run",
        help="run a whole benchmark suite: train, attack, time, leaderboard",
        description="Train, attack and time every model of a suite into one run directory, then write "
        "its leaderboard and figures. The whole suite is checked before anything runs.",
        epilog=EXAMPLES,
    )
    add_flags(
        p,
        RunOptions,
        ["suite", "out", "models", "seeds", "resume", "fresh", "dry_run"],
        fill={"suites": ", ".join(list_suites())},
    )
    # how much it prints: the face's own flags (the harness takes log/detail callables)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final line (and errors)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print every model's and every attack cell's line (default: one line per stage)",
    )
    add_flags(p, RunOptions, ["executor", "ray_address"])
    add_threads(p, "CPU threads for torch (default: torch's; pass 1 on a busy machine)")
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    add_stack(p)
    p.set_defaults(func=cmd_run)
