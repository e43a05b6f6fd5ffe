"""Trained weights: safetensors files that carry the model's name, overrides and full config.

A weights file rebuilds its model through the registry (no pickles are involved), so a run's models
can be attacked, timed and measured in any later process.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import rundir
from .errors import BenchError
from .io import atomic_write_bytes


def build_model(name: str, overrides: dict, in_shape, num_classes: int):
    """A registered model for data of ``in_shape`` with ``num_classes`` classes."""
    from models import create_model

    return create_model(name, in_shape=tuple(in_shape), num_classes=num_classes, **overrides)


def save_weights(path: Path, model, name: str, overrides: dict, extra: dict | None = None) -> None:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"model": name, "overrides": json.dumps(overrides), "config": json.dumps(model.config),
            **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    atomic_write_bytes(path, save(state, metadata=meta))


def load_weights(path: Path, device="cpu"):
    """Rebuild a trained model from its safetensors file (no pickles involved)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    config = json.loads(meta["config"])
    overrides = json.loads(meta["overrides"])
    model = build_model(meta["model"], overrides, config["in_shape"], config["num_classes"])
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval()


def load_trained(run_dir: Path, name: str, seed: int, device="cpu"):
    """The trained (EMA) model of one (model, seed) of a run."""
    path = rundir.weights_path(run_dir, name, seed)
    if not path.exists():
        raise BenchError(f"{run_dir}: no trained weights for {name} seed {seed}")
    return load_weights(path, device)
