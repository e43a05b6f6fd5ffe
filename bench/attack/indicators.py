"""The six indicators of attack failure (Pintor et al., "Indicators of Attack Failure", NeurIPS 2022).

Each indicator is measured per attack cell as a fraction of the attacked examples and turned into a
flag by a stated threshold (``value > threshold``). Where a mitigation ran (:mod:`bench.attack.mitigate`)
the value after it is recorded beside the one before, and the record lists what the mitigation
changed. The record fields are written and read through :class:`bench.results.AttackRecord`
(``set_indicator``, ``indicators``, ``fired_indicators``, ``add_mitigation``).

A worst-case record (per-example worst case over the attacks of one eps) carries the indicators of
its attack set: the smallest value, after mitigation, over its attacks, so it fires only when every
attack of the set shows that failure (its number then rests on a failed attack).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..results import AttackRecord


@dataclass(frozen=True)
class Indicator:
    name: str
    label: str  # short, in tables
    threshold: float  # the indicator fires when its value is above this
    measures: str  # what the value is a fraction of
    mitigation: str  # what vib-bench does about it


UNAVAILABLE = "unavailable_gradients"
UNSTABLE = "unstable_predictions"
UNCONSTRAINED = "unconstrained_failure"
SILENT = "silent_success"
INCOMPLETE = "incomplete_optimization"
TRANSFER = "transfer_failure"

INDICATOR_LIST = [
    Indicator(
        SILENT,
        "silent success",
        0.0,
        "attacked examples for which a point the attack visited inside the eps-ball is misclassified (under "
        "the evaluation protocol) although the returned point is not",
        "the visited adversarial point replaces the returned one; the robust number uses it",
    ),
    Indicator(
        INCOMPLETE,
        "incomplete optimization",
        0.05,
        "attacked examples still robust whose margin loss was still falling over the last 20% of their "
        "queries (mean of the last 20% vs the 20% before, by > 0.001 and > 10% of the whole drop)",
        "the attack is rerun on the examples still robust with 2x, then 4x its steps (or queries) until "
        "the indicator clears; the cap is 4x",
    ),
    Indicator(
        UNAVAILABLE,
        "unavailable gradients",
        0.05,
        "model-check examples whose input gradient is exactly zero (for cross-entropy attacks also: has "
        "vanished); gradient attacks only",
        "a transfer attack from the model's surrogate and the gradient-free attacks join the worst case",
    ),
    Indicator(
        UNSTABLE,
        "unstable predictions",
        0.05,
        "attacked examples whose prediction on the returned point changes under a second noise draw "
        "(randomised models only; 0 for deterministic ones)",
        "an EOT attack (gradients averaged over draws) runs at that eps and joins the worst case",
    ),
    Indicator(
        UNCONSTRAINED,
        "unconstrained failure",
        0.05,
        "clean-correct examples (of the first 100) the same attack fails on with no effective budget "
        "(L-inf eps 1, L2 eps = sqrt(pixels); a minimum-norm attack: unbounded success)",
        "the unbounded run is the sanity run itself: a fired flag means the attack is broken for this model",
    ),
    Indicator(
        TRANSFER,
        "transfer failure",
        0.01,
        "attacked examples the white-box attack failed on but a transfer attack from the model's surrogate "
        "(its mean mode: z = mu, no noise/quantisation) fooled",
        "the transfer attack joins the worst case",
    ),
]
INDICATORS: dict[str, Indicator] = {i.name: i for i in INDICATOR_LIST}
ORDER = tuple(INDICATORS)


def fraction(mask: torch.Tensor, of: int) -> float:
    return float(mask.sum()) / of if of else 0.0


def set_value(rec: AttackRecord, name: str, value: float | None, **extra) -> None:
    """Record one indicator of a cell with its threshold."""
    rec.set_indicator(name, value, INDICATORS[name].threshold, **extra)


# -------------------------------------------------------------------------- model-level values
def unavailable_value(checks: dict, loss: str, gradient_free: bool) -> float | None:
    """Unavailable gradients for one attack, from the model checks (None: gradient-free, or no checks)."""
    if gradient_free or "zero_grad_fraction" not in checks:
        return None
    v = float(checks["zero_grad_fraction"])
    if loss == "ce":  # cross-entropy attacks also stall where the CE gradient vanished
        v = max(v, float(checks.get("vanishing_grad_fraction") or 0.0))
    return v


# -------------------------------------------------------------------------- worst-case records
def _effective(rec: AttackRecord, name: str) -> float | None:
    e = rec.indicators.get(name) or {}
    v = e.get("after", e.get("value"))
    return None if v is None else float(v)


def worst_case_indicators(wc: AttackRecord, members: list[AttackRecord]) -> None:
    """The indicators of a worst-case record: per indicator the smallest effective value of its attacks."""
    for name in ORDER:
        vals = [v for r in members if (v := _effective(r, name)) is not None]
        if vals:
            set_value(wc, name, min(vals), of="attack set (smallest over its attacks, after mitigation)")


def members_of(wc: AttackRecord, records: list[AttackRecord]) -> list[AttackRecord]:
    """The cells a worst-case record combines (its ``attacks`` list: ``name[protocol]``)."""
    names = set(wc.get("attacks") or [])
    return [
        r
        for r in records
        if not r.is_worst_case and r.norm == wc.norm and r.eps == wc.eps and f"{r.attack}[{r.protocol}]" in names
    ]


# ------------------------------------------------------------------------------------ reading
def _entry(recs: list[AttackRecord], name: str) -> dict | None:
    """An indicator over several cells of one attack (its eps): the largest value and the largest after."""
    es = [r.indicators.get(name) for r in recs]
    es = [e for e in es if e and e.get("value") is not None]
    if not es:
        return None
    value = max(float(e["value"]) for e in es)
    after = max(float(e.get("after", e["value"])) for e in es)
    return {"value": value, "after": after, "fired": any(e.get("fired") for e in es)}


def cell_text(e: dict | None) -> str:
    """One table cell: the value in %, ``!`` when it fired, ``->after`` when a mitigation changed it."""
    if e is None:
        return "-"
    text = f"{100 * e['value']:.0f}" + ("!" if e["fired"] else "")
    if e["after"] != e["value"]:
        text += f"->{100 * e['after']:.0f}"
    return text


def table_rows(records: list[AttackRecord], norm: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the indicator table of one (model, seed) and norm: the six indicators as rows,
    a column per attack (and the leaderboard worst case), each cell the largest value over the attack's
    eps > 0 in % of the attacked examples (``!``: fired; ``->``: the value after its mitigation)."""
    cells = [
        r for r in records if r.norm == norm and r.indicators and r.eps > 0 and (not r.is_worst_case or r.leaderboard)
    ]
    if not cells:
        return [], []
    by: dict[str, list[AttackRecord]] = {}
    for r in cells:
        by.setdefault("worst case" if r.is_worst_case else f"{r.attack} [{r.protocol}]", []).append(r)
    cols = sorted(by, key=lambda k: (k == "worst case", k))
    headers = [f"{norm} (% of examples)"] + cols
    rows = [
        [f"{INDICATORS[n].label} (>{100 * INDICATORS[n].threshold:g}%)"] + [cell_text(_entry(by[c], n)) for c in cols]
        for n in ORDER
    ]
    return headers, rows


def fired_cells(records: list[AttackRecord]) -> dict[str, int]:
    """Indicator -> the number of cells (not worst cases) where it fired."""
    out: dict[str, int] = {}
    for r in records:
        if not r.is_worst_case:
            for n in r.fired_indicators():
                out[n] = out.get(n, 0) + 1
    return out


def failed_worst_cases(records: list[AttackRecord]) -> list[AttackRecord]:
    """Leaderboard worst-case records whose indicators still fire after mitigation."""
    return [r for r in records if r.is_worst_case and r.leaderboard and r.eps > 0 and r.fired_indicators(after=True)]


def changed_numbers(records: list[AttackRecord]) -> int:
    """Records whose robust accuracy a mitigation changed."""
    return sum(any(m["robust_acc_after"] != m["robust_acc_before"] for m in r.mitigations) for r in records)


def model_text(seeds) -> str:
    """The leaderboard's attack-failure cell of a model (its seeds): ``none``, or each indicator that fired
    with the number of cells, and ``!`` when a leaderboard number still rests on it after mitigation (every
    attack of the worst case shows it); "" when no indicator was measured."""
    recs = [r for s in seeds for r in s.records()]
    if not any(r.indicators for r in recs):
        return ""
    fired = fired_cells(recs)
    failed = {n for r in failed_worst_cases(recs) for n in r.fired_indicators(after=True)}
    parts = [
        f"{INDICATORS[n].label} x{fired.get(n, 0)}{'!' if n in failed else ''}"
        for n in ORDER
        if n in fired or n in failed
    ]
    return ", ".join(parts) or "none"
