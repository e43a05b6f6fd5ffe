"""``vib-bench mi-validate``: the MI estimators against distributions whose MI is known."""

from __future__ import annotations

import sys
import time


def cmd_mi_validate(args) -> int:
    from ..info.truth import VALIDATION_MODES, format_validation_table, parse_estimators, validate_estimators

    names = parse_estimators(args.estimators)
    start = time.perf_counter()
    rows = validate_estimators(
        names, seed=args.seed, quick=args.quick,
        progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None,
    )
    print(format_validation_table(rows))
    label = "quick" if args.quick else "full"
    mode = VALIDATION_MODES[label]
    print(f"\n{label}: {mode['n_samples']} samples, {mode['steps']} steps, {mode['restarts']} "
          f"restarts per estimate; seed {args.seed}; total {time.perf_counter() - start:.0f}s")
    return 0


def register(sub) -> None:
    from ..info import list_estimators

    parser = sub.add_parser(
        "mi-validate",
        help="check the MI estimators against known ground truth",
        description="Run the neural MI estimators on correlated Gaussians and a binary-input "
        "Gaussian channel, whose MI is known, and print a markdown table of estimate vs truth.",
    )
    parser.add_argument("--estimators", default=",".join(list_estimators()),
                        help="comma-separated estimators (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples, steps and restarts (seconds per estimate instead of ~15)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print one progress line per estimate to stderr")
    parser.set_defaults(func=cmd_mi_validate)
