"""``vib-bench compare BASE NEW``: metric by metric, with paired tests; exit 1 if something got worse."""

from __future__ import annotations

import sys

from ..errors import BenchError
from .common import parse_list


def cmd_compare(args) -> int:
    from ..compare import (FAMILIES, compare_runs, exit_status, provenance, render_rows, summary_line)
    from ..results import Results

    fail_on = parse_list(args.fail_on, what="metric family") or []
    bad = [f for f in fail_on if f not in FAMILIES]
    if bad:
        raise BenchError(f"--fail-on {bad[0]!r}: choose from {', '.join(FAMILIES)}")
    if not 0 < args.alpha < 1:
        raise BenchError(f"--alpha must be in (0, 1), got {args.alpha}")
    if not args.throughput_threshold > 0:
        raise BenchError(f"--throughput-threshold must be > 0, got {args.throughput_threshold}")
    base, new = Results.load(args.base), Results.load(args.new)
    rows = compare_runs(base, new, alpha=args.alpha, throughput_threshold=args.throughput_threshold,
                        correction=args.correction)
    status = exit_status(rows, fail_on)
    table = render_rows(rows, args.format, args.hide_same)
    line = summary_line(rows, fail_on, status)
    # text formats tell the whole story on stdout; file formats keep stdout to the table alone
    info = sys.stdout if args.format in ("github", "simple") else sys.stderr
    print(f"base: {provenance(base)}", file=info)
    print(f"new:  {provenance(new)}", file=info)
    print(f"alpha {args.alpha:g}, p-values {'Holm-adjusted' if args.correction == 'holm' else 'unadjusted'}, "
          f"throughput threshold {args.throughput_threshold:.0%}", file=info)
    info.flush()
    sys.stdout.write(table)
    sys.stdout.flush()
    print(line, file=info)
    return status


def register(sub) -> None:
    from ..compare import TABLE_FORMATS

    p = sub.add_parser("compare", help="compare two runs metric by metric; exit 1 if something got worse (CI gate)")
    p.add_argument("base", metavar="BASE", help="the reference run directory or results file")
    p.add_argument("new", metavar="NEW", help="the run to check")
    p.add_argument("--fail-on", default="clean,robust", metavar="FAMILIES",
                   help="metric families whose significant worsening fails (exit 1): any of clean,robust,throughput "
                        "(default clean,robust; '' to never fail)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--correction", choices=["holm", "none"], default="holm",
                   help="multiple-testing correction over the table's p-values (default holm)")
    p.add_argument("--throughput-threshold", type=float, default=0.1, metavar="FRACTION",
                   help="relative change of median throughput that counts (default 0.1 = 10%%)")
    p.add_argument("--format", choices=TABLE_FORMATS, default="github")
    p.add_argument("--hide-same", action="store_true", help="list only rows whose verdict is not 'same'")
    p.set_defaults(func=cmd_compare)
