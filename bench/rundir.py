"""The run directory: where every file a run produces lives. Only this module knows the layout.

    RUN_DIR/results.json                                 the single source of truth (bench.results)
    RUN_DIR/leaderboard.md, RUN_DIR/report.html          generated from results.json
    RUN_DIR/claims.md                                    the claims table (``vib-bench claims``)
    RUN_DIR/figures/*.png                                figures (bench.figures, attack grids, info)
    RUN_DIR/models/<model>/seed<k>/model.safetensors     final (EMA) weights + the config that made them
    RUN_DIR/models/<model>/seed<k>/checkpoint.pt         resume state while training (weights-only torch file)
    RUN_DIR/models/<model>/seed<k>/train_log.jsonl       one line per epoch: loss terms, validation error
    RUN_DIR/models/<model>/seed<k>/status.json           running / done / failed (with the error)
    RUN_DIR/models/<model>/seed<k>/per_example.safetensors   bit-packed per-example correctness
    RUN_DIR/models/<model>/seed<k>/claims_zeros.safetensors  the first-zeros adversarial images (claims figure)
    RUN_DIR/models/<model>/seed<k>/snapshots/epochNNNN.safetensors   activations (bench.snapshots)
    RUN_DIR/stacks/<stack-id>.pt                         resume state of a stack of members trained together
                                                         (bench.stacked; removed when the stack finishes)

The per-example store, the status file and the training log are small formats written and read
here; weights and snapshots have their own modules (``bench.weights``, ``bench.snapshots``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import BenchError
from .io import atomic_write_bytes, atomic_write_json, atomic_write_text

RESULTS = "results.json"
LEADERBOARD = "leaderboard.md"
REPORT = "report.html"
FIGURES = "figures"
MODELS = "models"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.pt"
STATUS = "status.json"
LOG = "train_log.jsonl"
PER_EXAMPLE = "per_example.safetensors"
SNAPSHOTS = "snapshots"
STACKS = "stacks"
CLAIMS = "claims.md"
CLAIMS_ZEROS = "claims_zeros.safetensors"


# ------------------------------------------------------------------------------------------ paths
def results_path(run_dir_or_file: str | Path) -> Path:
    """``RUN_DIR/results.json``; a path to a ``.json`` file is taken as the results file itself."""
    p = Path(run_dir_or_file)
    return p / RESULTS if p.is_dir() or p.suffix != ".json" else p


def run_dir_of(run_dir_or_file: str | Path) -> Path:
    return results_path(run_dir_or_file).parent


def require_run_dir(run_dir) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run directory")
    return run_dir


def clear_run(run_dir: str | Path) -> None:
    """Remove everything a run wrote (``--fresh``), and nothing else that lives in the folder."""
    import shutil

    run_dir = Path(run_dir)
    if not (run_dir / RESULTS).exists():
        return
    for name in (RESULTS, LEADERBOARD, REPORT):
        (run_dir / name).unlink(missing_ok=True)
    for name in (FIGURES, MODELS):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def model_dir(run_dir: str | Path, model: str, seed: int | str) -> Path:
    return Path(run_dir) / MODELS / model / f"seed{int(seed)}"


def weights_path(run_dir, model: str, seed) -> Path:
    return model_dir(run_dir, model, seed) / WEIGHTS


def has_weights(run_dir, model: str, seed) -> bool:
    return weights_path(run_dir, model, seed).exists()


def figures_dir(run_dir) -> Path:
    return run_dir_of(run_dir) / FIGURES


def figure_path(run_dir, name: str) -> Path:
    return figures_dir(run_dir) / name


def claims_path(run_dir) -> Path:
    return run_dir_of(run_dir) / CLAIMS


def claims_zeros_path(run_dir, model: str, seed) -> Path:
    return model_dir(run_dir, model, seed) / CLAIMS_ZEROS


def snapshot_dir(mdir: Path) -> Path:
    return Path(mdir) / SNAPSHOTS


def stack_checkpoint_path(run_dir, stack_id: str) -> Path:
    return Path(run_dir) / STACKS / f"{stack_id}.pt"


def stack_checkpoints(run_dir) -> list[Path]:
    """The resume states of unfinished stacks, in name order."""
    folder = Path(run_dir) / STACKS
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def remove_stack_checkpoint(run_dir, stack_id: str) -> None:
    """Delete a finished stack's resume state (and the stacks folder once it is empty)."""
    stack_checkpoint_path(run_dir, stack_id).unlink(missing_ok=True)
    folder = Path(run_dir) / STACKS
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


# ------------------------------------------------------------------------------- status and log
def read_status(mdir: Path) -> dict | None:
    try:
        return json.loads((Path(mdir) / STATUS).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_status(mdir: Path, status: dict, durable: bool = True) -> None:
    """``durable=False`` skips the fsync: still atomic for a crashed process (training rewrites its status
    every epoch that way; its checkpoint is what must survive a power loss)."""
    atomic_write_json(Path(mdir) / STATUS, status, durable)


def read_log_lines(mdir: Path) -> list[str]:
    """The raw lines of a training log (empty when there is none)."""
    path = Path(mdir) / LOG
    return [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def write_log_lines(mdir: Path, lines: list[str], durable: bool = True) -> None:
    atomic_write_text(Path(mdir) / LOG, "".join(ln + "\n" for ln in lines), durable)


def read_train_log(mdir: Path) -> list[dict]:
    """The epoch records of a training log (unparseable lines, e.g. a torn last line, are skipped)."""
    out = []
    try:
        lines = (Path(mdir) / LOG).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("epoch"), (int, float)):
            out.append(rec)
    return out


# ------------------------------------------------------------------------------ per-example store
def _per_example_path(run_dir, model, seed) -> Path:
    return model_dir(run_dir, model, seed) / PER_EXAMPLE


def save_per_example(run_dir, model: str, seed: int, key: str, correct: torch.Tensor) -> None:
    """Store a boolean per-example vector (bit-packed) under ``key`` (e.g. ``clean``, ``attack:pgd@0.3``)."""
    from safetensors.torch import load_file, save

    from .locking import run_lock

    path = _per_example_path(run_dir, model, seed)
    bits = correct.detach().to("cpu", torch.bool).numpy()
    with run_lock(run_dir):  # a read-modify-write: another process may add its own vectors meanwhile
        tensors = load_file(str(path)) if path.exists() else {}
        tensors[key] = torch.from_numpy(np.packbits(bits))
        tensors[f"{key}::n"] = torch.tensor([bits.size], dtype=torch.int64)
        atomic_write_bytes(path, save(tensors))


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
