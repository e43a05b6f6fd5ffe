"""Distributions whose mutual information is known: the ground truth of ``vib-bench mi-validate``.

* d-dimensional Gaussians with component-wise correlation rho: ``I = -(d/2) log(1 - rho^2)``;
* the same after a monotone map of every coordinate (a cubic warp, or Cauchy marginals through the
  normal CDF): MI is unchanged by invertible per-coordinate maps, so the truth is the Gaussian one;
* the multivariate Student t with nu degrees of freedom (heavy tails and tail dependence), whose MI
  has a closed form (Arellano-Valle, Contreras-Reyes & Genton 2013);
* the hard cases (after Czyz et al., "Beyond Normal", NeurIPS 2023): correlated Gaussians through a
  coordinate-mixing spiral (``spiral``, a diffeomorphism: MI unchanged), sparse Gaussians in which a few
  coordinate pairs carry all the MI and the rest are noise (``sample_sparse_gaussians``), and the
  5-v-5 Student t with 3 degrees of freedom;
* the binary-input additive Gaussian noise channel ``y = x + N(0, sigma^2)``, x uniform on {-1, +1},
  whose MI is computed by numerical integration;
* the Gaussian channel ``z = x + N(0, sigma^2 I)``, x ~ N(0, I_d), with its known encoder
  p(z|x) = N(x, sigma^2 I): ``I = (d/2) log(1 + 1/sigma^2)`` (for the known-encoder bounds).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..errors import BenchError
from .critics import LN2

# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def gaussian_mi_truth(rho: float, d: int) -> float:
    """MI (nats) of d pairs of unit Gaussians with component-wise correlation rho."""
    rho = float(rho)
    if not -1.0 < rho < 1.0:
        raise BenchError(f"rho must be strictly between -1 and 1, got {rho}")
    if int(d) < 1:
        raise BenchError(f"d must be >= 1, got {d}")
    return -0.5 * int(d) * math.log1p(-rho * rho)


def gaussian_rho_for_mi(mi_nats: float, d: int) -> float:
    """Inverse of :func:`gaussian_mi_truth`: the correlation giving ``mi_nats`` in d dimensions."""
    if mi_nats < 0 or int(d) < 1:
        raise BenchError(f"need mi_nats >= 0 and d >= 1, got {mi_nats}, {d}")
    return math.sqrt(-math.expm1(-2.0 * float(mi_nats) / int(d)))


def gaussian_log_density_ratio(a: Tensor, b: Tensor, rho: float) -> Tensor:
    """Exact ``log p(a,b) / (p(a) p(b))`` for the correlated-Gaussian pair (the optimal critic)."""
    s = 1.0 - rho * rho
    quad = (a * a + b * b) * (rho * rho) - 2.0 * rho * a * b
    return (-0.5 * math.log(s) - quad / (2.0 * s)).sum(-1)


def sample_correlated_gaussians(n: int, d: int, rho: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw n pairs (a, b) in R^d x R^d: unit Gaussians, corr(a_k, b_k) = rho, otherwise independent."""
    gaussian_mi_truth(rho, d)  # validates rho, d
    gen = torch.Generator().manual_seed(int(seed))
    a = torch.randn(int(n), int(d), generator=gen)
    noise = torch.randn(int(n), int(d), generator=gen)
    b = rho * a + math.sqrt(1.0 - rho * rho) * noise
    return a, b


def binary_channel_mi_truth(sigma: float) -> float:
    """MI (nats) of y = x + N(0, sigma^2), x uniform on {-1, +1}, by numerical integration.

    ``I = h(Y) - h(Y|X)`` with ``h(Y|X) = 0.5 log(2 pi e sigma^2)`` and
    ``h(Y) = -integral p(y) log p(y) dy`` for the two-component mixture density p. By symmetry
    of the mixture, h(Y) = -E[log p(1 + sigma z)], z ~ N(0, 1); that one-dimensional integral
    is evaluated with scipy's adaptive quadrature in z (stable for tiny and huge sigma alike).
    """
    from scipy import integrate

    sigma = float(sigma)
    if not (sigma > 0.0 and math.isfinite(sigma)):
        raise BenchError(f"sigma must be a positive finite number, got {sigma}")
    log_norm = -0.5 * math.log(2.0 * math.pi * sigma * sigma)

    def log_p(y: float) -> float:
        e1 = -((y - 1.0) ** 2) / (2.0 * sigma * sigma)
        e2 = -((y + 1.0) ** 2) / (2.0 * sigma * sigma)
        return log_norm - LN2 + float(np.logaddexp(e1, e2))

    def integrand(z: float) -> float:
        phi = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return -log_p(1.0 + sigma * z) * phi

    h_y, _ = integrate.quad(integrand, -40.0, 40.0, points=[0.0], limit=400, epsabs=1e-13, epsrel=1e-11)
    h_y_given_x = 0.5 * math.log(2.0 * math.pi * math.e * sigma * sigma)
    return max(0.0, h_y - h_y_given_x)


def sample_binary_channel(n: int, sigma: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw n pairs (x, y), x uniform on {-1, +1} and y = x + N(0, sigma^2); both shape (n, 1)."""
    if not float(sigma) > 0.0:
        raise BenchError(f"sigma must be positive, got {sigma}")
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randint(0, 2, (int(n), 1), generator=gen).float() * 2.0 - 1.0
    y = x + float(sigma) * torch.randn(int(n), 1, generator=gen)
    return x, y


def cubic_warp(t: Tensor) -> Tensor:
    """The monotone cubic ``t -> t^3`` of every coordinate (invertible: MI unchanged)."""
    return t.pow(3)


def cauchy_marginals(t: Tensor) -> Tensor:
    """Standard normal coordinates mapped to standard Cauchy ones, ``tan(pi (Phi(t) - 1/2))`` (monotone)."""
    u = torch.special.ndtr(t.double()).clamp(1e-15, 1 - 1e-15)
    return torch.tan(math.pi * (u - 0.5)).to(t.dtype)


def _t_entropy_part(nu: float, k: int) -> float:
    """The part of a k-dimensional Student-t entropy that depends on nu and k, less (k/2) log(nu pi)."""
    a, b = nu / 2.0, (nu + k) / 2.0
    from scipy.special import digamma, gammaln

    return float(gammaln(a) - gammaln(b) + b * (digamma(b) - digamma(a)))


def student_t_mi_truth(rho: float, d: int, nu: float) -> float:
    """MI (nats) between the two d-dimensional halves of a 2d-dimensional Student t with nu degrees of
    freedom, unit scales and component-wise correlation rho between the halves.

    I = h(A) + h(B) - h(A, B) with the t entropy ``h = 1/2 log|S| + log(Gamma(nu/2) (nu pi)^(k/2) /
    Gamma((nu+k)/2)) + (nu+k)/2 (psi((nu+k)/2) - psi(nu/2))``; the marginals are t with the same nu.
    It exceeds the Gaussian value: the shared chi-square scale makes the halves dependent even at rho = 0.
    """
    if not float(nu) > 0:
        raise BenchError(f"nu must be positive, got {nu}")
    gauss = gaussian_mi_truth(rho, d)
    d = int(d)
    return gauss + 2 * _t_entropy_part(float(nu), d) - _t_entropy_part(float(nu), 2 * d)


def sample_student_t(n: int, d: int, rho: float, nu: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw n pairs (a, b) from the multivariate t of :func:`student_t_mi_truth`: a Gaussian pair divided
    by one shared ``sqrt(w / nu)``, w ~ chi-square(nu)."""
    a, b = sample_correlated_gaussians(n, d, rho, seed=seed)
    w = np.random.default_rng([int(seed), 7919]).chisquare(float(nu), size=(int(n), 1))
    scale = torch.from_numpy(np.sqrt(w / float(nu))).to(a.dtype)
    return a / scale, b / scale


def spiral(t: Tensor, speed: float = 1.0) -> Tensor:
    """Rotate the first two coordinates of every row by the angle ``speed * |t|^2`` (the rotation keeps |t|, so
    the map is invertible, with inverse the rotation by minus that angle: a diffeomorphism, MI unchanged). It
    mixes coordinates, so no per-coordinate transform undoes it."""
    if t.shape[-1] < 2:
        raise BenchError(f"the spiral needs at least 2 coordinates, got {t.shape[-1]}")
    angle = float(speed) * t.double().pow(2).sum(-1)
    c, s = torch.cos(angle), torch.sin(angle)
    x, y = t[..., 0].double(), t[..., 1].double()
    out = t.clone()
    out[..., 0] = (c * x - s * y).to(t.dtype)
    out[..., 1] = (s * x + c * y).to(t.dtype)
    return out


def sparse_gaussian_mi_truth(rho: float, pairs: int) -> float:
    """MI (nats) of sparse Gaussians: ``pairs`` coordinate pairs with correlation rho, every other coordinate
    independent noise: the Gaussian MI of the pairs alone."""
    return gaussian_mi_truth(rho, pairs)


def sample_sparse_gaussians(n: int, d: int, pairs: int, rho: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw n pairs (a, b) in R^d x R^d: coordinates k < ``pairs`` of a and b correlated with rho, the other
    2 (d - pairs) coordinates independent unit Gaussians."""
    if not 1 <= int(pairs) <= int(d):
        raise BenchError(f"need 1 <= pairs <= d, got pairs={pairs}, d={d}")
    a, b = sample_correlated_gaussians(n, d, rho, seed=seed)
    noise = torch.randn(int(n), int(d) - int(pairs), generator=torch.Generator().manual_seed(int(seed) + 1))
    b = torch.cat([b[:, : int(pairs)], noise], 1)  # b's unpaired coordinates: independent of everything
    return a, b


def gaussian_channel_mi_truth(sigma: float, d: int) -> float:
    """MI (nats) of z = x + N(0, sigma^2 I), x ~ N(0, I_d): ``(d/2) log(1 + 1/sigma^2)``."""
    if not float(sigma) > 0 or int(d) < 1:
        raise BenchError(f"need sigma > 0 and d >= 1, got {sigma}, {d}")
    return 0.5 * int(d) * math.log1p(1.0 / float(sigma) ** 2)


def gaussian_channel_sigma_for_mi(mi_nats: float, d: int) -> float:
    """Inverse of :func:`gaussian_channel_mi_truth`: the noise giving ``mi_nats`` in d dimensions."""
    if not float(mi_nats) > 0 or int(d) < 1:
        raise BenchError(f"need mi_nats > 0 and d >= 1, got {mi_nats}, {d}")
    return 1.0 / math.sqrt(math.expm1(2.0 * float(mi_nats) / int(d)))


def sample_gaussian_channel(n: int, d: int, sigma: float, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Draw the Gaussian channel in float64: ``(mu, log_sigma, z)`` with mu = x, the encoder's mean,
    log_sigma = log(sigma) everywhere, and one z ~ p(z|x) per example."""
    gaussian_channel_mi_truth(sigma, d)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(int(n), int(d), generator=gen, dtype=torch.float64)
    z = x + float(sigma) * torch.randn(int(n), int(d), generator=gen, dtype=torch.float64)
    return x, torch.full_like(x, math.log(float(sigma))), z
