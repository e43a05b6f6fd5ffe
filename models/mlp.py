"""Deterministic MLP classifiers: the paper's baseline and the classic regularizers.

All share one class; the regularizers differ only in the training objective (or dropout), so a
comparison between them is a comparison of the regularizer alone.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from .base import Classifier, check_init, entropy_from_logits, init_linear_layers, mlp_layers, scale_input, widths

# Strengths chosen on the validation split (the last 10,000 MNIST training images); see README,
# "How the regularization strengths were chosen".
DROPOUT_P = 0.1
CONFIDENCE_PENALTY_BETA = 1.0
LABEL_SMOOTHING = 0.1


class MLPClassifier(Classifier):
    """784-1024-1024-10 ReLU MLP (the paper's deterministic baseline), optionally regularised."""

    def __init__(
        self,
        in_shape=(1, 28, 28),
        num_classes=10,
        hidden=(1024, 1024),
        activation="relu",
        dropout=0.0,
        label_smoothing=0.0,
        confidence_penalty=0.0,
        init="glorot",
    ):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if confidence_penalty < 0:
            raise ValueError(f"confidence_penalty must be >= 0, got {confidence_penalty}")
        check_init(init)
        hidden = widths(hidden)
        super().__init__(
            in_shape,
            num_classes,
            hidden=hidden,
            activation=activation,
            dropout=dropout,
            label_smoothing=label_smoothing,
            confidence_penalty=confidence_penalty,
            init=init,
        )
        self.body = mlp_layers(self.in_features, hidden, activation, dropout)
        self.head = nn.Linear(hidden[-1], self.num_classes)
        self.label_smoothing = float(label_smoothing)
        self.confidence_penalty = float(confidence_penalty)
        init_linear_layers(self, init)

    def representation(self, x):
        return self.body(scale_input(x))

    def forward(self, x):
        return self.head(self.representation(x))

    def loss(self, x, y):
        logits = self(x)
        ce = F.cross_entropy(logits, y)
        stats = {"ce": ce.detach()}
        loss = ce
        if self.label_smoothing > 0:
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.confidence_penalty > 0:
            # Pereyra et al. 2017: minimise CE - beta * H(p(y|x)).
            ent = entropy_from_logits(logits).mean()
            loss = loss - self.confidence_penalty * ent
            stats["entropy"] = ent.detach()
        stats["loss"] = loss.detach()
        return loss, stats


def _mlp(**kw):
    return MLPClassifier(**kw)


@register_model
def mlp(**kw):
    """The paper's baseline: no regularizer."""
    return _mlp(**kw)


@register_model
def mlp_tanh(**kw):
    """The baseline with tanh units (for information-plane studies, Saxe et al. 2018)."""
    return _mlp(**{"activation": "tanh", **kw})


@register_model
def dropout(**kw):
    """Dropout after every hidden layer; rate chosen on the validation split."""
    return _mlp(**{"dropout": DROPOUT_P, **kw})


@register_model
def confidence_penalty(**kw):
    """CE - beta * entropy (Pereyra et al. 2017); beta chosen on the validation split."""
    return _mlp(**{"confidence_penalty": CONFIDENCE_PENALTY_BETA, **kw})


@register_model
def label_smoothing(**kw):
    """Cross-entropy against labels smoothed with 0.1 (Szegedy et al. 2016)."""
    return _mlp(**{"label_smoothing": LABEL_SMOOTHING, **kw})


IB12_HIDDEN = (10, 7, 5, 4, 3)  # 12-10-7-5-4-3-2 (Shwartz-Ziv & Tishby 2017)


def _ib12(activation: str, **kw):
    return _mlp(**{"in_shape": (1, 1, 12), "num_classes": 2, "hidden": IB12_HIDDEN, "activation": activation, **kw})


@register_model
def ib12_tanh(**kw):
    """The 12-10-7-5-4-3-2 tanh network of the 12-bit information-plane task (Shwartz-Ziv & Tishby 2017)."""
    return _ib12("tanh", **kw)


@register_model
def ib12_relu(**kw):
    """The same 12-10-7-5-4-3-2 network with ReLU units (Saxe et al. 2018)."""
    return _ib12("relu", **kw)
