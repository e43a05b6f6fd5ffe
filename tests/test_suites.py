"""A suite is checked before anything runs; run's selection, --fresh, --resume and --dry-run."""

import json

import pytest
from conftest import one_error_line

from bench.cli import main

TINY = """
name = "tiny"
dataset = "digits"
models = ["mlp", "vib_beta1e-3"]
seeds = [0]
[train]
epochs = {epochs}
lr = 0.01
[overrides]
hidden = [16]
k = 4
[attack]
attacks = ["fgsm", "pgd"]
eps = {eps}
eps_l2 = []
n_examples = 40
[attack.set.pgd]
steps = 3
[timing]
batch_sizes = [10]
min_run_time = 0.01
"""


def suite(tmp_path, name="my.toml", epochs=2, eps="[0.0, 0.1]", **replace) -> str:
    text = TINY.format(epochs=epochs, eps=eps)
    for old, new in replace.items():
        text = text.replace(old.replace("_", " ") if old not in text else old, new)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "old, new, needle",
    [
        ("eps = [0.0, 0.1]", "eps = [0.0, -0.1]", "my.toml: [attack] eps: -0.1 is below 0"),
        (
            'attacks = ["fgsm", "pgd"]',
            'attacks = ["fgsm", "pgdd"]',
            "my.toml: unknown attack 'pgdd' (did you mean 'pgd'",
        ),
        ("lr = 0.01", 'lr = "fast"', "my.toml: [train] lr: 'fast' is not a number"),
        ('models = ["mlp", "vib_beta1e-3"]', 'models = ["mpl"]', "my.toml: models: no registered model matches 'mpl'"),
        ("steps = 3", "steps = -3", "my.toml: [attack.set.pgd] steps: expected an integer >= 1"),
        ("steps = 3", "stepz = 3", "[attack.set.pgd] stepz: attack pgd has no such setting"),
        (
            "n_examples = 40",
            "n_examples = 4000",
            "my.toml: [attack] n_examples: 4000 is more than the 360 test examples",
        ),
        ("epochs = 2", "epochs = 0", "my.toml: [train] epochs: 0 is below 1"),
        ("hidden = [16]", 'hidden = "wide"', "model"),
        ("min_run_time = 0.01", "min_run_time = 0", "my.toml: [timing] min_run_time: 0 is not above 0"),
    ],
)
def test_a_bad_suite_is_refused_before_anything_runs(tmp_path, capsys, old, new, needle):
    path = tmp_path / "my.toml"
    text = TINY.format(epochs=2, eps="[0.0, 0.1]")
    assert old in text
    path.write_text(text.replace(old, new))
    out = tmp_path / "run"
    assert main(["run", "--suite", str(path), "--out", str(out), "--no-progress"]) == 2
    assert needle in one_error_line(capsys)
    assert not out.exists()  # nothing was trained, nothing was written


def test_dry_run_plans_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--suite", suite(tmp_path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 model(s) x 1 seed(s)" in text and "attack cells: 8" in text  # fgsm, pgd at 0 and 0.1, x 2 models
    assert "estimated time" in text and "nothing was run" in text and not out.exists()


def test_run_selects_models_and_seeds_and_is_quiet_by_default(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["run", "--suite", suite(tmp_path), "--out", str(out), "--models", "mlp", "--seeds", "3", "--no-progress"])
        == 0
    )
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in lines] == ["[train", "[attack", "[timing"]
    assert "mlp seed 3: trained" not in text  # per-model lines only with --verbose
    data = json.loads((out / "results.json").read_text())
    assert list(data["models"]) == ["mlp"] and list(data["models"]["mlp"]["seeds"]) == ["3"]


def test_an_existing_run_needs_resume_or_fresh_and_resume_names_changed_keys(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--out", str(out), "--models", "mlp", "--no-progress", "-q"]
    assert main(["run", "--suite", suite(tmp_path), *args]) == 0
    assert main(["run", "--suite", suite(tmp_path), *args]) == 2
    assert "--resume" in one_error_line(capsys) and True
    # a changed recipe is refused, naming the key
    assert main(["run", "--suite", suite(tmp_path, epochs=3), *args, "--resume"]) == 2
    assert "epochs: 2 -> 3" in one_error_line(capsys)
    # a new eps is recorded and only its cells run
    assert main(["run", "--suite", suite(tmp_path, eps="[0.0, 0.1, 0.2]"), *args, "--resume"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["run"]["suite"]["attack"]["eps"] == [0.0, 0.1, 0.2]
    assert {r["eps"] for r in data["models"]["mlp"]["seeds"]["0"]["attacks"]} == {0.0, 0.1, 0.2}
    # --fresh starts over
    assert main(["run", "--suite", suite(tmp_path, epochs=3), *args, "--fresh"]) == 0
    assert json.loads((out / "results.json").read_text())["run"]["train"]["epochs"] == 3


def test_list_and_show_suites(capsys):
    assert main(["list", "suites"]) == 0
    assert {"smoke", "quick", "paper"} <= {ln.split()[0] for ln in capsys.readouterr().out.splitlines()}
    assert main(["show", "suite", "quick"]) == 0
    assert 'name = "quick"' in capsys.readouterr().out


def test_ctrl_c_leaves_no_running_status(tmp_path, monkeypatch, capsys):
    import bench.train.recipe as training

    real = training.make_train_step

    def interrupting(*a, **k):
        step = real(*a, **k)
        calls = []

        def wrapped(*x, **y):
            calls.append(1)
            if len(calls) > 15:
                raise KeyboardInterrupt
            return step(*x, **y)

        return wrapped

    monkeypatch.setattr(training, "make_train_step", interrupting)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--models",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "5",
                "--set",
                "hidden=8",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 130
    )
    status = json.loads((out / "models" / "mlp" / "seed0" / "status.json").read_text())
    assert status["state"] == "interrupted" and status["epochs_done"] == 1
