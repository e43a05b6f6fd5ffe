"""The environment a measurement was taken in: packages, machine, device, code version."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "torchattacks", "numpy", "pandas", "scikit-learn", "safetensors")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(path: str | os.PathLike | None = None) -> dict:
    """Commit id and dirtiness of the vib-bench checkout.

    None unless the package's folder is the top level of a git work tree: a vib-bench installed inside
    another repository (a vendored copy, site-packages in a project's tree) must not record that
    repository's commit as its own.
    """
    cwd = Path(path or Path(__file__).resolve().parent.parent).resolve()
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if not top or Path(top).resolve() != cwd:
            return {"commit": None, "dirty": None}
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = None
        if commit:
            out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                 capture_output=True, text=True, timeout=10).stdout
            dirty = bool(out.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_name(device: str | torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def machine_key(env: dict) -> tuple:
    """What must match for throughput numbers to be comparable."""
    return (env.get("cpu"), env.get("threads"), env.get("device_name"))


def environment(device: str | torch.device = "cpu") -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    from . import __version__

    return {
        "vib_bench": __version__,
        "python": platform.python_version(),
        "packages": versions,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": device_name(device),
        "git": git_state(),
        "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def resolve_device(name: str | None) -> torch.device:
    from .errors import BenchError

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
