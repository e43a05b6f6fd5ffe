"""``vib-bench leaderboard RUN_DIR``: one row per model, from the run's results file."""

from __future__ import annotations

import sys

from ..errors import BenchError
from .common import add_format, parse_list


def cmd_leaderboard(args) -> int:
    from ..io import atomic_write_text
    from ..reporting.leaderboard_render import render_leaderboard, write_leaderboard
    from ..results import Results
    from ..rundir import LEADERBOARD, run_dir_of

    res = Results.load(args.run_dir)
    eps = parse_list(args.eps, float, "eps") if args.eps is not None else None
    text = render_leaderboard(res, args.format, args.sort_by, eps)
    # leaderboard.md is the run's Markdown document: only the default rendering (Markdown on stdout)
    # refreshes it; another format, or --out, leaves it alone.
    if args.format == "github" and not args.out:
        try:
            path = write_leaderboard(args.run_dir, args.sort_by, eps)
            print(f"vib-bench: updated {path}", file=sys.stderr)
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
    from ..reporting.leaderboard import FORMATS, column_help

    p = sub.add_parser(
        "leaderboard",
        help="one row per model from a run's results file (Markdown also refreshes leaderboard.md)",
        description="Render a run's leaderboard from its results file. The default rendering "
        "(Markdown on stdout) also (re)writes RUN_DIR/leaderboard.md; --format "
        "csv/latex/html/json and --out leave it alone.\n\ncolumn keys (for --sort-by; "
        "also `model`):\n" + column_help(),
        epilog="examples:\n  vib-bench leaderboard runs/smoke\n"
        "  vib-bench leaderboard runs/smoke --eps 0.1,0.2 --sort-by worst@0.2\n"
        "  vib-bench leaderboard runs/smoke --format json > smoke.json\n"
        "  vib-bench leaderboard runs/smoke --format latex --out table.tex",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or its results.json")
    add_format(
        p, FORMATS, "github", "github (Markdown), latex, html, csv or json (the last two: raw numbers in natural units)"
    )
    p.add_argument(
        "--sort-by",
        default=None,
        metavar="KEY",
        help="column key to sort by, best first (default clean_error); e.g. pgd@0.3, worst@0.2, auc, "
        "model; a robust key adds its eps to the columns",
    )
    p.add_argument(
        "--eps",
        default=None,
        metavar="LIST",
        help="comma-separated L-inf eps of the FGSM/PGD/worst-case columns, e.g. 0.1,0.2 (default: up "
        "to 3 nonzero eps of the run's grid, the standard 0.1 and 0.3 first)",
    )
    p.add_argument(
        "--out", default=None, metavar="FILE", help="write the table to FILE instead of stdout (default stdout)"
    )
    p.set_defaults(func=cmd_leaderboard)
