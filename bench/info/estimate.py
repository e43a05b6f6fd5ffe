"""Estimating I(A;B) from samples with a trained critic (``estimate_mi``), reported as :class:`MIEstimate`.

Every estimate holds out 20% of the samples, trains the critic on most of the rest with early
stopping on a small validation part, evaluates the bound on the held-out part, and repeats this
over several restarts (fresh split, initialisation and batches per restart); :class:`MIEstimate`
reports the mean, the spread and the per-restart values in nats and bits, and the wall time.
InfoNCE estimates within 10% of log K carry ``near_ceiling=True`` and a notice. By default every
coordinate with few ties first goes through the rank-Gaussian (copula) transform of
``bench.info.marginals``, so the estimate does not depend on the shape of the marginals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import BenchError
from .critics import CRITICS, LN2, Estimator, TrainState, get_estimator, jsd_from_objective
from .marginals import MAX_TIED_FRACTION, rank_gaussian

NEAR_CEILING_FRACTION = 0.9  # InfoNCE estimates >= 90% of log K are flagged
SPREAD = 2.0  # flag when the estimate +- SPREAD * std lies wholly outside a bound
UNSTABLE_STD = (0.5, 0.25)  # flag restarts whose std exceeds max(0.5 nats, 25% of |mean|)
MI_NONNEGATIVE = (0.0, 0.0, "MI >= 0")


def _to_bits(nats: float) -> float:
    return nats / LN2


# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


@dataclass
class MIEstimate:
    """An MI estimate with its spread over restarts, in nats and bits."""

    estimator: str
    nats: float
    bits: float
    std_nats: float
    std_bits: float
    values_nats: list[float]
    n_samples: int
    ceiling_nats: float | None = None
    near_ceiling: bool = False
    seconds: float = 0.0
    notice: str | None = None
    jsd_nats: float | None = None  # JSD estimator only: Jensen-Shannon score, in [0, log 2]
    jsd_std_nats: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    flags: list[dict[str, Any]] = field(default_factory=list)  # ``estimate_flags``: negative, unstable, ceiling

    @property
    def values_bits(self) -> list[float]:
        return [_to_bits(v) for v in self.values_nats]

    def as_dict(self) -> dict[str, Any]:
        """Plain Python values only (floats, ints, bools, strings, lists), ready for JSON."""

        def f(x: float | None) -> float | None:
            return None if x is None else float(x)

        return {
            "estimator": self.estimator,
            "nats": f(self.nats),
            "bits": f(self.bits),
            "std_nats": f(self.std_nats),
            "std_bits": f(self.std_bits),
            "values_nats": [float(v) for v in self.values_nats],
            "values_bits": [float(v) for v in self.values_bits],
            "n_samples": int(self.n_samples),
            "ceiling_nats": f(self.ceiling_nats),
            "ceiling_bits": None if self.ceiling_nats is None else _to_bits(self.ceiling_nats),
            "near_ceiling": bool(self.near_ceiling),
            "seconds": float(self.seconds),
            "notice": self.notice,
            "jsd_nats": f(self.jsd_nats),
            "jsd_std_nats": f(self.jsd_std_nats),
            "settings": dict(self.settings),
            "flags": [dict(f) for f in self.flags],
        }

    def __str__(self) -> str:
        text = (
            f"I({self.estimator}) = {self.nats:.3f} ± {self.std_nats:.3f} nats "
            f"({self.bits:.3f} ± {self.std_bits:.3f} bits), n={self.n_samples}, "
            f"{len(self.values_nats)} restarts, {self.seconds:.1f}s"
        )
        if self.notice:
            text += f" [{self.notice}]"
        extra = [f["flag"] for f in self.flags if f["flag"] != "near_ceiling"]
        if extra:
            text += f" [flags: {', '.join(extra)}]"
        return text


def estimate_flags(
    est: dict[str, Any], quantity: str = "I(A;B)", lower=MI_NONNEGATIVE, upper=None
) -> list[dict[str, Any]]:
    """The flags of one estimate (an ``MIEstimate.as_dict()``), the same for ``estimate_mi`` and ``vib-bench
    info``: ``below_lower_bound`` (below ``lower``, by default MI >= 0: a negative estimate),
    ``above_upper_bound`` (above ``upper``, when known), ``unstable`` (restarts disagree) and ``near_ceiling``
    (InfoNCE at log of its batch). ``lower`` and ``upper`` are (value, standard error, name) or None; an
    estimate is outside a bound when its +- SPREAD std interval lies wholly beyond the bound widened by
    SPREAD standard errors."""
    flags: list[dict[str, Any]] = []
    e, s = est.get("nats"), est.get("std_nats") or 0.0
    name = est.get("estimator")
    if e is None:
        return flags
    if upper is not None:
        u, u_se, uname = upper
        if e - SPREAD * s > u + SPREAD * u_se:
            flags.append(
                {
                    "flag": "above_upper_bound",
                    "quantity": quantity,
                    "estimator": name,
                    "estimate_nats": e,
                    "std_nats": s,
                    "bound": uname,
                    "bound_nats": u,
                    "message": f"{quantity} {name} = {e:.3f} +- {s:.3f} nats is above the upper bound "
                    f"{uname} = {u:.3f}: the estimator over-shoots here (its value is not a "
                    "valid lower bound on this sample)",
                }
            )
    if lower is not None:
        lo, lo_se, lname = lower
        if e + SPREAD * s < lo - SPREAD * lo_se:
            what = "negative" if lname == MI_NONNEGATIVE[2] else f"below the lower bound {lname} = {lo:.3f}"
            flags.append(
                {
                    "flag": "below_lower_bound",
                    "quantity": quantity,
                    "estimator": name,
                    "estimate_nats": e,
                    "std_nats": s,
                    "bound": lname,
                    "bound_nats": lo,
                    "message": f"{quantity} {name} = {e:.3f} +- {s:.3f} nats is {what}: the estimator is "
                    "loose here (it under-estimates)",
                }
            )
    if s > max(UNSTABLE_STD[0], UNSTABLE_STD[1] * abs(e)):
        vals = ", ".join(f"{v:.2f}" for v in est.get("values_nats") or [])
        flags.append(
            {
                "flag": "unstable",
                "quantity": quantity,
                "estimator": name,
                "estimate_nats": e,
                "std_nats": s,
                "bound": None,
                "bound_nats": None,
                "message": f"{quantity} {name}: the restarts disagree ({vals} nats): the critic over-fitted "
                "or diverged on the held-out part; do not read the mean as a number",
            }
        )
    if est.get("near_ceiling"):
        flags.append(
            {
                "flag": "near_ceiling",
                "quantity": quantity,
                "estimator": name,
                "estimate_nats": e,
                "std_nats": s,
                "bound": "log(batch size)",
                "bound_nats": est.get("ceiling_nats"),
                "message": f"{quantity} {name}: {est.get('notice') or 'near its ceiling'}",
            }
        )
    return flags


# --------------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------------


def _as_2d_float(x: Any, name: str) -> Tensor:
    try:
        t = torch.as_tensor(x)
    except Exception as exc:  # e.g. ragged lists
        raise BenchError(f"{name} cannot be converted to a tensor ({type(exc).__name__})") from None
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2:
        raise BenchError(f"{name} must have shape (N, d), got {tuple(t.shape)}")
    t = t.detach().to(torch.float32)
    if t.shape[1] == 0:
        raise BenchError(f"{name} has zero features")
    if not bool(torch.isfinite(t).all()):
        raise BenchError(f"{name} contains NaN or infinite values")
    return t


def _resolve_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise BenchError(f"invalid device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {device!r} requested but CUDA is not available")
    return dev


def restart_seed(seed: int, restart: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(restart)]).generate_state(1)[0])


_N_VALIDATIONS = 40  # early-stopping checks per training run
_VAL_BUDGET = 8192  # pairs scored per validation check


def _split_sizes(n: int, test_frac: float, val_frac: float) -> tuple[int, int, int]:
    """(held-out, validation, fit) sizes: test_frac of n held out, val_frac of the rest validates."""
    n_test = int(round(n * test_frac))
    n_val = int(round((n - n_test) * val_frac))
    return n_test, n_val, n - n_test - n_val


def _standardize(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor]:
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def _fit_once(
    spec: Estimator,
    a: Tensor,
    b: Tensor,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    test_frac: float,
    critic: str,
    hidden: int,
    layers: int,
    lr: float,
    ema_rate: float,
    val_frac: float,
    trace: list[tuple[int, float]] | None = None,
) -> dict[str, float]:
    """One restart: split, train with early stopping on a validation part, evaluate held-out."""
    gen = torch.Generator().manual_seed(seed)
    n = a.shape[0]
    n_test, n_val, n_fit = _split_sizes(n, test_frac, val_frac)
    order = torch.randperm(n, generator=gen).to(a.device)
    test_idx, val_idx, fit_idx = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    a_fit, a_te = _standardize(a[fit_idx], a[test_idx])
    b_fit, b_te = _standardize(b[fit_idx], b[test_idx])
    _, a_val = _standardize(a[fit_idx], a[val_idx])
    _, b_val = _standardize(b[fit_idx], b[val_idx])

    with torch.random.fork_rng(devices=[]):  # local init; caller's global RNG untouched
        torch.manual_seed(seed)
        net = CRITICS[critic](a.shape[1], b.shape[1], hidden, layers)
    net = net.to(a.device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    state = TrainState(ema_rate)
    val_seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    eval_every = max(25, steps // _N_VALIDATIONS)
    best_val, best_state = -math.inf, None

    def validate(step: int) -> None:
        nonlocal best_val, best_state
        net.eval()
        with torch.no_grad():  # same validation pairs at every check (fixed generator seed)
            out = spec.evaluate(
                net, a_val, b_val, batch_size, torch.Generator().manual_seed(val_seed), budget=_VAL_BUDGET
            )
        net.train()
        value = out[spec.result_key]
        if trace is not None:
            trace.append((step, value))
        if math.isfinite(value) and value > best_val:
            best_val = value
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}

    per_epoch = n_fit // batch_size
    batches: Tensor | None = None
    for step in range(steps):
        j = step % per_epoch
        if j == 0:  # fresh epoch: disjoint batches of a new permutation (no repeats in a batch)
            batches = torch.randperm(n_fit, generator=gen)[: per_epoch * batch_size]
            batches = batches.view(per_epoch, batch_size).to(a.device)
        idx = batches[j]
        loss = spec.train_loss(net, a_fit[idx], b_fit[idx], state, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            validate(step + 1)

    if best_state is None:
        raise BenchError(f"{spec.name} estimate diverged (non-finite bound); try a smaller lr or fewer steps")
    net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        out = spec.evaluate(net, a_te, b_te, batch_size, gen)
    if not all(math.isfinite(v) for v in out.values()):
        raise BenchError(f"{spec.name} estimate diverged (non-finite bound); try a smaller lr or fewer steps")
    out["best_val"] = best_val
    return out


def estimate_mi(
    a: Any,
    b: Any,
    estimator: str = "mine",
    *,
    steps: int = 2000,
    batch_size: int | None = None,
    restarts: int = 3,
    seed: int = 0,
    device: Any = "cpu",
    test_frac: float = 0.2,
    critic: str | None = None,
    hidden: int = 128,
    layers: int = 2,
    lr: float = 2e-3,
    ema_rate: float = 0.01,
    val_frac: float = 0.125,
    threads: int | None = 1,
    copula: bool = True,
) -> MIEstimate:
    """Estimate I(A;B) in nats and bits from paired samples ``a`` (N, da) and ``b`` (N, db).

    Each of ``restarts`` runs draws its own split, critic initialisation and minibatches from a
    seed derived from ``seed``: ``test_frac`` of the samples are held out, ``val_frac`` of the
    rest is a validation part and the remainder trains the critic for ``steps`` Adam steps
    (learning rate ``lr``, cosine decay). The bound is checked on the validation part 40 times
    during training and the best critic is kept (early stopping; critics on high-dimensional
    inputs overfit otherwise); that critic's bound on the held-out part is the restart's value.
    Inputs are standardised with fit-part statistics (MI is invariant to this).

    ``batch_size`` defaults to 256 (mine, jsd) or 128 (infonce: ceiling log 128 = 4.85 nats);
    the fit, validation and held-out parts must each hold at least one batch. ``critic`` is
    ``"concat"`` (MLP on [a; b], default for mine and jsd) or ``"separable"`` (g(a).h(b),
    default for infonce, whose K x K scores a concat critic makes ~10x slower).
    ``threads`` sets torch's intra-op threads for the call (restored afterwards; ``None`` leaves
    them alone): these small matmuls gain little from threads and slow down badly on a busy CPU.
    ``copula`` (default on): replace every coordinate of a and b with at most 1% tied values by the
    normal quantile of its rank (``bench.info.marginals``; MI is unchanged, the critic no longer sees
    the marginals' shape); coordinates with more ties (ReLU zeros, one-hot labels) are left alone.
    ``settings["rank_gaussian_dims"]`` records how many coordinates of a and b were transformed.
    The same arguments give the same result; the caller's global torch RNG is left unchanged.
    Raises :class:`BenchError` for bad input (unknown estimator, mismatched N, too few samples).
    """
    spec = get_estimator(estimator)
    a_t = _as_2d_float(a, "a")
    b_t = _as_2d_float(b, "b")
    if a_t.shape[0] != b_t.shape[0]:
        raise BenchError(f"a and b must have the same number of samples, got {a_t.shape[0]} and {b_t.shape[0]}")
    n = a_t.shape[0]
    if batch_size is None:
        batch_size = spec.default_batch_size
    critic = spec.default_critic if critic is None else str(critic)
    if critic not in CRITICS:
        raise BenchError(f"unknown critic {critic!r}; choose one of: {', '.join(CRITICS)}")
    for label, value, low in (
        ("steps", steps, 1),
        ("restarts", restarts, 1),
        ("batch_size", batch_size, 2),
        ("hidden", hidden, 1),
        ("layers", layers, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise BenchError(f"{label} must be an integer >= {low}, got {value!r}")
    if not 0.0 < float(test_frac) < 1.0:
        raise BenchError(f"test_frac must be between 0 and 1, got {test_frac!r}")
    if not (float(lr) > 0.0 and 0.0 < float(ema_rate) < 1.0):
        raise BenchError(f"need lr > 0 and 0 < ema_rate < 1, got lr={lr!r}, ema_rate={ema_rate!r}")
    if not 0.0 < float(val_frac) < 1.0:
        raise BenchError(f"val_frac must be between 0 and 1, got {val_frac!r}")
    if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
        raise BenchError(f"threads must be an integer >= 1 or None, got {threads!r}")
    n_test, n_val, n_fit = _split_sizes(n, float(test_frac), float(val_frac))
    if min(n_fit, n_val, n_test) < batch_size:
        raise BenchError(
            f"too few samples for batch_size={batch_size}: {n} samples split into {n_fit} fit / "
            f"{n_val} validation / {n_test} held-out, and each part needs at least one batch; "
            "use more samples or a smaller batch size"
        )
    dev = _resolve_device(device)
    ranked = None
    if copula:
        a_t, mask_a = rank_gaussian(a_t)
        b_t, mask_b = rank_gaussian(b_t)
        ranked = [int(mask_a.sum()), int(mask_b.sum())]
    dims = [int(a_t.shape[1]), int(b_t.shape[1])]
    a_t, b_t = a_t.to(dev), b_t.to(dev)

    start = time.perf_counter()
    values: list[float] = []
    jsd_values: list[float] = []
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        for r in range(int(restarts)):
            out = _fit_once(
                spec,
                a_t,
                b_t,
                seed=restart_seed(seed, r),
                steps=int(steps),
                batch_size=int(batch_size),
                test_frac=float(test_frac),
                critic=critic,
                hidden=int(hidden),
                layers=int(layers),
                lr=float(lr),
                ema_rate=float(ema_rate),
                val_frac=float(val_frac),
            )
            values.append(out[spec.result_key])
            if spec.name == "jsd":
                jsd_values.append(jsd_from_objective(out["jsd_objective"]))
    finally:
        if threads is not None:
            torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - start

    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    ceiling = math.log(batch_size) if spec.has_ceiling else None
    near = bool(ceiling is not None and mean >= NEAR_CEILING_FRACTION * ceiling)
    notice = None
    if near:
        notice = (
            f"near the log N ceiling ({mean:.2f} of log {batch_size} = {ceiling:.2f} nats): the true MI may be higher"
        )
    result = MIEstimate(
        estimator=spec.name,
        nats=mean,
        bits=_to_bits(mean),
        std_nats=std,
        std_bits=_to_bits(std),
        values_nats=[float(v) for v in values],
        n_samples=int(n),
        ceiling_nats=ceiling,
        near_ceiling=near,
        seconds=float(seconds),
        notice=notice,
        jsd_nats=float(np.mean(jsd_values)) if jsd_values else None,
        jsd_std_nats=(float(np.std(jsd_values, ddof=1)) if len(jsd_values) > 1 else 0.0) if jsd_values else None,
        settings={
            "steps": int(steps),
            "batch_size": int(batch_size),
            "restarts": int(restarts),
            "seed": int(seed),
            "test_frac": float(test_frac),
            "critic": critic,
            "hidden": int(hidden),
            "layers": int(layers),
            "lr": float(lr),
            "ema_rate": float(ema_rate),
            "val_frac": float(val_frac),
            "device": str(dev),
            "threads": None if threads is None else int(threads),
            "copula": bool(copula),
            "copula_max_tied": MAX_TIED_FRACTION if copula else None,
            "rank_gaussian_dims": ranked,
            "dims": dims,
        },
    )
    result.flags = estimate_flags(result.as_dict())
    return result
