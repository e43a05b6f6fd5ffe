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
from .noise import active_key, content_keys, normal_from_keys


def keyed_draws(keys: torch.Tensor, n_samples: int, k: int, dtype=torch.float32) -> torch.Tensor:
    """(S, N, K) standard normals for rows keyed by ``keys`` (``models.noise``): the draws a VIB forward call
    makes in a keyed block, for any VIB of bottleneck ``k`` with ``n_samples`` samples (what a stacked
    evaluation of several members shares)."""
    return normal_from_keys(keys, n_samples * k, dtype).view(len(keys), n_samples, k).transpose(0, 1)


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

    def __init__(
        self,
        in_shape=(1, 28, 28),
        num_classes=10,
        hidden=(1024, 1024),
        k=256,
        beta=1e-3,
        n_samples=12,
        sigma_shift=5.0,
        activation="relu",
        init="glorot",
    ):
        if beta < 0 or not math.isfinite(beta):
            raise ValueError(f"beta must be a finite number >= 0, got {beta}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        check_init(init)
        hidden = widths(hidden)
        super().__init__(
            in_shape,
            num_classes,
            hidden=hidden,
            k=int(k),
            beta=float(beta),
            n_samples=int(n_samples),
            sigma_shift=float(sigma_shift),
            activation=activation,
            init=init,
        )
        self.k, self.beta, self.n_samples = int(k), float(beta), int(n_samples)
        self.sigma_shift = float(sigma_shift)
        self.encoder = nn.Sequential(
            mlp_layers(self.in_features, hidden, activation), nn.Linear(hidden[-1], 2 * self.k)
        )
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

    def _eval_noise(self, mu, keys) -> torch.Tensor:
        """(S, N, K) standard normals: keyed per row (``models.noise``) or, with ``keys`` None, the global RNG."""
        s = self.n_samples
        if keys is None:
            return torch.randn((s, *mu.shape), dtype=mu.dtype, device=mu.device)
        return keyed_draws(keys, s, self.k, mu.dtype)

    def _mean_log_probs(self, mu, sigma, eps) -> torch.Tensor:
        """log of the mean over the leading sample axis of softmax(decoder(mu + sigma * eps)), per draw group.

        ``eps`` is (G * S, N, K): G groups of S samples; returns (G, N, C).
        """
        s = self.n_samples
        z = mu.unsqueeze(0) + sigma.unsqueeze(0) * eps
        logp = torch.log_softmax(self.decoder(z), dim=-1)  # (G * S, N, C)
        logp = logp.view(-1, s, *logp.shape[1:])
        return torch.logsumexp(logp, dim=1) - math.log(s)  # log of the mean probability

    def _draw(self, mu, sigma, x):
        key = active_key(self)
        eps = self._eval_noise(mu, None if key is None else key.row_keys(x))
        return self._mean_log_probs(mu, sigma, eps)[0]

    def forward(self, x):
        mu, sigma, _ = self.encode(x)
        if self.mean_mode:
            return self.decoder(mu)
        return self._draw(mu, sigma, x)

    def draw_logits(self, mu, sigma, x):
        """One forward pass's output from given encoder outputs (``mu``, ``sigma`` of ``x``), drawing the noise
        as ``forward(x)`` would at this point: ``forward(x) == draw_logits(*encode(x)[:2], x)``. Lets an EOT
        attack reuse one encoder pass for its draws (``attacks.eot``)."""
        return self._draw(mu, sigma, x)

    def eot_logits(self, x, n: int) -> torch.Tensor:
        """``n`` forward passes on the same ``x`` as one (n, N, C) tensor, computing the encoder once.

        Exact: mu and sigma depend on x only, so draw j equals the j-th of ``n`` successive ``forward(x)``
        calls with the same noise (the same keys in a ``keyed_noise`` block, the same global-RNG draws
        outside one). One backward of a sum over the draws then gives the sum of their input gradients
        for one encoder backward instead of ``n``.
        """
        mu, sigma, _ = self.encode(x)
        if self.mean_mode:
            return self.decoder(mu).unsqueeze(0).expand(int(n), *mu.shape[:1], self.num_classes)
        key = active_key(self)
        if key is None:
            eps = [self._eval_noise(mu, None) for _ in range(int(n))]
        else:
            content, first = content_keys(x), key.take(n)
            eps = [self._eval_noise(mu, key.keys_for(content, first + j)) for j in range(int(n))]
        return self._mean_log_probs(mu, sigma, torch.cat(eps, 0))

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
