"""``vib-bench run --suite NAME|FILE``: a whole benchmark suite in one run directory."""

from __future__ import annotations

from pathlib import Path

from .common import add_data, add_device, add_plugins, add_progress, add_threads, device, set_threads
from .train import add_stack


def cmd_run(args) -> int:
    from ..campaign import RunOptions, run_suite
    from ..suite import load_suite

    set_threads(args.threads)
    suite = load_suite(args.suite)
    out = Path(args.out or f"runs/{suite['name']}")
    failed = run_suite(RunOptions(suite, out, device=device(args.device), data_dir=args.data_dir,
                                  plugins=args.plugin, resume=args.resume, progress=args.progress,
                                  stack=args.stack))
    return 1 if failed else 0


def register(sub) -> None:
    from ..suite import list_suites

    p = sub.add_parser("run", help="run a whole benchmark suite: train, attack, time, leaderboard")
    p.add_argument("--suite", required=True, help=f"a shipped suite ({', '.join(list_suites())}) or a .toml file")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default: runs/<suite>)")
    p.add_argument("--resume", action="store_true", help="continue; finished work is never redone")
    add_threads(p, None)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    add_stack(p)
    p.set_defaults(func=cmd_run)
