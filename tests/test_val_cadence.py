"""Validation cadence (issue 18, item 2): validation every N epochs and always after the last, chosen
automatically so that it costs about 2% of the steps' compute; the weights never depend on it, and the
epochs that were not validated say so (null val_error and val_nll), with the cadence in the status."""

import pytest
from safetensors.torch import load_file

from bench import rundir
from bench.train.recipe import Cadence, TrainConfig, auto_val_every
from bench.train.stage import train_run

TINY = {"hidden": [16, 16]}
MODELS = {"mlp": TINY, "vib_beta1e-3": {**TINY, "k": 4}}
quiet = dict(progress=False, log=lambda *_: None)


def test_the_automatic_cadence_follows_the_split_sizes():
    assert auto_val_every(50_000, 10_000) == 4  # MNIST: 10,000 / 150,000 = 6.7% -> every 4 epochs
    assert auto_val_every(60_000, 10_000) == 3  # MNIST, --train-split trainval: 5.6% -> every 3
    assert auto_val_every(1_077, 360) == 6  # digits: 11% -> every 6
    assert auto_val_every(55_000, 0) == 1 and auto_val_every(1_000, 60) == 1
    assert Cadence().val_every(50_000, 10_000) == 4 and Cadence(val_epochs=1).val_every(50_000, 10_000) == 1
    assert [e for e in range(1, 11) if Cadence.val_due(e, 10, 4)] == [4, 8, 10]


@pytest.mark.parametrize("stack", ["off", "on"])
def test_validation_every_3_epochs_leaves_the_weights_and_the_validated_epochs_unchanged(tmp_path, digits, stack):
    cfg = TrainConfig(epochs=7, lr=1e-3)
    runs = {}
    for every in (1, 3):
        out = tmp_path / f"every{every}"
        train_run(out, digits, MODELS, [0], cfg, stack=stack, cadence=Cadence(val_epochs=every), **quiet)
        runs[every] = out
    for name in MODELS:
        w1, w3 = (load_file(str(rundir.weights_path(runs[e], name, 0))) for e in (1, 3))
        assert w1.keys() == w3.keys() and all((w1[k] == w3[k]).all() for k in w1)
        every_epoch, sparse = (rundir.read_train_log(rundir.model_dir(runs[e], name, 0)) for e in (1, 3))
        assert all(r["val_error"] is not None for r in every_epoch)
        assert [r["epoch"] for r in sparse if r["val_error"] is not None] == [3, 6, 7]
        assert all(r["val_nll"] is None and r["val_time_s"] == 0 for r in sparse if r["epoch"] not in (3, 6, 7))
        for a, b in zip(every_epoch, sparse):
            assert a["loss"] == b["loss"]
            if b["val_error"] is not None:
                assert (a["val_error"], a["val_nll"]) == (b["val_error"], b["val_nll"])
        for e, out in runs.items():
            st = rundir.read_status(rundir.model_dir(out, name, 0))
            assert st["val_every"] == e and st["final_val_error"] == every_epoch[-1]["val_error"]


def test_the_default_validates_digits_every_6_epochs(tmp_path, digits):
    train_run(tmp_path, digits, {"mlp": TINY}, [0], TrainConfig(epochs=7), **quiet)
    log = rundir.read_train_log(rundir.model_dir(tmp_path, "mlp", 0))
    assert [r["epoch"] for r in log if r["val_error"] is not None] == [6, 7]
    assert rundir.read_status(rundir.model_dir(tmp_path, "mlp", 0))["val_every"] == 6


def test_the_overhead_benchmark_measures_both_cadences_in_one_run(tmp_path):
    """``benchmarks/epoch_overhead.py --val-every 1,auto`` at a tiny size: one entry per cadence."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "epoch_overhead.py"
    spec = importlib.util.spec_from_file_location("epoch_overhead", path)
    bench_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_module)
    out = bench_module.main(
        [
            "--models",
            "mlp,dropout",
            "--set",
            "hidden=16",
            "--epochs",
            "3",
            "--val-every",
            "1,auto",
            "--json",
            str(tmp_path / "o.json"),
        ]
    )
    assert [r["val_every"] for r in out["runs"]] == [1, 6]
    assert json.loads((tmp_path / "o.json").read_text()) == out
    for r in out["runs"]:
        assert r["wall_s_per_epoch"] >= r["step_s_per_epoch"] > 0 and r["overhead_fraction_steady"] < 1


def test_the_train_command_takes_the_cadence(tmp_path, capsys):
    from bench.cli import main
    from tests.conftest import one_error_line

    out = tmp_path / "run"
    args = ["train", "--models", "mlp", "--dataset", "digits", "--epochs", "3", "--set", "hidden=8", "--no-progress"]
    assert main([*args, "--val-every", "2", "--out", str(out)]) == 0
    log = rundir.read_train_log(rundir.model_dir(out, "mlp", 0))
    assert [r["epoch"] for r in log if r["val_error"] is not None] == [2, 3]
    for bad in ("0", "x", "1.5"):
        assert main([*args, "--val-every", bad, "--out", str(tmp_path / f"bad{bad}")]) == 2
        assert "--val-every" in one_error_line(capsys)
        assert not (tmp_path / f"bad{bad}").exists()
