"""The gate's decision: the multiplicity correction, each row's verdict, and the exit status of ``compare``.

``bench.reporting.compare`` builds the rows (one paired test each); this module adjusts their p-values per
tier (Tarone's adjustment for discrete tests, or Holm, on the primary family; Benjamini-Hochberg on the
rest), turns them into verdicts, and says whether the gate fails: it fails closed (a row of BASE missing in
NEW, or nothing compared at all, is a failure).
"""

from __future__ import annotations

import math

from ..errors import BenchError
from ..stats import benjamini_hochberg, holm, tarone

TIERS = ("primary", "secondary", "throughput")  # what --fail-on selects (also "all")
VERDICTS = ("worse", "better", "same", "not comparable", "missing", "skipped")
CORRECTIONS = ("tarone", "holm", "none")


def _adjust_primary(tested: list[dict], alpha: float, correction: str) -> list[float]:
    """Adjusted p-values of the primary family: Tarone-Bonferroni (the K counted goes into each row's test)."""
    ps = [r["p"] for r in tested]
    if correction == "none":
        return ps
    if correction == "holm":
        return holm(ps)
    adjusted, k = tarone(ps, [r["min_p"] if math.isfinite(r["min_p"]) else 0.0 for r in tested], alpha)
    for r in tested:
        r["tarone_k"] = k
    return adjusted


def decide(rows: list[dict], alpha: float, correction: str, min_effect: float) -> None:
    """Adjust p-values per tier (Tarone or Holm on the primary family, Benjamini-Hochberg on the rest) and
    give verdicts."""
    if correction not in CORRECTIONS:
        raise BenchError(f"--correction {correction!r}: choose from {', '.join(CORRECTIONS)}")
    for tier in ("primary", "secondary"):
        tested = [r for r in rows if r["tier"] == tier and math.isfinite(r["p"])]
        if tier == "primary":
            adjusted = _adjust_primary(tested, alpha, correction)
        else:
            adjusted = (
                benjamini_hochberg([r["p"] for r in tested]) if correction != "none" else [r["p"] for r in tested]
            )
        for r, pa in zip(tested, adjusted):
            r["p_adj"] = pa
            r["verdict"] = "same"
            if pa < alpha and r["base"] != r["new"]:
                got_worse = (r["new"] > r["base"]) if r.get("lower_is_better") else (r["new"] < r["base"])
                if abs(r["new"] - r["base"]) * 100 < min_effect:
                    r["note"] = "; ".join(
                        x for x in (r["note"], f"significant, below --min-effect {min_effect:g} pp") if x
                    )
                else:
                    r["verdict"] = "worse" if got_worse else "better"


def check_fail_on(fail_on: list[str]) -> set[str]:
    """``--fail-on`` tiers: any of primary, secondary, throughput, or all (none: never fail)."""
    bad = [f for f in fail_on if f not in (*TIERS, "all")]
    if bad:
        raise BenchError(f"--fail-on {bad[0]!r}: choose from {', '.join((*TIERS, 'all'))} ('' never fails)")
    return set(TIERS) if "all" in fail_on else set(fail_on)


def exit_status(rows: list[dict], fail_on) -> int:
    """1 when a row of a ``fail_on`` tier got worse, or a row of BASE is missing in NEW, else 0.

    A missing row fails whatever the tier as soon as any tier is gated (an omission is not a
    measured change that a tier choice could excuse), except throughput rows, which fail only when
    the throughput tier is gated. No row tested at all (NEW holds no model, or nothing matched) fails
    too. No gated tier (``--fail-on ''``) never fails."""
    tiers = check_fail_on(list(fail_on))
    if not tiers:
        return 0
    if nothing_compared(rows):
        return 1
    if any(r["verdict"] == "worse" and r["tier"] in tiers for r in rows):
        return 1
    return (
        1
        if any(r["verdict"] == "missing" and (r["tier"] != "throughput" or "throughput" in tiers) for r in rows)
        else 0
    )


def nothing_compared(rows: list[dict]) -> bool:
    """True when no row was actually tested (NEW empty, nothing in common): the gate cannot pass on that."""
    return not any(r["verdict"] in ("worse", "better", "same") for r in rows)
