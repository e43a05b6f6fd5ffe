"""The run directory: where every file a run produces lives. Only this module knows the layout.

    RUN_DIR/results.json                                 the single source of truth (bench.results)
    RUN_DIR/leaderboard.md, RUN_DIR/report.html          generated from results.json
    RUN_DIR/claims.md                                    the claims table (``vib-bench claims``)
    RUN_DIR/figures/*.png                                figures (bench.reporting.figures, attack grids, info)
    RUN_DIR/models/<model>/seed<k>/model.safetensors     final (EMA) weights + the config that made them
    RUN_DIR/models/<model>/seed<k>/checkpoint.pt         resume state while training (weights-only torch file)
    RUN_DIR/models/<model>/seed<k>/train_log.jsonl       one line per epoch: loss terms, validation error
    RUN_DIR/models/<model>/seed<k>/status.json           running / done / failed / interrupted (with the error)
    RUN_DIR/models/<model>/seed<k>/.train.lock           held while a process trains it (bench.locking)
    RUN_DIR/models/<model>/seed<k>/per_example.safetensors   bit-packed per-example correctness
    RUN_DIR/models/<model>/seed<k>/claims_zeros.safetensors  the first-zeros adversarial images (claims figure)
    RUN_DIR/models/<model>/seed<k>/snapshots/epochNNNN.safetensors   activations (bench.train.snapshots)
    RUN_DIR/stacks/<stack-id>.pt                         resume state of a stack of members trained together
                                                         (bench.train.stacked; removed when the stack finishes)

The per-example store, the status file and the training log are small formats written and read
here; weights and snapshots have their own modules (``bench.train.weights``, ``bench.train.snapshots``).

A received run directory is untrusted input (docs/threat-model.md): every path built from a name (a
model, a seed, a figure, a stack) goes through :func:`run_path`, which accepts only single safe path
components (:data:`SAFE_NAME_TEXT`) and refuses a result that resolves outside the run directory
(``..``, an absolute name, a symlink planted in the folder).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import BenchError
from .io import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import torch

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
TRAIN_LOCK = ".train.lock"


# ------------------------------------------------------------------------------------- safe names
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")
SAFE_NAME_MAX = 100
SAFE_NAME_TEXT = "letters, digits, _ . + = -"
SEED_MAX = 2**32 - 1  # what every seeded generator (torch, numpy) accepts


def name_problem(name) -> str | None:
    """Why ``name`` cannot be a model name (one path component of the run directory), or None.

    Safe names: 1-100 characters from ``[A-Za-z0-9_.+=-]``, not starting with ``.``, ``+``, ``=`` or ``-``,
    without ``..``: no ``/``, ``\\``, control characters, whitespace, absolute or relative climbs."""
    if not isinstance(name, str):
        return f"{name!r} is not a string"
    if not name or len(name) > SAFE_NAME_MAX or not SAFE_NAME.fullmatch(name) or ".." in name:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "..."
        return f"{shown} is not a safe name ({SAFE_NAME_TEXT}; at most {SAFE_NAME_MAX} characters)"
    return None


def check_name(name, what: str = "model name") -> str:
    """``name`` when it is a safe name, else a one-line :class:`BenchError`."""
    problem = name_problem(name)
    if problem:
        raise BenchError(f"{what} {problem}")
    return name


def seed_problem(seed) -> str | None:
    """Why ``seed`` is not a seed (an integer in [0, 2**32 - 1]), or None."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        return f"{seed!r} is not an integer"
    if not 0 <= seed <= SEED_MAX:
        return f"{seed} is not in [0, {SEED_MAX}]"
    return None


def check_seeds(seeds, what: str = "--seeds") -> list[int]:
    """``seeds`` when every one is an integer in [0, 2**32 - 1], else a one-line :class:`BenchError`."""
    for s in seeds:
        problem = seed_problem(s)
        if problem:
            raise BenchError(f"{what}: seed {problem}")
    return list(seeds)


def run_path(run_dir: str | Path, *parts: str) -> Path:
    """``RUN_DIR/part/part/...``, every part a safe name, refused (one line) when it would leave RUN_DIR.

    The one place where a name becomes a path: model folders, seed folders, figures, per-example
    files, snapshots and stacks are all built here."""
    run_dir = Path(run_dir)
    for part in parts:
        problem = name_problem(part)
        if problem:
            raise BenchError(f"{run_dir}: {problem}; refusing to use it as a path")
    path = run_dir.joinpath(*parts)
    root = run_dir.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise BenchError(
            f"{path}: resolves to {resolved}, outside the run directory {root} (a symbolic link?); "
            "refusing to write or read there"
        )
    return path


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


def check_writable(run_dir: str | Path, folders=()) -> None:
    """Refuse (one line, before any work) a run directory this process cannot write in: the folder itself
    (or, when absent, the nearest folder above it that exists) and each existing folder of ``folders``."""
    import tempfile

    from .io import STORAGE_ERRNOS

    run_dir = Path(run_dir)
    probe = run_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    for folder in [probe, *(Path(f) for f in folders if Path(f).is_dir())]:
        if not folder.is_dir():
            continue
        try:
            fd, tmp = tempfile.mkstemp(prefix=".vib-bench-probe.", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            if e.errno not in STORAGE_ERRNOS:
                raise
            raise BenchError(
                f"{run_dir}: {folder} is not writable ({e.strerror}); vib-bench writes its results "
                "there (copy the run directory somewhere writable)"
            ) from None


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
    return run_path(run_dir, MODELS, model, f"seed{int(seed)}")


def member_lock_path(run_dir, model: str, seed) -> Path:
    """The lock a process holds while it trains one (model, seed)."""
    return model_dir(run_dir, model, seed) / TRAIN_LOCK


def weights_path(run_dir, model: str, seed) -> Path:
    return model_dir(run_dir, model, seed) / WEIGHTS


def has_weights(run_dir, model: str, seed) -> bool:
    return weights_path(run_dir, model, seed).exists()


def figures_dir(run_dir) -> Path:
    return run_dir_of(run_dir) / FIGURES


def figure_path(run_dir, name: str) -> Path:
    return run_path(run_dir_of(run_dir), FIGURES, name)


def claims_path(run_dir) -> Path:
    return run_dir_of(run_dir) / CLAIMS


def claims_zeros_path(run_dir, model: str, seed) -> Path:
    return model_dir(run_dir, model, seed) / CLAIMS_ZEROS


def snapshot_dir(mdir: Path) -> Path:
    return run_path(mdir, SNAPSHOTS)


def snapshot_path(mdir: Path, epoch: int) -> Path:
    return run_path(mdir, SNAPSHOTS, f"epoch{int(epoch):04d}.safetensors")


def stack_checkpoint_path(run_dir, stack_id: str) -> Path:
    return run_path(run_dir, STACKS, f"{stack_id}.pt")


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
    import torch
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
