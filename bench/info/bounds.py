"""The analytic information bounds of a representation, and the checks of estimates against them.

For every trained model, on the first N test examples: the measured representation (VIB: one sample
z = mu + sigma * eps with a fixed seed, the stochastic representation the decoder sees; other models:
``model.representation(x)``, their last hidden layer, a deterministic function of x). Beside it:

* rate = mean_x KL(p(z|x) || N(0, I)) >= I(X;Z)          (VIB only; the variational marginal)
* the known-encoder sandwich of ``bench.info.sandwich``   (VIB only; lower <= I(X;Z) <= upper, the
  lower one at most log N)
* H(Y) - CE(q(y|z)) <= I(Z;Y)                              (any decoder q: the model's own head)
* I(Z;Y) <= H(Y)                                            (the empirical label entropy)
* I(Z;Y) <= I(X;Z)  (Y -> X -> Z is a Markov chain), so H(Y) - CE also bounds I(X;Z) from below
  and the rate bounds I(Z;Y) from above.

Which CE bounds I(Z;Y) for VIB: Z is the one sample z ~ p(z|x), and the CE is that of q(y|z) on that
single sample, E[-log q(y|z)] >= H(Y|Z) for any q. The CE of the 12-sample average
-log (1/12) sum_k q(y|z_k) is a cross-entropy of the 12 samples (z_1..z_12) jointly: H(Y) minus it bounds
I(Z_1..Z_12; Y) >= I(Z;Y) from below, not I(Z;Y), and may lie above I(Z;Y). For a deterministic model
Z is ``model.representation(x)`` (the last hidden layer) and q its head. ``izy_interval`` gives the
interval [max(0, H(Y) - CE), min(H(Y), rate, leave-one-out upper bound on I(X;Z))]; all ends are sample
means over the N test examples (their standard errors are recorded beside them).

An estimate whose two-standard-deviation interval lies wholly outside a bound (widened by two
standard errors of the bound itself, which is a sample mean too) is flagged: above an upper bound
means the estimator over-shoots here; below a lower bound means it is loose.

I(X;T) of a deterministic continuous map T = f(X) is infinite (for continuous X, or log of the
number of distinct inputs for an empirical X): for the MLPs there is no I(X;Z) to measure, and
``info`` estimates none.
"""

from __future__ import annotations

import math

import torch

from ..protocol import eval_mode
from .estimate import SPREAD, UNSTABLE_STD, estimate_flags  # noqa: F401 (SPREAD, UNSTABLE_STD: re-exported)

LN2 = math.log(2.0)
Z_SEED = 0  # the noise of the one z sample per example (VIB)
QUANTITIES = ("I(X;Z)", "I(Z;Y)")
DETERMINISTIC_NOTE = (
    "I(X;Z) is infinite for a deterministic, injective map; the finite number is a property "
    "of the estimator or of the binning (no I(X;Z) is estimated for a deterministic representation)"
)
DETERMINISTIC_CELL = "inf (deterministic)"


def entropy_of_counts(counts: torch.Tensor) -> float:
    """Shannon entropy (nats) of the empirical distribution given by integer counts."""
    c = counts[counts > 0].double()
    if c.numel() == 0:
        return 0.0
    p = c / c.sum()
    return max(0.0, float(-(p * p.log()).sum()))


def label_entropy(y: torch.Tensor) -> float:
    """H(Y) in nats of the empirical label distribution."""
    return entropy_of_counts(torch.bincount(y.long().flatten()))


def _encoder(model):
    enc = getattr(model, "encode", None)
    return enc if callable(enc) else None


def _decoder(model):
    for attr in ("decoder", "head"):
        mod = getattr(model, attr, None)
        if callable(mod):
            return mod
    return None


def z_noise(shape, dtype, seed: int = Z_SEED) -> torch.Tensor:
    """The eps of the one z sample per example, drawn on the CPU from ``seed`` in the encoder's dtype (so
    every device, and a rebuild from stored mu and log sigma, gives the same z)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)), dtype=dtype)


def z_sample64(mu: torch.Tensor, log_sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(log_sigma) * eps in float64 on the CPU, for the known-encoder bounds (in float32,
    z - mu loses the noise when sigma is tiny beside |mu|)."""
    return mu.double().cpu() + torch.exp(log_sigma.double().cpu()) * eps.double().cpu()


@torch.no_grad()
def info_representation(
    model, x: torch.Tensor, y: torch.Tensor, device="cpu", batch_size: int = 1000, seed: int = Z_SEED
) -> dict:
    """The measured representation of ``x`` and the per-example terms of the analytic bounds.

    Returns ``z`` (N, k) on the CPU, ``kind`` ("z sample" or "last hidden"), ``rate`` (N,) KL to the
    prior or None, ``ce`` (N,) cross-entropy of the model's own decoder/head on ``z`` or None, and for
    a Gaussian encoder ``mu``, ``log_sigma`` and ``z64`` (N, k, float64, CPU; None otherwise): the same
    sample recomputed in float64 as mu + exp(log_sigma) * eps, for the known-encoder bounds (in float32,
    z - mu loses the noise when sigma is tiny beside |mu|).
    For a Gaussian encoder z = mu + sigma * eps with eps drawn on the CPU from ``seed`` (so every
    device gives the same z).
    """
    from models.vib import gaussian_kl

    device = torch.device(device)
    enc, dec = _encoder(model), _decoder(model)
    zs, rates, ces = [], [], []
    mu = log_sigma = z64 = None
    with eval_mode(model):
        if enc is not None:  # one draw of eps for all N at once: the same z whatever the batch size
            stats = [enc(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
            mu, sigma, log_sigma = (torch.cat(parts) for parts in zip(*stats))
            eps = z_noise(mu.shape, mu.dtype, seed)
            z_all = mu + sigma * eps.to(device)
            rates.append(gaussian_kl(mu, sigma, log_sigma).double().cpu())
        for i in range(0, len(x), batch_size):
            if enc is not None:
                z = z_all[i : i + batch_size]
            else:
                z = model.representation(x[i : i + batch_size].to(device))
            z = z.reshape(len(z), -1)
            if dec is not None:
                yb = y[i : i + batch_size].to(device)
                try:
                    logits = dec(z).float()
                except (RuntimeError, TypeError):  # a plugin's head that does not read this layer: no bound
                    dec, ces = None, []
                else:
                    ces.append(torch.nn.functional.cross_entropy(logits, yb, reduction="none").double().cpu())
            zs.append(z.float().cpu())
    if enc is not None:
        kind = "z sample"
        mu, log_sigma = mu.double().cpu(), log_sigma.double().cpu()
        z64 = z_sample64(mu, log_sigma, eps)
    else:
        kind = "last hidden" if getattr(model, "head", None) is not None else "representation"
    return {
        "z": torch.cat(zs),
        "kind": kind,
        "rate": torch.cat(rates) if rates else None,
        "ce": torch.cat(ces) if ces else None,
        "mu": mu,
        "log_sigma": log_sigma,
        "z64": z64,
    }


def _mean_se(v: torch.Tensor | None):
    if v is None or v.numel() == 0:
        return None, None
    se = float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else 0.0
    return float(v.mean()), se


def info_bounds(rate: torch.Tensor | None, ce: torch.Tensor | None, y: torch.Tensor, known: dict | None = None) -> dict:
    """The analytic bounds, in nats, with the standard errors of the sample means they are.

    ``known``: the known-encoder bounds (``sandwich.known_encoder_bounds``), stored as ``ixz_lower_*``,
    ``ixz_upper_*`` (leave-one-out), ``log_n_nats``, ``ixz_lower_at_cap`` and ``ixz_bounds_seconds``.
    """
    h_y = label_entropy(y)
    rate_m, rate_se = _mean_se(rate)
    ce_m, ce_se = _mean_se(ce)
    out = {
        "rate_nats": rate_m,
        "rate_se_nats": rate_se,
        "izy_lower_nats": None if ce_m is None else h_y - ce_m,
        "izy_lower_se_nats": ce_se,
        "ce_nats": ce_m,
        "h_y_nats": h_y,
    }
    if known is not None:
        out.update(
            {
                "ixz_lower_nats": known["lower_nats"],
                "ixz_lower_se_nats": known["lower_se_nats"],
                "ixz_upper_nats": known["upper_nats"],
                "ixz_upper_se_nats": known["upper_se_nats"],
                "log_n_nats": known["log_n_nats"],
                "ixz_lower_at_cap": known["near_cap"],
                "ixz_bounds_seconds": known["seconds"],
            }
        )
    return out


def ixz_interval(bounds: dict) -> tuple[float, float, str] | None:
    """``(lower, upper, upper's name)`` of I(X;Z) from the known-encoder bounds, the upper one the smaller
    of the leave-one-out bound and the rate; None without a known encoder."""
    lo, loo, rate = bounds.get("ixz_lower_nats"), bounds.get("ixz_upper_nats"), bounds.get("rate_nats")
    if lo is None or loo is None:
        return None
    if rate is not None and rate < loo:
        return lo, rate, "rate"
    return lo, loo, "leave-one-out"


def bound_intervals(bounds: dict) -> dict:
    """Per quantity: (lower, lower_se, lower_name), (upper, upper_se, upper_name); None when absent."""
    rate, rate_se = bounds.get("rate_nats"), bounds.get("rate_se_nats") or 0.0
    low, low_se = bounds.get("izy_lower_nats"), bounds.get("izy_lower_se_nats") or 0.0
    h_y = bounds.get("h_y_nats")
    lower = (low, low_se, "H(Y)-CE") if low is not None and low > 0 else (0.0, 0.0, "MI >= 0")
    upper_x = None if rate is None else (rate, rate_se, "rate")
    loo = bounds.get("ixz_upper_nats")
    if loo is not None and (upper_x is None or loo < upper_x[0]):
        upper_x = (loo, bounds.get("ixz_upper_se_nats") or 0.0, "leave-one-out")
    lower_x = lower
    ke = bounds.get("ixz_lower_nats")
    if ke is not None and ke > lower[0]:
        lower_x = (ke, bounds.get("ixz_lower_se_nats") or 0.0, "known-encoder lower")
    out = {"I(X;Z)": {"lower": lower_x, "upper": upper_x}}
    upper_y = None
    if h_y is not None:
        upper_y = (h_y, 0.0, "H(Y)")
    if upper_x is not None and (upper_y is None or upper_x[0] < upper_y[0]):
        upper_y = upper_x
    out["I(Z;Y)"] = {"lower": lower, "upper": upper_y}
    return out


def izy_interval(bounds: dict) -> tuple[float, float, str, str] | None:
    """``(lower, upper, lower's name, upper's name)`` of I(Z;Y): lower max(0, H(Y) - CE) of the model's own
    decoder on Z, upper the smallest of H(Y), the rate and the leave-one-out bound on I(X;Z) (Y -> X -> Z).
    None without H(Y) (a record without bounds)."""
    if bounds.get("h_y_nats") is None:
        return None
    iv = bound_intervals(bounds)["I(Z;Y)"]
    (lo, _, lname), (up, _, uname) = iv["lower"], iv["upper"]
    return max(0.0, lo), up, lname, uname


def check_estimate(quantity: str, est: dict, bounds: dict) -> list[dict]:
    """Flags for one estimate (an ``MIEstimate.as_dict()``) against the bounds of its quantity
    (``estimate.estimate_flags``, the one function that computes them)."""
    iv = bound_intervals(bounds)[quantity]
    return estimate_flags(est, quantity, lower=iv["lower"], upper=iv["upper"])


def record_flags(rec: dict) -> list[dict]:
    """Flags of every estimate of a record (none for I(X;Z) of a deterministic representation)."""
    flags = []
    deterministic = rec.get("representation") not in (None, "z sample")
    for q in QUANTITIES[1:] if deterministic else QUANTITIES:
        for est in (rec.get("estimates") or {}).get(q, {}).values():
            flags += check_estimate(q, est, rec["bounds"])
    return flags
