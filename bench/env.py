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
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not top or Path(top).resolve() != cwd:
            return {"commit": None, "dirty": None}
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
        dirty = None
        if commit:
            out = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            dirty = bool(out.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_name(device: str | torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's documented setting for reproducible results across streams


def use_deterministic_cuda() -> dict:
    """Set what bit-identical CUDA training needs, and return the resulting state (``numerics``).

    fp32 matmuls without TF32 (PyTorch's default for matmuls, but ``TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1`` or
    a library can turn it on; cuDNN's default is on), cuDNN in its deterministic mode without autotuning,
    and ``CUBLAS_WORKSPACE_CONFIG`` (honoured only when set before cuBLAS starts: training sets it before
    its first CUDA work; a value the user set is kept). PyTorch's global deterministic-algorithms switch
    is left as it is (the training step uses no non-deterministic kernel; the switch would also slow down
    later stages of the same process) and recorded.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return numerics()


def numerics() -> dict:
    """CUDA and cuDNN versions and the settings that decide CUDA's floating-point results (recorded on
    the CPU too, where CUDA's fields are None)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"),
    }


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
        "numerics": numerics(),
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
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise BenchError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
        )
    return device
