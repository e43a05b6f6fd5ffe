"""Data sets, held in memory as float tensors in [0, 1] shaped as images (N, C, H, W).

Registered: ``mnist`` and ``fashion-mnist`` (28x28 IDX files, checked against the canonical MD5s
of the uncompressed files), ``digits`` (scikit-learn's bundled 8x8 digits; offline) and ``ib12`` (the
synthetic 12-bit task of the information-plane experiments, generated in memory; offline).

Where IDX files come from, first hit wins:
  1. ``--data-dir DIR``: a folder holding the four IDX files (``.gz`` or uncompressed);
  2. ``$VIB_BENCH_DATA/<name>/``;
  3. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist/``;
  4. torchvision's download into ``$XDG_CACHE_HOME/vib-bench/<name>`` (default ``~/.cache``).

The validation split is the last 10,000 training images (MNIST-like) and is the only data used to
choose hyperparameters; the test split is never used for any choice.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import BenchError

if TYPE_CHECKING:  # torch is imported where tensors are made: `vib-bench list datasets` needs none
    import torch

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Canonical MD5s of the *uncompressed* IDX files, as published with each data set.
IDX_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
SPLITS = ("train", "val", "test", "trainval")


@dataclass
class Dataset:
    name: str
    in_shape: tuple[int, int, int]
    num_classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_val: int
    checksum: str
    source: str
    meta: dict = field(default_factory=dict)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``train`` (training minus validation), ``val``, ``trainval`` (all training) or ``test``."""
        n_fit = len(self.x_train) - self.n_val
        if name == "train":
            return self.x_train[:n_fit], self.y_train[:n_fit]
        if name == "val":
            return self.x_train[n_fit:], self.y_train[n_fit:]
        if name == "trainval":
            return self.x_train, self.y_train
        if name == "test":
            return self.x_test, self.y_test
        raise BenchError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "in_shape": list(self.in_shape),
            "num_classes": self.num_classes,
            "n_train": len(self.x_train) - self.n_val,
            "n_val": self.n_val,
            "n_test": len(self.x_test),
            "checksum": self.checksum,
            "source": self.source,
        }


# --------------------------------------------------------------------------------------------- IDX
def _read_verified(folder: Path, stem: str, dataset: str) -> tuple[bytes, str]:
    """Read one IDX file (raw or .gz) from ``folder`` and check its uncompressed MD5."""
    raw, gz = folder / stem, folder / f"{stem}.gz"
    try:
        if raw.is_file():
            data = raw.read_bytes()
        elif gz.is_file():
            data = gzip.decompress(gz.read_bytes())
        else:
            raise FileNotFoundError(stem)
    except (EOFError, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise BenchError(f"{dataset}: {gz} is truncated or not a gzip file ({e})") from None
    md5 = hashlib.md5(data).hexdigest()
    want = IDX_MD5[dataset][stem]
    if md5 != want:
        path = raw if raw.is_file() else gz
        raise BenchError(
            f"{dataset}: checksum mismatch for {path} (md5 {md5}, expected {want}); "
            "the file is corrupt or truncated: delete it and fetch it again"
        )
    return data, md5


def _parse_idx(data: bytes) -> np.ndarray:
    # IDX: two zero bytes, a type code (0x08 = uint8), the number of dims, then big-endian int32 dims.
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise BenchError("not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims)


def _has_idx(folder: Path) -> bool:
    return all((folder / s).is_file() or (folder / f"{s}.gz").is_file() for s in IDX_FILES)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vib-bench"


def _download(name: str) -> Path:
    """torchvision's own download path; returns the folder with the raw IDX files."""
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    root = _cache_root() / name
    try:
        ds = cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as e:  # network errors come in many types
        raise OSError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return Path(ds.raw_folder)


def _locate_idx(name: str, data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not _has_idx(folder):
            raise BenchError(
                f"{name}: --data-dir {folder} does not hold the four IDX files "
                f"({', '.join(IDX_FILES)}, .gz or uncompressed)"
            )
        return folder
    tried = []
    env = os.environ.get("VIB_BENCH_DATA")
    candidates = []
    if env:
        candidates.append(Path(env).expanduser() / name)
    if name in DEBIAN_DIRS:
        candidates.append(DEBIAN_DIRS[name])
    candidates.append(_cache_root() / name / type_folder(name) / "raw")
    for folder in candidates:
        if _has_idx(folder):
            return folder
        tried.append(str(folder))
    try:
        return _download(name)
    except OSError as e:
        raise BenchError(
            f"{name}: no local copy found (looked in {', '.join(tried)}) and the download failed ({e}); "
            f"pass --data-dir DIR, or set VIB_BENCH_DATA to a folder holding {name}/"
            + (", or `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else "")
        ) from None


def type_folder(name: str) -> str:
    return {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name]


def _load_idx_dataset(name: str, data_dir) -> Dataset:
    import torch

    folder = _locate_idx(name, data_dir)
    arrays, md5s = {}, []
    for stem in IDX_FILES:
        data, md5 = _read_verified(folder, stem, name)
        arrays[stem] = _parse_idx(data)
        md5s.append(md5)
    to_x = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)  # noqa: E731
    to_y = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    return Dataset(
        name=name,
        in_shape=(1, 28, 28),
        num_classes=10,
        x_train=to_x(arrays[IDX_FILES[0]]),
        y_train=to_y(arrays[IDX_FILES[1]]),
        x_test=to_x(arrays[IDX_FILES[2]]),
        y_test=to_y(arrays[IDX_FILES[3]]),
        n_val=10_000,
        checksum="sha256:" + hashlib.sha256(" ".join(md5s).encode()).hexdigest()[:16],
        source=str(folder),
    )


# ------------------------------------------------------------------------------------------ digits
def _load_digits(data_dir) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, shuffled once with a fixed seed: 1,077 / 360 / 360."""
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(0).permutation(len(y))
    x, y = x[perm], y[perm]
    n_test = 360
    checksum = "sha256:" + hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    return Dataset(
        name="digits",
        in_shape=(1, 8, 8),
        num_classes=10,
        x_train=torch.from_numpy(x[:-n_test].copy()),
        y_train=torch.from_numpy(y[:-n_test].copy()),
        x_test=torch.from_numpy(x[-n_test:].copy()),
        y_test=torch.from_numpy(y[-n_test:].copy()),
        n_val=360,
        checksum=checksum,
        source="sklearn.datasets.load_digits",
    )


# ------------------------------------------------------------------------------------------- ib12
IB12_THRESHOLD = 10.0  # |dipole|^2 > 10: 2,036 of the 4,096 patterns (49.7%) are positive
IB12_N_TEST = 819  # 20% of 4,096 held out (80/20, as the original), a fixed permutation (seed 0)
IB12_N_VAL = 328  # the last 10% of the training part, for `train`'s validation; the experiment uses trainval


def icosahedron() -> np.ndarray:
    """The 12 vertices of the regular icosahedron as unit vectors (12, 3): 12 uniformly spread points on the
    2-sphere."""
    phi = (1.0 + 5.0**0.5) / 2.0
    v = [p for a in (-1, 1) for b in (-1, 1) for p in ((0, a, b * phi), (a, b * phi, 0), (b * phi, 0, a))]
    u = np.asarray(v, dtype=np.float64)
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def ib12_patterns() -> tuple[np.ndarray, np.ndarray]:
    """All 4,096 12-bit patterns (4096, 12) in {0, 1} (pattern k = the bits of k, most significant first) and
    their labels: bit i sits on vertex u_i of the icosahedron, s_i = 2 b_i - 1, and y = 1 when the squared norm
    of the dipole |sum_i s_i u_i|^2 exceeds ``IB12_THRESHOLD``: a function invariant under the rotations of the
    sphere that map the points onto each other, thresholded so that about half the patterns are positive."""
    bits = (np.arange(4096)[:, None] >> np.arange(11, -1, -1)) & 1
    dipole = (2 * bits - 1) @ icosahedron()
    y = ((dipole**2).sum(1) > IB12_THRESHOLD).astype(np.int64)
    return bits.astype(np.float32), y


def _load_ib12(data_dir) -> Dataset:
    """The 12-bit task of Shwartz-Ziv & Tishby (2017), as documented here (``ib12_patterns``): 3,277 training
    patterns (the last 328 of them the validation part) and 819 test patterns, a fixed permutation."""
    import torch

    x, y = ib12_patterns()
    perm = np.random.RandomState(0).permutation(len(y))
    x, y = x[perm][:, None, None, :], y[perm]
    checksum = "sha256:" + hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    n = len(y) - IB12_N_TEST
    return Dataset(
        name="ib12",
        in_shape=(1, 1, 12),
        num_classes=2,
        x_train=torch.from_numpy(x[:n].copy()),
        y_train=torch.from_numpy(y[:n].copy()),
        x_test=torch.from_numpy(x[n:].copy()),
        y_test=torch.from_numpy(y[n:].copy()),
        n_val=IB12_N_VAL,
        checksum=checksum,
        source="generated (bench.data.ib12_patterns)",
        meta={"rule": f"|sum_i (2 b_i - 1) u_i|^2 > {IB12_THRESHOLD:g}, u_i the icosahedron's vertices"},
    )


DATASETS = {
    "mnist": ("MNIST handwritten digits, 28x28, 60k/10k (IDX)", functools.partial(_load_idx_dataset, "mnist")),
    "fashion-mnist": ("Fashion-MNIST, 28x28, 60k/10k (IDX)", functools.partial(_load_idx_dataset, "fashion-mnist")),
    "digits": ("scikit-learn's 8x8 digits, 1,797 images, offline (smoke runs)", _load_digits),
    "ib12": (
        "the 12-bit information-plane task (Shwartz-Ziv & Tishby 2017), 4,096 patterns, 80/20, offline",
        _load_ib12,
    ),
}


def list_datasets() -> list[str]:
    return list(DATASETS)


@functools.lru_cache(maxsize=4)
def _cached(name: str, data_dir: str | None) -> Dataset:
    return DATASETS[name][1](data_dir)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a registered data set (cached per process)."""
    if name not in DATASETS:
        raise BenchError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    return _cached(name, None if data_dir is None else str(data_dir))
