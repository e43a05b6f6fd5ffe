"""What tables show of ``vib-bench info``: the I(X;Z) interval, the unflagged estimates and the info flags.

The leaderboard's ``ixz`` and ``izy`` columns read only this module:

* ``ixz``: for a Gaussian encoder (VIB) the known-encoder interval [lower, upper] (the number behind it,
  for sorting and CSV, is the lower bound, a guaranteed one); for a deterministic representation
  "inf (deterministic)" and no number; otherwise the largest estimate that raised no flag.
* ``izy``: the provable interval [max(0, H(Y) - CE), min(H(Y), rate, leave-one-out)] of
  ``bounds.izy_interval`` (the number behind it: the lower end) for every model with info;
* ``izy_critic``: the largest I(Z;Y) critic estimate that raised no flag, a diagnostic beside the interval.

A flagged estimate is never shown as a value; its flag goes to the flags column instead.
"""

from __future__ import annotations

import math

from ..results import ModelResult, SeedResult
from .bounds import DETERMINISTIC_CELL, ixz_interval, izy_interval

KEYS = {"ixz": "I(X;Z)", "izy": "I(Z;Y)", "izy_critic": "I(Z;Y)"}
UPPER = {"ixz": "ixz_upper", "izy": "izy_upper"}  # the upper end of an interval column
SHORT = {
    "below_lower_bound": "below-bound",
    "above_upper_bound": "above-bound",
    "unstable": "unstable",
    "near_ceiling": "at-ceiling",
}
CAP_LABEL = "I(X;Z) lower at log N"
COLUMNS_NOTE = (
    "I(X;Z), I(Z;Y) (`vib-bench info`, nats): for VIB, I(X;Z) lies in [lower, upper] from the known "
    "encoder (lower: InfoNCE with the true p(z|x), at most log N; upper: the smaller of the "
    "leave-one-out bound and the rate); for a deterministic representation it is infinite "
    "(inf); otherwise the largest critic estimate that raised no flag. I(Z;Y) lies in [lower, upper] for every "
    "model: lower = H(Y) - CE of the model's own decoder on Z (one z sample per example for VIB; the "
    "last hidden layer otherwise), upper = the smallest of H(Y), the rate and the leave-one-out bound; "
    "I(Z;Y) critic: the largest critic estimate that raised no flag (a diagnostic)."
)
FLAGS_NOTE = (
    "Info flags (`vib-bench info`): `below-bound`/`above-bound`: the named estimators contradict an "
    "analytic bound; `unstable`: their restarts disagree; `at-ceiling`: InfoNCE at log(batch); "
    f"`{CAP_LABEL}`: the lower end of the interval is capped at log N, so I(X;Z) may be much larger. "
    "Flagged estimates never appear as values (in the I(Z;Y) critic column, or the I(X;Z) column where there "
    "is no interval); the intervals need no critic."
)


def _flagged(entry: SeedResult, quantity: str) -> set[str]:
    return {f.get("estimator") for f in entry.info_flags if f.get("quantity") == quantity}


def best_unflagged(entry: SeedResult, quantity: str) -> float:
    """The largest estimate of ``quantity`` that raised no flag; NaN when there is none."""
    bad = _flagged(entry, quantity)
    vals = [e.get("nats") for name, e in entry.info_estimates(quantity).items() if name not in bad]
    vals = [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
    return max(vals) if vals else math.nan


def seed_info_values(entry: SeedResult) -> dict[str, float]:
    """``ixz`` (the lower end of the interval, or an unflagged estimate), ``ixz_upper``, ``izy`` and
    ``izy_upper`` (the I(Z;Y) interval) and ``izy_critic`` (the best unflagged critic estimate); NaN when
    absent, and no I(X;Z) number for a deterministic representation."""
    out = {"ixz": math.nan, "ixz_upper": math.nan, "izy": math.nan, "izy_upper": math.nan, "izy_critic": math.nan}
    if entry.info_deterministic is None:
        return out
    out["izy_critic"] = best_unflagged(entry, "I(Z;Y)")
    iv_y = izy_interval(entry.info_bounds)
    if iv_y is not None:
        out["izy"], out["izy_upper"] = iv_y[0], iv_y[1]
    if entry.info_deterministic:
        return out
    iv = ixz_interval(entry.info_bounds)
    if iv is not None:
        out["ixz"], out["ixz_upper"] = iv[0], iv[1]
    else:
        out["ixz"] = best_unflagged(entry, "I(X;Z)")
    return out


def _mean(vals: list[float]) -> float:
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def info_cell(model: ModelResult, key: str) -> str:
    """The text of a model's ``ixz``, ``izy`` or ``izy_critic`` cell (means over its done seeds with info)."""
    seeds = [s for s in model.done_seeds() if s.info]
    if not seeds:
        return ""
    vals = [seed_info_values(s) for s in seeds]
    if key == "izy_critic":
        v = _mean([d["izy_critic"] for d in vals])
        return f"{v:.3f}" if math.isfinite(v) else ""
    if key == "izy":
        lo, up = _mean([d["izy"] for d in vals]), _mean([d["izy_upper"] for d in vals])
        return f"[{lo:.3f}, {up:.3f}]" if math.isfinite(lo) and math.isfinite(up) else ""
    if all(s.info_deterministic for s in seeds):
        return DETERMINISTIC_CELL
    lo, up = _mean([d["ixz"] for d in vals]), _mean([d["ixz_upper"] for d in vals])
    if math.isfinite(lo) and math.isfinite(up):
        return f"[{lo:.2f}, {up:.2f}]"
    return f"{lo:.2f}" if math.isfinite(lo) else ""


def interval_ends(model: ModelResult, key: str) -> tuple[float, float]:
    """(lower, upper) of an interval column (``ixz`` or ``izy``): means over the done seeds; NaN when absent."""
    vals = [seed_info_values(s) for s in model.done_seeds() if s.info]
    return _mean([d[key] for d in vals]), _mean([d[UPPER[key]] for d in vals])


def has_info(model: ModelResult) -> bool:
    return any(s.info for s in model.done_seeds())


def info_flag_labels(model: ModelResult) -> list[str]:
    """Flag labels for the leaderboard, e.g. ``I(X;Z) below-bound: jsd/mine`` (no commas: they separate
    flags; ``all`` when every estimator run is flagged), and ``I(X;Z) lower at log N`` when the
    interval's lower end is capped."""
    seen: dict[tuple[str, str], set[str]] = {}
    ran: dict[str, set[str]] = {}
    capped = False
    for s in model.done_seeds():
        for f in s.info_flags:
            if s.info_deterministic and f.get("quantity") == "I(X;Z)":
                continue  # an older record's estimate of an infinite MI: nothing to flag
            seen.setdefault((f.get("quantity", "?"), f.get("flag", "?")), set()).add(str(f.get("estimator")))
        for q in KEYS.values():
            ran.setdefault(q, set()).update(s.info_estimates(q))
        capped = capped or bool(s.info_bounds.get("ixz_lower_at_cap"))
    labels = [
        f"{q} {SHORT.get(flag, flag)}: {'all' if len(ests) > 1 and ests == ran.get(q) else '/'.join(sorted(ests))}"
        for (q, flag), ests in sorted(seen.items())
    ]
    return labels + ([CAP_LABEL] if capped else [])
