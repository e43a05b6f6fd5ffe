"""Bounds on I(X;Z) that use the known encoder (Poole et al. 2019, "On Variational Bounds of MI").

For a stochastic encoder with an analytic Gaussian p(z|x) = N(mu(x), diag(sigma(x)^2)) (VIB), take N
examples x_i, one sample z_i ~ p(z|x_i) each, and L_ij = log p(z_i | x_j). Then, in expectation over
the sample,

    lower = mean_i [ L_ii - log( 1/N     sum_j       exp L_ij ) ]  <=  I(X;Z)     (InfoNCE with the true
                                                                                   critic; never above log N)
    upper = mean_i [ L_ii - log( 1/(N-1) sum_{j!=i}  exp L_ij ) ]  >=  I(X;Z)     (leave-one-out)

No critic is trained. Both need the N x N matrix L, computed in row chunks with matmuls from the
expanded quadratic form ``sum_k (z_ik - mu_jk)^2 / s_jk^2 = z_i^2 . (1/s_j^2) - 2 z_i . (mu_j/s_j^2) +
sum_k mu_jk^2/s_jk^2``, in float64 (the three terms are large and nearly cancel when sigma is small).
The diagonal and, per row, the ``REFINE_TOP`` largest off-diagonal entries (the ones that decide the
log-sum-exp) are then recomputed directly from the differences, so cancellation cannot bias the bounds.

The lower bound saturates at log N: with I(X;Z) >> log N (a VIB rate of 20+ nats on 10,000 examples)
it says "at least about log N" and the leave-one-out bound becomes loose (each z_i is far from every
other mu_j). More examples raise the cap; nothing else does.
"""

from __future__ import annotations

import math
import time

import torch

from ..errors import BenchError

LOG_2PI = math.log(2.0 * math.pi)
CHUNK_ROWS = 512  # rows of L per matmul block: 512 x N float64 (40 MB at N = 10,000)
REFINE_TOP = 16  # off-diagonal entries per row recomputed exactly
NEAR_CAP = 0.9  # a lower bound at >= 90% of log N is "at its cap"


def _log_density_exact(z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(log_sigma)^2) summed over the last dimension, from the differences."""
    d = z.shape[-1]
    return -0.5 * ((z - mu) * torch.exp(-log_sigma)).pow(2).sum(-1) - log_sigma.sum(-1) - 0.5 * d * LOG_2PI


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    se = float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else 0.0
    return float(v.mean()), se


@torch.no_grad()
def known_encoder_bounds(mu, log_sigma, z, *, chunk: int = CHUNK_ROWS, refine: int = REFINE_TOP) -> dict:
    """The lower (InfoNCE) and leave-one-out upper bounds on I(X;Z), in nats, with standard errors.

    ``mu``, ``log_sigma`` (N, d): the encoder's Gaussian p(z|x_i); ``z`` (N, d): one sample per
    example. Returns ``lower_nats``, ``lower_se_nats``, ``upper_nats``, ``upper_se_nats``,
    ``log_n_nats``, ``near_cap`` (lower >= 90% of log N), ``n``, ``seconds``. The standard errors are
    those of the mean over i (the terms share the sample, so they are a guide, not exact).
    """
    t0 = time.perf_counter()
    mu, log_sigma, z = (torch.as_tensor(t).detach().to(torch.float64) for t in (mu, log_sigma, z))
    if mu.dim() != 2 or mu.shape != log_sigma.shape or mu.shape != z.shape:
        raise BenchError(
            f"mu, log_sigma and z must all have shape (N, d); got {tuple(mu.shape)}, "
            f"{tuple(log_sigma.shape)}, {tuple(z.shape)}"
        )
    n, d = mu.shape
    if n < 2:
        raise BenchError(f"the known-encoder bounds need at least 2 examples, got {n}")
    if not all(bool(torch.isfinite(t).all()) for t in (mu, log_sigma, z)):
        raise BenchError("mu, log_sigma or z contains NaN or infinite values")
    center = mu.mean(0)  # smaller magnitudes: less cancellation
    mu_c, z_c = mu - center, z - center
    inv_var = torch.exp(-2.0 * log_sigma)  # (N, d)
    lin = mu_c * inv_var  # (N, d)
    const = (mu_c * lin).sum(1) + 2.0 * log_sigma.sum(1) + d * LOG_2PI  # (N,)
    diag = _log_density_exact(z, mu, log_sigma)  # L_ii, exactly
    k = min(int(refine), n - 1)
    lower = torch.empty(n, dtype=torch.float64)
    upper = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, int(chunk)):
        e = min(n, s + int(chunk))
        zi = z_c[s:e]
        L = -0.5 * ((zi * zi) @ inv_var.T - 2.0 * (zi @ lin.T) + const)  # (m, N): log p(z_i | x_j)
        rows = torch.arange(e - s)
        L[rows, rows + s] = -math.inf  # leave i out
        if k > 0:
            top = L.topk(k, dim=1).indices  # (m, k): the entries that matter
            exact = _log_density_exact(z[s:e].unsqueeze(1), mu[top], log_sigma[top])
            L.scatter_(1, top, exact)
        off = torch.logsumexp(L, dim=1)  # log sum_{j != i} p(z_i | x_j)
        upper[s:e] = diag[s:e] - (off - math.log(n - 1))
        lower[s:e] = diag[s:e] - (torch.logaddexp(off, diag[s:e]) - math.log(n))
    lo, lo_se = _mean_se(lower)
    up, up_se = _mean_se(upper)
    log_n = math.log(n)
    return {
        "lower_nats": lo,
        "lower_se_nats": lo_se,
        "upper_nats": up,
        "upper_se_nats": up_se,
        "log_n_nats": log_n,
        "near_cap": bool(lo >= NEAR_CAP * log_n),
        "n": int(n),
        "seconds": time.perf_counter() - t0,
    }
