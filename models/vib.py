"""Deep Variational Information Bottleneck (Alemi et al., ICLR 2017).

Encoder p(z|x) = N(mu(x), diag(sigma(x)^2)) with sigma = softplus(rho - 5); decoder q(y|z) is one
linear layer. Training minimises CE(q(y|z)) + beta * KL(p(z|x) || N(0, I)) with one
reparameterised sample per example; prediction averages the softmax over ``n_samples`` draws.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from .base import Classifier, check_init, init_linear_layers, mlp_layers, scale_input, widths


def _log_softplus(t: torch.Tensor) -> torch.Tensor:
    # log(softplus(t)) without underflow: for t << 0, softplus(t) ~ exp(t), so log ~ t.
    return torch.where(t > -15.0, torch.log(F.softplus(t)), t)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) in nats, summed over the last dimension."""
    if log_sigma is None:
        log_sigma = torch.log(sigma)
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 2.0 * log_sigma - 1.0).sum(-1)


class VIBClassifier(Classifier):
    stochastic = True

    def __init__(self, in_shape=(1, 28, 28), num_classes=10, hidden=(1024, 1024), k=256, beta=1e-3,
                 n_samples=12, sigma_shift=5.0, activation="relu", init="glorot"):
        if beta < 0 or not math.isfinite(beta):
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        check_init(init)
        hidden = widths(hidden)
        super().__init__(in_shape, num_classes, hidden=hidden, k=int(k), beta=float(beta),
                         n_samples=int(n_samples), sigma_shift=float(sigma_shift), activation=activation, init=init)
        self.k, self.beta, self.n_samples = int(k), float(beta), int(n_samples)
        self.sigma_shift = float(sigma_shift)
        self.encoder = nn.Sequential(mlp_layers(self.in_features, hidden, activation),
                                     nn.Linear(hidden[-1], 2 * self.k))
        self.decoder = nn.Linear(self.k, self.num_classes)
        init_linear_layers(self, init)
        #: When True, forward uses z = mu (deterministic); otherwise it averages n_samples draws.
        self.mean_mode = False

    def encode(self, x):
        """Return (mu, sigma, log_sigma) of p(z|x)."""
        mu, rho = self.encoder(scale_input(x)).chunk(2, dim=-1)
        t = rho - self.sigma_shift
        return mu, F.softplus(t), _log_softplus(t)

    def representation(self, x):
        return self.encode(x)[0]

    def forward(self, x):
        mu, sigma, _ = self.encode(x)
        if self.mean_mode:
            return self.decoder(mu)
        s = self.n_samples
        z = mu.unsqueeze(0) + sigma.unsqueeze(0) * torch.randn((s, *mu.shape), dtype=mu.dtype, device=mu.device)
        logp = torch.log_softmax(self.decoder(z), dim=-1)          # (S, N, C)
        return torch.logsumexp(logp, dim=0) - math.log(s)           # log of the mean probability

    def loss(self, x, y):
        mu, sigma, log_sigma = self.encode(x)
        z = mu + sigma * torch.randn_like(mu)
        ce = F.cross_entropy(self.decoder(z), y)
        kl = gaussian_kl(mu, sigma, log_sigma).mean()
        loss = ce + self.beta * kl
        return loss, {"loss": loss.detach(), "ce": ce.detach(), "kl": kl.detach()}

    def extra_metrics(self, x):
        mu, sigma, log_sigma = self.encode(x)
        return {"rate": gaussian_kl(mu, sigma, log_sigma)}


def _vib(**kw):
    return VIBClassifier(**kw)


# The paper's adversarial sweep (Figure 4) adds beta in {0, 1e-10, 1e-8, 1e-6} to the betas below.
@register_model(name="vib_beta0")
def vib_beta0(**kw):
    """VIB, K=256, beta=0: the stochastic encoder without the KL term."""
    return _vib(**{"beta": 0.0, **kw})


@register_model(name="vib_beta1e-10")
def vib_beta1e_10(**kw):
    """VIB, K=256, beta=1e-10."""
    return _vib(**{"beta": 1e-10, **kw})


@register_model(name="vib_beta1e-8")
def vib_beta1e_8(**kw):
    """VIB, K=256, beta=1e-8."""
    return _vib(**{"beta": 1e-8, **kw})


@register_model(name="vib_beta1e-6")
def vib_beta1e_6(**kw):
    """VIB, K=256, beta=1e-6."""
    return _vib(**{"beta": 1e-6, **kw})


@register_model(name="vib_beta1e-4")
def vib_beta1e_4(**kw):
    """VIB, K=256, beta=0.0001."""
    return _vib(**{"beta": 1e-4, **kw})


@register_model(name="vib_beta1e-3")
def vib_beta1e_3(**kw):
    """VIB, K=256, beta=0.001."""
    return _vib(**{"beta": 1e-3, **kw})


@register_model(name="vib_beta1e-2")
def vib_beta1e_2(**kw):
    """VIB, K=256, beta=0.01."""
    return _vib(**{"beta": 1e-2, **kw})


@register_model(name="vib_beta1e-1")
def vib_beta1e_1(**kw):
    """VIB, K=256, beta=0.1."""
    return _vib(**{"beta": 1e-1, **kw})


@register_model(name="vib_k2_beta1e-3")
def vib_k2_beta1e_3(**kw):
    """VIB, K=2, beta=0.001."""
    return _vib(**{"beta": 1e-3, "k": 2, **kw})
