"""I(X;T) and I(T;Y) of a layer T = f(X) for a finite, uniform X, made finite by Gaussian noise.

X is uniform over the N rows of ``t`` (N distinct inputs, e.g. the 4,096 patterns of the 12-bit task), so
T + Z with Z ~ N(0, s^2 I) is a uniform mixture of N Gaussians centred on the rows t_i, and
I(X; T + Z) = h(T + Z) - h(Z) is finite (at most log N) whatever the map f.

* ``noisy_information`` (Goldfeld et al., ICML 2019: "Estimating information flow in deep neural
  networks"): I(X; T + Z) with noise std ``beta``, by Monte Carlo over the noise: for a draw
  s_i = t_i + beta e_i, log p(s_i | x_i) - log (1/N) sum_j p(s_i | x_j); its mean over i is unbiased for
  I(X; T + Z) (it is the mixture entropy, sampled exactly), with the standard error of that mean. I(T + Z; Y)
  = I(X; T + Z) - I(X; T + Z | Y) (Y is a function of X), the second term the same sum inside each class.
* ``kde_information`` (Kolchinsky & Tracey 2017, the estimator Saxe et al. (ICLR 2018) used): the pairwise-
  distance bounds on the same mixture entropy, without sampling: with K_ij = exp(-D(p_i || p_j)),
  I <= -mean_i log mean_j K_ij for D the KL divergence |t_i - t_j|^2 / (2 s^2) (upper) and >= for the
  Bhattacharyya distance |t_i - t_j|^2 / (8 s^2) (lower); I(T;Y) is the upper estimate minus the
  class-conditional one, as Saxe et al. computed it (an estimate, not a bound).

Both work in float64 on row chunks of the N x N pairs (squared distances from the differences' expanded
form, centred first). ``rows`` takes the outer mean over a seeded random subset of the N rows (the inner sum
always runs over all N): an unbiased estimate of the same quantity at rows/N of the cost, its sampling error
in ``ixt_se_nats``.
"""

from __future__ import annotations

import math

import torch

from ..errors import BenchError
from .options import KDE_VARIANCE, NOISY_BETA

CHUNK_ROWS = 1024


def _check(t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    t = torch.as_tensor(t).reshape(len(t), -1).to(torch.float64)
    if len(t) < 2:
        raise BenchError(f"need at least 2 activations, got {len(t)}")
    if not bool(torch.isfinite(t).all()):
        raise BenchError("activations contain NaN or infinite values")
    if y is not None and len(y) != len(t):
        raise BenchError(f"activations and labels differ in length ({len(t)} vs {len(y)})")
    return t - t.mean(0)


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (len(a), len(b)), clamped at 0."""
    return ((a * a).sum(1, keepdim=True) - 2.0 * a @ b.T + (b * b).sum(1)).clamp_(min=0.0)


def _log_mean_kernels(
    a: torch.Tensor,
    b: torch.Tensor,
    scales,
    y: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    a_idx: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Per row i of ``a`` (+ ``noise``) and per scale: log (1/len(b)) sum_j exp(-|a_i - b_j|^2 / scale), and,
    given labels ``y`` of b (a's rows are b's rows ``a_idx``), the same over the j of i's class; in row chunks,
    one distance matrix per chunk for all of them. Returns [per scale, then (with y) per scale within the
    class]."""
    n_out = len(scales) * (2 if y is not None else 1)
    out = [torch.empty(len(a), dtype=torch.float64) for _ in range(n_out)]
    if y is not None:
        y = torch.as_tensor(y).long().flatten()
        counts = torch.bincount(y).to(torch.float64)
        ya = y[a_idx] if a_idx is not None else y
    for s in range(0, len(a), CHUNK_ROWS):
        rows = a[s : s + CHUNK_ROWS] if noise is None else a[s : s + CHUNK_ROWS] + noise[s : s + CHUNK_ROWS]
        d = _sq_dist(rows, b)
        other = None if y is None else ya[s : s + CHUNK_ROWS, None] != y[None, :]
        for k, scale in enumerate(scales):
            e = d / -scale
            out[k][s : s + CHUNK_ROWS] = torch.logsumexp(e, dim=1) - math.log(len(b))
            if other is not None:
                e.masked_fill_(other, -math.inf)
                out[len(scales) + k][s : s + CHUNK_ROWS] = (
                    torch.logsumexp(e, dim=1) - counts[ya[s : s + CHUNK_ROWS]].log()
                )
    return out


def _outer(n: int, rows: int | None, gen: torch.Generator) -> torch.Tensor:
    """The rows the outer mean runs over: all, or a random subset of ``rows`` of them."""
    if rows is None or rows >= n:
        return torch.arange(n)
    if rows < 2:
        raise BenchError(f"rows must be >= 2, got {rows}")
    return torch.randperm(n, generator=gen)[: int(rows)].sort().values


def noisy_information(
    t, y=None, beta: float = NOISY_BETA, samples: int = 1, seed: int = 0, rows: int | None = None
) -> dict:
    """I(X; T + Z) and, given labels ``y``, I(T + Z; Y) in nats, Z ~ N(0, beta^2 I), X uniform over the rows of
    ``t``; ``samples`` noise draws per row (of ``rows`` random rows, default all). Returns ``ixt_nats``,
    ``ixt_se_nats`` and ``ity_nats``."""
    if not beta > 0 or int(samples) < 1:
        raise BenchError(f"need beta > 0 and samples >= 1, got {beta}, {samples}")
    t = _check(t, y)
    gen = torch.Generator().manual_seed(int(seed))
    idx = _outer(len(t), rows, gen)
    scale = 2.0 * beta * beta
    terms, cond = [], []
    for _ in range(int(samples)):
        e = beta * torch.randn((len(idx), t.shape[1]), generator=gen, dtype=torch.float64)
        own = -(e * e).sum(1) / scale  # log p(s_i | x_i) up to the shared constant
        parts = _log_mean_kernels(t[idx], t, (scale,), y, e, idx)
        terms.append(own - parts[0])
        if y is not None:
            cond.append(own - parts[1])
    v = torch.stack(terms).mean(0)
    out = {"ixt_nats": float(v.mean()), "ixt_se_nats": float(v.std() / math.sqrt(len(v))), "ity_nats": None}
    if y is not None:  # X uniform: I(X; T+Z | Y) = sum_c p(c) mean over class c = the plain mean
        out["ity_nats"] = max(0.0, out["ixt_nats"] - float(torch.stack(cond).mean(0).mean()))
    return out


def kde_information(t, y=None, variance: float = KDE_VARIANCE, rows: int | None = None, seed: int = 0) -> dict:
    """The pairwise-distance bounds on I(X; T + Z), Z ~ N(0, variance I): ``ixt_nats`` (the KL upper bound, the
    number Saxe et al. plot, with ``ixt_se_nats``), ``ixt_lower_nats`` (Bhattacharyya) and, given ``y``,
    ``ity_nats``; the outer means over ``rows`` random rows (default all)."""
    if not variance > 0:
        raise BenchError(f"need variance > 0, got {variance}")
    t = _check(t, y)
    idx = _outer(len(t), rows, torch.Generator().manual_seed(int(seed)))
    parts = _log_mean_kernels(t[idx], t, (2.0 * variance, 8.0 * variance), y, None, idx)
    upper, lower = -float(parts[0].mean()), -float(parts[1].mean())
    out = {
        "ixt_nats": upper,
        "ixt_lower_nats": lower,
        "ity_nats": None,
        "ixt_se_nats": float(parts[0].std() / math.sqrt(len(idx))) if len(idx) < len(t) else 0.0,
    }
    if y is not None:
        out["ity_nats"] = max(0.0, upper + float(parts[2].mean()))
    return out


__all__ = ["KDE_VARIANCE", "NOISY_BETA", "kde_information", "noisy_information"]
