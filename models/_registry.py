"""The model registry: name -> factory.

A model variant is one small decorated factory::

    @register_model(name="vib_beta1e-3")
    def vib_beta1e_3(**kw):
        return _vib(beta=1e-3, **kw)

``create_model(name, **overrides)`` calls the factory; overrides whose value is ``None`` are
dropped, so CLI options that only some models understand can default to ``None``.
"""

from __future__ import annotations

from collections.abc import Callable

import registry

_MODELS: dict[str, Callable] = {}


class ModelError(ValueError):
    """A mistake in naming, registering or configuring a model; its message is one line."""


def register_model(fn: Callable | None = None, *, name: str | None = None):
    """Register a model factory under ``name`` (default: the function's name).

    Usable as ``@register_model`` or ``@register_model(name="vib_beta1e-3")``. A duplicate name is an
    error: two plugins silently shadowing each other would make results unattributable.
    """

    def deco(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _MODELS and _MODELS[key] is not f:
            raise ModelError(f"model {key!r} is already registered")
        _MODELS[key] = f
        return f

    return deco(fn) if fn is not None else deco


def unregister_model(name: str) -> None:
    """Remove a registered model (for tests and plugins that register temporary models)."""
    _MODELS.pop(name, None)


def list_models(pattern: str | list[str] | None = None) -> list[str]:
    """Registered names matching one or more shell-style patterns (``'vib*'``), sorted."""
    try:
        return registry.select(sorted(_MODELS), pattern)
    except registry.NoMatch as e:
        raise ModelError(f"no registered model matches {e.pattern!r}{e.hint()} (see `vib-bench list models`)") from None


def describe_model(name: str) -> str:
    """The first line of a registered model's docstring."""
    doc = (get_factory(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def is_model(name: str) -> bool:
    return name in _MODELS


def get_factory(name: str) -> Callable:
    if name not in _MODELS:
        raise ModelError(
            f"unknown model {name!r}{registry.NoMatch(name, registry.suggest(name, _MODELS)).hint()} "
            "(see `vib-bench list models`)"
        )
    return _MODELS[name]


def create_model(name: str, **overrides):
    """Build a registered model. ``None``-valued overrides are ignored."""
    factory = get_factory(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = factory(**kwargs)
    except (TypeError, ValueError) as e:  # an override the factory rejects
        raise ModelError(f"model {name!r}: {e}") from None
    model.registry_name = name
    return model
