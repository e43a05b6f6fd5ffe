"""Step detection in a series of measurements: a penalised piecewise-constant fit.

The series ``y_1..y_n`` (one metric across runs, each with a standard error ``s_i``) is explained as
a sequence of flat segments. Among all segmentations, the fit takes the one minimising

    sum over segments of  sum_i ((y_i - mean of the segment) / s_i)^2   +   penalty * (number of segments),
    penalty = factor^2 * max(1, ln n)

(the segment mean is the ``1/s^2``-weighted mean), found exactly by dynamic programming over the
segment boundaries in O(n^2). A change point is where a new segment starts. This is the method of
asv's step detection (a penalised least-squares fit of a step function), written from its description.

With the noise in units of standard errors, a boundary between ``a`` points and ``b`` points whose
levels differ by ``d`` lowers the squared deviations by ``(a b / (a + b)) d^2 / s^2``, so it is kept
when that exceeds the penalty. For two points the penalty is ``factor ** 2``: two single
points are a step exactly when they differ by more than ``factor * sqrt(s_1^2 + s_2^2)``. Longer
flat stretches on either side reveal smaller steps; the ``ln n`` growth (as in BIC) keeps a long
flat series from being split by chance, since the largest of its ``n - 1`` candidate boundaries
gains about ``2 ln n`` by noise alone.

A point whose noise is unknown (NaN) gets the median of the known ones; when none is known the
noise is estimated from the series (the median absolute difference of consecutive points, scaled
to a standard deviation), and a series of fewer than three points then has no steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fit:
    """The fitted step function: where each segment starts and the level of every point."""

    starts: list[int]  # index of the first point of every segment (0 first)
    levels: list[float]  # the fitted level (segment mean) at every point
    noise: list[float]  # the standard error used for every point

    @property
    def change_points(self) -> list[int]:
        """Indices where a new level starts (the first point is never one)."""
        return self.starts[1:]


def _noise(values: np.ndarray, noise: Sequence[float]) -> np.ndarray | None:
    se = np.asarray(noise, dtype=float)
    known = se[np.isfinite(se) & (se > 0)]
    if known.size:
        return np.where(np.isfinite(se) & (se > 0), se, float(np.median(known)))
    if values.size < 3:
        return None
    mad = float(np.median(np.abs(np.diff(values)))) / (0.6745 * math.sqrt(2.0))
    return np.full(values.size, mad) if mad > 0 else None


def fit_steps(values: Sequence[float], noise: Sequence[float], factor: float = 3.0) -> Fit:
    """The penalised piecewise-constant fit of ``values`` (penalty ``factor**2 * max(1, ln n)`` per segment)."""
    y = np.asarray(values, dtype=float)
    n = y.size
    se = _noise(y, noise) if n else None
    if n == 0 or se is None or not np.all(np.isfinite(y)):
        return Fit([0] if n else [], [float(v) for v in y], [math.nan] * n)
    w = 1.0 / se**2
    sw = np.concatenate([[0.0], np.cumsum(w)])
    swy = np.concatenate([[0.0], np.cumsum(w * y)])
    swyy = np.concatenate([[0.0], np.cumsum(w * y * y)])

    def cost(i: int, j: int) -> float:  # weighted squared deviations of y[i:j] from their weighted mean
        W, S = sw[j] - sw[i], swy[j] - swy[i]
        return max(0.0, swyy[j] - swyy[i] - S * S / W)

    penalty = factor**2 * max(1.0, math.log(n))
    best = [0.0] + [math.inf] * n  # best[j]: the cheapest fit of y[:j]
    start = [0] * (n + 1)  # start[j]: where the last segment of that fit begins
    for j in range(1, n + 1):
        for i in range(j):
            c = best[i] + cost(i, j) + penalty
            if c < best[j]:
                best[j], start[j] = c, i
    starts, j = [], n
    while j > 0:
        starts.append(start[j])
        j = start[j]
    starts.reverse()
    levels = [0.0] * n
    for a, b in zip(starts, starts[1:] + [n]):
        mean = float((swy[b] - swy[a]) / (sw[b] - sw[a]))
        levels[a:b] = [mean] * (b - a)
    return Fit(starts, levels, [float(s) for s in se])
