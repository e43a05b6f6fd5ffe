import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
GOLDEN_RESULTS = Path(__file__).resolve().parent / "data" / "golden_results.json"

# Tiny models: one thread is fastest for them, and it keeps timing ratios meaningful when anything
# else shares the CPU (OpenMP threads spinning on an oversubscribed CPU slow torch down ~100x).
torch.set_num_threads(1)


@pytest.fixture
def digits():
    from bench.data import load_dataset

    return load_dataset("digits")


def golden_data() -> dict:
    """A fresh copy of the hand-made golden results file (tests/data/golden_results.json), as a dict."""
    return json.loads(GOLDEN_RESULTS.read_text())


def golden_run_dir(parent: Path) -> Path:
    """``parent/run``: a run directory holding only the golden results file."""
    d = Path(parent) / "run"
    d.mkdir()
    shutil.copy(GOLDEN_RESULTS, d / "results.json")
    return d


def one_error_line(capsys) -> str:
    """The single stderr line a failing command must print (and no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vib-bench: error:"), err
    assert "Traceback" not in err[0]
    return err[0]


def sigkill_mid_training(args, out: Path, status: Path, after_epochs: int = 3) -> int:
    """Start ``python -m bench *args --out out`` in a real process, SIGKILL it once ``status`` reports
    ``after_epochs`` finished epochs, and return the epochs that file says were done."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if json.loads(status.read_text())["epochs_done"] >= after_epochs:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert status.exists(), f"{status} never appeared: the training did not start within 120 s"
    return json.loads(status.read_text())["epochs_done"]
