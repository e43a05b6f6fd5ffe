"""Trained weights: safetensors files that carry the model's name, overrides and full config.

A weights file rebuilds its model through the registry (no pickles are involved), so a run's models
can be attacked, timed and measured in any later process.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import rundir
from ..errors import BenchError
from ..io import atomic_write_bytes


def build_model(name: str, overrides: dict, in_shape, num_classes: int):
    """A registered model for data of ``in_shape`` with ``num_classes`` classes."""
    from models import create_model

    return create_model(name, in_shape=tuple(in_shape), num_classes=num_classes, **overrides)


def save_weights(path: Path, model, name: str, overrides: dict, extra: dict | None = None) -> None:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "model": name,
        "overrides": json.dumps(overrides),
        "config": json.dumps(model.config),
        **{k: json.dumps(v) for k, v in (extra or {}).items()},
    }
    atomic_write_bytes(path, save(state, metadata=meta))


def read_header(path: Path) -> dict:
    """The vib-bench metadata of a weights file (model, overrides, config), checked; reads only the header.

    A truncated, random or foreign file (a plain state dict without vib-bench metadata) is a one-line
    :class:`BenchError` naming the file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BenchError(f"{path}: not a readable weights file ({' '.join(str(e).split())[:120]})") from None
    if not {"model", "overrides", "config"} <= set(meta):
        raise BenchError(
            f"{path}: not a vib-bench weights file (no model metadata; a plain state dict joins a run "
            "through `vib-bench import MODEL FILE --into RUN_DIR`)"
        )
    try:
        config, overrides = json.loads(meta["config"]), json.loads(meta["overrides"])
    except json.JSONDecodeError:
        raise BenchError(f"{path}: damaged weights metadata (not JSON)") from None
    if (
        not isinstance(config, dict)
        or not isinstance(overrides, dict)
        or not isinstance(config.get("in_shape"), list)
        or not isinstance(config.get("num_classes"), int)
    ):
        raise BenchError(f"{path}: damaged weights metadata (config or overrides)")
    return {"model": meta["model"], "overrides": overrides, "config": config}


def load_weights(path: Path, device="cpu"):
    """Rebuild a trained model from its safetensors file (no pickles involved)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    head = read_header(path)
    model = build_model(head["model"], head["overrides"], head["config"]["in_shape"], head["config"]["num_classes"])
    try:
        model.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise BenchError(f"{path}: weights do not fit {head['model']} ({' '.join(str(e).split())[:120]})") from None
    return model.to(device).eval()


def load_trained(run_dir: Path, name: str, seed: int, device="cpu"):
    """The trained (EMA) model of one (model, seed) of a run."""
    path = rundir.weights_path(run_dir, name, seed)
    if not path.exists():
        raise BenchError(f"{run_dir}: no trained weights for {name} seed {seed}")
    return load_weights(path, device)
