"""The model registry. Importing this package registers the built-in models.

``models/`` stands alone: it imports neither the harness (``bench/``) nor the attacks.
"""

from . import mlp as _mlp  # noqa: F401  (registers mlp, dropout, confidence_penalty, ...)
from . import vib as _vib  # noqa: F401  (registers the VIB variants)
from ._registry import ModelError, create_model, describe_model, is_model, list_models, register_model, unregister_model
from .base import Classifier

__all__ = [
    "Classifier",
    "ModelError",
    "create_model",
    "describe_model",
    "is_model",
    "list_models",
    "register_model",
    "unregister_model",
]
