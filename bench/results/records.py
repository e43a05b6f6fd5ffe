"""The keys of the results file and its attack records: one eps normalisation, cell keys, per-example keys."""

from __future__ import annotations

import math
from typing import NamedTuple

EPS_DIGITS = 9


def norm_eps(eps) -> float:
    """The one normalisation of an eps value: every comparison of eps goes through it."""
    return round(float(eps), EPS_DIGITS)


def eps_label(eps) -> str:
    """``0.3`` -> ``"0.3"``: how an eps is written in keys, tables and file names."""
    return f"{float(eps):g}"


class CellKey(NamedTuple):
    """What identifies an attack record: (attack, norm, normalised eps, protocol)."""

    attack: str
    norm: str
    eps: float
    protocol: str | None

    @classmethod
    def of(cls, attack: str, norm: str, eps, protocol: str | None) -> CellKey:
        return cls(attack, norm, norm_eps(eps), protocol)


def per_example_key(attack: str, norm: str, eps: float, protocol: str | None = None) -> str:
    """``attack:pgd@0.3``; worst cases: ``attack:worst_case@0.3`` (L-inf leaderboard),
    ``attack:worst_case_l2@1``, and per protocol ``attack:worst_case[paper]@0.3``."""
    name = attack
    if attack == "worst_case":
        name += "_l2" if norm == "L2" else ""
        if protocol not in (None, "standard", "all"):
            name += f"[{protocol}]"
    return f"attack:{name}@{eps_label(eps)}"


CLEAN_KEY = "clean"


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _seed_sort(s: str):
    return (0, int(s)) if str(s).isdigit() else (1, str(s))


# ---------------------------------------------------------------------------------- attack records
class AttackRecord:
    """One attack cell of one (model, seed): robust accuracy with its checks and configuration."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict):
        self.raw = raw

    @classmethod
    def build(cls, attack: str, norm: str, eps: float, protocol: str, **fields) -> AttackRecord:
        return cls({"attack": attack, "norm": norm, "eps": float(eps), "protocol": protocol, **fields})

    attack = property(lambda self: self.raw.get("attack"))
    norm = property(lambda self: self.raw.get("norm", "Linf"))
    protocol = property(lambda self: self.raw.get("protocol"))
    eps = property(lambda self: norm_eps(self.raw["eps"]))
    robust_acc = property(lambda self: _num(self.raw.get("robust_acc")))
    n = property(lambda self: self.raw.get("n"))
    n_robust = property(lambda self: self.raw.get("n_robust"))
    checks = property(lambda self: self.raw.setdefault("checks", {}))
    config = property(lambda self: self.raw.get("config") or {})
    budget = property(lambda self: (self.raw.get("config") or {}).get("budget"))
    leaderboard = property(lambda self: bool(self.raw.get("leaderboard")))
    is_worst_case = property(lambda self: self.raw.get("attack") == "worst_case")

    @property
    def key(self) -> CellKey:
        return CellKey.of(self.attack, self.norm, self.raw["eps"], self.protocol)

    @property
    def vector_key(self) -> str:
        """The key of this record's per-example vector (``per_example_key``)."""
        return per_example_key(self.attack, self.norm, self.eps, self.protocol)

    def get(self, field: str, default=None):
        return self.raw.get(field, default)

    def __getitem__(self, field: str):
        return self.raw[field]

    def __setitem__(self, field: str, value) -> None:
        self.raw[field] = value

    def __contains__(self, field: str) -> bool:
        return field in self.raw

    def raised(self) -> list[str]:
        """Names of the raised checks (a True value, or a non-empty warning string)."""
        return [k for k, v in self.checks.items() if v is True or (isinstance(v, str) and v.strip())]

    # indicators of attack failure (bench.attack.indicators) and the mitigations applied
    @property
    def indicators(self) -> dict[str, dict]:
        """Indicator name -> ``{"value", "threshold", "fired"}`` and, where a mitigation ran, ``"after"``."""
        return self.raw.get("indicators") or {}

    def set_indicator(self, name: str, value: float | None, threshold: float, **extra) -> None:
        entry = {
            "value": None if value is None else float(value),
            "threshold": float(threshold),
            "fired": value is not None and float(value) > threshold,
            **extra,
        }
        self.raw.setdefault("indicators", {})[name] = entry

    def set_indicator_after(self, name: str, after: float) -> None:
        """The value of an indicator after its mitigation ran."""
        e = self.raw.setdefault("indicators", {}).get(name)
        if e is not None:
            e["after"] = float(after)

    def fired_indicators(self, after: bool = False) -> list[str]:
        """Indicators that fired (``after``: that still fire once their mitigation ran)."""
        out = []
        for name, e in self.indicators.items():
            v = e.get("after", e.get("value")) if after else e.get("value")
            if v is not None and float(v) > float(e.get("threshold", 0.0)):
                out.append(name)
        return out

    @property
    def mitigations(self) -> list[dict]:
        """What each mitigation changed: ``{"indicator", "action", "robust_acc_before", "robust_acc_after"}``."""
        return list(self.raw.get("mitigations") or [])

    def add_mitigation(self, indicator: str, action: str, before: float, after: float, **extra) -> None:
        self.raw.setdefault("mitigations", []).append(
            {
                "indicator": indicator,
                "action": action,
                "robust_acc_before": float(before),
                "robust_acc_after": float(after),
                **extra,
            }
        )

    @property
    def loss_trace(self) -> list[float]:
        """The attack's mean best-so-far margin over its queries, at most 20 points ([] if not traced)."""
        return list(self.raw.get("loss_trace") or [])

    def valid(self) -> bool:
        """Whether it carries a number (robust accuracy and eps); readers ignore the others."""
        return math.isfinite(self.robust_acc) and math.isfinite(_num(self.raw.get("eps")))


def put_record(records: list[AttackRecord], rec: AttackRecord) -> None:
    """Put ``rec`` into ``records`` in place of the record with the same cell key, if any (appended last)."""
    old = next((r for r in records if r.key == rec.key), None)
    if old is not None:
        records.remove(old)
    records.append(rec)
