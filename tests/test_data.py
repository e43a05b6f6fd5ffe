"""Data sets load offline, are verified against checksums and fail with clear errors."""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import data as data_mod
from bench.data import load_dataset
from bench.errors import BenchError


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _fake_mnist(folder: Path, n_train=12_000, n_test=50, compress=True) -> dict:
    rng = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test),
    }
    md5 = {}
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        raw = _idx_bytes(arr)
        md5[stem] = hashlib.md5(raw).hexdigest()
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return {"arrays": arrays, "md5": md5}


@pytest.fixture(autouse=True)
def _fresh_cache():
    data_mod._cached.cache_clear()
    yield
    data_mod._cached.cache_clear()


def test_digits_load_offline():
    ds = load_dataset("digits")
    x, y = ds.split("train")
    assert ds.in_shape == (1, 8, 8) and x.shape[1:] == (1, 8, 8)
    assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert len(ds.split("train")[0]) + len(ds.split("val")[0]) + len(ds.split("test")[0]) == 1797
    assert len(ds.split("trainval")[0]) == len(ds.split("train")[0]) + len(ds.split("val")[0])
    assert set(y.tolist()) == set(range(10))
    assert ds.checksum.startswith("sha256:")


def test_idx_folder_is_parsed_and_verified(tmp_path, monkeypatch):
    fake = _fake_mnist(tmp_path / "mnist")
    monkeypatch.setitem(data_mod.IDX_MD5, "mnist", fake["md5"])
    ds = load_dataset("mnist", tmp_path / "mnist")
    x_val, y_val = ds.split("val")
    assert ds.x_train.shape == (12_000, 1, 28, 28) and len(x_val) == 10_000
    # the validation split is the *last* 10,000 training images
    assert torch.equal(y_val, torch.from_numpy(fake["arrays"]["train-labels-idx1-ubyte"][-10_000:]))
    assert torch.allclose(
        ds.x_test[3, 0], torch.from_numpy(fake["arrays"]["t10k-images-idx3-ubyte"][3] / 255.0).float()
    )


def test_uncompressed_files_work_and_env_variable_is_used(tmp_path, monkeypatch):
    fake = _fake_mnist(tmp_path / "root" / "mnist", compress=False)
    monkeypatch.setitem(data_mod.IDX_MD5, "mnist", fake["md5"])
    monkeypatch.setenv("VIB_BENCH_DATA", str(tmp_path / "root"))
    ds = load_dataset("mnist")
    assert ds.source == str(tmp_path / "root" / "mnist")


def test_checksum_mismatch_is_an_error(tmp_path):
    _fake_mnist(tmp_path / "mnist")  # random bytes cannot match the canonical MD5s
    with pytest.raises(BenchError, match="checksum mismatch"):
        load_dataset("mnist", tmp_path / "mnist")


def test_truncated_gzip_is_an_error(tmp_path, monkeypatch):
    fake = _fake_mnist(tmp_path / "mnist")
    monkeypatch.setitem(data_mod.IDX_MD5, "mnist", fake["md5"])
    f = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(BenchError, match="truncated"):
        load_dataset("mnist", tmp_path / "mnist")


def test_missing_files_in_data_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="does not hold the four IDX files"):
        load_dataset("mnist", tmp_path / "empty")


def test_offline_without_local_copy_names_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("VIB_BENCH_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(name):
        raise OSError("network unreachable")

    monkeypatch.setattr(data_mod, "_download", offline)
    with pytest.raises(BenchError) as e:
        load_dataset("mnist")
    msg = str(e.value)
    assert "--data-dir" in msg and "VIB_BENCH_DATA" in msg and "network unreachable" in msg
    assert "\n" not in msg


def test_unknown_dataset():
    with pytest.raises(BenchError, match="unknown dataset"):
        load_dataset("cifar-17")


@pytest.mark.skipif(
    not os.environ.get("VIB_BENCH_DATA")
    or not (Path(os.environ.get("VIB_BENCH_DATA", "/nonexistent")) / "mnist").is_dir(),
    reason="real MNIST not available (set VIB_BENCH_DATA)",
)
def test_real_mnist():
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (60_000, 1, 28, 28) and ds.x_test.shape == (10_000, 1, 28, 28)
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical first labels
    assert len(ds.split("train")[0]) == 50_000


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("VIB_BENCH_DATA", raising=False)
    ds = load_dataset("fashion-mnist")
    assert ds.x_test.shape == (10_000, 1, 28, 28)
    assert ds.y_train[:3].tolist() == [9, 0, 0]
