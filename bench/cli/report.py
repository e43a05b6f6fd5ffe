"""``vib-bench report RUN_DIR``: figures and a self-contained HTML page."""

from __future__ import annotations

from ..errors import BenchError


def cmd_report(args) -> int:
    from ..reporting.report import write_report

    try:
        path = write_report(args.run_dir, args.out)
    except OSError as e:
        raise BenchError(f"{args.run_dir}: cannot write the report ({e.strerror or e})") from None
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="figures and a self-contained HTML report of a run (RUN_DIR/report.html)",
        description="Make every figure the run's data allow, refresh leaderboard.md, and write one "
        "self-contained HTML page: a summary generated from the results (with intervals "
        "and p-values, and what the run could not check), the leaderboard, flags, "
        "figures and provenance.",
        epilog="examples:\n  vib-bench report runs/quick\n  vib-bench report results/smoke --out /tmp/smoke.html",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the page (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)
