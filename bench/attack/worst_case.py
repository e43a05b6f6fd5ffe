"""Robust accuracy as a record: per attack cell, and the per-example worst case over attacks."""

from __future__ import annotations

import torch

from ..errors import BenchError
from ..protocol import attack_set_gaps
from ..results import AttackRecord, norm_eps, per_example_key
from ..stats import wilson_interval


def acc_fields(robust: torch.Tensor) -> dict:
    """Robust accuracy with its 95% Wilson interval, from a per-example robustness vector."""
    n, k = int(robust.numel()), int(robust.sum())
    lo, hi = wilson_interval(k, n)
    return {"robust_acc": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n, "n_robust": k}


def worst_case_records(
    records: list[AttackRecord], vectors: dict, norm: str, eps: float, randomised: bool, clean_acc: float
) -> list[tuple[AttackRecord, torch.Tensor]]:
    """Per-example worst case over every attack at (norm, eps): per protocol, and over all protocols.

    An example is robust in the worst case only if every attack failed on it. For a randomised model
    the record over both protocols (``protocol = "all"``) is the leaderboard number; the per-protocol
    records use the standalone attacks only (a cascade attack's vector already includes other
    protocols). The leaderboard record names what its attack set lacks (``weak_attack_set``).
    """
    eps = norm_eps(eps)
    cells = [r for r in records if r.norm == norm and r.eps == eps and not r.is_worst_case]
    out: list[tuple[AttackRecord, torch.Tensor]] = []
    if not cells:
        return out

    def combine(rs, protocol, leaderboard):
        robust = None
        for r in rs:
            key = per_example_key(r.attack, norm, eps)
            if key not in vectors:
                raise BenchError(f"per-example results {key!r} are missing; rerun with --fresh")
            v = vectors[key]
            robust = v.clone() if robust is None else robust & v
        rec = AttackRecord.build(
            "worst_case",
            norm,
            eps,
            protocol,
            **acc_fields(robust),
            clean_acc=clean_acc,
            leaderboard=leaderboard,
            attacks=[f"{r.attack}[{r.protocol}]" for r in rs],
            wall_time_s=sum(r.get("wall_time_s", 0.0) for r in rs if not r.get("shared_run")),
            checks={},
        )
        if eps == 0:
            rec.checks["eps0_differs_from_clean"] = rec.robust_acc != clean_acc or any(
                r.checks.get("eps0_differs_from_clean") for r in rs
            )
        elif leaderboard:
            gaps = attack_set_gaps([r.attack for r in rs], randomised)
            rec["attack_set_gaps"] = gaps
            rec.checks["weak_attack_set"] = bool(gaps)
        out.append((rec, robust))
        return rec

    if not randomised:
        combine(cells, "standard", True)
        return out
    alone = [r for r in cells if not r.get("cascade")]
    per = {p: combine([r for r in alone if r.protocol == p], p, False) for p in sorted({r.protocol for r in alone})}
    rec = combine(cells, "all", True)
    for p in ("paper", "eot"):
        rec[f"{p}_robust_acc"] = per[p].robust_acc if p in per else None
    rec["worse_protocol"] = min(per, key=lambda p: per[p].robust_acc) if per else None
    rec.checks["eot_not_run"] = not any(r.protocol == "eot" for r in cells)
    return out
