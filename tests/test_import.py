"""``vib-bench import``: weights trained elsewhere (a plain safetensors state dict) become a model of a run
that every later stage can use; mismatches are one line that names them."""

import json

import pytest
import torch
from conftest import one_error_line
from safetensors.torch import save_file

from bench.cli import main
from bench.data import load_dataset
from bench.reporting.leaderboard_render import render_leaderboard
from bench.results import Results
from bench.train.weights import load_trained
from models import create_model


def outside_model(seed=0, hidden=(16,), **kw):
    """A model 'trained elsewhere': random weights, nudged so it is not the registry's own initialisation."""
    torch.manual_seed(seed)
    model = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=list(hidden), **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def save(model, path, prefix=""):
    save_file({prefix + k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_import_evaluates_and_every_stage_can_use_it(tmp_path, capsys):
    model = outside_model()
    weights = save(model, tmp_path / "mine.safetensors")
    run = tmp_path / "run"
    assert (
        main(
            [
                "import",
                "mlp",
                str(weights),
                "--into",
                str(run),
                "--dataset",
                "digits",
                "--set",
                "hidden=16",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert "imported mlp seed 0 (mlp)" in capsys.readouterr().out
    res = Results.load(run)
    entry = res.seed("mlp", 0)
    assert entry.imported["file"] == str(weights.resolve()) and entry.imported["sha256"].startswith("sha256:")
    # the clean error is that of the outside model itself, on the same test split
    x, y = load_dataset("digits").split("test")
    with torch.no_grad():
        expected = float((model(x).argmax(1) != y).double().mean())
    assert entry.clean_metric("error") == pytest.approx(expected)
    assert res.model("mlp").config["hidden"] == [16]
    # the stored weights rebuild through bench.train.weights, so attack (and time, info, report) work on them
    reloaded = load_trained(run, "mlp", 0)
    for (k, a), b in zip(model.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert (
        main(
            [
                "attack",
                str(run),
                "--attacks",
                "fgsm",
                "--eps",
                "0,0.1",
                "--n-examples",
                "40",
                "--no-grid",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert Results.load(run).seed("mlp", 0).records()
    board = render_leaderboard(Results.load(run))
    assert "imported weights (seed 0; no training log)" in board
    doc = (run / "results.json").read_text()
    assert json.loads(doc)["run"]["models"] == {"mlp": {"hidden": 16}}


def test_a_second_model_joins_an_existing_run(tmp_path, capsys):
    run = tmp_path / "run"
    a = save(outside_model(0), tmp_path / "a.safetensors")
    b = save(outside_model(1, dropout=0.0), tmp_path / "b.safetensors", prefix="module.")  # DataParallel keys
    assert main(["import", "mlp", str(a), "--into", str(run), "--dataset", "digits", "--set", "hidden=16"]) == 0
    assert (
        main(["import", "dropout", str(b), "--into", str(run), "--set", "hidden=16", "--name", "theirs", "--seed", "3"])
        == 0
    )
    res = Results.load(run)
    assert sorted(res.model_names()) == ["mlp", "theirs"] and res.seeds == [0, 3]
    assert res.model("theirs").seed(3).imported["model"] == "dropout"
    # the same slot twice is refused; so is another data set
    assert main(["import", "mlp", str(a), "--into", str(run), "--set", "hidden=16"]) == 2
    assert "already holds mlp seed 0" in one_error_line(capsys)
    assert (
        main(["import", "mlp", str(a), "--into", str(run), "--set", "hidden=16", "--name", "x", "--dataset", "mnist"])
        == 2
    )
    assert "was evaluated on digits" in one_error_line(capsys)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: {**sd, "extra.weight": torch.zeros(2)}, "unexpected key 'extra.weight'"),
        (lambda sd: {k: v for k, v in sd.items() if not k.endswith("bias")}, "missing key"),
        (
            lambda sd: {k: (torch.zeros(3, 3) if i == 0 else v) for i, (k, v) in enumerate(sd.items())},
            "has shape [3, 3] in the file but [16, 64] in the model",
        ),
        (lambda sd: {k: v.to(torch.int64) for k, v in sd.items()}, "is torch.int64 in the file but torch.float32"),
    ],
)
def test_a_mismatch_is_one_line_that_names_it(tmp_path, change, message, capsys):
    sd = {k: v.contiguous() for k, v in outside_model().state_dict().items()}
    path = tmp_path / "bad.safetensors"
    save_file(change(sd), str(path))
    run = tmp_path / "run"
    assert main(["import", "mlp", str(path), "--into", str(run), "--dataset", "digits", "--set", "hidden=16"]) == 2
    line = one_error_line(capsys)
    assert "bad.safetensors does not fit mlp (hidden=16) on digits" in line and message in line
    assert not run.exists()  # nothing written before the checks pass


def test_wrong_architecture_arguments_are_named(tmp_path, capsys):
    path = save(outside_model(), tmp_path / "w.safetensors")  # trained with hidden=16
    assert main(["import", "mlp", str(path), "--into", str(tmp_path / "r"), "--dataset", "digits"]) == 2
    line = one_error_line(capsys)
    assert "missing key 'body.2.weight' (and 1 more)" in line and "check MODEL and --set" in line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mlp", "{missing}"], "no such weights file"),
        (["mlp", "{notst}"], "not a safetensors file"),
        (["mpl", "{good}"], "no registered model matches 'mpl' (did you mean 'mlp'?)"),
        (["mlp", "{good}", "--set", "depth=3"], "--set depth: no selected model takes this argument"),
    ],
)
def test_bad_input_is_one_line(tmp_path, argv, message, capsys):
    good = save(outside_model(), tmp_path / "good.safetensors")
    (tmp_path / "notst.safetensors").write_bytes(b"PK\x03\x04 a zip, say")
    files = {
        "missing": str(tmp_path / "nope.safetensors"),
        "notst": str(tmp_path / "notst.safetensors"),
        "good": str(good),
    }
    argv = [a.format(**files) for a in argv]
    assert main(["import", *argv, "--into", str(tmp_path / "run"), "--dataset", "digits"]) == 2
    assert message in one_error_line(capsys)
