"""Neural estimators of mutual information: their variational bounds, critics, objectives and registry.

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

Fitting a critic and reporting the estimate is ``bench.info.estimate``'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import BenchError

LN2 = math.log(2.0)

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
    mods: list[nn.Module] = []
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


CRITICS: dict[str, type] = {"concat": ConcatCritic, "separable": SeparableCritic}


# --------------------------------------------------------------------------------------------
# Estimator definitions
# --------------------------------------------------------------------------------------------


class TrainState:
    """Mutable per-restart training state (MINE's moving average)."""

    def __init__(self, ema_rate: float) -> None:
        self.ema_rate = ema_rate
        self.log_ema: Tensor | None = None


def _shifted(b: Tensor, gen: torch.Generator) -> Tensor:
    """Marginal samples: shuffle b within a (randomly drawn) batch by a non-zero cyclic shift.

    The batch itself is a random draw, so a non-zero roll pairs every a_i with an independent
    b_j and never with its own partner (a plain permutation would keep ~1 fixed point).
    """
    k = b.shape[0]
    shift = int(torch.randint(1, k, (1,), generator=gen))
    return torch.roll(b, shifts=shift, dims=0)


def _mine_loss(critic: nn.Module, a: Tensor, b: Tensor, state: TrainState, gen) -> Tensor:
    t_joint = critic(a, b)
    t_marg = critic(a, _shifted(b, gen))
    lme = _log_mean_exp(t_marg)
    # Moving average of E[exp T] kept in log space (no overflow).
    r = state.ema_rate
    if state.log_ema is None:
        state.log_ema = lme.detach()
    else:
        state.log_ema = torch.logaddexp(state.log_ema + math.log(1.0 - r), lme.detach() + math.log(r))
    # d/dθ exp(lme - log_ema) = (d/dθ mean(exp T)) / ema: the bias-corrected MINE gradient.
    surrogate = torch.exp(lme - state.log_ema)
    return -(t_joint.mean() - surrogate)


def _jsd_loss(critic: nn.Module, a: Tensor, b: Tensor, state: TrainState, gen) -> Tensor:
    return -jsd_objective(critic(a, b), critic(a, _shifted(b, gen)))


def _infonce_loss(critic: nn.Module, a: Tensor, b: Tensor, state: TrainState, gen) -> Tensor:
    return -infonce_bound(critic.pairwise(a, b))


_EVAL_CHUNK = 16384  # rows per critic call at evaluation time
_TEST_BUDGET = 32768  # pairs scored for the final held-out bound


def _critic_chunked(critic: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    return torch.cat([critic(a[i : i + _EVAL_CHUNK], b[i : i + _EVAL_CHUNK]) for i in range(0, len(a), _EVAL_CHUNK)])


def _eval_dv(
    critic: nn.Module, a: Tensor, b: Tensor, batch_size: int, gen, budget: int = _TEST_BUDGET
) -> dict[str, float]:
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
    t_marg = torch.cat([_critic_chunked(critic, a_p, b[torch.roll(perm, int(s))]) for s in shifts])
    return {
        "dv": float(dv_bound(t_joint, t_marg)),
        "jsd_objective": float(jsd_objective(t_joint, t_marg)),
    }


def _eval_infonce(
    critic: nn.Module, a: Tensor, b: Tensor, batch_size: int, gen, budget: int = _TEST_BUDGET
) -> dict[str, float]:
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
    evaluate: Callable[..., dict[str, float]]
    result_key: str  # which evaluated quantity is the MI estimate (nats)
    default_batch_size: int
    default_critic: str
    has_ceiling: bool = False


ESTIMATORS: dict[str, Estimator] = {
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


def list_estimators() -> list[str]:
    """Names of the registered estimators, in registry order."""
    return list(ESTIMATORS)


def get_estimator(name: str) -> Estimator:
    key = str(name).strip().lower()
    if key not in ESTIMATORS:
        raise BenchError(f"unknown MI estimator {name!r}; choose one of: {', '.join(list_estimators())}")
    return ESTIMATORS[key]
