"""The built-in models, attacks and MI estimators, listed without importing them.

Importing ``models`` and ``attacks`` registers their factories, which imports torch and torchattacks
(seconds). ``vib-bench list models|attacks`` needs only names and one-line descriptions, so it reads
them from ``bench/catalog.json``, written from the registries by ``python -m bench.catalog`` (a test
fails when it is out of date). With plugins (``--plugin`` or installed entry points), or a pattern that
matches nothing (whose error message the registry words), the registries themselves answer.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import registry

PATH = Path(__file__).resolve().parent / "catalog.json"
MODEL_WIDTH = 24  # the name column of `vib-bench list models`


def build() -> dict:
    """The catalog, from the registries (imports torch)."""
    from attacks import describe_attacks, list_attacks
    from models import describe_model, list_models

    from .info import ESTIMATORS

    names = list_attacks()
    return {
        "models": {n: describe_model(n) for n in list_models()},
        "attacks": {n: _rest(n, line) for n, line in zip(names, describe_attacks(names))},
        "estimators": {n: est.description for n, est in ESTIMATORS.items()},
    }


def _rest(name: str, line: str) -> str:
    """A ``describe_attacks`` line without its (padded) name column."""
    assert line.startswith(name)
    return line[len(name) :].lstrip(" ")


def model_lines(patterns) -> list[str]:
    return [f"{n:{MODEL_WIDTH}s} {d}" for n, d in _select("models", patterns)]


def attack_lines(patterns) -> list[str]:
    chosen = _select("attacks", patterns)
    width = max((len(n) for n, _ in chosen), default=0)
    return [f"{n:{width}s} {d}" for n, d in chosen]


def estimator_lines() -> list[str]:
    return [f"{n:16s} {d}" for n, d in _read()["estimators"].items()]


def answers(plugins) -> bool:
    """Whether the catalog holds everything registered: no plugin files, no installed plugins."""
    return not plugins and not list(metadata.entry_points(group="vib_bench.models")) and PATH.exists()


def matches(kind: str, patterns) -> bool:
    """Whether every pattern matches a built-in name (otherwise the registry words the error)."""
    try:
        registry.select(list(_read()[kind]), patterns or None)
    except registry.NoMatch:
        return False
    return True


def _select(kind: str, patterns) -> list[tuple[str, str]]:
    entries = _read()[kind]
    names = registry.select(list(entries), patterns or None)  # models are stored sorted, as list_models gives them
    return [(n, entries[n]) for n in names]


def _read() -> dict:
    return json.loads(PATH.read_text())


def write() -> Path:
    PATH.write_text(json.dumps(build(), indent=1) + "\n")
    return PATH


if __name__ == "__main__":  # pragma: no cover
    print(f"wrote {write()}")
