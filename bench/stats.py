"""Statistics for comparing runs: exact paired tests (from scipy), multiplicity corrections, summaries.

Everything works on proportions in [0, 1] or on paired boolean vectors (one entry per test
example: was it classified correctly?). Two runs evaluated on the same test set are *paired*, so
the right test for "did the error change?" is McNemar's: only the examples on which the two runs
disagree carry information, and under "no change" each disagreement is a fair coin flip.

The exact tests come from scipy (``scipy.stats.binomtest`` for McNemar's exact test,
``scipy.stats.combine_pvalues`` for Fisher's method, ``scipy.stats.norm`` for the normal tails).
What scipy lacks is written here: the McNemar mid-p value, Holm's and Benjamini-Hochberg's
adjustments, Tarone's adjustment for discrete tests (:func:`tarone`) and the Wilson interval for a
fractional count. scipy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


# ----------------------------------------------------------------------------- intervals
def z_value(confidence: float = 0.95) -> float:
    """The two-sided standard-normal quantile for ``confidence`` (0.95 -> 1.96)."""
    from scipy.stats import norm

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage even near 0 and 1).

    Written here rather than ``binomtest(...).proportion_ci("wilson")`` because ``successes`` may be
    fractional (derived from a rounded rate)."""
    if n <= 0:
        return (0.0, 1.0)
    z = z_value(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # exact at the ends (the formula gives 0 and 1 there up to rounding)
    return (0.0 if successes <= 0 else lo, 1.0 if successes >= n else hi)


# ----------------------------------------------------------------------------- tests
def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    from scipy.stats import norm

    return float(2.0 * norm.sf(abs(z)))


def mcnemar(base: Sequence[bool], new: Sequence[bool], mid_p: bool = False) -> dict:
    """McNemar's exact test on paired correctness vectors.

    ``b`` counts examples the base got right and the new run got wrong, ``c`` the reverse. Under
    the null hypothesis (same accuracy) ``b ~ Bin(b + c, 1/2)``; the two-sided exact p-value is
    ``min(1, 2 P(X <= min(b, c)))``. The mid-p variant subtracts half the probability of the
    observed value, which is less conservative and still has close to nominal size.
    """
    base = np.asarray(base, dtype=bool)
    new = np.asarray(new, dtype=bool)
    if base.shape != new.shape:
        raise ValueError(f"paired vectors differ in length ({base.size} vs {new.size})")
    b = int(np.sum(base & ~new))
    c = int(np.sum(~base & new))
    return {"b": b, "c": c, "n": int(base.size), "p": mcnemar_p(b, c, mid_p=mid_p)}


def mcnemar_p(b: int, c: int, mid_p: bool = False) -> float:
    """Two-sided exact (or mid-p) McNemar p-value from the discordant counts ``b`` and ``c``.

    The exact value is scipy's two-sided binomial test of ``b`` successes in ``b + c`` trials at 1/2;
    scipy has no mid-p variant, so that one is ``2 (P(X <= k) - P(X = k) / 2)``, k = min(b, c)."""
    from scipy.stats import binom, binomtest

    n = b + c
    if n == 0:
        return 1.0
    if not mid_p:
        return float(binomtest(int(b), int(n), 0.5).pvalue)
    k = min(b, c)
    return min(1.0, 2.0 * float(binom.cdf(k, n, 0.5) - 0.5 * binom.pmf(k, n, 0.5)))


def mcnemar_one_sided(b: int, c: int) -> float:
    """Exact one-sided McNemar p-value for "the new run lost more than it gained": P(X >= b), X ~ Bin(b + c, 1/2)."""
    from scipy.stats import binomtest

    n = b + c
    if n == 0 or b == 0:
        return 1.0
    return float(binomtest(int(b), int(n), 0.5, alternative="greater").pvalue)


def fisher_combine(pvalues: Sequence[float]) -> float:
    """Fisher's method: combine independent p-values into one (chi-squared with 2k degrees of freedom)."""
    from scipy.stats import combine_pvalues

    ps = [min(max(float(p), 1e-300), 1.0) for p in pvalues]
    if not ps:
        return 1.0
    if len(ps) == 1:
        return ps[0]
    return min(1.0, float(combine_pvalues(ps, method="fisher").pvalue))


def paired_seeds_p(discordant: Sequence[tuple[int, int]]) -> float:
    """Two-sided p-value of a paired change measured on several seeds.

    ``discordant`` holds, per seed, ``(b, c)``: examples lost and gained on the same test examples.
    One seed: McNemar's exact test. Several: each seed's exact one-sided test is combined across seeds
    with Fisher's method, in each direction, and the two-sided p-value is twice the smaller (flips
    are not pooled across seeds as if they were independent examples).
    """
    pairs = [(int(b), int(c)) for b, c in discordant]
    if len(pairs) == 1:
        return mcnemar_p(*pairs[0])
    worse = fisher_combine([mcnemar_one_sided(b, c) for b, c in pairs])
    better = fisher_combine([mcnemar_one_sided(c, b) for b, c in pairs])
    return min(1.0, 2.0 * min(worse, better))


def paired_seeds_min_p(discordant: Sequence[tuple[int, int]]) -> float:
    """The smallest p-value :func:`paired_seeds_p` could give with these discordant totals per seed.

    Given ``b + c`` discordant pairs per seed, the most extreme outcome puts every one on the same side:
    ``2 * 0.5 ** (b + c)`` for one seed (capped at 1), the Fisher combination of ``0.5 ** (b_i + c_i)``
    over several. A row with no discordant pair has a minimum of 1: it can never be significant.
    """
    totals = [int(b) + int(c) for b, c in discordant]
    if len(totals) == 1:
        return min(1.0, 2.0 * 0.5 ** totals[0])
    if not any(totals):
        return 1.0
    return min(1.0, 2.0 * fisher_combine([0.5**t for t in totals]))


def two_proportion_test(x1: float, n1: int, x2: float, n2: int) -> float:
    """Two-sided p-value of the pooled z-test for p1 == p2 (unpaired; used when no per-example data).

    ``x1``/``x2`` are success counts (they may be fractional when derived from rounded rates).
    Ignoring the pairing makes this test conservative for runs on the same test set.
    """
    if n1 <= 0 or n2 <= 0:
        return 1.0
    p1, p2 = x1 / n1, x2 / n2
    pool = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if p1 == p2 else 0.0
    return normal_two_sided_p((p1 - p2) / se)


# ----------------------------------------------------------------------------- multiplicity
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control, valid under any dependence)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def tarone_k(min_pvalues: Sequence[float], alpha: float) -> int:
    """Tarone's count of testable hypotheses: the smallest K >= 1 with #{i : min_p_i <= alpha / K} <= K.

    For discrete tests (an exact McNemar test on ``d`` discordant pairs cannot give a p-value below
    ``2 * 0.5 ** d``) a hypothesis whose smallest achievable p-value exceeds ``alpha / K`` can never
    be rejected at that level, so it need not share the budget (Tarone 1990, Biometrics 46:515).
    """
    mins = sorted(float(p) for p in min_pvalues)
    for k in range(1, max(1, len(mins)) + 1):
        if sum(p <= alpha / k for p in mins) <= k:
            return k
    return max(1, len(mins))


def tarone(pvalues: Sequence[float], min_pvalues: Sequence[float], alpha: float) -> tuple[list[float], int]:
    """Tarone-Bonferroni adjusted p-values and K (see :func:`tarone_k`).

    A hypothesis that is testable at ``alpha / K`` gets ``min(1, K p)``; the others get 1 (they
    cannot reach significance). Rejecting where the adjusted value is below ``alpha`` controls the
    family-wise error rate at ``alpha``: at most K hypotheses are tested, each at ``alpha / K``.
    The adjusted values are valid for this ``alpha`` only (K depends on it).
    """
    if len(pvalues) != len(min_pvalues):
        raise ValueError("one minimum achievable p-value per p-value")
    k = tarone_k(min_pvalues, alpha)
    out = [min(1.0, k * float(p)) if float(mp) <= alpha / k else 1.0 for p, mp in zip(pvalues, min_pvalues)]
    return out, k


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values (false-discovery-rate control over a family of tests)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i], reverse=True)
    q = [1.0] * m
    running = 1.0
    for rank, i in enumerate(order):
        running = min(running, pvalues[i] * m / (m - rank))
        q[i] = min(1.0, running)
    return q


# ----------------------------------------------------------------------------- summaries
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN, i.e. unknown, for a single value); NaNs are dropped."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan)


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion ``p`` measured on ``n`` examples."""
    if n is None or n <= 0 or not math.isfinite(p):
        return math.nan
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def trapezoid_auc(eps: Sequence[float], acc: Sequence[float]) -> float:
    """Area under accuracy-vs-eps by the trapezoid rule, divided by the eps range (a mean accuracy)."""
    x = np.asarray(eps, dtype=float)
    y = np.asarray(acc, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if x.size < 2 or x[-1] == x[0]:
        return math.nan
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0) / (x[-1] - x[0]))
