"""The claims stage's stored images: the first-zeros adversarial examples of each (model, seed), one
safetensors file per model-seed at ``rundir.claims_zeros_path``. The stage writes them; the figures read them.
"""

from __future__ import annotations

import torch

from .. import rundir
from ..io import atomic_write_bytes


def save_zeros_images(run_dir, name, seed, images: dict) -> None:
    """Store the first-zeros adversarial images of one (model, seed) (float16 safetensors, atomically)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().to(torch.float16).contiguous() for k, v in images.items()}
    atomic_write_bytes(rundir.claims_zeros_path(run_dir, name, seed), save(tensors))


def load_zeros_images(run_dir, name, seed) -> dict[str, torch.Tensor]:
    """The stored first-zeros adversarial images of one (model, seed) ({} when absent)."""
    from safetensors.torch import load_file

    path = rundir.claims_zeros_path(run_dir, name, seed)
    return {k: v.float() for k, v in load_file(str(path)).items()} if path.exists() else {}
