"""The contract every vib-bench model follows.

* ``forward(x)`` takes images ``(N, C, H, W)`` with pixels in [0, 1] and returns **logits only**,
  so attack libraries can use the model as is. Flattening and input scaling happen inside.
* ``loss(x, y) -> (loss, stats)`` is the training objective; ``stats`` maps the names of the terms
  that make it up (``ce``, ``kl``, ``entropy``...) to detached scalar tensors.
* ``stochastic`` says whether ``forward`` is randomised (in eval mode). A stochastic model averages
  the softmax over ``n_samples`` draws and returns log-mean-probabilities; ``mean_mode = True``
  makes it deterministic.
* ``representation(x)`` is the layer whose information content the diagnostics measure.
* ``config`` holds every constructor argument, so a checkpoint can rebuild the model.

Initialisation (``init``): ``"glorot"`` (the default) gives every ``nn.Linear`` Glorot-uniform weights
and zero biases, as the authors' TensorFlow (``tf.contrib.layers``) and JAX code do; ``"torch"`` keeps
PyTorch's ``nn.Linear`` default (Kaiming-uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in)) for
weights *and* biases), whose weights are 0.4-0.6x smaller on the paper's layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Classifier(nn.Module):
    stochastic: bool = False

    def __init__(self, in_shape, num_classes: int, **config):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.num_classes = int(num_classes)
        self.in_features = math.prod(self.in_shape)
        self.config = {"in_shape": list(self.in_shape), "num_classes": self.num_classes, **config}

    def loss(self, x: torch.Tensor, y: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def representation(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_metrics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example quantities worth reporting at evaluation time (e.g. VIB's rate)."""
        return {}


INITS = ("glorot", "torch")


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"unknown init {init!r} (choose {' or '.join(INITS)})")
    return init


def init_linear_layers(module: nn.Module, init: str) -> None:
    """Re-initialise every ``nn.Linear`` of ``module``: ``glorot`` (uniform weights, zero biases) or ``torch``
    (as built)."""
    if check_init(init) == "torch":
        return
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def scale_input(x: torch.Tensor) -> torch.Tensor:
    """Flatten images and map [0, 1] pixels to [-1, 1], as the authors' code feeds them."""
    return x.flatten(1) * 2.0 - 1.0


def widths(hidden) -> list[int]:
    """Hidden-layer widths from a list, a tuple or a single int (``--set hidden=64``): at least one, each a
    positive integer (a ValueError otherwise, which the registry reports as one line)."""
    items = list(hidden) if isinstance(hidden, (list, tuple)) else [hidden]
    if not items:
        raise ValueError("hidden needs at least one layer width")
    out = []
    for h in items:
        if isinstance(h, bool) or not isinstance(h, (int, float, str)):
            raise ValueError(f"hidden widths must be positive integers, got {h!r}")
        try:
            v = float(h)
        except ValueError:
            raise ValueError(f"hidden widths must be positive integers, got {h!r}") from None
        if not (v == v and abs(v) != float("inf")) or v != int(v) or v < 1 or v > 2**31:
            raise ValueError(f"hidden widths must be positive integers, got {h!r}")
        out.append(int(v))
    return out


def mlp_layers(in_features: int, hidden, activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
    if activation not in acts:
        raise ValueError(f"unknown activation {activation!r} (choose relu or tanh)")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), acts[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return nn.Sequential(*layers)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits), per row."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)
