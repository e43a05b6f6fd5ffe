"""The code passes ruff with the configuration in pyproject.toml (CI runs pytest, so this is CI's lint)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_check_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "No module named ruff" not in proc.stderr, "ruff is missing: pip install -e .[dev]"
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_the_tree_is_formatted():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "run `ruff format .`:\n" + proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_reports_what_the_config_selects():
    """The check is live: an unused import, a mutable default and a bare except are reported."""
    code = "import os\n\n\ndef f(x=[]):\n    try:\n        return x\n    except:\n        pass\n"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--stdin-filename",
            "bench/_example.py",
            "-",
        ],
        cwd=REPO,
        input=code,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    for rule in ("F401", "B006", "E722"):
        assert rule in proc.stdout, proc.stdout
