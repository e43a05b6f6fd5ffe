"""The model registry: name -> factory.

A model variant is one small decorated factory::

    @register_model
    def vib_beta1e_3(**kw):
        return _vib(beta=1e-3, **kw)

``create_model(name, **overrides)`` calls the factory; overrides whose value is ``None`` are
dropped, so CLI options that only some models understand can default to ``None``.
"""

from __future__ import annotations

import fnmatch
from typing import Callable

from bench.errors import BenchError

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable | None = None, *, name: str | None = None):
    """Register a model factory under ``name`` (default: the function's name).

    Usable as ``@register_model`` or ``@register_model(name="vib_beta1e-3")``. A duplicate name is an
    error: two plugins silently shadowing each other would make results unattributable.
    """

    def deco(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _MODELS and _MODELS[key] is not f:
            raise BenchError(f"model {key!r} is already registered")
        _MODELS[key] = f
        return f

    return deco(fn) if fn is not None else deco


def list_models(pattern: str | list[str] | None = None) -> list[str]:
    """Registered names matching one or more shell-style patterns (``'vib*'``), sorted."""
    names = sorted(_MODELS)
    if not pattern:
        return names
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    out: list[str] = []
    for pat in patterns:
        pat = pat.strip()
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise BenchError(f"no registered model matches {pat!r} (see `vib-bench list models`)")
        out.extend(h for h in hits if h not in out)
    return out


def is_model(name: str) -> bool:
    return name in _MODELS


def create_model(name: str, **overrides):
    """Build a registered model. ``None``-valued overrides are ignored."""
    if name not in _MODELS:
        raise BenchError(f"unknown model {name!r} (see `vib-bench list models`)")
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = _MODELS[name](**kwargs)
    except (TypeError, ValueError) as e:  # an override the factory rejects
        raise BenchError(f"model {name!r}: {e}") from None
    model.registry_name = name
    return model
