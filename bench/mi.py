"""Neural estimators of mutual information, validated against known truth.

Three variational lower bounds on I(A;B), each maximised over a small critic network T(a, b):

``mine``
    Donsker-Varadhan (DV) bound ``E_P[T] - log E_{P_A x P_B}[exp T]`` (Belghazi et al. 2018).
    The minibatch gradient of ``log E[exp T]`` is biased; as in the MINE paper, the denominator
    of that gradient is replaced by an exponential moving average of ``E[exp T]`` over batches.
``jsd``
    Jensen-Shannon objective of Deep InfoMax, ``E_P[-softplus(-T)] - E_{PxP}[softplus(T)]``.
    Its value is a dependency *score*, not an MI: we report it as the Jensen-Shannon divergence
    between P_AB and P_A x P_B (``jsd_nats``, in [0, log 2]). The MI estimate is obtained by
    training T with the JSD objective and then evaluating the DV bound with that T on held-out
    data (the JSD-optimal critic is the log density ratio, which also makes the DV bound tight).
``infonce``
    Contrastive predictive coding bound with batch size K,
    ``E[log(exp T(a_i, b_i) / ((1/K) sum_j exp T(a_i, b_j)))]``, which can never exceed log K.
    Estimates within 10% of log K carry ``near_ceiling=True`` and a notice.

Every estimate holds out 20% of the samples, trains the critic on most of the rest with early
stopping on a small validation part, evaluates the bound on the held-out part, and repeats this
over several restarts (fresh split, initialisation and batches per restart); :class:`MIEstimate`
reports the mean, the spread and the per-restart values in nats and bits, and the wall time.

Ground truth for validation: d-dimensional Gaussians with component-wise correlation rho
(``I = -(d/2) log(1 - rho^2)``) and the binary-input additive Gaussian noise channel
``y = x + N(0, sigma^2)``, x uniform on {-1, +1}, whose MI is computed by numerical integration.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError

__all__ = [
    "MIEstimate",
    "Estimator",
    "ESTIMATORS",
    "list_estimators",
    "estimate_mi",
    "dv_bound",
    "jsd_objective",
    "jsd_from_objective",
    "infonce_bound",
    "gaussian_mi_truth",
    "gaussian_rho_for_mi",
    "gaussian_log_density_ratio",
    "sample_correlated_gaussians",
    "binary_channel_mi_truth",
    "sample_binary_channel",
    "validation_cases",
    "validate_estimators",
    "format_validation_table",
    "register",
]

LN2 = math.log(2.0)
NEAR_CEILING_FRACTION = 0.9  # InfoNCE estimates >= 90% of log K are flagged


def _to_bits(nats: float) -> float:
    return nats / LN2


# --------------------------------------------------------------------------------------------
# Bounds (pure functions of critic values; differentiable)
# --------------------------------------------------------------------------------------------


def _log_mean_exp(x: Tensor) -> Tensor:
    flat = x.reshape(-1)
    return torch.logsumexp(flat, dim=0) - math.log(flat.numel())


def dv_bound(t_joint: Tensor, t_marginal: Tensor) -> Tensor:
    """Donsker-Varadhan bound ``mean(t_joint) - log mean(exp(t_marginal))`` in nats."""
    return t_joint.mean() - _log_mean_exp(t_marginal)


def jsd_objective(t_joint: Tensor, t_marginal: Tensor) -> Tensor:
    """Deep InfoMax JSD objective ``E_P[-softplus(-T)] - E_Q[softplus(T)]`` (<= 0)."""
    return (-F.softplus(-t_joint)).mean() - F.softplus(t_marginal).mean()


def jsd_from_objective(objective: float) -> float:
    """Convert the JSD objective's value into the Jensen-Shannon divergence (nats, in [0, log 2]).

    The objective equals ``2 * JSD(P || Q) - 2 log 2`` at the optimal critic.
    """
    return 0.5 * (float(objective) + 2.0 * LN2)


def infonce_bound(scores: Tensor) -> Tensor:
    """InfoNCE bound from critic scores ``(..., K, K)``, ``scores[..., i, j] = T(a_i, b_j)``.

    Positive pairs lie on the diagonal. The value is at most ``log K``.
    """
    k = scores.shape[-1]
    positives = scores.diagonal(dim1=-2, dim2=-1)
    return (positives - torch.logsumexp(scores, dim=-1)).mean() + math.log(k)


# --------------------------------------------------------------------------------------------
# Critics
# --------------------------------------------------------------------------------------------


def _mlp_tail(hidden: int, layers: int, out: int) -> nn.Sequential:
    mods: List[nn.Module] = []
    for _ in range(layers - 1):
        mods += [nn.ReLU(), nn.Linear(hidden, hidden)]
    mods += [nn.ReLU(), nn.Linear(hidden, out)]
    return nn.Sequential(*mods)


class ConcatCritic(nn.Module):
    """MLP on the concatenation [a; b]: ``layers`` hidden ReLU layers of width ``hidden``.

    The first linear layer is stored as two blocks (one for a, one for b), which is the same
    function as a Linear layer on the concatenation but lets :meth:`pairwise` score all K x K
    pairs of a batch without materialising K^2 concatenated inputs.
    """

    def __init__(self, dim_a: int, dim_b: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.in_a = nn.Linear(dim_a, hidden)
        self.in_b = nn.Linear(dim_b, hidden, bias=False)
        self.tail = _mlp_tail(hidden, layers, 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.tail(self.in_a(a) + self.in_b(b)).squeeze(-1)

    def pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        h = self.in_a(a).unsqueeze(-2) + self.in_b(b).unsqueeze(-3)
        return self.tail(h).squeeze(-1)


class SeparableCritic(nn.Module):
    """``T(a, b) = g(a) . h(b)`` with two MLP encoders; all K x K scores cost one matmul."""

    def __init__(self, dim_a: int, dim_b: int, hidden: int, layers: int, embed: int = 32) -> None:
        super().__init__()
        self.g = nn.Sequential(nn.Linear(dim_a, hidden), _mlp_tail(hidden, layers, embed))
        self.h = nn.Sequential(nn.Linear(dim_b, hidden), _mlp_tail(hidden, layers, embed))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return (self.g(a) * self.h(b)).sum(-1)

    def pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        return self.g(a) @ self.h(b).transpose(-1, -2)


CRITICS: Dict[str, type] = {"concat": ConcatCritic, "separable": SeparableCritic}


# --------------------------------------------------------------------------------------------
# Estimator definitions
# --------------------------------------------------------------------------------------------


class _TrainState:
    """Mutable per-restart training state (MINE's moving average)."""

    def __init__(self, ema_rate: float) -> None:
        self.ema_rate = ema_rate
        self.log_ema: Optional[Tensor] = None


def _shifted(b: Tensor, gen: torch.Generator) -> Tensor:
    """Marginal samples: shuffle b within a (randomly drawn) batch by a non-zero cyclic shift.

    The batch itself is a random draw, so a non-zero roll pairs every a_i with an independent
    b_j and never with its own partner (a plain permutation would keep ~1 fixed point).
    """
    k = b.shape[0]
    shift = int(torch.randint(1, k, (1,), generator=gen))
    return torch.roll(b, shifts=shift, dims=0)


def _mine_loss(critic: nn.Module, a: Tensor, b: Tensor, state: _TrainState, gen) -> Tensor:
    t_joint = critic(a, b)
    t_marg = critic(a, _shifted(b, gen))
    lme = _log_mean_exp(t_marg)
    # Moving average of E[exp T] kept in log space (no overflow).
    r = state.ema_rate
    if state.log_ema is None:
        state.log_ema = lme.detach()
    else:
        state.log_ema = torch.logaddexp(
            state.log_ema + math.log(1.0 - r), lme.detach() + math.log(r)
        )
    # d/dθ exp(lme - log_ema) = (d/dθ mean(exp T)) / ema: the bias-corrected MINE gradient.
    surrogate = torch.exp(lme - state.log_ema)
    return -(t_joint.mean() - surrogate)


def _jsd_loss(critic: nn.Module, a: Tensor, b: Tensor, state: _TrainState, gen) -> Tensor:
    return -jsd_objective(critic(a, b), critic(a, _shifted(b, gen)))


def _infonce_loss(critic: nn.Module, a: Tensor, b: Tensor, state: _TrainState, gen) -> Tensor:
    return -infonce_bound(critic.pairwise(a, b))


_EVAL_CHUNK = 16384  # rows per critic call at evaluation time
_TEST_BUDGET = 32768  # pairs scored for the final held-out bound


def _critic_chunked(critic: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    return torch.cat(
        [critic(a[i : i + _EVAL_CHUNK], b[i : i + _EVAL_CHUNK]) for i in range(0, len(a), _EVAL_CHUNK)]
    )


def _eval_dv(
    critic: nn.Module, a: Tensor, b: Tensor, batch_size: int, gen, budget: int = _TEST_BUDGET
) -> Dict[str, float]:
    """Held-out DV bound (and JSD score).

    Joint term: every held-out pair. Product-of-marginals term: about ``budget`` pairs
    ``(a_p[i], b_p[i - s])`` from a random permutation p and distinct non-zero cyclic shifts s,
    so no sample is ever paired with its own partner.
    """
    n = a.shape[0]
    t_joint = _critic_chunked(critic, a, b)
    perm = torch.randperm(n, generator=gen).to(a.device)
    n_shifts = max(1, min(n - 1, math.ceil(budget / n)))
    shifts = torch.randperm(n - 1, generator=gen)[:n_shifts] + 1
    a_p = a[perm]
    t_marg = torch.cat(
        [_critic_chunked(critic, a_p, b[torch.roll(perm, int(s))]) for s in shifts]
    )
    return {
        "dv": float(dv_bound(t_joint, t_marg)),
        "jsd_objective": float(jsd_objective(t_joint, t_marg)),
    }


def _eval_infonce(
    critic: nn.Module, a: Tensor, b: Tensor, batch_size: int, gen, budget: int = _TEST_BUDGET
) -> Dict[str, float]:
    """Held-out InfoNCE bound, averaged over disjoint batches of the training batch size K.

    Whole passes over the data (each a fresh random partition into batches of K) are repeated
    until about ``budget`` positive pairs were scored (at most 8 passes).
    """
    n = a.shape[0]
    k = batch_size
    per_pass = n // k
    passes = max(1, min(8, math.ceil(budget / (per_pass * k))))
    values = []
    for _ in range(passes):
        perm = torch.randperm(n, generator=gen)[: per_pass * k].to(a.device)
        for idx in perm.view(per_pass, k):
            values.append(float(infonce_bound(critic.pairwise(a[idx], b[idx]))))
    return {"infonce": float(np.mean(values))}


@dataclass(frozen=True)
class Estimator:
    """A registered MI estimator: training loss, held-out evaluation and defaults."""

    name: str
    description: str
    train_loss: Callable[..., Tensor]
    evaluate: Callable[..., Dict[str, float]]
    result_key: str  # which evaluated quantity is the MI estimate (nats)
    default_batch_size: int
    default_critic: str
    has_ceiling: bool = False


ESTIMATORS: Dict[str, Estimator] = {
    "mine": Estimator(
        name="mine",
        description="Donsker-Varadhan bound with MINE's moving-average gradient correction",
        train_loss=_mine_loss,
        evaluate=_eval_dv,
        result_key="dv",
        default_batch_size=256,
        default_critic="concat",
    ),
    "jsd": Estimator(
        name="jsd",
        description="Deep InfoMax Jensen-Shannon critic; MI = held-out DV bound of that critic",
        train_loss=_jsd_loss,
        evaluate=_eval_dv,
        result_key="dv",
        default_batch_size=256,
        default_critic="concat",
    ),
    "infonce": Estimator(
        name="infonce",
        description="CPC/InfoNCE contrastive bound, capped at log(batch size)",
        train_loss=_infonce_loss,
        evaluate=_eval_infonce,
        result_key="infonce",
        default_batch_size=128,
        default_critic="separable",
        has_ceiling=True,
    ),
}


def list_estimators() -> List[str]:
    """Names of the registered estimators, in registry order."""
    return list(ESTIMATORS)


def _get_estimator(name: str) -> Estimator:
    key = str(name).strip().lower()
    if key not in ESTIMATORS:
        raise BenchError(
            f"unknown MI estimator {name!r}; choose one of: {', '.join(list_estimators())}"
        )
    return ESTIMATORS[key]


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
    values_nats: List[float]
    n_samples: int
    ceiling_nats: Optional[float] = None
    near_ceiling: bool = False
    seconds: float = 0.0
    notice: Optional[str] = None
    jsd_nats: Optional[float] = None  # JSD estimator only: Jensen-Shannon score, in [0, log 2]
    jsd_std_nats: Optional[float] = None
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def values_bits(self) -> List[float]:
        return [_to_bits(v) for v in self.values_nats]

    def as_dict(self) -> Dict[str, Any]:
        """Plain Python values only (floats, ints, bools, strings, lists), ready for JSON."""

        def f(x: Optional[float]) -> Optional[float]:
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
        }

    def __str__(self) -> str:
        text = (
            f"I({self.estimator}) = {self.nats:.3f} ± {self.std_nats:.3f} nats "
            f"({self.bits:.3f} ± {self.std_bits:.3f} bits), n={self.n_samples}, "
            f"{len(self.values_nats)} restarts, {self.seconds:.1f}s"
        )
        if self.notice:
            text += f" [{self.notice}]"
        return text


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


def _restart_seed(seed: int, restart: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(restart)]).generate_state(1)[0])


_N_VALIDATIONS = 40  # early-stopping checks per training run
_VAL_BUDGET = 8192  # pairs scored per validation check


def _split_sizes(n: int, test_frac: float, val_frac: float) -> Tuple[int, int, int]:
    """(held-out, validation, fit) sizes: test_frac of n held out, val_frac of the rest validates."""
    n_test = int(round(n * test_frac))
    n_val = int(round((n - n_test) * val_frac))
    return n_test, n_val, n - n_test - n_val


def _standardize(train: Tensor, test: Tensor) -> Tuple[Tensor, Tensor]:
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
    trace: Optional[List[Tuple[int, float]]] = None,
) -> Dict[str, float]:
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
    state = _TrainState(ema_rate)
    val_seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    eval_every = max(25, steps // _N_VALIDATIONS)
    best_val, best_state = -math.inf, None

    def validate(step: int) -> None:
        nonlocal best_val, best_state
        net.eval()
        with torch.no_grad():  # same validation pairs at every check (fixed generator seed)
            out = spec.evaluate(net, a_val, b_val, batch_size,
                                torch.Generator().manual_seed(val_seed), budget=_VAL_BUDGET)
        net.train()
        value = out[spec.result_key]
        if trace is not None:
            trace.append((step, value))
        if math.isfinite(value) and value > best_val:
            best_val = value
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}

    per_epoch = n_fit // batch_size
    batches: Optional[Tensor] = None
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
        raise BenchError(
            f"{spec.name} estimate diverged (non-finite bound); try a smaller lr or fewer steps"
        )
    net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        out = spec.evaluate(net, a_te, b_te, batch_size, gen)
    if not all(math.isfinite(v) for v in out.values()):
        raise BenchError(
            f"{spec.name} estimate diverged (non-finite bound); try a smaller lr or fewer steps"
        )
    out["best_val"] = best_val
    return out


def estimate_mi(
    a: Any,
    b: Any,
    estimator: str = "mine",
    *,
    steps: int = 2000,
    batch_size: Optional[int] = None,
    restarts: int = 3,
    seed: int = 0,
    device: Any = "cpu",
    test_frac: float = 0.2,
    critic: Optional[str] = None,
    hidden: int = 128,
    layers: int = 2,
    lr: float = 2e-3,
    ema_rate: float = 0.01,
    val_frac: float = 0.125,
    threads: Optional[int] = 1,
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
    The same arguments give the same result; the caller's global torch RNG is left unchanged.
    Raises :class:`BenchError` for bad input (unknown estimator, mismatched N, too few samples).
    """
    spec = _get_estimator(estimator)
    a_t = _as_2d_float(a, "a")
    b_t = _as_2d_float(b, "b")
    if a_t.shape[0] != b_t.shape[0]:
        raise BenchError(
            f"a and b must have the same number of samples, got {a_t.shape[0]} and {b_t.shape[0]}"
        )
    n = a_t.shape[0]
    if batch_size is None:
        batch_size = spec.default_batch_size
    critic = spec.default_critic if critic is None else str(critic)
    if critic not in CRITICS:
        raise BenchError(f"unknown critic {critic!r}; choose one of: {', '.join(CRITICS)}")
    for label, value, low in (("steps", steps, 1), ("restarts", restarts, 1),
                              ("batch_size", batch_size, 2), ("hidden", hidden, 1),
                              ("layers", layers, 1)):
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
    a_t, b_t = a_t.to(dev), b_t.to(dev)

    start = time.perf_counter()
    values: List[float] = []
    jsd_values: List[float] = []
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        for r in range(int(restarts)):
            out = _fit_once(
                spec, a_t, b_t, seed=_restart_seed(seed, r), steps=int(steps),
                batch_size=int(batch_size), test_frac=float(test_frac), critic=critic,
                hidden=int(hidden), layers=int(layers), lr=float(lr),
                ema_rate=float(ema_rate), val_frac=float(val_frac),
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
            f"near the log N ceiling ({mean:.2f} of log {batch_size} = {ceiling:.2f} nats): "
            "the true MI may be higher"
        )
    return MIEstimate(
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
        jsd_std_nats=(float(np.std(jsd_values, ddof=1)) if len(jsd_values) > 1 else 0.0)
        if jsd_values else None,
        settings={
            "steps": int(steps), "batch_size": int(batch_size), "restarts": int(restarts),
            "seed": int(seed), "test_frac": float(test_frac), "critic": critic,
            "hidden": int(hidden), "layers": int(layers), "lr": float(lr),
            "ema_rate": float(ema_rate), "val_frac": float(val_frac), "device": str(dev),
            "threads": None if threads is None else int(threads),
        },
    )


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
_VALIDATION_MODES = {
    "full": {"n_samples": 10000, "steps": 2000, "restarts": 3},
    "quick": {"n_samples": 4000, "steps": 600, "restarts": 2},
}


def validation_cases(seed: int = 0, n_samples: int = 10000) -> List[Dict[str, Any]]:
    """The validation problems: dicts with ``case``, ``truth_nats``, ``a``, ``b``."""
    cases = []
    for i, (d, rho) in enumerate(_GAUSSIAN_CASES):
        a, b = sample_correlated_gaussians(n_samples, d, rho, seed=_restart_seed(seed, 100 + i))
        cases.append({"case": f"gaussian d={d} rho={rho}", "truth_nats": gaussian_mi_truth(rho, d),
                      "a": a, "b": b})
    for i, sigma in enumerate(_CHANNEL_SIGMAS):
        x, y = sample_binary_channel(n_samples, sigma, seed=_restart_seed(seed, 200 + i))
        cases.append({"case": f"binary channel sigma={sigma}",
                      "truth_nats": binary_channel_mi_truth(sigma), "a": x, "b": y})
    return cases


def _parse_estimators(estimators: Any) -> List[str]:
    if isinstance(estimators, str):
        estimators = [e for e in estimators.split(",")]
    names = [str(e).strip().lower() for e in estimators if str(e).strip()]
    if not names:
        raise BenchError("no MI estimators given; choose from: " + ", ".join(list_estimators()))
    for name in names:
        _get_estimator(name)
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
    names = _parse_estimators(estimators)
    mode = _VALIDATION_MODES["quick" if quick else "full"]
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

    body = [[cell(k, r.get(k)) for k, _ in cols] for r in rows]
    headers = [h for _, h in cols]
    try:
        from tabulate import tabulate
    except ImportError:
        rule = ["---" if k in ("case", "estimator") else "--:" for k, _ in cols]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    align = ["left" if k in ("case", "estimator") else "right" for k, _ in cols]
    return tabulate(body, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cmd_mi_validate(args: argparse.Namespace) -> int:
    names = _parse_estimators(args.estimators)
    start = time.perf_counter()
    rows = validate_estimators(
        names, seed=args.seed, quick=args.quick,
        progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None,
    )
    print(format_validation_table(rows))
    label = "quick" if args.quick else "full"
    mode = _VALIDATION_MODES[label]
    print(f"\n{label}: {mode['n_samples']} samples, {mode['steps']} steps, {mode['restarts']} "
          f"restarts per estimate; seed {args.seed}; total {time.perf_counter() - start:.0f}s")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``mi-validate`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "mi-validate",
        help="check the MI estimators against known ground truth",
        description="Run the neural MI estimators on correlated Gaussians and a binary-input "
        "Gaussian channel, whose MI is known, and print a markdown table of estimate vs truth.",
    )
    parser.add_argument("--estimators", default=",".join(list_estimators()),
                        help="comma-separated estimators (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples, steps and restarts (seconds per estimate instead of ~15)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print one progress line per estimate to stderr")
    parser.set_defaults(func=_cmd_mi_validate)
    return parser
