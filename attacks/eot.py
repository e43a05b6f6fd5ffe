"""EOT over a model's noise with the deterministic part computed once per step.

A model may offer ``eot_logits(x, n) -> (n, N, C)``: the outputs of ``n`` successive forward passes on
the same ``x``, with the same draws, from one pass through the part that does not depend on the noise
(VIB: the encoder gives mu and sigma from x alone; only z = mu + sigma * eps is redrawn). Then the sum
of the ``n`` draws' input gradients, which is all EOT-PGD uses, is one backward of the summed loss:
E_eps[grad_x L(dec(mu(x) + sigma(x) eps))] with one encoder forward and backward instead of ``n``.
A model without ``eot_logits`` gets torchattacks' own loop.
"""

from __future__ import annotations

import torch
import torchattacks
from torch import nn


class FusedEOTPGD(torchattacks.EOTPGD):
    """torchattacks' EOT-PGD (same start, steps and update) with the draws of a step computed at once
    through ``model.eot_logits`` when the model has it."""

    def forward(self, images, labels):
        fused = getattr(self.model, "eot_logits", None)
        if fused is None or self.targeted or self.eot_iter < 2:
            return super().forward(images, labels)
        images = images.clone().detach().to(self.device)
        labels = labels.clone().detach().to(self.device)
        loss = nn.CrossEntropyLoss()
        adv = images.clone().detach()
        if self.random_start:
            adv = torch.clamp(adv + torch.empty_like(adv).uniform_(-self.eps, self.eps), min=0, max=1).detach()
        for _ in range(self.steps):
            adv.requires_grad = True
            outputs = fused(adv, self.eot_iter)  # (eot_iter, N, C)
            cost = sum(loss(out, labels) for out in outputs)  # the loop's per-draw costs, summed
            grad = torch.autograd.grad(cost, adv, retain_graph=False, create_graph=False)[0]
            adv = adv.detach() + self.alpha * grad.sign()
            delta = torch.clamp(adv - images, min=-self.eps, max=self.eps)
            adv = torch.clamp(images + delta, min=0, max=1).detach()
        return adv


# ------------------------------------------------------------------- EOT inside torchattacks' APGD
class _Group:
    """The ``n`` EOT draws on one input tensor: one encoder pass, gradients gathered at mu and sigma."""

    def __init__(self, x, n, mu, sigma):
        self.x, self.version, self.n = x, x._version, n
        self.mu, self.sigma = mu, sigma  # with their graph back to x
        self.mu_leaf = mu.detach().requires_grad_(True)
        self.sigma_leaf = sigma.detach().requires_grad_(True)
        self.g_mu, self.g_sigma = torch.zeros_like(mu), torch.zeros_like(sigma)
        self.served = self.backwards = 0

    def continues(self, x) -> bool:
        return self.x is x and self.version == x._version and self.served < self.n


class _Bridge(torch.autograd.Function):
    """Connects one draw's output to x. Backward: the draw's gradient at (mu, sigma) is added to the group's;
    the n-th backward of the group sends their sum through the encoder once, the earlier ones send zeros.
    So the *sum* of the n input gradients (all an EOT attack uses) is exact, with one encoder backward."""

    @staticmethod
    def forward(ctx, out, x, group):
        ctx.inner, ctx.group = out, group
        return out.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        g = ctx.group
        gm, gs = torch.autograd.grad(ctx.inner, (g.mu_leaf, g.sigma_leaf), grad, allow_unused=True)
        ctx.inner = None
        if gm is not None:
            g.g_mu += gm
        if gs is not None:
            g.g_sigma += gs
        g.backwards += 1
        if g.backwards < g.n:
            return None, torch.zeros_like(g.x), None
        (gx,) = torch.autograd.grad((g.mu, g.sigma), g.x, (g.g_mu, g.g_sigma))
        g.mu = g.sigma = None
        return None, gx, None


class SharedEncoderEOT(nn.Module):
    """``model`` as an EOT loop sees it (``for _ in range(n): grad += autograd.grad(loss(model(x)), x)``):
    the n calls on the same input tensor share one encoder forward and one encoder backward.

    Exact for an attack that, like torchattacks' APGD and APGD-T, calls the model ``n`` times with
    gradients on each ``x`` it differentiates, takes one input gradient per call and uses only their sum
    (each output is the plain call's, draw for draw). Any other call (no gradient needed, a new tensor,
    a model without ``encode``/``draw_logits`` or in ``mean_mode``) is the model's own forward.
    """

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.model, self.n = model, int(n)
        self.num_classes = getattr(model, "num_classes", None)
        self._group: _Group | None = None

    def forward(self, x):
        m = self.model
        fusable = (
            self.n > 1
            and torch.is_grad_enabled()
            and x.requires_grad
            and x.is_leaf
            and callable(getattr(m, "draw_logits", None))
            and callable(getattr(m, "encode", None))
            and not getattr(m, "mean_mode", False)
        )
        if not fusable:
            return m(x)
        if self._group is None or not self._group.continues(x):
            mu, sigma = m.encode(x)[:2]
            self._group = _Group(x, self.n, mu, sigma)
        g = self._group
        g.served += 1
        out = m.draw_logits(g.mu_leaf, g.sigma_leaf, x)
        return _Bridge.apply(out, x, g)


def eot_model(model: nn.Module, eot_iter: int) -> nn.Module:
    """What an APGD-style EOT loop should call: :class:`SharedEncoderEOT` for a model with ``draw_logits``
    and more than one draw, else ``model`` itself."""
    if int(eot_iter) > 1 and callable(getattr(model, "draw_logits", None)):
        return SharedEncoderEOT(model, eot_iter)
    return model
