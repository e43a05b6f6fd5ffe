"""The results file: one JSON per run directory, the single source of truth.

Layout of ``RUN_DIR/results.json``::

    {"schema": "vib-bench/results/1",
     "run": {dataset, train config, models and their overrides, seeds, plugins, suite},
     "environment": {...the environment of the stage that last wrote...},
     "environments": {"train": {...}, "attack": {...}, ...},
     "models": {name: {"config": {...}, "seeds": {"0": {"train": {...}, "clean": {...},
                                                      "attacks": [...], "throughput": {...}}}}}}

Numbers are floats in natural units (errors and accuracies in [0, 1]), never formatted strings.
Every write is atomic. Per-example correctness (for paired tests) lives beside it, bit-packed, in
``RUN_DIR/models/<model>/seed<k>/per_example.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import BenchError
from .io import atomic_write_json

SCHEMA = "vib-bench/results/1"
RESULTS_NAME = "results.json"


def results_path(run_dir_or_file: str | Path) -> Path:
    p = Path(run_dir_or_file)
    return p / RESULTS_NAME if p.is_dir() or p.suffix != ".json" else p


def load_results(run_dir_or_file: str | Path) -> dict:
    """Read and validate a results file (a run directory or the JSON file itself)."""
    path = results_path(run_dir_or_file)
    if not path.exists():
        raise BenchError(f"{path}: no results file (is this a vib-bench run directory?)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a valid results file (truncated or malformed JSON: {e.msg if hasattr(e, 'msg') else e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("models"), dict):
        raise BenchError(f"{path}: not a vib-bench results file (expected schema {SCHEMA!r})")
    return data


def new_results(run: dict, environment: dict) -> dict:
    return {"schema": SCHEMA, "run": run, "environment": environment, "environments": {}, "models": {}}


def write_results(run_dir: str | Path, data: dict) -> None:
    atomic_write_json(results_path(run_dir), data)


def seed_entry(data: dict, model: str, seed: int) -> dict:
    """The (created on demand) dict holding one model-seed's measurements."""
    m = data["models"].setdefault(model, {"config": {}, "seeds": {}})
    return m["seeds"].setdefault(str(int(seed)), {})


def update_results(run_dir: str | Path, fn) -> dict:
    """Read-modify-write the results file atomically; ``fn(data)`` mutates ``data`` in place."""
    data = load_results(run_dir)
    fn(data)
    write_results(run_dir, data)
    return data


# ----------------------------------------------------------------------------- per-example storage
def model_dir(run_dir: str | Path, model: str, seed: int) -> Path:
    return Path(run_dir) / "models" / model / f"seed{int(seed)}"


def _per_example_path(run_dir, model, seed) -> Path:
    return model_dir(run_dir, model, seed) / "per_example.safetensors"


def save_per_example(run_dir, model: str, seed: int, key: str, correct: torch.Tensor) -> None:
    """Store a boolean per-example vector (bit-packed) under ``key`` (e.g. ``clean``, ``pgd@0.3``)."""
    from safetensors.torch import load_file, save_file

    path = _per_example_path(run_dir, model, seed)
    tensors = load_file(str(path)) if path.exists() else {}
    bits = correct.detach().to("cpu", torch.bool).numpy()
    tensors[key] = torch.from_numpy(np.packbits(bits))
    tensors[f"{key}::n"] = torch.tensor([bits.size], dtype=torch.int64)
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp))
    tmp.replace(path)


def load_per_example(run_dir, model: str, seed: int) -> dict[str, np.ndarray]:
    """All stored per-example vectors of one model-seed, as numpy bool arrays."""
    from safetensors.torch import load_file

    path = _per_example_path(run_dir, model, seed)
    if not path.exists():
        return {}
    raw = load_file(str(path))
    out = {}
    for key, packed in raw.items():
        if key.endswith("::n"):
            continue
        n = int(raw[f"{key}::n"][0])
        out[key] = np.unpackbits(packed.numpy())[:n].astype(bool)
    return out
