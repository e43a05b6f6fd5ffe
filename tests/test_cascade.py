"""The strong default path: the attack cascade, the weak-attack-set flag, vanishing-gradient detection,
and the margin-loss attacks that break a model cross-entropy cannot move."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import create_attack
from bench.attack import checks as attack_checks
from bench.cli import main
from bench.protocol import attack_set_gaps, predict_correct
from bench.results import Results
from bench.rundir import load_per_example
from models.mlp import MLPClassifier

FAST = [
    "--attack-set",
    "pgd.steps=5",
    "--attack-set",
    "apgd_t.steps=5",
    "--attack-set",
    "apgd_t.n_target_classes=2",
    "--attack-set",
    "square.n_queries=30",
    "--attack-set",
    "apgd_ce.steps=5",
    "--no-progress",
    "--no-grid",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cascade") / "run"
    assert (
        main(
            [
                "train",
                "--models",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "3",
                "--lr",
                "1e-2",
                "--set",
                "hidden=32",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def _records(run_dir):
    return {(r.attack, r.eps): r for r in Results.load(run_dir).seed("mlp", 0).records()}


def test_cascade_attacks_only_what_is_still_robust(run, tmp_path):
    import shutil

    a = tmp_path / "a"
    shutil.copytree(run, a)
    assert (
        main(
            [
                "attack",
                str(a),
                "--attacks",
                "fgsm,pgd,apgd_t,square",
                "--eps",
                "0.1",
                "--eps-l2",
                "",
                "--n-examples",
                "80",
                *FAST,
            ]
        )
        == 0
    )
    recs = _records(a)
    pe = load_per_example(a, "mlp", 0)
    standalone = pe["attack:fgsm@0.1"] & pe["attack:pgd@0.1"]
    apgd, square, worst = recs[("apgd_t", 0.1)], recs[("square", 0.1)], recs[("worst_case", 0.1)]
    assert apgd["cascade"] and apgd["attacked_n"] == standalone.sum() and apgd["cascade_after"] == []
    assert square["attacked_n"] == pe["attack:apgd_t@0.1"].sum() and square["cascade_after"] == ["apgd_t"]
    assert (pe["attack:apgd_t@0.1"] <= standalone).all()  # cumulative: never robust again
    assert (pe["attack:worst_case@0.1"] == pe["attack:square@0.1"]).all()
    assert worst["attack_set_gaps"] == [] and not worst.checks["weak_attack_set"]
    # without the cascade every attack sees every example, and the worst case is the same per example
    b = tmp_path / "b"
    shutil.copytree(run, b)
    assert (
        main(
            [
                "attack",
                str(b),
                "--attacks",
                "fgsm,pgd,apgd_t,square",
                "--eps",
                "0.1",
                "--eps-l2",
                "",
                "--n-examples",
                "80",
                "--no-cascade",
                *FAST,
            ]
        )
        == 0
    )
    recs_b = _records(b)
    assert not recs_b[("apgd_t", 0.1)].get("cascade") and recs_b[("apgd_t", 0.1)]["grad_evals"] > apgd["grad_evals"]


def test_a_weak_attack_set_is_flagged(run, tmp_path, capsys):
    import shutil

    d = tmp_path / "weak"
    shutil.copytree(run, d)
    assert (
        main(["attack", str(d), "--attacks", "fgsm,pgd", "--eps", "0.1", "--eps-l2", "", "--n-examples", "40", *FAST])
        == 0
    )
    worst = _records(d)[("worst_case", 0.1)]
    assert worst.checks["weak_attack_set"] and len(worst["attack_set_gaps"]) == 2
    capsys.readouterr()
    assert main(["leaderboard", str(d)]) == 0
    assert "weak-attack-set" in capsys.readouterr().out


def test_attack_set_gaps():
    assert attack_set_gaps(["fgsm", "pgd", "apgd_t", "square"], randomised=False) == []
    assert attack_set_gaps(["pgd", "square"], randomised=False) == ["no margin or DLR-loss gradient attack"]
    assert len(attack_set_gaps(["pgd", "eot_pgd"], randomised=True)) == 2
    assert attack_set_gaps(["autoattack"], randomised=False) == []  # standard AutoAttack contains Square
    assert len(attack_set_gaps(["autoattack"], randomised=True)) == 1  # the 'rand' version does not


class Overconfident(nn.Module):
    """Logits scaled by 4: float32 cross-entropy is 0, and its gradient tiny but not 0, on most examples."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return 4.0 * self.inner(x)


@pytest.fixture(scope="module")
def overconfident():
    from bench.data import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = MLPClassifier(in_shape=(1, 8, 8), hidden=(32,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = model.loss(ds.x_train, ds.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Overconfident(model.eval()).eval(), ds.x_test[:60], ds.y_test[:60]


def test_vanishing_gradients_are_flagged_and_margin_attacks_still_work(overconfident):
    model, x, y = overconfident
    c = attack_checks.model_checks(model, x, y, "cpu")
    assert c["vanishing_gradients"] and c["vanishing_grad_fraction"] > 0.5 and not c["zero_gradients"]
    clean = predict_correct(model, x, y, "cpu")
    # cross-entropy PGD cannot move the examples whose loss is 0 in float32; the DLR-loss APGD-T can
    pgd = create_attack("pgd_l2", model, 3.0, steps=20)(x, y)
    apgd_t = create_attack("apgd_t_l2", model, 3.0, steps=20, n_target_classes=3)(x, y)
    robust_pgd = (clean & predict_correct(model, pgd, y, "cpu")).sum()
    robust_apgd = (clean & predict_correct(model, apgd_t, y, "cpu")).sum()
    assert robust_apgd < robust_pgd


def test_an_honest_model_has_no_vanishing_gradient_flag():
    from bench.data import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = MLPClassifier(in_shape=(1, 8, 8), hidden=(16,)).eval()  # untrained: soft predictions
    c = attack_checks.model_checks(model, ds.x_test[:60], ds.y_test[:60], "cpu")
    assert not c["vanishing_gradients"] and c["vanishing_grad_fraction"] == 0.0
