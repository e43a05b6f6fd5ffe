"""Slow: re-run the smoke suite and compare with the committed reference results (golden files)."""

import json
from pathlib import Path

import pytest

from bench.cli import main

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "smoke"


@pytest.mark.slow
def test_smoke_suite_matches_the_committed_reference(tmp_path, capsys):
    if not (REFERENCE / "results.json").exists():
        pytest.skip("no committed smoke reference")
    out = tmp_path / "smoke"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--no-progress"]) == 0
    # every clean and robust row: paired tests on per-example correctness; exit 0 = nothing got worse, and
    # --strict: the reference was made with the same settings
    rc = main(["compare", str(REFERENCE), str(out), "--fail-on", "all", "--strict"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    ref = json.loads((REFERENCE / "results.json").read_text())
    new = json.loads((out / "results.json").read_text())
    assert set(ref["models"]) == set(new["models"])
