"""Routing model arguments (``--set KEY=VALUE`` and a suite's ``[overrides]``) to the models that take them."""

from __future__ import annotations

import inspect

from .errors import BenchError
from .train.weights import build_model


def overrides_per_model(
    names: list[str], overrides: dict, in_shape, num_classes: int, where: str = "--set {key}"
) -> dict[str, dict]:
    """Give each model the ``--set`` overrides its constructor accepts.

    ``--set k=16`` is meant for the VIB models of a selection and must not break the MLPs; a key that
    no selected model accepts is an error. Building each model here also makes a bad value fail
    before any training starts.
    """
    per_model, used = {}, set()
    for name in names:
        model = build_model(name, {}, in_shape, num_classes)
        params = inspect.signature(type(model).__init__).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        mine = {k: v for k, v in overrides.items() if takes_all or k in params}
        used |= set(mine)
        build_model(name, mine, in_shape, num_classes)
        per_model[name] = mine
    unused = sorted(set(overrides) - used)
    if unused:
        raise BenchError(f"{where.format(key=unused[0])}: no selected model takes this argument")
    return per_model


def suite_overrides(table: dict, suite_name: str, names: list[str], in_shape, num_classes: int) -> dict[str, dict]:
    """``[overrides]`` keys go to every model that takes them; ``[overrides."NAME"]`` tables to one model."""
    shared = {k: v for k, v in table.items() if not isinstance(v, dict)}
    specific = {k: v for k, v in table.items() if isinstance(v, dict)}
    unknown = sorted(set(specific) - set(names))
    if unknown:
        raise BenchError(f"suite {suite_name}: [overrides.{unknown[0]!r}] names a model the suite does not run")
    per_model = overrides_per_model(names, shared, in_shape, num_classes, where=f"{suite_name}: [overrides] {{key}}")
    for name, ov in specific.items():
        per_model[name] = {**per_model[name], **ov}
        build_model(name, per_model[name], in_shape, num_classes)  # fail fast on bad values
    return per_model
