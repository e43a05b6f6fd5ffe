"""`vib-bench run` end to end on a reduced smoke suite; an interrupted run resumes without redoing work."""

import json

import pytest

from bench.cli import main

SUITE = """
name = "mini"
dataset = "digits"
models = ["mlp", "vib_beta1e-3"]
seeds = [0]
[train]
epochs = 3
lr = 1e-3
[overrides]
hidden = [16]
k = 4
[attack]
attacks = ["fgsm", "pgd", "eot_pgd"]
eps = [0.0, 0.1, 0.3]
eps_l2 = []
n_examples = 40
[attack.set.pgd]
steps = 5
[attack.set.eot_pgd]
steps = 5
eot_iter = 2
[timing]
batch_sizes = [1, 100]
min_run_time = 0.01
"""


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "mini.toml"
    path.write_text(SUITE)
    return path


def test_run_trains_attacks_times_and_writes_the_leaderboard(tmp_path, suite_file, capsys):
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["suite"]["name"] == "mini"
    for name in ("mlp", "vib_beta1e-3"):
        entry = res["models"][name]["seeds"]["0"]
        assert entry["train"]["state"] == "done"
        assert 0 <= entry["clean"]["error"] <= 1
        attacks = {(r["attack"], r["eps"]) for r in entry["attacks"]}
        assert {("fgsm", 0.1), ("pgd", 0.3), ("worst_case", 0.3)} <= attacks
        assert entry["throughput"]["inference"]["100"]["median"] > 0
    vib_attacks = {r["attack"] for r in res["models"]["vib_beta1e-3"]["seeds"]["0"]["attacks"]}
    assert "eot_pgd" in vib_attacks
    board = (out / "leaderboard.md").read_text()
    assert "mlp" in board and "vib_beta1e-3" in board
    printed = capsys.readouterr().out
    assert "leaderboard" in printed


def test_interrupted_run_resumes_without_redoing_training(tmp_path, suite_file, monkeypatch, capsys):
    import bench.attack

    out = tmp_path / "run"
    real = bench.attack.attack_run

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.attack, "attack_run", interrupted)
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--threads", "1", "--no-progress"]) == 130
    weights = out / "models" / "mlp" / "seed0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    # without --resume an existing run is never touched
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--threads", "1"]) == 2
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(bench.attack, "attack_run", real)
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite_file),
                "--out",
                str(out),
                "--resume",
                "--verbose",
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert weights.stat().st_mtime_ns == stamp  # training was not redone
    assert "already trained" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["models"]["mlp"]["seeds"]["0"]["attacks"]
