"""The results file itself: loading, validating, saving (atomically, under the run's lock), the run section."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import BenchError
from ..io import atomic_write_json
from ..rundir import load_per_example, results_path
from .entries import ModelResult, SeedResult
from .upgrade import FORMAT, NAME, upgrade
from .validate import parse, validate

SCHEMA = NAME  # with the integer ``format`` beside it (bench.results.upgrade)


# ------------------------------------------------------------------------------------------ file
class Results:
    """A loaded (or new) results file with typed accessors."""

    def __init__(self, raw: dict, path: Path | None = None):
        self.raw, self.path = raw, path
        self._vectors: dict = {}

    # construction, loading, saving
    @classmethod
    def new(cls, run: dict, environment: dict, path: Path | None = None) -> Results:
        from .. import __version__

        return cls(
            {
                "schema": SCHEMA,
                "format": FORMAT,
                "vib_bench_version": __version__,
                "run": run,
                "environment": environment,
                "environments": {},
                "models": {},
            },
            path,
        )

    @property
    def version(self) -> str | None:
        """The vib-bench version that created the file (each stage's environment records its own)."""
        return self.raw.get("vib_bench_version") or self.environment("train").get("vib_bench")

    @classmethod
    def load(cls, run_dir_or_file: str | Path) -> Results:
        """Read, upgrade (an older format, in memory) and validate a results file (a run directory or the JSON
        file itself)."""
        path = results_path(run_dir_or_file)
        if not path.exists():
            raise BenchError(f"{path}: no results file (is this a vib-bench run directory?)")
        if not path.is_file():
            raise BenchError(f"{path}: not a file (a directory or device in place of the results file)")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise BenchError(f"{path}: not a valid results file (not UTF-8 text: byte {e.start})") from None
        except OSError as e:
            raise BenchError(f"{path}: cannot be read ({e.strerror or e})") from None
        # an older format is upgraded in memory; a non-results file, or one newer than the code, is refused
        label = str(path)
        return cls(upgrade(parse(text, label), path, check=lambda raw: validate(raw, label, SCHEMA)), path)

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

    def add_run_model(self, name: str, overrides: dict, seed: int) -> None:
        """Record one more (model, seed) in the run section (``vib-bench import`` adds outside weights)."""
        run = self.raw.setdefault("run", {})
        run.setdefault("models", {})[name] = dict(overrides)
        run["seeds"] = sorted(set(run.get("seeds") or []) | {int(seed)})

    def merge_run(self, run: dict) -> None:
        """Record a resumed invocation: its recipe, the union of models, seeds and plugins."""
        old = self.raw["run"]
        old["train"] = run["train"]
        old["models"].update(run["models"])
        old["seeds"] = sorted(set(old["seeds"]) | set(run["seeds"]))
        old["plugins"] = sorted(set(old.get("plugins", [])) | set(run.get("plugins", [])))
        if run.get("suite"):
            old["suite"] = run["suite"]  # an edited suite (new attacks, eps, timing) is recorded

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

    # the claims check (``vib-bench claims``)
    @property
    def claims(self) -> dict:
        """The claims table: ``{"setup": {...}, "rows": [{id, claim, paper_protocol, strongest, verdict, ...}]}``."""
        return self.raw.get("claims") or {}

    def set_claims(self, rec: dict) -> None:
        self.raw["claims"] = rec

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

    def remove_seed(self, model: str, seed) -> None:
        """Drop one (model, seed) entry (``vib-bench import --replace``); the model goes with its last seed."""
        m = self.raw["models"].get(model)
        if m is not None:
            m.get("seeds", {}).pop(str(int(seed)), None)
            if not m.get("seeds"):
                del self.raw["models"][model]

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
    from ..locking import run_lock

    with run_lock(results_path(run_dir).parent):
        res = Results.load(run_dir)
        fn(res)
        res.save()
    return res
