"""Suites: a whole benchmark campaign as data (``bench.campaign`` runs one).

A suite is a TOML file (the shipped ones live in ``bench/suites/``): data set, models, seeds,
training recipe, model overrides, attacks and eps grids, number of attacked examples, timing
settings. This module finds, reads and checks suites.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import BenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli dependency
    import tomli as tomllib

SUITE_DIR = Path(__file__).resolve().parent / "suites"
SECTIONS = {
    "": {"name", "description", "dataset", "models", "seeds", "train", "overrides", "attack", "timing", "info", "claims"},
    "train": {"epochs", "lr", "batch_size", "train_split"},
    "attack": {"attacks", "eps", "eps_l2", "n_examples", "batch_size", "eot_iter", "set"},
    "timing": {"batch_sizes", "min_run_time", "train_batch"},
    "claims": {"n_examples", "eps_l2", "eps_linf", "baseline", "models", "strong_l2", "strong_linf", "set", "eot_iter",
               "zeros_n", "broad_min", "alpha", "batch_size"},   # read by `vib-bench claims` (bench.claims)
}


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> dict:
    """A shipped suite by name, or a user's TOML file by path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        if name_or_path not in list_suites():
            raise BenchError(f"unknown suite {name_or_path!r} (shipped: {', '.join(list_suites())}; or a .toml file)")
        path = SUITE_DIR / f"{name_or_path}.toml"
    try:
        suite = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a valid suite file ({e})") from None
    for section, allowed in SECTIONS.items():
        table = suite.get(section, {}) if section else suite
        if not isinstance(table, dict):
            raise BenchError(f"{path}: [{section}] must be a table")
        unknown = set(table) - allowed
        if unknown:
            raise BenchError(f"{path}: unknown key {sorted(unknown)[0]!r} in [{section or 'top level'}]")
    for key in ("dataset", "models"):
        if key not in suite:
            raise BenchError(f"{path}: missing required key {key!r}")
    suite.setdefault("name", path.stem)
    suite["path"] = str(path)
    return suite


def suite_overrides(suite: dict, names: list[str], dataset) -> dict[str, dict]:
    """The per-model overrides of a suite's ``[overrides]`` table for ``dataset``."""
    from .overrides import suite_overrides as route

    return route(suite.get("overrides", {}), suite["name"], names, dataset.in_shape, dataset.num_classes)
