"""Which model is best on a metric, and whether it is significantly so: paired tests between two models
of one run on the same test examples.

Every accuracy-type metric of the leaderboard (clean error, FGSM/PGD/worst-case robust accuracy at an
eps) has a per-example correctness vector beside the results file. Two models of one run were
evaluated on the same examples with the same seeds, so the right test is McNemar's on the examples
where they disagree (several seeds: per-seed exact tests combined with Fisher's method,
``bench.stats.paired_seeds_p``). Without the vectors (a bare results file) it falls back to a
two-proportion test on the recorded rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..results import CLEAN_KEY, AttackRecord, Results, SeedResult, norm_eps, per_example_key
from ..stats import paired_seeds_p, two_proportion_test

ALPHA = 0.05


def robust_accuracy(records: list[AttackRecord], family: str, eps: float, norm: str = "Linf") -> float:
    """One seed's leaderboard robust accuracy for ``family`` (an attack name, or ``worst``) at ``eps``.

    ``pgd`` covers ``pgd`` and ``eot_pgd`` (the worse wins); ``worst`` prefers the attack stage's
    leaderboard worst-case record (per-example, over every attack and protocol) and falls back to
    the minimum over attacks (an upper bound on the per-example worst case) when none is stored.
    """
    eps = norm_eps(eps)
    at = [r for r in records if r.norm == norm and r.eps == eps]
    if family == "worst":
        wc = [r for r in at if r.is_worst_case]
        if wc:
            lead = [r for r in wc if r.leaderboard] or [r for r in wc if r.protocol in ("all", "standard")] or wc
            return min(r.robust_acc for r in lead)
        at = [r for r in at if not r.is_worst_case]
    else:
        at = [r for r in at if r.attack in (family, f"eot_{family}")]
    return min((r.robust_acc for r in at), default=math.nan)


def vector_key(seed: SeedResult, metric: str) -> str | None:
    """The per-example key behind a leaderboard metric of one seed (None when it has none).

    ``clean_error`` -> the clean vector; ``worst@e`` -> the leaderboard worst case at L-inf e;
    ``fgsm@e`` / ``pgd@e`` -> the worse of the attack and its EOT version, as the leaderboard takes it.
    """
    if metric == "clean_error":
        return CLEAN_KEY
    if "@" not in metric:
        return None
    family, eps = metric.split("@", 1)
    eps = float(eps)
    recs = [r for r in seed.records() if r.norm == "Linf" and r.eps == norm_eps(eps)]
    if family == "worst":
        lead = [r for r in recs if r.is_worst_case and r.leaderboard] or [
            r for r in recs if r.is_worst_case and r.protocol in ("all", "standard")
        ]
        return per_example_key("worst_case", "Linf", eps, lead[0].protocol) if lead else None
    cands = [r for r in recs if r.attack in (family, f"eot_{family}")]
    if not cands:
        return None
    worst = min(cands, key=lambda r: r.robust_acc)
    return per_example_key(worst.attack, "Linf", eps)


@dataclass
class Paired:
    """A paired comparison of model ``a`` with model ``b``: examples only ``a`` got right, only ``b``, p."""

    a_only: int
    b_only: int
    n: int
    p: float
    test: str


def compare_models(res: Results, a: str, b: str, metric: str) -> Paired | None:
    """Paired test of two models of one run on ``metric``, over the seeds both finished."""
    ma, mb = res.model(a), res.model(b)
    if ma is None or mb is None:
        return None
    seeds = [s.seed_id for s in ma.done_seeds() if mb.seed(s.seed_id) is not None and mb.seed(s.seed_id).is_done]
    if not seeds:
        return None
    pairs, n = [], 0
    for s in seeds:
        sa, sb = ma.seed(s), mb.seed(s)
        ka, kb = vector_key(sa, metric), vector_key(sb, metric)
        va = sa.per_example().get(ka) if ka else None
        vb = sb.per_example().get(kb) if kb else None
        if va is None or vb is None or len(va) != len(vb):
            return _unpaired(sa, sb, metric)
        pairs.append((int(np.sum(va & ~vb)), int(np.sum(~va & vb))))
        n += len(va)
    a_only, b_only = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    test = "McNemar exact" if len(pairs) == 1 else f"per-seed exact McNemar, Fisher-combined over {len(pairs)} seeds"
    return Paired(a_only, b_only, n, paired_seeds_p(pairs), test)


def _unpaired(sa: SeedResult, sb: SeedResult, metric: str) -> Paired | None:
    def rate(s: SeedResult):
        if metric == "clean_error":
            return 1 - s.clean_metric("error"), s.clean_metric("n")
        family, eps = metric.split("@", 1)
        recs = s.records()
        ns = [r.n for r in recs if r.norm == "Linf" and r.n]
        return robust_accuracy(recs, family, float(eps)), (min(ns) if ns else math.nan)

    (pa, na), (pb, nb) = rate(sa), rate(sb)
    if not all(math.isfinite(v) for v in (pa, na, pb, nb)):
        return None
    return Paired(
        0, 0, int(na), two_proportion_test(pa * na, int(na), pb * nb, int(nb)), "two-proportion z (no per-example data)"
    )


@dataclass
class Best:
    """The best model(s) of a column: alone when significantly better than the runner-up, else the tie."""

    models: set[str]
    significant: bool
    runner_up: str | None = None
    p: float | None = None


def best_models(res: Results, metric: str, values: dict[str, float], better: str, alpha: float = ALPHA) -> Best:
    """The model with the best value, if a paired test separates it from the runner-up; otherwise every
    model whose difference from the best is not significant (none when all are tied)."""
    vals = {m: v for m, v in values.items() if math.isfinite(v)}
    if len(vals) < 2:
        return Best(set(), False)
    order = sorted(vals, key=lambda m: vals[m] if better == "min" else -vals[m])
    top, runner = order[0], order[1]
    first = compare_models(res, top, runner, metric)
    if first is not None and first.p < alpha and vals[top] != vals[runner]:
        return Best({top}, True, runner, first.p)
    tied = {top}
    for other in order[1:]:
        if vals[other] == vals[top]:
            tied.add(other)
            continue
        pr = first if other == runner else compare_models(res, top, other, metric)
        if pr is None or pr.p >= alpha:
            tied.add(other)
    if len(tied) == len(vals):
        return Best(set(), False, runner, first.p if first else None)
    return Best(tied, False, runner, first.p if first else None)
