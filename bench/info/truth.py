"""Ground truth for the MI estimators, and their validation against it (``vib-bench mi-validate``).

d-dimensional Gaussians with component-wise correlation rho (``I = -(d/2) log(1 - rho^2)``) and the
binary-input additive Gaussian noise channel ``y = x + N(0, sigma^2)``, x uniform on {-1, +1},
whose MI is computed by numerical integration.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import BenchError
from .critics import LN2, get_estimator, list_estimators
from .estimate import estimate_mi, restart_seed

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


def sample_correlated_gaussians(n: int, d: int, rho: float, seed: int = 0) -> Tuple[Tensor, Tensor]:
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

    h_y, _ = integrate.quad(integrand, -40.0, 40.0, points=[0.0], limit=400,
                            epsabs=1e-13, epsrel=1e-11)
    h_y_given_x = 0.5 * math.log(2.0 * math.pi * math.e * sigma * sigma)
    return max(0.0, h_y - h_y_given_x)


def sample_binary_channel(n: int, sigma: float, seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Draw n pairs (x, y), x uniform on {-1, +1} and y = x + N(0, sigma^2); both shape (n, 1)."""
    if not float(sigma) > 0.0:
        raise BenchError(f"sigma must be positive, got {sigma}")
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randint(0, 2, (int(n), 1), generator=gen).float() * 2.0 - 1.0
    y = x + float(sigma) * torch.randn(int(n), 1, generator=gen)
    return x, y


# --------------------------------------------------------------------------------------------
# Validation against known truth
# --------------------------------------------------------------------------------------------

_GAUSSIAN_CASES = ((1, 0.4), (2, 0.6), (3, 0.7), (5, 0.75))  # truth 0.09, 0.45, 1.01, 2.07 nats
_CHANNEL_SIGMAS = (0.5, 1.0, 2.0)
VALIDATION_MODES = {
    "full": {"n_samples": 10000, "steps": 2000, "restarts": 3},
    "quick": {"n_samples": 4000, "steps": 600, "restarts": 2},
}


def validation_cases(seed: int = 0, n_samples: int = 10000) -> List[Dict[str, Any]]:
    """The validation problems: dicts with ``case``, ``truth_nats``, ``a``, ``b``."""
    cases = []
    for i, (d, rho) in enumerate(_GAUSSIAN_CASES):
        a, b = sample_correlated_gaussians(n_samples, d, rho, seed=restart_seed(seed, 100 + i))
        cases.append({"case": f"gaussian d={d} rho={rho}", "truth_nats": gaussian_mi_truth(rho, d),
                      "a": a, "b": b})
    for i, sigma in enumerate(_CHANNEL_SIGMAS):
        x, y = sample_binary_channel(n_samples, sigma, seed=restart_seed(seed, 200 + i))
        cases.append({"case": f"binary channel sigma={sigma}",
                      "truth_nats": binary_channel_mi_truth(sigma), "a": x, "b": y})
    return cases


def parse_estimators(estimators: Any) -> List[str]:
    if isinstance(estimators, str):
        estimators = [e for e in estimators.split(",")]
    names = [str(e).strip().lower() for e in estimators if str(e).strip()]
    if not names:
        raise BenchError("no MI estimators given; choose from: " + ", ".join(list_estimators()))
    for name in names:
        get_estimator(name)
    return names


def validate_estimators(
    estimators: Any = ("mine", "jsd", "infonce"),
    seed: int = 0,
    quick: bool = False,
    *,
    n_samples: Optional[int] = None,
    steps: Optional[int] = None,
    restarts: Optional[int] = None,
    device: Any = "cpu",
    progress: Optional[Callable[[str], None]] = None,
) -> List[Dict[str, Any]]:
    """Run each estimator on every validation case; one row per (case, estimator).

    Full mode: 10,000 samples, 2000 steps, 3 restarts. ``quick``: 4,000 samples, 600 steps,
    2 restarts (other settings are estimate_mi's defaults). Rows hold ``case, truth_nats, estimator, estimate_nats, std_nats, abs_error,
    near_ceiling, seconds``.
    """
    names = parse_estimators(estimators)
    mode = VALIDATION_MODES["quick" if quick else "full"]
    n = n_samples or mode["n_samples"]
    n_steps = steps or mode["steps"]
    n_restarts = restarts or mode["restarts"]
    rows = []
    for case in validation_cases(seed=seed, n_samples=n):
        for name in names:
            est = estimate_mi(case["a"], case["b"], name, steps=n_steps, restarts=n_restarts,
                              seed=seed, device=device)
            row = {
                "case": case["case"],
                "truth_nats": float(case["truth_nats"]),
                "estimator": name,
                "estimate_nats": est.nats,
                "std_nats": est.std_nats,
                "abs_error": abs(est.nats - float(case["truth_nats"])),
                "near_ceiling": est.near_ceiling,
                "seconds": est.seconds,
            }
            rows.append(row)
            if progress is not None:
                progress(f"{row['case']:<28} {name:<8} {est.nats:7.3f} "
                         f"(truth {row['truth_nats']:.3f}) {est.seconds:5.1f}s")
    return rows


_TABLE_COLUMNS = (
    ("case", "case"),
    ("truth_nats", "truth (nats)"),
    ("estimator", "estimator"),
    ("estimate_nats", "estimate (nats)"),
    ("std_nats", "std (nats)"),
    ("abs_error", "abs error"),
    ("near_ceiling", "near ceiling"),
    ("seconds", "seconds"),
)


def format_validation_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Markdown table of :func:`validate_estimators` rows (3 decimals; seconds with 1)."""
    cols = [(k, h) for k, h in _TABLE_COLUMNS if any(k in r for r in rows)] or list(_TABLE_COLUMNS)

    def cell(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:.1f}" if key == "seconds" else f"{value:.3f}"
        return "" if value is None else str(value)

    from tabulate import tabulate

    body = [[cell(k, r.get(k)) for k, _ in cols] for r in rows]
    headers = [h for _, h in cols]
    align = ["left" if k in ("case", "estimator") else "right" for k, _ in cols]
    return tabulate(body, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)


