"""The ``paper`` family: the attack of Alemi et al. (2017) as they ran it, and strong counterparts.

*The paper's attack.* Carlini-Wagner L2 in the form of Carlini's reference implementation
(``nn_robust_attacks/l2_attack.py``): a tanh change of variables (scaled by 0.999999), Adam at lr
0.01 on the perturbation, the margin loss ``max(other - target, -kappa)`` on the model's outputs, a
per-example binary search over the constant c (starting at 1e-3, times 10 until the first success,
then bisection; with 10 or more steps the last one retries at the upper bound), the smallest
successful perturbation kept, early abort when the loss has not fallen by 0.01% over a tenth of the
iterations. One departure: where no step succeeds, the example is returned unchanged (the reference
returns an all-zero array there).
``cw_paper`` is untargeted, ``cw_paper_targeted`` aims at seeded random targets (or one fixed class).
A randomised model is attacked through whatever ``forward`` returns (VIB: the 12-sample average), as
the paper did; ``eot_iter > 1`` averages the outputs of that many forward passes per step (EOT).

*The strong counterparts,* meant to be run on the same examples: PGD (L-inf and L2) with many steps
and random restarts, APGD, PGD with expectation over the model's randomness (EOT), a transfer attack
from the model's own mean mode (``model.mean_mode = True``: z = mu, no sampling noise), and the
gradient-free Square attack in L2. A robustness claim that holds under ``cw_paper`` but not under
these points to gradient masking (Korshunova et al. 2021).

Every attack returns adversarial images in [0, 1]; a minimum-norm attack that fails on an example
returns the example unchanged. Random targets, starts and restarts come from torch's global RNG, which
the harness seeds per cell.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn
from torchattacks.attack import Attack as _TAAttack

from ._registry import register_attack


# --------------------------------------------------------------------------------------- helpers
class MeanMode(nn.Module):
    """``model`` with its sampling switched off (``mean_mode = True`` during each forward): z = mu for VIB.

    A model without a ``mean_mode`` attribute is used as it is, so a transfer attack on a deterministic
    model is the plain attack.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_classes = getattr(model, "num_classes", None)

    def forward(self, x):
        old = getattr(self.model, "mean_mode", None)
        if old is None:
            return self.model(x)
        self.model.mean_mode = True
        try:
            return self.model(x)
        finally:
            self.model.mean_mode = old


def _margin(out: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(output of ``labels``, largest other output), valid for any outputs (log-probabilities included)."""
    onehot = F.one_hot(labels, out.shape[1]).bool()
    real = out.gather(1, labels[:, None]).squeeze(1)
    other = out.masked_fill(onehot, float("-inf")).amax(1)
    return real, other


def random_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A uniformly random class other than the label, for each example (torch's global RNG)."""
    shift = torch.randint(1, num_classes, labels.shape, device=labels.device)
    return (labels + shift) % num_classes


class _Base(_TAAttack):
    """Shared: outputs averaged over ``eot_iter`` forward passes (1: the model's own forward)."""

    def __init__(self, name, model, eot_iter: int = 1):
        super().__init__(name, model)
        if int(eot_iter) < 1:
            raise ValueError(f"eot_iter must be >= 1, got {eot_iter}")
        self.eot_iter = int(eot_iter)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        out = self.get_logits(x)
        for _ in range(self.eot_iter - 1):
            out = out + self.get_logits(x)
        return out / self.eot_iter


# ------------------------------------------------------------------------------ Carlini-Wagner L2
class CWL2(_Base):
    """Carlini-Wagner L2 in the reference implementation's form (see the module docstring).

    ``target`` -1 with ``targeted`` picks a random other class per example; ``target`` >= 0 aims every
    example at that class.
    """

    def __init__(
        self,
        model,
        *,
        targeted=False,
        target=-1,
        binary_steps=9,
        steps=1000,
        lr=0.01,
        initial_const=1e-3,
        kappa=0.0,
        abort_early=True,
        eot_iter=1,
    ):
        super().__init__("CWL2Reference", model, eot_iter)
        checks = [
            (int(binary_steps) >= 1, "binary_steps must be >= 1"),
            (int(steps) >= 1, "steps must be >= 1"),
            (lr > 0, "lr must be > 0"),
            (initial_const > 0, "initial_const must be > 0"),
            (kappa >= 0, "kappa must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        self.targeted_attack, self.target = bool(targeted), int(target)
        self.binary_steps, self.steps, self.lr = int(binary_steps), int(steps), float(lr)
        self.initial_const, self.kappa, self.abort_early = float(initial_const), float(kappa), bool(abort_early)
        self.supported_mode = ["default", "targeted"]

    def _labels(self, x, y):
        if not self.targeted_attack:
            return y
        if self.target >= 0:
            return torch.full_like(y, self.target)
        with torch.no_grad():
            n_classes = int(getattr(self.model, "num_classes", None) or self.get_logits(x[:1]).shape[1])
        return random_targets(y, n_classes)

    def _success(self, out, lab):
        # the reference's compare(): the margin must be met by kappa
        adj = out.detach().clone()
        adj.scatter_add_(
            1,
            lab[:, None],
            torch.full_like(lab[:, None], -self.kappa if self.targeted_attack else self.kappa, dtype=adj.dtype),
        )
        pred = adj.argmax(1)
        return pred == lab if self.targeted_attack else pred != lab

    def forward(self, images, labels):
        x = images.clone().detach().to(self.device)
        y = labels.clone().detach().to(self.device)
        lab = self._labels(x, y)
        n = len(x)
        timg = torch.atanh((x - 0.5) / 0.5 * 0.999999)
        x0 = torch.tanh(timg) * 0.5 + 0.5  # the reference measures distance to this image
        lower = torch.zeros(n, device=x.device, dtype=torch.float64)
        upper = torch.full((n,), 1e10, device=x.device, dtype=torch.float64)
        const = torch.full((n,), self.initial_const, device=x.device, dtype=torch.float64)
        best_l2 = torch.full((n,), math.inf, device=x.device)
        best = x.clone()
        check_every = max(self.steps // 10, 1)
        for outer in range(self.binary_steps):
            if self.binary_steps >= 10 and outer == self.binary_steps - 1:
                const = torch.where(upper < 1e9, upper, const)  # the reference's `repeat`: last try at the bound
            modifier = torch.zeros_like(x, requires_grad=True)
            opt = torch.optim.Adam([modifier], lr=self.lr)  # fresh Adam state each binary step, as in the reference
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            c = const.to(x.dtype)
            prev = math.inf
            for it in range(self.steps):
                adv = torch.tanh(modifier + timg) * 0.5 + 0.5
                out = self.outputs(adv)
                l2 = (adv - x0).pow(2).flatten(1).sum(1)
                real, other = _margin(out, lab)
                gap = other - real if self.targeted_attack else real - other
                loss = l2.sum() + (c * torch.clamp(gap + self.kappa, min=0)).sum()
                if self.abort_early and it % check_every == 0:
                    value = float(loss.detach())
                    if value > prev * 0.9999:
                        break
                    prev = value
                with torch.no_grad():
                    ok = self._success(out, lab)
                    found |= ok
                    better = ok & (l2 < best_l2)
                    best_l2 = torch.where(better, l2.detach(), best_l2)
                    best[better] = adv.detach()[better]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            # the reference's binary search over c, per example
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            bounded = upper < 1e9
            const = torch.where(bounded, (lower + upper) / 2, const * 10)
        return best.detach()


def _cw(model, from_mean_mode, **kw):
    if from_mean_mode:  # transfer: the perturbation is found on the model's mean mode, used on the model itself
        return Transfer(model, CWL2(MeanMode(model), **kw))
    return CWL2(model, **kw)


@register_attack(
    norm="L2",
    minimum_norm=True,
    costly=True,
    loss="margin",
    description="Carlini-Wagner L2 as in the reference implementation (binary search over c, "
    "early abort), untargeted: the paper's attack",
)
def cw_paper(
    model,
    eps,
    *,
    binary_steps=9,
    steps=1000,
    lr=0.01,
    initial_const=1e-3,
    kappa=0.0,
    abort_early=True,
    eot_iter=1,
    from_mean_mode=False,
):
    return _cw(
        model,
        from_mean_mode,
        targeted=False,
        binary_steps=binary_steps,
        steps=steps,
        lr=lr,
        initial_const=initial_const,
        kappa=kappa,
        abort_early=abort_early,
        eot_iter=eot_iter,
    )


@register_attack(
    norm="L2",
    minimum_norm=True,
    costly=True,
    loss="margin",
    description="Carlini-Wagner L2 as in the reference implementation, targeted at seeded random "
    "classes (target=-1) or one class: the paper's attack",
)
def cw_paper_targeted(
    model,
    eps,
    *,
    target=-1,
    binary_steps=9,
    steps=1000,
    lr=0.01,
    initial_const=1e-3,
    kappa=0.0,
    abort_early=True,
    eot_iter=1,
    from_mean_mode=False,
):
    return _cw(
        model,
        from_mean_mode,
        targeted=True,
        target=target,
        binary_steps=binary_steps,
        steps=steps,
        lr=lr,
        initial_const=initial_const,
        kappa=kappa,
        abort_early=abort_early,
        eot_iter=eot_iter,
    )


# ----------------------------------------------------------------------------------- strong PGD
class PGD(_Base):
    """PGD in L-inf or L2 with random restarts and optional EOT.

    Each restart returns its last iterate (the loss keeps rising after the boundary is crossed, so a
    randomised model stays fooled under fresh noise); with ``keep_first`` the first iterate that fools
    the model is kept instead. A restart runs only on the examples the previous ones did not fool
    (judged on the ``eot_iter``-averaged outputs). The step is ``rel_step * eps``.
    """

    def __init__(
        self,
        model,
        eps,
        *,
        norm="Linf",
        steps=100,
        rel_step=0.05,
        restarts=1,
        eot_iter=1,
        random_start=True,
        loss="ce",
        keep_first=False,
    ):
        super().__init__("PGDRestarts", model, eot_iter)
        if norm not in ("Linf", "L2"):
            raise ValueError(f"norm must be Linf or L2, got {norm!r}")
        if loss not in ("ce", "margin"):
            raise ValueError(f"loss must be ce or margin, got {loss!r}")
        if int(steps) < 1 or int(restarts) < 1 or rel_step <= 0:
            raise ValueError("steps and restarts must be >= 1 and rel_step > 0")
        self.eps, self.norm, self.steps, self.restarts = float(eps), norm, int(steps), int(restarts)
        self.alpha = float(rel_step) * float(eps)
        self.random_start, self.loss, self.keep_first = bool(random_start), loss, bool(keep_first)

    def _loss(self, out, y):
        if self.loss == "ce":
            return F.cross_entropy(out, y, reduction="sum")
        real, other = _margin(out, y)
        return (other - real).sum()

    def _project(self, adv, x):
        d = adv - x
        if self.norm == "Linf":
            d = d.clamp(-self.eps, self.eps)
        else:
            norms = d.flatten(1).norm(dim=1).clamp_min(1e-12)
            d = d * (self.eps / norms).clamp(max=1.0).view(-1, *([1] * (d.dim() - 1)))
        return (x + d).clamp(0, 1)

    def _start(self, x):
        if not self.random_start:
            return x.clone()
        if self.norm == "Linf":
            d = torch.empty_like(x).uniform_(-self.eps, self.eps)
        else:
            d = torch.randn_like(x)
            norms = d.flatten(1).norm(dim=1).view(-1, *([1] * (d.dim() - 1)))
            d = d / norms * self.eps * torch.rand(len(x), *([1] * (d.dim() - 1)), device=x.device)
        return (x + d).clamp(0, 1)

    def _step(self, adv, grad):
        if self.norm == "Linf":
            return adv + self.alpha * grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))
        return adv + self.alpha * grad / norms

    def forward(self, images, labels):
        x = images.clone().detach().to(self.device)
        y = labels.clone().detach().to(self.device)
        result = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        if self.eps == 0:
            return result
        for _ in range(self.restarts):
            todo = (~fooled).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            xs, ys = x[todo], y[todo]
            adv = self._start(xs)
            hit = torch.zeros(len(todo), dtype=torch.bool, device=x.device)
            for it in range(self.steps + 1):
                adv.requires_grad_(True)
                out = self.outputs(adv)
                with torch.no_grad():
                    if self.keep_first or it == self.steps:
                        now = (out.argmax(1) != ys) & ~hit
                        result[todo[now]] = adv.detach()[now]
                        hit |= now
                if it == self.steps:
                    break
                (grad,) = torch.autograd.grad(self._loss(out, ys), adv)
                with torch.no_grad():
                    adv = self._project(self._step(adv, grad), xs)
            keep = ~hit  # not fooled in this restart: its last iterate stands until a later restart fools it
            result[todo[keep]] = adv.detach()[keep]
            fooled[todo[hit]] = True
        return result.detach()


class Transfer(_TAAttack):
    """Run ``inner`` (built on the model's mean mode) and return its adversarial examples for the real model."""

    def __init__(self, model, inner: _TAAttack):
        super().__init__("TransferFromMeanMode", model)
        self.inner = inner

    def forward(self, images, labels):
        return self.inner(images, labels)


@register_attack(
    norm="Linf", description="PGD, 100 steps of 0.05 eps, 5 random restarts (restarts only where not yet fooled)"
)
def pgd_strong(model, eps, *, steps=100, rel_step=0.05, restarts=5, loss="ce"):
    return PGD(model, eps, norm="Linf", steps=steps, rel_step=rel_step, restarts=restarts, loss=loss)


@register_attack(
    norm="L2", description="L2 PGD, 100 steps of 0.05 eps, 5 random restarts (restarts only where not yet fooled)"
)
def pgd_l2_strong(model, eps, *, steps=100, rel_step=0.05, restarts=5, loss="ce"):
    return PGD(model, eps, norm="L2", steps=steps, rel_step=rel_step, restarts=restarts, loss=loss)


@register_attack(
    norm="Linf",
    eot=True,
    randomised_only=True,
    description="PGD on the expectation over the model's randomness: outputs averaged over eot_iter "
    "passes, 100 steps, 2 restarts",
)
def eot_pgd_strong(model, eps, *, steps=100, rel_step=0.05, restarts=2, eot_iter=10, loss="ce"):
    return PGD(model, eps, norm="Linf", steps=steps, rel_step=rel_step, restarts=restarts, eot_iter=eot_iter, loss=loss)


@register_attack(
    norm="L2",
    eot=True,
    randomised_only=True,
    description="L2 PGD on the expectation over the model's randomness (eot_iter passes), 100 steps, 2 restarts",
)
def eot_pgd_l2_strong(model, eps, *, steps=100, rel_step=0.05, restarts=2, eot_iter=10, loss="ce"):
    return PGD(model, eps, norm="L2", steps=steps, rel_step=rel_step, restarts=restarts, eot_iter=eot_iter, loss=loss)


@register_attack(
    norm="Linf",
    randomised_only=True,
    loss="margin",
    description="transfer from the model's own mean mode (z = mu): PGD-100 (margin loss, last iterate) "
    "there, evaluated on the sampling model",
)
def transfer_pgd_strong(model, eps, *, steps=100, rel_step=0.05, restarts=1, loss="margin"):
    return Transfer(
        model, PGD(MeanMode(model), eps, norm="Linf", steps=steps, rel_step=rel_step, restarts=restarts, loss=loss)
    )


@register_attack(
    norm="L2",
    randomised_only=True,
    loss="margin",
    description="transfer from the model's own mean mode (z = mu): L2 PGD-100 (margin loss, last "
    "iterate) there, evaluated on the sampling model",
)
def transfer_pgd_l2_strong(model, eps, *, steps=100, rel_step=0.05, restarts=1, loss="margin"):
    return Transfer(
        model, PGD(MeanMode(model), eps, norm="L2", steps=steps, rel_step=rel_step, restarts=restarts, loss=loss)
    )


@register_attack(
    norm="Linf", description="APGD-CE (Croce and Hein 2020), 100 steps, 2 restarts; eot_iter > 1 for randomised models"
)
def apgd_strong(model, eps, *, steps=100, restarts=2, eot_iter=1, loss="ce", seed=0):
    return torchattacks.APGD(
        model, norm="Linf", eps=eps, steps=steps, n_restarts=restarts, eot_iter=eot_iter, loss=loss, seed=seed
    )


@register_attack(norm="L2", description="APGD-CE in L2, 100 steps, 2 restarts; eot_iter > 1 for randomised models")
def apgd_l2_strong(model, eps, *, steps=100, restarts=2, eot_iter=1, loss="ce", seed=0):
    return torchattacks.APGD(
        model, norm="L2", eps=eps, steps=steps, n_restarts=restarts, eot_iter=eot_iter, loss=loss, seed=seed
    )


@register_attack(
    norm="L2",
    gradient_free=True,
    costly=True,
    loss="margin",
    description="Square attack in L2 (random search, margin loss): a masking detector",
)
def square_l2_strong(model, eps, *, n_queries=1000, p_init=0.8, loss="margin", seed=0):
    return torchattacks.Square(
        model, norm="L2", eps=eps, n_queries=n_queries, p_init=p_init, loss=loss, n_restarts=1, seed=seed
    )
