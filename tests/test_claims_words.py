"""``vib-bench claims`` on the committed claims run (published without weights) points to ``--judge-only``
(issue 17, item 8) instead of saying the baseline is not among the trained models."""

import shutil
from pathlib import Path

from conftest import one_error_line

from bench.cli import main

CLAIMS = Path(__file__).resolve().parent.parent / "results" / "claims"


def test_a_run_without_weights_points_to_judge_only(tmp_path, capsys):
    run = tmp_path / "claims"
    shutil.copytree(CLAIMS, run, ignore=shutil.ignore_patterns("*.png", "*.html"))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    assert main(["claims", str(run)]) == 2
    err = one_error_line(capsys)
    assert "--judge-only" in err and "'mlp'" in err and "not among the trained models" not in err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing written
