"""The results file: one JSON per run directory, the single source of truth. Only this module
reads or writes its raw structure; everyone else uses the typed accessors below.

Layout of ``RUN_DIR/results.json``::

    {"schema": "vib-bench/results/1",
     "run": {dataset, train config, models and their overrides, seeds, plugins, suite},
     "environment": {...the environment of the stage that last wrote...},
     "environments": {"train": {...}, "attack": {...}, ...},
     "models": {name: {"config": {...}, "stochastic": bool,
                       "seeds": {"0": {"train": {...}, "clean": {...}, "attacks": [...],
                                       "attack_checks": {...}, "attack_setup": {...},
                                       "throughput": {...}, "info": {...}, "infoplane": {...},
                                       "failures": [{"stage", "task", "error"}]}}}}}   (only when a task failed)

Numbers are floats in natural units (errors and accuracies in [0, 1]), never formatted strings.
Every write is atomic. Per-example correctness (for paired tests) lives beside it, bit-packed
(``bench.rundir``); :meth:`Results.per_example` reads it.

Attack records are identified by a :class:`CellKey` (attack, norm, eps, protocol). Eps values are
compared after one normalisation, :func:`norm_eps`, everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from .errors import BenchError
from .io import atomic_write_json
from .rundir import load_per_example, results_path

SCHEMA = "vib-bench/results/1"
EPS_DIGITS = 9


# ------------------------------------------------------------------------------------------ keys
def norm_eps(eps) -> float:
    """The one normalisation of an eps value: every comparison of eps goes through it."""
    return round(float(eps), EPS_DIGITS)


def eps_label(eps) -> str:
    """``0.3`` -> ``"0.3"``: how an eps is written in keys, tables and file names."""
    return f"{float(eps):g}"


class CellKey(NamedTuple):
    """What identifies an attack record: (attack, norm, normalised eps, protocol)."""

    attack: str
    norm: str
    eps: float
    protocol: str | None

    @classmethod
    def of(cls, attack: str, norm: str, eps, protocol: str | None) -> "CellKey":
        return cls(attack, norm, norm_eps(eps), protocol)


def per_example_key(attack: str, norm: str, eps: float, protocol: str | None = None) -> str:
    """``attack:pgd@0.3``; worst cases: ``attack:worst_case@0.3`` (L-inf leaderboard),
    ``attack:worst_case_l2@1``, and per protocol ``attack:worst_case[paper]@0.3``."""
    name = attack
    if attack == "worst_case":
        name += "_l2" if norm == "L2" else ""
        if protocol not in (None, "standard", "all"):
            name += f"[{protocol}]"
    return f"attack:{name}@{eps_label(eps)}"


CLEAN_KEY = "clean"


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _seed_sort(s: str):
    return (0, int(s)) if str(s).isdigit() else (1, str(s))


# ---------------------------------------------------------------------------------- attack records
class AttackRecord:
    """One attack cell of one (model, seed): robust accuracy with its checks and configuration."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict):
        self.raw = raw

    @classmethod
    def build(cls, attack: str, norm: str, eps: float, protocol: str, **fields) -> "AttackRecord":
        return cls({"attack": attack, "norm": norm, "eps": float(eps), "protocol": protocol, **fields})

    attack = property(lambda self: self.raw.get("attack"))
    norm = property(lambda self: self.raw.get("norm", "Linf"))
    protocol = property(lambda self: self.raw.get("protocol"))
    eps = property(lambda self: norm_eps(self.raw["eps"]))
    robust_acc = property(lambda self: _num(self.raw.get("robust_acc")))
    n = property(lambda self: self.raw.get("n"))
    n_robust = property(lambda self: self.raw.get("n_robust"))
    checks = property(lambda self: self.raw.setdefault("checks", {}))
    config = property(lambda self: self.raw.get("config") or {})
    budget = property(lambda self: (self.raw.get("config") or {}).get("budget"))
    leaderboard = property(lambda self: bool(self.raw.get("leaderboard")))
    is_worst_case = property(lambda self: self.raw.get("attack") == "worst_case")

    @property
    def key(self) -> CellKey:
        return CellKey.of(self.attack, self.norm, self.raw["eps"], self.protocol)

    def get(self, field: str, default=None):
        return self.raw.get(field, default)

    def __getitem__(self, field: str):
        return self.raw[field]

    def __setitem__(self, field: str, value) -> None:
        self.raw[field] = value

    def __contains__(self, field: str) -> bool:
        return field in self.raw

    def raised(self) -> list[str]:
        """Names of the raised checks (a True value, or a non-empty warning string)."""
        return [k for k, v in self.checks.items() if v is True or (isinstance(v, str) and v.strip())]

    def valid(self) -> bool:
        """Whether it carries a number (robust accuracy and eps); readers ignore the others."""
        return math.isfinite(self.robust_acc) and math.isfinite(_num(self.raw.get("eps")))


# ---------------------------------------------------------------------------------------- seeds
class SeedResult:
    """Everything measured for one (model, seed)."""

    def __init__(self, model: str, seed: str, raw: dict, results: "Results"):
        self.model, self.seed_id, self.raw, self._results = model, str(seed), raw, results

    @property
    def seed(self) -> int:
        return int(self.seed_id)

    # training and clean evaluation
    @property
    def train(self) -> dict:
        return self.raw.get("train") or {}

    @property
    def state(self) -> str:
        """``done``, ``running`` or ``failed`` (a seed with no training record counts as done)."""
        return self.train.get("state", "done")

    @property
    def clean(self) -> dict:
        return self.raw.get("clean") or {}

    @property
    def is_done(self) -> bool:
        """Trained and evaluated: the seeds every table is computed over."""
        return self.state == "done" and bool(self.raw.get("clean"))

    def clean_metric(self, key: str) -> float:
        """One clean metric (``error``, ``nll``, ``ece``, ``brier``, ``rate_nats``, ``n``); NaN when absent."""
        return _num(self.clean.get(key))

    def set_train(self, status: dict) -> None:
        self.raw["train"] = status

    def set_clean(self, metrics: dict) -> None:
        self.raw["clean"] = metrics

    # attacks
    def records(self) -> list[AttackRecord]:
        """The attack records that carry a number, in stored order."""
        out = []
        for r in self.raw.get("attacks") or []:
            if isinstance(r, dict):
                rec = AttackRecord(r)
                if rec.valid():
                    out.append(rec)
        return out

    def has_attacks(self) -> bool:
        return bool(self.raw.get("attacks"))

    @property
    def attack_checks(self) -> dict:
        return self.raw.get("attack_checks") or {}

    @property
    def attack_setup(self) -> dict:
        return self.raw.get("attack_setup") or {}

    def set_attacks(self, records: list[AttackRecord], checks: dict, setup: dict) -> None:
        self.raw["attacks"] = [r.raw for r in records]
        self.raw["attack_checks"] = checks
        self.raw["attack_setup"] = setup

    # timing and information
    @property
    def throughput(self) -> dict:
        return self.raw.get("throughput") or {}

    def throughput_median(self, part: str, batch: str | None = None) -> float:
        """Median examples/s of ``inference`` at a batch size (``"100"``) or of ``train``; NaN when absent."""
        st = (self.throughput.get(part) or {})
        if batch is not None:
            st = st.get(batch) or {}
        return _num(st.get("median"))

    @property
    def machine(self) -> dict:
        """The machine the throughput was measured on ({} when not timed)."""
        return self.throughput.get("machine") or {}

    def set_throughput(self, tp: dict) -> None:
        self.raw["throughput"] = tp

    @property
    def info(self) -> dict:
        return self.raw.get("info") or {}

    def info_estimates(self, quantity: str) -> dict[str, dict]:
        """``vib-bench info``'s estimates of ``I(X;Z)`` or ``I(Z;Y)``: estimator -> estimate record."""
        return (self.info.get("estimates") or {}).get(quantity) or {}

    def set_info(self, rec: dict) -> None:
        self.raw["info"] = rec

    @property
    def infoplane(self) -> dict:
        return self.raw.get("infoplane") or {}

    @property
    def infoplane_setup(self) -> dict:
        return self.raw.get("infoplane_setup") or {}

    def update_infoplane(self, plane: dict, setup: dict) -> None:
        self.raw.setdefault("infoplane", {}).update(plane)
        self.raw.setdefault("infoplane_setup", {}).update(setup)

    def per_example(self) -> dict[str, np.ndarray]:
        """This seed's stored per-example correctness vectors ({} when absent or unreadable)."""
        return self._results.per_example(self.model, self.seed_id)

    def failures(self, stage: str | None = None) -> list[dict]:
        """Tasks that failed for good, after retries (Ray executor): ``[{"stage", "task", "error"}]``."""
        return [f for f in self.raw.get("failures") or [] if stage in (None, f.get("stage"))]

    def set_failures(self, stage: str, failures: list[dict]) -> None:
        """Replace one stage's failures with ``[{"task", "error"}]``; the key goes when none are left."""
        kept = [f for f in self.failures() if f.get("stage") != stage] + [{"stage": stage, **f} for f in failures]
        if kept:
            self.raw["failures"] = kept
        else:
            self.raw.pop("failures", None)


# --------------------------------------------------------------------------------------- models
class ModelResult:
    """One model of a run: its configuration and its seeds."""

    def __init__(self, name: str, raw: dict, results: "Results"):
        self.name, self.raw, self._results = name, raw, results

    @property
    def config(self) -> dict:
        return self.raw.get("config") or {}

    @property
    def stochastic(self) -> bool:
        return bool(self.raw.get("stochastic"))

    @property
    def beta(self) -> float | None:
        """The VIB beta (> 0) of this model's configuration, or None."""
        b = self.config.get("beta")
        return float(b) if isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 else None

    def set_config(self, config: dict, stochastic: bool) -> None:
        self.raw["config"] = config
        self.raw["stochastic"] = bool(stochastic)

    def seed_ids(self) -> list[str]:
        return sorted(self.raw.get("seeds") or {}, key=_seed_sort)

    def seeds(self) -> list[SeedResult]:
        return [self.seed(s) for s in self.seed_ids()]

    def seed(self, seed) -> SeedResult | None:
        raw = (self.raw.get("seeds") or {}).get(str(int(seed)) if str(seed).isdigit() else str(seed))
        return None if raw is None else SeedResult(self.name, str(seed), raw, self._results)

    def done_seeds(self) -> list[SeedResult]:
        return [s for s in self.seeds() if s.is_done]


# ------------------------------------------------------------------------------------------ file
class Results:
    """A loaded (or new) results file with typed accessors."""

    def __init__(self, raw: dict, path: Path | None = None):
        self.raw, self.path = raw, path
        self._vectors: dict = {}

    # construction, loading, saving
    @classmethod
    def new(cls, run: dict, environment: dict, path: Path | None = None) -> "Results":
        from . import __version__

        return cls({"schema": SCHEMA, "vib_bench_version": __version__, "run": run, "environment": environment,
                    "environments": {}, "models": {}}, path)

    @property
    def version(self) -> str | None:
        """The vib-bench version that created the file (each stage's environment records its own)."""
        return self.raw.get("vib_bench_version") or self.environment("train").get("vib_bench")

    @classmethod
    def load(cls, run_dir_or_file: str | Path) -> "Results":
        """Read and validate a results file (a run directory or the JSON file itself)."""
        path = results_path(run_dir_or_file)
        if not path.exists():
            raise BenchError(f"{path}: no results file (is this a vib-bench run directory?)")
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BenchError(f"{path}: not a valid results file (truncated or malformed JSON: "
                             f"{e.msg if hasattr(e, 'msg') else e})") from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA or not isinstance(raw.get("models"), dict):
            raise BenchError(f"{path}: not a vib-bench results file (expected schema {SCHEMA!r})")
        return cls(raw, path)

    def save(self, run_dir_or_file: str | Path | None = None) -> None:
        path = results_path(run_dir_or_file) if run_dir_or_file is not None else self.path
        atomic_write_json(path, self.raw)
        self.path = path

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def label(self) -> str:
        """The run directory's name (or the file's stem when it is not ``results.json``)."""
        return self.run_dir.name if self.path.name == "results.json" else self.path.stem

    # the run section
    @property
    def run(self) -> dict:
        return self.raw.get("run") or {}

    @property
    def dataset(self) -> dict:
        return self.run.get("dataset") or {}

    @property
    def train_config(self) -> dict:
        return self.run.get("train") or {}

    @property
    def seeds(self) -> list[int]:
        return list(self.run.get("seeds") or [])

    @property
    def plugins(self) -> list[str]:
        return list(self.run.get("plugins") or [])

    @property
    def suite(self) -> dict:
        return self.run.get("suite") or {}

    @property
    def model_overrides(self) -> dict[str, dict]:
        return self.run.get("models") or {}

    def add_plugins(self, paths) -> None:
        self.raw["run"]["plugins"] = sorted(set(self.plugins) | {str(Path(p).resolve()) for p in paths})

    def merge_run(self, run: dict) -> None:
        """Record a resumed invocation: its recipe, the union of models, seeds and plugins."""
        old = self.raw["run"]
        old["train"] = run["train"]
        old["models"].update(run["models"])
        old["seeds"] = sorted(set(old["seeds"]) | set(run["seeds"]))
        old["plugins"] = sorted(set(old.get("plugins", [])) | set(run.get("plugins", [])))
        if run.get("suite"):
            old["suite"] = run["suite"]   # an edited suite (new attacks, eps, timing) is recorded

    # environments
    def environment(self, stage: str | None = None) -> dict:
        """The environment a stage ran in (falling back to that of the last stage that wrote)."""
        if stage is not None:
            env = (self.raw.get("environments") or {}).get(stage)
            if env:
                return env
        return self.raw.get("environment") or {}

    def environments(self) -> dict[str, dict]:
        return dict(self.raw.get("environments") or {})

    def set_environment(self, stage: str, env: dict) -> None:
        self.raw.setdefault("environments", {})[stage] = env
        self.raw["environment"] = env  # the environment of the stage that last wrote

    # models and seeds
    def model_names(self) -> list[str]:
        return list(self.raw["models"])

    def models(self) -> list[ModelResult]:
        return [ModelResult(n, m, self) for n, m in self.raw["models"].items()]

    def model(self, name: str) -> ModelResult | None:
        raw = self.raw["models"].get(name)
        return None if raw is None else ModelResult(name, raw, self)

    def seed(self, model: str, seed, create: bool = False) -> SeedResult | None:
        """One (model, seed) entry; ``create`` makes it (and the model) when missing."""
        if create:
            m = self.raw["models"].setdefault(model, {"config": {}, "seeds": {}})
            raw = m.setdefault("seeds", {}).setdefault(str(int(seed)), {})
            return SeedResult(model, str(int(seed)), raw, self)
        m = self.model(model)
        return None if m is None else m.seed(seed)

    def reorder(self, keys) -> None:
        """Put the (model, seed) pairs of ``keys`` first, in that order (records that arrived in completion
        order end in the in-process executor's order); everything else keeps its place after them."""
        models, order = self.raw["models"], {}
        for m, s in keys:
            if str(s) in (models.get(m) or {}).get("seeds", {}) and str(s) not in order.setdefault(m, []):
                order[m].append(str(s))
        for m, first in order.items():
            seeds = models[m]["seeds"]
            models[m]["seeds"] = {s: seeds[s] for s in first + [s for s in seeds if s not in first]}
        self.raw["models"] = {m: models[m] for m in list(order) + [m for m in models if m not in order]}

    def iter_seeds(self) -> Iterator[SeedResult]:
        for m in self.models():
            yield from m.seeds()

    def per_example(self, model: str, seed) -> dict[str, np.ndarray]:
        key = (model, str(seed))
        if key not in self._vectors:
            try:
                self._vectors[key] = load_per_example(self.run_dir, model, int(seed)) if self.path else {}
            except Exception:  # noqa: BLE001 - a damaged vector file only costs the paired tests
                self._vectors[key] = {}
        return self._vectors[key]


def load_results(run_dir_or_file: str | Path) -> Results:
    return Results.load(run_dir_or_file)


def update_results(run_dir: str | Path, fn) -> Results:
    """Read-modify-write the results file under the run's lock; ``fn(results)`` mutates it in place.

    Two commands working on one run (``attack`` and ``info`` side by side) each re-read the file under
    the lock, so neither loses the other's results.
    """
    from .locking import run_lock

    with run_lock(results_path(run_dir).parent):
        res = Results.load(run_dir)
        fn(res)
        res.save()
    return res
