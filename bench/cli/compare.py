"""``vib-bench compare BASE NEW``: metric by metric, with paired tests; exit 1 if something got worse."""

from __future__ import annotations

import sys

from ..errors import BenchError
from .common import add_format, parse_list


def cmd_compare(args) -> int:
    from ..integrity import integrity_problems
    from ..reporting.compare import compare_runs
    from ..reporting.compare_render import provenance, render_rows, summary_line, to_json
    from ..reporting.gate import check_fail_on, exit_status
    from ..results import Results
    from ..run_diff import setting_changes

    fail_on = parse_list(args.fail_on, what="tier") or []
    check_fail_on(fail_on)
    if not 0 < args.alpha < 1:
        raise BenchError(f"--alpha must be in (0, 1), got {args.alpha}")
    if not args.throughput_threshold > 0:
        raise BenchError(f"--throughput-threshold must be > 0, got {args.throughput_threshold}")
    if not args.min_effect >= 0:
        raise BenchError(f"--min-effect must be >= 0 (percentage points), got {args.min_effect}")
    base, new = Results.load(args.base), Results.load(args.new)
    for run in (base, new):
        problems = integrity_problems(run, limit=1)
        if problems:
            raise BenchError(
                f"{run.path}: rates disagree with the per-example vectors beside it, or those are "
                f"damaged ({problems[0]}); the run was edited or half-written: regenerate it"
            )
    changes = setting_changes(base, new)
    if changes and args.strict:
        raise BenchError(f"--strict: the runs differ in {len(changes)} setting(s), first: {changes[0]}")
    rows = compare_runs(
        base,
        new,
        alpha=args.alpha,
        throughput_threshold=args.throughput_threshold,
        correction=args.correction,
        min_effect=args.min_effect,
        allow_missing=args.allow_missing,
    )
    status = exit_status(rows, fail_on)
    if args.format == "json":
        sys.stdout.write(to_json(base, new, rows, changes, fail_on, status))
        return status
    table = render_rows(rows, args.format, show_all=args.all)
    line = summary_line(rows, fail_on, status)
    # text formats tell the whole story on stdout; file formats keep stdout to the table alone
    info = sys.stdout if args.format in ("github", "simple") else sys.stderr
    print(f"base: {provenance(base)}", file=info)
    print(f"new:  {provenance(new)}", file=info)
    for c in changes:
        print(f"changed: {c}", file=info)
    print(
        f"alpha {args.alpha:g}; primary family (clean error, leaderboard worst cases) "
        f"{_correction_words(rows, args.correction)}, other rows "
        f"{'Benjamini-Hochberg q-values' if args.correction != 'none' else 'unadjusted'}; "
        f"min effect {args.min_effect:g} pp; throughput threshold {args.throughput_threshold:.0%}",
        file=info,
    )
    info.flush()
    sys.stdout.write(table)
    sys.stdout.flush()
    print(line, file=info)
    return status


def _correction_words(rows: list[dict], correction: str) -> str:
    if correction == "none":
        return "unadjusted"
    primary = [r for r in rows if r["tier"] == "primary" and r["p"] == r["p"]]
    if correction == "holm":
        return f"Holm-adjusted over {len(primary)} rows"
    k = next((r["tarone_k"] for r in primary if "tarone_k" in r), 1)
    return (
        f"Tarone-Bonferroni over K = {k} of {len(primary)} rows (the others cannot reach "
        f"alpha/K whatever their outcome)"
    )


def register(sub) -> None:
    from ..reporting.compare import TABLE_FORMATS
    from ..reporting.gate import CORRECTIONS

    p = sub.add_parser(
        "compare",
        help="compare two runs metric by metric; exit 1 if something got worse (CI gate)",
        description="Compare two runs evaluated on the same test set: paired McNemar tests on the "
        "per-example vectors (Fisher-combined over seeds), Tarone's correction for discrete "
        "tests over the primary family (clean error, leaderboard worst cases), "
        "Benjamini-Hochberg for the rest. Fails closed: a model, seed or cell of BASE "
        "missing or shorter in NEW fails unless --allow-missing. Exit 0: no significant "
        "worsening in the --fail-on tiers and nothing missing; 1: a regression or an "
        "omission; 2: bad input (including damaged per-example files).",
        epilog="examples:\n  vib-bench compare results/quick runs/quick\n"
        "  vib-bench compare base/ new/ --all --format csv > diff.csv\n"
        "  vib-bench compare base/ new/ --strict --min-effect 0.2 --fail-on all",
    )
    p.add_argument("base", metavar="BASE", help="the reference run directory or results file")
    p.add_argument("new", metavar="NEW", help="the run to check")
    p.add_argument(
        "--fail-on",
        default="primary",
        metavar="TIERS",
        help="which significant worsening fails (exit 1): primary (clean error and the leaderboard worst "
        "cases), secondary (every other attack row), throughput, or all (default primary; '' never fails)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--min-effect",
        type=float,
        default=0.0,
        metavar="POINTS",
        help="a significant change smaller than this many percentage points does not fail (default 0)",
    )
    p.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="tarone",
        help="tarone (default): Bonferroni over the primary rows whose exact test could reach alpha/K "
        "(Tarone's adjustment for discrete tests); holm: Holm over every primary row; both with "
        "Benjamini-Hochberg q-values for the other rows; none: raw p-values",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="report a model, seed or cell of BASE that NEW lacks (or holds a shorter per-example vector "
        "for) as skipped instead of failing",
    )
    p.add_argument(
        "--throughput-threshold",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="relative change of median throughput that counts (default 0.1 = 10%%)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2) when the runs differ in a setting: model arguments, recipe, data, attack "
        "budgets, attacked examples or evaluation seed",
    )
    add_format(p, (*TABLE_FORMATS, "json"), "github", "github (Markdown), simple, csv, latex, html or json")
    p.add_argument("--all", action="store_true", help="list every row, not only the changes")
    p.set_defaults(func=cmd_compare)
