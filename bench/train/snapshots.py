"""Activation snapshots for the information plane: written during training, read by ``infoplane``.

``train --snapshot-every E`` stores, every E epochs (and after the first), the activations of every
hidden layer, the representation and the logits on a fixed sample (the first ``--snapshot-n``
training examples) with its labels, one safetensors file per epoch:
``RUN_DIR/models/<model>/seed<k>/snapshots/epochNNNN.safetensors``. For a Gaussian encoder (VIB) it
also stores what the known-encoder bounds on z need at that epoch (``ENCODER_KEYS``): mu and
log sigma of p(z|x), and per example the KL to the prior and the decoder's cross-entropy on the
seeded z sample of ``bench.info.bounds.info_representation``. Snapshots hold the live model (the
weights being trained), not the EMA.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import torch

from .. import rundir
from ..errors import BenchError
from ..io import atomic_write_bytes
from ..protocol import EVAL_SEED, eval_mode, keyed_noise

SNAPSHOT_RE = re.compile(r"epoch(\d+)\.safetensors$")
ENCODER_KEYS = ("z_mu", "z_log_sigma", "z_rate", "z_ce")  # not layers: the encoder's p(z|x) and its terms


def _keep(acts: dict, name: str, module, inputs, output) -> None:
    """A forward hook that copies a layer's output and returns None: a hook that returned the copy would
    replace the layer's output with it (a CPU float32 tensor on a CUDA or float64 model)."""
    acts.setdefault(name, output.detach().float().cpu())


@torch.no_grad()
def layer_activations(model, x) -> dict[str, torch.Tensor]:
    """Every hidden layer's activations (outputs of the ReLU/Tanh modules, in order), the
    representation (z = mu for VIB) and the logits, for the information plane."""
    acts: dict[str, torch.Tensor] = {}
    hooks = []
    idx = 0
    for mod in model.modules():
        if isinstance(mod, (torch.nn.ReLU, torch.nn.Tanh)):
            idx += 1
            name = f"hidden{idx}"
            hooks.append(mod.register_forward_hook(functools.partial(_keep, acts, name)))
    try:
        with eval_mode(model), keyed_noise(model, EVAL_SEED):
            rep = model.representation(x).detach().float().cpu()
            for h in hooks:
                h.remove()
            hooks = []
            logits = model(x).detach().float().cpu()
    finally:
        for h in hooks:
            h.remove()
    acts["representation"] = rep
    acts["logits"] = logits
    return acts


def encoder_terms(model, x, y) -> dict[str, torch.Tensor]:
    """``ENCODER_KEYS`` for a Gaussian encoder (CPU; mu and log sigma in the encoder's dtype, the rest
    float32), {} for any other model."""
    from ..info.bounds import info_representation

    if not callable(getattr(model, "encode", None)):
        return {}
    rep = info_representation(model, x, y, x.device)
    if rep["mu"] is None:
        return {}
    out = {"z_mu": rep["mu"], "z_log_sigma": rep["log_sigma"], "z_rate": rep["rate"]}
    if rep["ce"] is not None:
        out["z_ce"] = rep["ce"]
    # mu and log sigma in the encoder's own dtype (exact: they come from it), so the z sample rebuilt from
    # them is drawn as info_representation drew it, and the terms belong to it
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return {k: v.detach().cpu().to(dtype if k in ("z_mu", "z_log_sigma") else torch.float32) for k, v in out.items()}


def layers_of(snap: dict[str, torch.Tensor]) -> list[str]:
    """Every layer a snapshot holds (not its labels or encoder terms)."""
    return [k for k in snap if k != "labels" and k not in ENCODER_KEYS]


def save_snapshot(mdir: Path, model, x, y, epoch: int) -> Path:
    """Store the layers' activations on a fixed sample at ``epoch`` (safetensors, one file each)."""
    from safetensors.torch import save

    acts = layer_activations(model, x)
    acts["labels"] = y.detach().cpu()
    acts.update(encoder_terms(model, x, y))
    path = rundir.snapshot_path(mdir, epoch)
    atomic_write_bytes(path, save({k: v.contiguous().clone() for k, v in acts.items()}, metadata={"epoch": str(epoch)}))
    return path


def list_snapshots(mdir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every snapshot of one (model, seed), in epoch order."""
    folder = rundir.snapshot_dir(mdir)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = SNAPSHOT_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def load_snapshots(paths) -> dict[int, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    out = {}
    for epoch, p in paths:
        try:
            out[epoch] = load_file(str(p))
        except Exception as e:  # noqa: BLE001 - a damaged file is a user-level problem
            raise BenchError(f"{p}: unreadable snapshot ({type(e).__name__})") from None
    return out


def hidden_index(name: str) -> int | None:
    """``hidden3`` -> 3; other layer names -> None."""
    m = re.fullmatch(r"hidden(\d+)", name)
    return int(m.group(1)) if m else None


def default_layers(snap: dict[str, torch.Tensor]) -> list[str]:
    """The hidden layers in order, and the representation when it is not the last hidden layer."""
    hidden = sorted((k for k in snap if hidden_index(k) is not None), key=hidden_index)
    layers = list(hidden)
    rep = snap.get("representation")
    if rep is not None and not (hidden and snap[hidden[-1]].shape == rep.shape and torch.equal(snap[hidden[-1]], rep)):
        layers.append("representation")
    return layers
