"""The model registry. Importing this package registers the built-in models."""

from ._registry import create_model, is_model, list_models, register_model
from .base import Classifier
from . import mlp as _mlp  # noqa: F401  (registers mlp, dropout, confidence_penalty, ...)
from . import vib as _vib  # noqa: F401  (registers the VIB variants)

__all__ = ["Classifier", "create_model", "is_model", "list_models", "register_model"]
