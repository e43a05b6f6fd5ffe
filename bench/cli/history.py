"""``vib-bench history RESULTS...``: one metric across many runs, with step changes flagged."""

from __future__ import annotations

import math
import sys

from ..errors import BenchError
from .common import add_format, patterns


def cmd_history(args) -> int:
    from ..reporting.history import (
        check_metric,
        check_runs,
        empty_runs,
        history_frame,
        order_runs,
        plot_history,
        render_history,
    )
    from ..results import Results

    if not args.noise_factor > 0:
        raise BenchError(f"--noise-factor must be > 0, got {args.noise_factor}")
    if not args.throughput_threshold > 0:
        raise BenchError(f"--throughput-threshold must be > 0, got {args.throughput_threshold}")
    col = check_metric(args.metric)
    runs = order_runs([Results.load(p) for p in args.results], args.order)
    check_runs(runs, args.metric)
    rows = history_frame(
        runs,
        args.metric,
        patterns(args.model),
        noise_factor=args.noise_factor,
        throughput_threshold=args.throughput_threshold,
    )
    if not rows:
        raise BenchError(
            f"no model matches {args.model!r} in these runs" if args.model else "these runs hold no models"
        )
    if not any(math.isfinite(r["value"]) for r in rows):
        raise BenchError(f"--metric {args.metric}: no run records a value of it for these models")
    for label in empty_runs(runs, rows):  # a word, not a silent gap (stderr: stdout may be a CSV or JSON file)
        print(
            f"note: {label} has no value of {args.metric}"
            + (f" for models matching {args.model!r}" if args.model else "")
            + ": it adds no point",
            file=sys.stderr,
        )
    sys.stdout.write(render_history(rows, args.metric, args.format))
    steps = [r for r in rows if r["step"]]
    if args.format not in ("csv", "json"):
        if any(not math.isfinite(r["value"]) for r in rows) or len(rows) < len(runs) * len({r["model"] for r in rows}):
            print("(n/a: the run holds the model but no value of this metric; -: the model is not in that run)")
        for r in steps:
            if args.metric in ("infer_ex_s", "train_ex_s"):
                print(
                    f"step: {r['model']} {args.metric} changed by more than {args.throughput_threshold:.0%} "
                    f"at {r['run']}"
                )
            else:
                print(
                    f"step: {r['model']} {args.metric} changed by {r['delta'] * col.scale:+.{col.digits}f} at "
                    f"{r['run']} (level {(r['level'] - r['delta']) * col.scale:.{col.digits}f} -> "
                    f"{r['level'] * col.scale:.{col.digits}f}; a piecewise-constant fit, penalty "
                    f"{args.noise_factor:g}^2 per segment in units of the runs' standard errors)"
                )
        if not steps:
            print("no step larger than the noise")
    if args.plot:  # stdout holds only the table in the machine-readable formats
        print(
            f"plot: {plot_history(rows, args.metric, args.plot)}",
            file=sys.stderr if args.format in ("csv", "json") else sys.stdout,
        )
    return 0


def register(sub) -> None:
    from ..reporting.history import TABLE_FORMATS

    p = sub.add_parser(
        "history",
        help="one metric across many runs, with step changes found by a change-point fit",
        description="Follow one leaderboard metric across many runs of one test set (ordered by "
        "recorded time), as a table and optionally a plot. Steps come from a penalised "
        "piecewise-constant fit of each model's series (the fewest flat segments that "
        "explain the values within their noise, binomial and seed-to-seed; a penalty of "
        "NOISE_FACTOR^2 per segment), as asv's step detection does; throughput uses a "
        "relative threshold between consecutive runs on like machines.",
        epilog="examples:\n  vib-bench history runs/2026-*/ --metric worst@0.1\n"
        "  vib-bench history results/quick runs/quick --metric clean_error --model 'vib*' "
        "--plot history.png\n  vib-bench history runs/*/ --metric train_ex_s --format json",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="run directories or results files")
    p.add_argument(
        "--metric",
        default="clean_error",
        help="a leaderboard column key (default clean_error; e.g. pgd@0.3, worst@0.3, auc, train_ex_s)",
    )
    p.add_argument("--model", default=None, metavar="PATTERN", help="comma-separated names or wildcards (default all)")
    p.add_argument(
        "--order",
        choices=["time", "given"],
        default="time",
        help="order runs by their recorded training time (default) or as given",
    )
    p.add_argument(
        "--noise-factor",
        type=float,
        default=3.0,
        help="the penalty per segment is this squared, in units of the runs' standard errors: two single "
        "runs are a step when they differ by more than this many standard errors of their "
        "difference; longer flat stretches reveal smaller steps (default 3)",
    )
    p.add_argument(
        "--throughput-threshold",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="for throughput metrics: the relative change that counts as a step (default 0.1)",
    )
    add_format(
        p,
        TABLE_FORMATS,
        "github",
        "github (Markdown), simple, csv, latex, html or json (natural units, one record per run and model)",
    )
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the history into a PNG")
    p.set_defaults(func=cmd_history)
