"""The training engine: deterministic, resumable after kill -9, robust to divergence; the CLI's errors."""

import json
from pathlib import Path

import pytest
import torch
from conftest import one_error_line, sigkill_mid_training
from safetensors.torch import load_file

from bench.cli import main
from bench.train.recipe import TrainConfig, train_model
from bench.train.stage import train_run
from models import Classifier, register_model, unregister_model

SMALL = {"hidden": [16, 16]}
REPO = Path(__file__).resolve().parent.parent


def weights(run_dir, model="mlp", seed=0):
    return load_file(str(Path(run_dir) / "models" / model / f"seed{seed}" / "model.safetensors"))


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_identical_weights(tmp_path, digits):
    cfg = TrainConfig(epochs=2, lr=1e-3)
    for sub in ("a", "b"):
        train_model("vib_beta1e-3", 3, digits, cfg, tmp_path / sub, overrides={**SMALL, "k": 4}, progress=False)
    a, b = weights(tmp_path / "a", "vib_beta1e-3", 3), weights(tmp_path / "b", "vib_beta1e-3", 3)
    assert same_weights(a, b)
    train_model("vib_beta1e-3", 4, digits, cfg, tmp_path / "c", overrides={**SMALL, "k": 4}, progress=False)
    assert not same_weights(a, weights(tmp_path / "c", "vib_beta1e-3", 4))


def test_training_learns_and_logs(tmp_path, digits):
    st = train_model(
        "mlp", 0, digits, TrainConfig(epochs=8, lr=3e-3), tmp_path, overrides={"hidden": [64]}, progress=False
    )
    assert st["state"] == "done" and st["epochs_done"] == 8
    log = [json.loads(line) for line in (tmp_path / "models/mlp/seed0/train_log.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in log] == list(range(1, 9))
    assert log[-1]["ce"] < log[0]["ce"]
    assert log[-1]["val_error"] < 0.2  # 8 epochs on 8x8 digits: far better than chance (0.9)
    assert log[2]["lr"] == pytest.approx(1e-3 * 3 * 0.97)  # staircase decay every 2 epochs
    assert not (tmp_path / "models/mlp/seed0/checkpoint.pt").exists()


def test_finished_models_are_not_retrained(tmp_path, digits):
    cfg = TrainConfig(epochs=1)
    train_model("mlp", 0, digits, cfg, tmp_path, overrides=SMALL, progress=False)
    st = train_model("mlp", 0, digits, cfg, tmp_path, overrides=SMALL, resume=True, progress=False)
    assert st.get("skipped")


def test_resume_after_kill_9_gives_identical_weights(tmp_path):
    """A real SIGKILL in the middle of training, then --resume, ends with the uninterrupted weights."""
    args = [
        "train",
        "--models",
        "vib_beta1e-3",
        "--dataset",
        "digits",
        "--epochs",
        "40",
        "--lr",
        "1e-3",
        "--set",
        "hidden=48,48",
        "--set",
        "k=8",
        "--threads",
        "1",
        "--no-progress",
        "--checkpoint-every",
        "1",
    ]
    killed = tmp_path / "killed"
    status = killed / "models/vib_beta1e-3/seed0/status.json"
    done_before = sigkill_mid_training(args, killed, status)
    assert 3 <= done_before < 40, "the run was not interrupted mid-way"

    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    assert same_weights(weights(killed, "vib_beta1e-3"), weights(tmp_path / "straight", "vib_beta1e-3"))
    log = (killed / "models/vib_beta1e-3/seed0/train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == list(range(1, 41))


class _Exploding(Classifier):
    def __init__(self, in_shape=(1, 8, 8), num_classes=10, after=3):
        super().__init__(in_shape, num_classes, after=after)
        self.lin = torch.nn.Linear(self.in_features, num_classes)
        self.calls, self.after = 0, after

    def forward(self, x):
        return self.lin(x.flatten(1))

    def loss(self, x, y):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(self(x), y)
        if self.calls > self.after:
            loss = loss * float("nan")
        return loss, {"loss": loss.detach()}


@pytest.fixture
def exploding_model():
    """A model whose loss turns NaN, registered only for the test that needs it."""
    register_model(lambda **kw: _Exploding(**kw), name="test_exploding")
    yield "test_exploding"
    unregister_model("test_exploding")


def test_nan_loss_stops_that_model_and_the_others_go_on(tmp_path, digits, capsys, exploding_model):
    data = train_run(
        tmp_path,
        digits,
        {exploding_model: {}, "mlp": SMALL},
        [0],
        TrainConfig(epochs=2),
        progress=False,
        log=lambda *_: None,
    ).raw
    bad = data["models"]["test_exploding"]["seeds"]["0"]["train"]
    assert bad["state"] == "failed" and "non-finite" in bad["error"]
    assert data["models"]["mlp"]["seeds"]["0"]["train"]["state"] == "done"
    assert "clean" in data["models"]["mlp"]["seeds"]["0"]
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["models"]["test_exploding"]["seeds"]["0"]["train"]["state"] == "failed"


def test_train_cli_writes_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--models",
            "mlp,vib_beta1e-2",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--set",
            "hidden=16",
            "--set",
            "k=4",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"mlp", "vib_beta1e-2"}
    assert res["run"]["models"]["mlp"] == {"hidden": 16}  # k only goes to the VIB model
    assert res["run"]["models"]["vib_beta1e-2"] == {"hidden": 16, "k": 4}
    for m in res["models"].values():
        for seed in ("0", "1"):
            c = m["seeds"][seed]["clean"]
            assert 0.0 <= c["error"] <= 1.0 and c["n"] == 360
    assert "rate_nats" in res["models"]["vib_beta1e-2"]["seeds"]["0"]["clean"]
    assert res["environment"]["packages"]["torch"]
    # an existing run is never overwritten without --resume
    assert main(["train", "--models", "mlp", "--epochs", "1", "--out", str(out)]) == 2
    assert "--resume" in one_error_line(capsys)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--models", "nonexistent", "--epochs", "1"], "no registered model"),
        (["train", "--models", "vib_beta1e-3", "--set", "beta=-1", "--epochs", "1"], "beta"),
        (["train", "--models", "mlp", "--epochs", "0"], "--epochs"),
        (["train", "--models", "mlp", "--dataset", "imagenet", "--epochs", "1"], "unknown dataset"),
        (["train", "--models", "mlp", "--epochs", "x"], "invalid int"),
        (["train", "--models", "mlp", "--set", "nonsense", "--epochs", "1"], "KEY=VALUE"),
        (["train", "--models", "mlp", "--set", "k=3", "--epochs", "1"], "no selected model takes"),
        (["train", "--models", "mlp", "--seeds", "0,a", "--epochs", "1"], "seed"),
        (["train", "--models", "mlp", "--plugin", "/nonexistent.py", "--epochs", "1"], "no such file"),
        (["train", "--models", "mlp", "--checkpoint-every", "0", "--epochs", "1"], "--checkpoint-every"),
        (["train", "--models", "mlp", "--checkpoint-every", "fast", "--epochs", "1"], "--checkpoint-every"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert needle in one_error_line(capsys)
    assert not (tmp_path / "r" / "results.json").exists()


def test_resume_with_different_settings_is_refused(tmp_path, capsys):
    base = [
        "train",
        "--models",
        "mlp",
        "--dataset",
        "digits",
        "--set",
        "hidden=8",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main([*base, "--epochs", "1"]) == 0
    before = (tmp_path / "results.json").read_bytes()
    assert main([*base, "--epochs", "2", "--resume"]) == 2
    assert "trained with other settings (epochs: 1 -> 2)" in one_error_line(capsys)
    assert (tmp_path / "results.json").read_bytes() == before


def test_plugin_models_register_and_train(tmp_path, capsys):
    plugin = tmp_path / "my_models.py"
    plugin.write_text(
        "from models import register_model\n"
        "from models.mlp import MLPClassifier\n\n"
        "@register_model\n"
        "def my_wide_mlp(**kw):\n"
        "    '''A user model from a plugin.'''\n"
        "    return MLPClassifier(**{'hidden': (32,), **kw})\n"
    )
    assert main(["list", "models", "my_*", "--plugin", str(plugin)]) == 0
    assert "my_wide_mlp" in capsys.readouterr().out
    rc = main(
        [
            "train",
            "--models",
            "my_wide_mlp",
            "--plugin",
            str(plugin),
            "--epochs",
            "1",
            "--dataset",
            "digits",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["run"]["plugins"] == [str(plugin)]
    from bench.train.weights import load_trained

    assert load_trained(tmp_path / "run", "my_wide_mlp", 0)(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_out_that_is_a_file_and_non_python_plugin(tmp_path, capsys):
    afile = tmp_path / "not_a_dir"
    afile.write_text("x")
    assert main(["train", "--models", "mlp", "--epochs", "1", "--out", str(afile)]) == 2
    assert "is a file" in one_error_line(capsys)
    assert afile.read_text() == "x"
    suite = tmp_path / "suite.toml"
    suite.write_text("x = 1\n")
    assert main(["list", "models", "--plugin", str(suite)]) == 2
    assert "not a Python file" in one_error_line(capsys)
