"""compare (paired tests, exit codes as a CI gate), history (step detection) and the statistics behind them."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_error_line

from bench.cli import main
from bench.reporting.compare import compare_runs
from bench.results import Results
from bench.rundir import save_per_example
from bench.stats import holm, mcnemar, mcnemar_p, trapezoid_auc, two_proportion_test, wilson_interval

N_TEST = 400
N_ATTACK = 200
MACHINE = {"cpu": "Test CPU", "threads": 1, "device": "cpu", "device_name": "Test CPU", "torch": "2.14.1"}


def _flip(v: np.ndarray, k: int, to: bool, start: int = 0) -> np.ndarray:
    """Flip the first k entries (from ``start``) that are not already ``to``."""
    v = v.copy()
    idx = np.flatnonzero(v != to)
    idx = idx[idx >= start][:k]
    v[idx] = to
    return v


def make_run(
    path: Path,
    *,
    clean=None,
    robust=None,
    train_ex_s=100_000.0,
    machine=MACHINE,
    checksum="sha256:aaaa",
    seeds=(0, 1),
    failed=(),
    per_example=True,
    recorded_at="2026-01-01T00:00:00+00:00",
    errors=None,
) -> Path:
    """A tiny run directory: one model, clean and PGD@0.3 correctness vectors per seed, throughput on seed 0."""
    rng = np.random.default_rng(0)
    base_clean = rng.random(N_TEST) > 0.10  # ~90% accuracy, the same test examples in every run
    base_robust = base_clean[:N_ATTACK] & (rng.random(N_ATTACK) > 0.5)
    clean = base_clean if clean is None else clean
    robust = base_robust if robust is None else robust
    env = {
        "cpu": machine["cpu"],
        "threads": machine["threads"],
        "device": "cpu",
        "device_name": machine["device_name"],
        "git": {"commit": "abcdef1234567890", "dirty": False},
        "recorded_at": recorded_at,
    }
    run = {
        "dataset": {"name": "digits", "n_test": N_TEST, "checksum": checksum},
        "train": {"epochs": 1},
        "models": {"mlp": {}},
        "seeds": list(seeds),
        "plugins": [],
        "suite": None,
    }
    res = Results.new(run, env)
    data = res.raw
    data["environments"]["train"] = env
    seeds_out = {}
    for s in seeds:
        if s in failed:
            seeds_out[str(s)] = {"train": {"state": "failed", "error": "RuntimeError: loss is NaN"}}
            continue
        err = float(1 - clean.mean()) if errors is None else errors[s]
        entry = {
            "train": {"state": "done"},
            "clean": {"n": N_TEST, "error": err, "nll": 0.3, "ece": 0.02},
            "attacks": [
                {
                    "attack": "pgd",
                    "norm": "Linf",
                    "eps": 0.3,
                    "protocol": "standard",
                    "robust_acc": float(robust.mean()),
                    "n": N_ATTACK,
                    "n_robust": int(robust.sum()),
                    "checks": {},
                    "config": {"budget": {"steps": 40}},
                }
            ],
        }
        if s == seeds[0]:
            entry["throughput"] = {
                "params": 1000,
                "machine": machine,
                "inference": {"100": {"median": 1e6, "iqr": 1e4, "rounds": 5}},
                "train": {"median": train_ex_s, "iqr": 1e3, "rounds": 5, "batch_size": 100},
            }
        seeds_out[str(s)] = entry
        if per_example:
            save_per_example(path, "mlp", s, "clean", torch.from_numpy(clean))
            save_per_example(path, "mlp", s, "attack:pgd@0.3", torch.from_numpy(robust))
    data["models"]["mlp"] = {"config": {"hidden": [8]}, "stochastic": False, "seeds": seeds_out}
    res.save(path)
    return path


@pytest.fixture
def base(tmp_path):
    return make_run(tmp_path / "base")


def _clean_vec():
    rng = np.random.default_rng(0)
    return rng.random(N_TEST) > 0.10


def _robust_vec():
    rng = np.random.default_rng(0)
    c = rng.random(N_TEST) > 0.10
    return c[:N_ATTACK] & (rng.random(N_ATTACK) > 0.5)


# ------------------------------------------------------------------------------------ statistics
def test_wilson_interval_known_values():
    lo, hi = wilson_interval(90, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.8256, 0.9448)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_mcnemar_exact():
    # b=3, c=10: 2 * P(Bin(13, 1/2) <= 3) = 2 * 378 / 8192
    assert mcnemar_p(3, 10) == pytest.approx(2 * 378 / 8192)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(3, 10, mid_p=True) < mcnemar_p(3, 10)
    r = mcnemar([True, True, False, False], [True, False, True, True])
    assert (r["b"], r["c"], r["n"]) == (1, 2, 4)
    assert mcnemar_p(2000, 2300) < 1e-5  # large counts do not overflow


def test_two_proportion_holm_auc_steps():
    assert two_proportion_test(50, 100, 50, 100) == pytest.approx(1.0)
    assert two_proportion_test(90, 100, 60, 100) < 1e-5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert trapezoid_auc([0.0, 0.1, 0.3], [1.0, 0.5, 0.1]) == pytest.approx(0.45)
    assert math.isnan(trapezoid_auc([0.1], [0.5]))


# ------------------------------------------------------------------------------------ compare
def test_identical_runs_pass(base, capsys):
    assert main(["compare", str(base), str(base)]) == 0
    out = capsys.readouterr().out
    assert "(no differences: all" in out and "0 worse" in out and "ok" in out
    assert main(["compare", str(base), str(base), "--all"]) == 0
    assert "(0 lost, 0 gained)" in capsys.readouterr().out


def test_injected_clean_regression_fails(base, tmp_path, capsys):
    new = make_run(tmp_path / "new", clean=_flip(_clean_vec(), 40, False))  # 40 more errors per seed (+10 pp)
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "| clean error" in line)
    assert "worse" in row and "+10.00 pp" in row and "Fisher over 2 seeds (80 lost, 0 gained)" in row
    assert "FAIL" in out and row.startswith("| primary")
    # the same regression is not a failure when the primary family does not gate
    assert main(["compare", str(base), str(new), "--fail-on", "secondary"]) == 0


def test_noise_is_not_a_regression(base, tmp_path, capsys):
    v = _flip(_flip(_clean_vec(), 3, False), 2, True, start=200)  # 3 lost, 2 gained per seed
    new = make_run(tmp_path / "new", clean=v)
    assert main(["compare", str(base), str(new), "--all"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| clean error" in line)
    assert "same" in row and "(6 lost, 4 gained)" in row


def test_improvement_is_reported_but_passes(base, tmp_path, capsys):
    new = make_run(tmp_path / "new", clean=_flip(_clean_vec(), 30, True))
    assert main(["compare", str(base), str(new)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| clean error" in line)
    assert "better" in row


def test_robust_regression_of_a_single_attack_is_secondary(base, tmp_path, capsys):
    new = make_run(tmp_path / "new", robust=_flip(_robust_vec(), 40, False))
    assert main(["compare", str(base), str(new), "--format", "csv"]) == 0  # not the leaderboard worst case
    assert main(["compare", str(base), str(new), "--format", "csv", "--fail-on", "all"]) == 1
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if line.startswith("secondary"))
    assert "worse" in row and "McNemar" in row
    assert "worse in: secondary" in captured.err  # the summary goes to stderr with --format csv


def test_without_per_example_vectors_falls_back_and_says_so(tmp_path, capsys):
    base = make_run(tmp_path / "base", per_example=False)
    new = make_run(tmp_path / "new", per_example=False, errors={0: 0.30, 1: 0.30})
    assert main(["compare", str(base / "results.json"), str(new / "results.json")]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if "| clean error" in line)
    assert "two-proportion z (no per-example data)" in row and "worse" in row


def test_throughput_same_machine_threshold(base, tmp_path, capsys):
    slow = make_run(tmp_path / "slow", train_ex_s=70_000.0)  # -30%
    assert main(["compare", str(base), str(slow)]) == 0  # throughput is not a failing family by default
    assert main(["compare", str(base), str(slow), "--fail-on", "primary,throughput"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if "train ex/s" in line)
    assert "worse" in row and "-30.0%" in row
    assert main(["compare", str(base), str(slow), "--fail-on", "throughput", "--throughput-threshold", "0.5"]) == 0


def test_throughput_on_different_machines_is_not_comparable(base, tmp_path, capsys):
    other = dict(MACHINE, cpu="Other CPU", device_name="Other CPU")
    new = make_run(tmp_path / "new", train_ex_s=10_000.0, machine=other)
    assert main(["compare", str(base), str(new), "--fail-on", "throughput"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "train ex/s" in line)
    assert "not comparable" in row and "machines differ" in row


def test_training_failure_is_a_regression(base, tmp_path, capsys):
    new = make_run(tmp_path / "new", failed=(1,))
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "training seed 1" in out and "loss is NaN" in out


def test_different_datasets_are_an_error(base, tmp_path, capsys):
    new = make_run(tmp_path / "new", checksum="sha256:bbbb")
    assert main(["compare", str(base), str(new)]) == 2
    assert "different datasets" in one_error_line(capsys)


@pytest.mark.parametrize("content", ['{"schema": "vib-bench/results/1", "models": {"ml', '{"schema": "other"}'])
def test_bad_results_file_is_one_line_error(base, tmp_path, content, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text(content)
    assert main(["compare", str(base), str(bad)]) == 2
    assert "results file" in one_error_line(capsys)
    assert main(["compare", str(tmp_path / "missing"), str(base)]) == 2
    assert "no results file" in one_error_line(capsys)


def test_bad_flags_are_one_line_errors(base, capsys):
    assert main(["compare", str(base), str(base), "--fail-on", "speed"]) == 2
    assert "--fail-on" in one_error_line(capsys)
    assert main(["compare", str(base), str(base), "--alpha", "2"]) == 2
    assert "--alpha" in one_error_line(capsys)


def test_compare_rows_api(base):
    rows = compare_runs(Results.load(base), Results.load(base))
    assert {r["family"] for r in rows} == {"clean", "robust", "throughput"}
    assert all(r["verdict"] == "same" for r in rows)


# ------------------------------------------------------------------------------------ history
def test_history_orders_by_time_and_flags_a_planted_step(tmp_path, capsys):
    runs = [
        make_run(tmp_path / "r1", recorded_at="2026-01-01T00:00:00+00:00", errors={0: 0.100, 1: 0.104}),
        make_run(tmp_path / "r2", recorded_at="2026-01-02T00:00:00+00:00", errors={0: 0.102, 1: 0.098}),
        make_run(tmp_path / "r3", recorded_at="2026-01-03T00:00:00+00:00", errors={0: 0.250, 1: 0.246}),
    ]
    plot = tmp_path / "history.png"
    # given out of order: the table follows the recorded time
    assert main(["history", str(runs[2]), str(runs[0]), str(runs[1]), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| r")][1:]  # after the header
    assert [line.split("|")[1].strip() for line in table] == ["r1", "r2", "r3"]
    # the step is the change between the fitted levels: r1 and r2 form one segment (10.10%), r3 another (24.80%)
    assert "STEP" not in table[1] and "STEP +14.70" in table[2]
    assert "step: mlp clean_error changed by +14.70 at r3 (level 10.10 -> 24.80" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_within_noise_has_no_step(tmp_path, capsys):
    runs = [
        make_run(
            tmp_path / f"r{i}", recorded_at=f"2026-01-0{i + 1}T00:00:00+00:00", errors={0: 0.10 + 0.005 * i, 1: 0.10}
        )
        for i in range(3)
    ]
    assert main(["history", *map(str, runs), "--order", "given", "--metric", "clean_error", "--model", "ml*"]) == 0
    out = capsys.readouterr().out
    assert "STEP" not in out and "no step larger than the noise" in out


def test_history_bad_metric(base, capsys):
    assert main(["history", str(base), "--metric", "speed"]) == 2
    assert "--metric" in one_error_line(capsys)
