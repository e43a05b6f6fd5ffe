"""The results file: one JSON per run directory, the single source of truth. Only this module
reads or writes its raw structure; everyone else uses the typed accessors below.

Layout of ``RUN_DIR/results.json``::

    {"schema": "vib-bench/results", "format": 2,      (the format's steps: bench.results.upgrade)
     "run": {dataset, train config, models and their overrides, seeds, plugins, suite},
     "environment": {...the environment of the stage that last wrote...},
     "environments": {"train": {...}, "attack": {...}, ...},
     "models": {name: {"config": {...}, "stochastic": bool,
                       "seeds": {"0": {"train": {...}, "clean": {...}, "attacks": [...],
                                       "attack_checks": {...}, "attack_setup": {...},
                                       "throughput": {...}, "info": {...}, "infoplane": {...},
                                       "claims": {...},
                                       "failures": [{"stage", "task", "error"}]}}}},   (only when a task failed)
     "claims": {"setup": {...}, "rows": [...]}}

Numbers are floats in natural units (errors and accuracies in [0, 1]), never formatted strings.
Every write is atomic. Per-example correctness (for paired tests) lives beside it, bit-packed
(``bench.rundir``); :meth:`Results.per_example` reads it.

Attack records are identified by a :class:`CellKey` (attack, norm, eps, protocol). Eps values are
compared after one normalisation, :func:`norm_eps`, everywhere.
"""

from .entries import UNRECORDED_NOISE, ModelResult, SeedResult, recorded_noise
from .file import SCHEMA, Results, load_results, update_results
from .records import CLEAN_KEY, EPS_DIGITS, AttackRecord, CellKey, eps_label, norm_eps, per_example_key, put_record
from .upgrade import FORMAT

__all__ = [
    "CLEAN_KEY",
    "EPS_DIGITS",
    "FORMAT",
    "SCHEMA",
    "AttackRecord",
    "CellKey",
    "ModelResult",
    "Results",
    "SeedResult",
    "UNRECORDED_NOISE",
    "eps_label",
    "load_results",
    "norm_eps",
    "per_example_key",
    "put_record",
    "recorded_noise",
    "update_results",
]
