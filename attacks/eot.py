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
            outputs = fused(adv, self.eot_iter)                       # (eot_iter, N, C)
            cost = sum(loss(out, labels) for out in outputs)            # the loop's per-draw costs, summed
            grad = torch.autograd.grad(cost, adv, retain_graph=False, create_graph=False)[0]
            adv = adv.detach() + self.alpha * grad.sign()
            delta = torch.clamp(adv - images, min=-self.eps, max=self.eps)
            adv = torch.clamp(images + delta, min=0, max=1).detach()
        return adv
