"""``history``: the change-point fit (issue 21 item 5) and the words it owes the user (issue 17 item 8)."""

import json
import math

import numpy as np
import pytest
from conftest import one_error_line
from test_compare import make_run

from bench.cli import main
from bench.reporting.changepoint import fit_steps


# ------------------------------------------------------------------------------ the fit
def test_one_planted_step_is_found_where_it_is():
    rng = np.random.default_rng(1)
    se = np.full(30, 0.01)
    values = 0.10 + rng.normal(0, 0.01, 30)
    values[18:] += 0.05  # five standard errors, from point 18 on
    fit = fit_steps(values, se)
    assert fit.change_points == [18]
    assert fit.levels[17] == pytest.approx(np.mean(values[:18]))
    assert fit.levels[18] == pytest.approx(np.mean(values[18:]))


def test_a_flat_noisy_series_has_no_step():
    rng = np.random.default_rng(2)
    for _ in range(20):
        values = 0.10 + rng.normal(0, 0.01, 25)
        assert fit_steps(values, np.full(25, 0.01)).change_points == []


def test_a_small_step_shows_only_with_enough_runs_on_both_sides():
    # 2 standard errors: not a step between two single runs (factor 3), but clear over 20 runs on each side
    assert fit_steps([0.10, 0.12], [0.01, 0.01]).change_points == []
    assert fit_steps([0.10] * 5 + [0.12] * 5, [0.01] * 10).change_points == []
    assert fit_steps([0.10] * 20 + [0.12] * 20, [0.01] * 40).change_points == [20]
    # two runs 4.5 standard errors of their difference apart are a step (3 * sqrt(2) = 4.24)
    assert fit_steps([0.10, 0.10 + 4.5 * math.sqrt(2) * 0.01], [0.01, 0.01]).change_points == [1]


def test_unknown_noise():
    # some unknown: the median of the known; none known and too short to estimate: no steps
    assert fit_steps([0.10, 0.10, 0.30], [0.01, math.nan, 0.01]).change_points == [2]
    assert fit_steps([0.10, 0.30], [math.nan, math.nan]).change_points == []
    # none known: estimated from the differences of consecutive points
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(1.0, 0.01, 15), rng.normal(1.2, 0.01, 15)]
    assert fit_steps(values, [math.nan] * 30).change_points == [15]


# ------------------------------------------------------------------------------ the command's words
def _at(i: int) -> str:
    return f"2026-01-{i + 1:02d}T00:00:00+00:00"


def test_runs_on_different_data_sets_are_refused(tmp_path, capsys):
    a = make_run(tmp_path / "a", recorded_at=_at(0))
    b = make_run(tmp_path / "b", recorded_at=_at(1), checksum="sha256:bbbb")
    assert main(["history", str(a), str(b)]) == 2
    err = one_error_line(capsys)
    assert "different test sets" in err and "sha256:bbbb" in err


def test_an_eps_nobody_attacked_is_refused_with_the_eps_available(tmp_path, capsys):
    a = make_run(tmp_path / "a", recorded_at=_at(0))
    assert main(["history", str(a), "--metric", "pgd@0.15"]) == 2
    err = one_error_line(capsys)
    assert "0.15" in err and "available: 0.3" in err
    assert main(["history", str(a), "--metric", "pgd@0.3"]) == 0


def test_an_empty_run_is_named_not_dropped(tmp_path, capsys):
    a = make_run(tmp_path / "a", recorded_at=_at(0))
    b = make_run(tmp_path / "b", recorded_at=_at(1))
    data = json.loads((b / "results.json").read_text())
    data["models"] = {}
    (b / "results.json").write_text(json.dumps(data))
    c = make_run(tmp_path / "c", recorded_at=_at(2))
    assert main(["history", str(a), str(b), str(c)]) == 0
    captured = capsys.readouterr()
    assert "note: b has no value of clean_error" in captured.err


def test_a_value_that_is_absent_is_written_n_a_not_left_blank(tmp_path, capsys):
    a = make_run(tmp_path / "a", recorded_at=_at(0))
    b = make_run(tmp_path / "b", recorded_at=_at(1))
    data = json.loads((b / "results.json").read_text())
    for seed in data["models"]["mlp"]["seeds"].values():
        seed["attacks"] = []
    (b / "results.json").write_text(json.dumps(data))
    assert main(["history", str(a), str(b), "--metric", "pgd@0.3"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| b "))
    assert row.rstrip().endswith("| n/a   |") or "| n/a" in row
    assert "n/a: the run holds the model but no value" in out
