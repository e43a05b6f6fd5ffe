"""The built-in attacks: one small factory each over a torchattacks class.

Budgets are for images in [0, 1]. The keyword defaults of each factory are its named budget.
"""

from __future__ import annotations

import torch
import torchattacks

from ._registry import register_attack
from .eot import FusedEOTPGD, eot_model


@register_attack(norm="Linf", iterative=False, description="FGSM, one signed-gradient step of size eps")
def fgsm(model, eps):
    return torchattacks.FGSM(model, eps=eps)


@register_attack(norm="Linf", description="PGD (Madry et al.), 40 steps of 0.01, uniform random start")
def pgd(model, eps, *, steps=40, alpha=0.01, random_start=True):
    return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)


@register_attack(norm="L2", description="L2 PGD, 40 normalised-gradient steps of 0.1, random start")
def pgd_l2(model, eps, *, steps=40, alpha=0.1, random_start=True):
    return torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)


@register_attack(
    norm="Linf",
    eot=True,
    randomised_only=True,
    description="PGD on the expectation over the model's randomness (gradients averaged over eot_iter draws)",
)
def eot_pgd(model, eps, *, steps=40, alpha=0.01, eot_iter=10, random_start=True):
    # torchattacks' EOT-PGD; on a model with eot_logits (VIB) the draws of a step share one encoder pass
    return FusedEOTPGD(model, eps=eps, alpha=alpha, steps=steps, eot_iter=eot_iter, random_start=random_start)


class _CW(torchattacks.CW):
    """torchattacks' CW with two fixes: a finite change of variables, and a margin valid for any logits.

    torchattacks starts from w = atanh(2x - 1), which is -inf/+inf there: the gradient through tanh
    vanishes and those pixels (most of an MNIST digit's background) can never move. Carlini and
    Wagner's own code scales by 1.999999 before atanh; clamping to the same range does that here.
    The second fix is in ``f``.
    """

    def inverse_tanh_space(self, x):
        return self.atanh(torch.clamp(x * 2 - 1, min=-1 + 1e-6, max=1 - 1e-6))

    def f(self, outputs, labels):
        # torchattacks takes the largest "other" logit as max((1 - onehot) * outputs), which is 0 when
        # every logit is negative: for a model returning log-probabilities (VIB's log-mean-softmax) the
        # margin, and so the gradient, is always 0. Mask with -inf instead.
        onehot = torch.nn.functional.one_hot(labels, outputs.shape[1]).bool()
        real = outputs.gather(1, labels[:, None]).squeeze(1)
        other = outputs.masked_fill(onehot, float("-inf")).amax(1)
        margin = other - real if self.targeted else real - other
        return torch.clamp(margin, min=-self.kappa)


@register_attack(
    norm="L2",
    minimum_norm=True,
    loss="margin",
    description="Carlini-Wagner L2 (the paper's attack family), no eps: success counted inside the eps ball",
)
def cw_l2(model, eps, *, c=1.0, kappa=0.0, steps=100, lr=0.05):
    return _CW(model, c=c, kappa=kappa, steps=steps, lr=lr)


def _autoattack(model, eps, norm, version, steps, square_queries, seed):
    if version in (None, "auto"):
        version = "rand" if getattr(model, "stochastic", False) else "standard"
    atk = torchattacks.AutoAttack(
        model, norm=norm, eps=eps, version=version, n_classes=int(getattr(model, "num_classes", 10)), seed=seed
    )
    # torchattacks builds the sub-attacks with 10 steps; Croce and Hein's AutoAttack uses 100.
    for sub in atk._autoattack.attacks:
        if isinstance(sub, (torchattacks.APGD, torchattacks.APGDT, torchattacks.FAB)):
            sub.steps = steps
        elif isinstance(sub, torchattacks.Square):
            sub.n_queries = square_queries
    return atk


@register_attack(
    norm="Linf",
    costly=True,
    loss="dlr",
    description="AutoAttack: 'standard' (APGD-CE, APGD-T, FAB-T, Square) for "
    "deterministic models, 'rand' (APGD-CE + APGD-DLR with 20-draw EOT) for randomised ones",
)
def autoattack(model, eps, *, version="auto", steps=100, square_queries=5000, seed=0):
    return _autoattack(model, eps, "Linf", version, steps, square_queries, seed)


@register_attack(
    norm="L2", costly=True, loss="dlr", description="AutoAttack with the L2 threat model (versions as for autoattack)"
)
def autoattack_l2(model, eps, *, version="auto", steps=100, square_queries=5000, seed=0):
    return _autoattack(model, eps, "L2", version, steps, square_queries, seed)


@register_attack(
    norm="Linf",
    gradient_free=True,
    costly=True,
    loss="margin",
    description="Square attack (random search, margin loss): beating the gradient attacks means masked gradients",
)
def square(model, eps, *, n_queries=5000, p_init=0.8, loss="margin", seed=0):
    return torchattacks.Square(
        model, norm="Linf", eps=eps, n_queries=n_queries, p_init=p_init, loss=loss, n_restarts=1, seed=seed
    )


@register_attack(
    norm="L2",
    gradient_free=True,
    costly=True,
    loss="margin",
    description="Square attack with the L2 threat model (random search, margin loss)",
)
def square_l2(model, eps, *, n_queries=5000, p_init=0.8, loss="margin", seed=0):
    return torchattacks.Square(
        model, norm="L2", eps=eps, n_queries=n_queries, p_init=p_init, loss=loss, n_restarts=1, seed=seed
    )


# APGD (Croce and Hein 2020), AutoAttack's gradient attacks, one registry entry each so that the harness
# can run them in its cascade. ``eot_iter`` > 1 averages gradients over a randomised model's draws (the
# harness sets it for randomised models, as AutoAttack's 'rand' version does).
@register_attack(norm="Linf", costly=True, description="APGD with cross-entropy, 100 steps, adaptive step size")
def apgd_ce(model, eps, *, steps=100, n_restarts=1, eot_iter=1, seed=0):
    return torchattacks.APGD(
        eot_model(model, eot_iter),
        norm="Linf",
        eps=eps,
        steps=steps,
        n_restarts=n_restarts,
        loss="ce",
        eot_iter=eot_iter,
        seed=seed,
    )


@register_attack(
    norm="Linf",
    costly=True,
    loss="dlr",
    description="APGD-T: targeted DLR (margin) loss against the n_target_classes most likely classes",
)
def apgd_t(model, eps, *, steps=100, n_target_classes=9, n_restarts=1, eot_iter=1, seed=0):
    return torchattacks.APGDT(
        eot_model(model, eot_iter),
        norm="Linf",
        eps=eps,
        steps=steps,
        n_restarts=n_restarts,
        eot_iter=eot_iter,
        seed=seed,
        n_classes=n_target_classes + 1,
    )


@register_attack(norm="L2", costly=True, description="APGD with cross-entropy, L2 threat model, 100 steps")
def apgd_l2(model, eps, *, steps=100, n_restarts=1, eot_iter=1, seed=0):
    return torchattacks.APGD(
        eot_model(model, eot_iter),
        norm="L2",
        eps=eps,
        steps=steps,
        n_restarts=n_restarts,
        loss="ce",
        eot_iter=eot_iter,
        seed=seed,
    )


@register_attack(
    norm="L2",
    costly=True,
    loss="dlr",
    description="APGD-T, L2 threat model: targeted DLR loss (does not stall where cross-entropy is 0)",
)
def apgd_t_l2(model, eps, *, steps=100, n_target_classes=9, n_restarts=1, eot_iter=1, seed=0):
    return torchattacks.APGDT(
        eot_model(model, eot_iter),
        norm="L2",
        eps=eps,
        steps=steps,
        n_restarts=n_restarts,
        eot_iter=eot_iter,
        seed=seed,
        n_classes=n_target_classes + 1,
    )
