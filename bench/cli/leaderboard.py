"""``vib-bench leaderboard RUN_DIR``: one row per model, from the run's results file."""

from __future__ import annotations

import argparse
import sys

from ..errors import BenchError


def cmd_leaderboard(args) -> int:
    from ..io import atomic_write_text
    from ..leaderboard import render_leaderboard, write_leaderboard
    from ..results import Results
    from ..rundir import LEADERBOARD, run_dir_of

    res = Results.load(args.run_dir)
    text = render_leaderboard(res, args.format, args.sort_by)
    try:
        write_leaderboard(args.run_dir, args.sort_by)
    except OSError as e:  # a read-only run (someone else's results) still gets a leaderboard on stdout
        path = run_dir_of(args.run_dir) / LEADERBOARD
        print(f"vib-bench: warning: could not write {path}: {e.strerror or e}", file=sys.stderr)
    if args.out:
        try:
            atomic_write_text(args.out, text)
        except OSError as e:
            raise BenchError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def register(sub) -> None:
    from ..leaderboard import FORMATS, column_help

    p = sub.add_parser("leaderboard", help="one row per model from a run's results file (also writes leaderboard.md)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Render a run's leaderboard from its results file and (re)write "
                                   "RUN_DIR/leaderboard.md.\n\ncolumn keys (for --sort-by; also `model`):\n"
                                   + column_help())
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or its results.json")
    p.add_argument("--format", choices=FORMATS, default="github",
                   help="github (Markdown), latex, html or csv (raw numbers in natural units); default github")
    p.add_argument("--sort-by", default=None, metavar="KEY",
                   help="column key to sort by, best first (default clean_error); e.g. pgd@0.3, worst@0.3, auc, model")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table to FILE instead of stdout")
    p.set_defaults(func=cmd_leaderboard)
