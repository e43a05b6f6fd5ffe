"""Suites: a whole benchmark campaign as data (``bench.campaign`` runs one).

A suite is a TOML file (the shipped ones live in ``bench/suites/``): data set, models, seeds,
training recipe, model overrides, attacks and eps grids, number of attacked examples, timing
settings. This module finds, reads and checks suites: every key's type and range when the file is
read (:func:`load_suite`), and its names (models, attacks, budgets, overrides) before anything runs
(:func:`check_suite`). Every error is one line naming the file and the key:
``my.toml: [attack] eps: -0.1 is below 0``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .attack.options import AttackOptions
from .claims.options import ClaimsOptions
from .errors import BenchError
from .rundir import SEED_MAX
from .settings import Setting, suite_schema
from .timing_options import TimingOptions
from .train.options import TrainSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli dependency
    import tomli as tomllib

SUITE_DIR = Path(__file__).resolve().parent / "suites"


# ------------------------------------------------------------------------------------ value checks
# The stages' tables come from their options' declarations (bench.settings); the rest is declared here alike.
def _int(lo=None, hi=None):
    return Setting("int", lo=lo, hi=hi).check


def _number(lo=None, hi=None, open_lo=False):
    return Setting("float", lo=lo, hi=hi, open_lo=open_lo).check


def _str(choices=None):
    return Setting("str", choices=tuple(choices) if choices else None).check


_bool = Setting("bool").check
_table = Setting("table").check


def _list(item, nonempty=True):
    def check(v):
        if not isinstance(v, list):
            return f"{v!r} is not a list"
        if nonempty and not v:
            return "is empty"
        return next((msg for x in v if (msg := item(x))), None)

    return check


def _datasets():
    from .data import DATASETS

    return tuple(DATASETS)


SCHEMA = {
    "": {
        "name": _str(),
        "description": _str(),
        "dataset": lambda v: _str(_datasets())(v),
        "models": lambda v: _str()(v) if isinstance(v, str) else _list(_str())(v),
        "seeds": _list(_int(0, SEED_MAX)),
        "train": _table,
        "overrides": _table,
        "attack": _table,
        "timing": _table,
        "claims": _table,
    },
    "train": suite_schema(TrainSettings),
    "attack": suite_schema(AttackOptions),
    "timing": suite_schema(TimingOptions),
    "claims": suite_schema(ClaimsOptions),  # read by `vib-bench claims` (bench.claims)
}
REQUIRED = ("dataset", "models")


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.toml"))


def suite_path(name_or_path: str) -> Path:
    """A shipped suite's file, or the user's ``.toml`` file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    if name_or_path not in list_suites():
        raise BenchError(f"unknown suite {name_or_path!r} (shipped: {', '.join(list_suites())}; or a .toml file)")
    return SUITE_DIR / f"{name_or_path}.toml"


def load_suite(name_or_path: str) -> dict:
    """Read a suite and check every key's type and range; raises one-line errors naming file and key."""
    path = suite_path(name_or_path)
    label = path.name
    try:
        suite = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a valid suite file ({e})") from None
    for section, checks in SCHEMA.items():
        table = suite.get(section, {}) if section else suite
        where = f"[{section}] " if section else ""
        if not isinstance(table, dict):
            raise BenchError(f"{label}: [{section}] must be a table")
        unknown = sorted(set(table) - set(checks))
        if unknown:
            raise BenchError(f"{label}: unknown key {unknown[0]!r} in [{section or 'top level'}]")
        for key, value in table.items():
            msg = checks[key](value)
            if msg:
                raise BenchError(f"{label}: {where}{key}: {msg}")
    for key in REQUIRED:
        if key not in suite:
            raise BenchError(f"{label}: missing required key {key!r}")
    for attack, budget in (suite.get("attack", {}).get("set") or {}).items():
        if not isinstance(budget, dict):
            raise BenchError(f"{label}: [attack.set.{attack}] must be a table of budget settings")
    suite.setdefault("name", path.stem)
    suite["path"] = str(path)
    return suite


def suite_label(suite: dict) -> str:
    return Path(suite.get("path", suite.get("name", "suite"))).name


def check_suite(suite: dict) -> None:
    """Check a suite's names before anything runs: model patterns, attack names and budgets, model-specific
    override tables. (Override values are checked against each model when the data set is loaded.)"""
    from attacks import AttackError, get_spec, list_attacks
    from models import ModelError, list_models

    from .attack.options import check_budget_value

    label = suite_label(suite)
    try:
        names = list_models(suite["models"])
    except ModelError as e:
        raise BenchError(f"{label}: models: {e}") from None
    specific = [k for k, v in suite.get("overrides", {}).items() if isinstance(v, dict)]
    unknown = sorted(set(specific) - set(names))
    if unknown:
        raise BenchError(f"{label}: [overrides.{unknown[0]!r}] names a model the suite does not run")
    attack = suite.get("attack", {})
    try:
        list_attacks(attack.get("attacks")) if attack.get("attacks") else None
        for name, budget in (attack.get("set") or {}).items():
            spec = get_spec(name)
            for key, value in budget.items():
                if key not in spec.budget:
                    raise BenchError(
                        f"[attack.set.{name}] {key}: attack {name} has no such setting "
                        f"(settings: {', '.join(spec.budget) or 'none'})"
                    )
                check_budget_value(name, key, value, spec.budget[key], where=f"[attack.set.{name}] {key}")
    except (AttackError, BenchError) as e:
        raise BenchError(f"{label}: {e}") from None


def suite_overrides(suite: dict, names: list[str], dataset) -> dict[str, dict]:
    """The per-model overrides of a suite's ``[overrides]`` table for ``dataset``."""
    from .overrides import suite_overrides as route

    return route(suite.get("overrides", {}), suite_label(suite), names, dataset.in_shape, dataset.num_classes)


def suite_text(name_or_path: str) -> str:
    """A suite file's text, as shipped (``vib-bench show suite NAME``)."""
    return suite_path(name_or_path).read_text()
