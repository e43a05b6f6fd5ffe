"""Attacks: registry invariants, the sanity checks themselves, CLI errors and an end-to-end run.

Tiny models trained in the test on scikit-learn's 8x8 digits keep the whole file fast.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import one_error_line
from torch import nn

import attacks
from attacks import AttackError, create_attack, get_spec, list_attacks
from bench.attack import (
    cells as attack_cells,
)
from bench.attack import (
    checks as attack_checks,
)
from bench.attack import (
    cost as attack_cost,
)
from bench.attack import (
    mitigate as attack_mitigate,
)
from bench.cli import main
from bench.data import load_dataset
from bench.protocol import predict_correct, seeded
from bench.results import AttackRecord, Results
from models.mlp import MLPClassifier
from models.vib import VIBClassifier

# Small budgets so that every registered attack runs in well under a second on a tiny model.
FAST = {"steps": 4, "n_queries": 40, "eot_iter": 2, "square_queries": 40}
EPS = {"Linf": 0.15, "L2": 1.0}


def _fast(name: str) -> dict:
    return {k: v for k, v in FAST.items() if k in get_spec(name).budget}


def _train(model, x, y, steps=150, lr=1e-2):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss, _ = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models gain nothing from threads, and on a shared 2-core machine intra-op threads waiting
    # for each other make every forward pass ~50x slower.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds.x_train, ds.y_train, ds.x_test[:96], ds.y_test[:96]


@pytest.fixture(scope="module")
def tiny_mlp(digits):
    x, y, _, _ = digits
    torch.manual_seed(0)
    return _train(MLPClassifier(in_shape=(1, 8, 8), hidden=(32,)), x, y)


@pytest.fixture(scope="module")
def tiny_vib(digits):
    x, y, _, _ = digits
    torch.manual_seed(0)
    return _train(VIBClassifier(in_shape=(1, 8, 8), hidden=(32,), k=8, n_samples=4), x, y)


def _acc(model, x, y):
    return float(predict_correct(model, x, y, "cpu").double().mean())


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", list_attacks())
@pytest.mark.parametrize("which", ["tiny_mlp", "tiny_vib"])
def test_registered_attack_invariants(name, which, digits, request):
    model = request.getfixturevalue(which)
    _, _, x, y = digits
    x, y = x[:48], y[:48]
    spec = get_spec(name)
    eps = EPS[spec.norm]
    model.train()  # the attack must put it in eval mode and give it back in train mode
    atk = create_attack(name, model, None if spec.minimum_norm else eps, **_fast(name))
    with seeded(0):
        adv = atk(x, y)
    assert model.training and all(p.requires_grad for p in model.parameters())
    model.eval()
    assert adv.shape == x.shape
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    d = (adv - x).flatten(1)
    size = d.abs().amax(1) if spec.norm == "Linf" else d.norm(dim=1)
    if not spec.minimum_norm:
        assert float(size.max()) <= eps + 1e-6
    # robust accuracy (correct both clean and attacked) never exceeds clean accuracy, and the
    # attack does not make a correctly classified example easier on average either
    clean = predict_correct(model, x, y, "cpu")
    attacked = predict_correct(model, adv, y, "cpu")
    assert float((clean & attacked).double().mean()) <= float(clean.double().mean())
    assert float(attacked.double().mean()) <= float(clean.double().mean()) + 1e-9
    cfg = atk.config()
    assert cfg["name"] == name and cfg["norm"] == spec.norm and cfg["torchattacks"]
    json.dumps(cfg)  # stored in results.json


@pytest.mark.parametrize("name", [n for n in list_attacks() if not get_spec(n).minimum_norm])
def test_eps_zero_leaves_accuracy_unchanged(name, tiny_mlp, digits):
    _, _, x, y = digits
    x, y = x[:48], y[:48]
    atk = create_attack(name, tiny_mlp, 0.0, **_fast(name))
    with seeded(0):
        adv = atk(x, y)
    assert float((adv - x).abs().max()) == 0.0
    assert _acc(tiny_mlp, adv, y) == _acc(tiny_mlp, x, y)


def test_pgd_at_least_as_strong_as_fgsm(tiny_mlp, digits):
    _, _, x, y = digits
    with seeded(0):
        fgsm = create_attack("fgsm", tiny_mlp, 0.1)(x, y)
        pgd = create_attack("pgd", tiny_mlp, 0.1)(x, y)
    clean = _acc(tiny_mlp, x, y)
    a_fgsm, a_pgd = _acc(tiny_mlp, fgsm, y), _acc(tiny_mlp, pgd, y)
    assert a_pgd <= a_fgsm + 1e-9
    assert a_fgsm < clean  # and the attacks do something


def test_registry_errors(tiny_mlp):
    with pytest.raises(AttackError, match="already registered"):
        attacks.register_attack(lambda model, eps: None, norm="Linf", name="pgd")
    with pytest.raises(AttackError, match="unknown attack"):
        create_attack("nope", tiny_mlp, 0.1)
    with pytest.raises(AttackError, match="outside"):
        create_attack("pgd", tiny_mlp, 1.5)
    with pytest.raises(AttackError, match="no setting"):
        create_attack("pgd", tiny_mlp, 0.1, stepz=3)
    assert any(line.startswith("pgd ") for line in attacks.describe_attacks())


def test_autoattack_version_follows_randomness(tiny_mlp, tiny_vib):
    assert create_attack("autoattack", tiny_mlp, 0.1).budget["version"] == "standard"
    vib = create_attack("autoattack", tiny_vib, 0.1)
    assert vib.budget["version"] == "rand" and vib.eot


# ------------------------------------------------------------------------------------ sanity checks
class Rounded(nn.Module):
    """Masks gradients: the input is quantised with a rounding that has no straight-through gradient."""

    stochastic = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 4) / 4)


class Probabilities(nn.Module):
    stochastic = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.softmax(self.inner(x), dim=-1)


class Noisy(nn.Module):
    """Randomised in eval mode, without saying so."""

    stochastic = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner((x + 0.05 * torch.randn_like(x)).clamp(0, 1))


def test_checks_of_an_honest_model(tiny_mlp, digits):
    _, _, x, y = digits
    c = attack_checks.model_checks(tiny_mlp, x, y, "cpu")
    assert not c["randomised"] and not c["returns_probabilities"] and not c["zero_gradients"]
    assert not c["large_eps_not_zero"]


def test_masked_gradients_are_flagged(tiny_mlp, digits):
    _, _, x, y = digits
    c = attack_checks.model_checks(Rounded(tiny_mlp).eval(), x, y, "cpu")
    assert c["zero_gradients"] and c["zero_grad_fraction"] == 1.0


def test_probabilities_are_flagged(tiny_mlp, digits):
    _, _, x, y = digits
    assert attack_checks.model_checks(Probabilities(tiny_mlp).eval(), x, y, "cpu")["returns_probabilities"]


def test_randomised_models_are_detected(tiny_mlp, tiny_vib, digits):
    _, _, x, y = digits
    c = attack_checks.model_checks(Noisy(tiny_mlp).eval(), x, y, "cpu")
    assert c["randomised"] and c["undeclared_randomness"]
    c = attack_checks.model_checks(tiny_vib, x, y, "cpu")
    assert c["randomised"] and not c["undeclared_randomness"] and c["grad_cosine_between_draws"] is not None


def _rec(attack, eps, acc, n=1000, protocol="standard"):
    return {"attack": attack, "norm": "Linf", "eps": eps, "protocol": protocol, "robust_acc": acc, "n": n, "checks": {}}


def test_cross_record_checks():
    recs = [
        _rec("fgsm", 0.1, 0.5),
        _rec("pgd", 0.1, 0.7),  # PGD weaker than FGSM
        _rec("fgsm", 0.2, 0.6),  # accuracy rises with eps
        _rec("square", 0.1, 0.2),
    ]  # gradient-free far stronger: masking
    attack_checks.post_checks([AttackRecord(r) for r in recs], {"zero_gradients": True})
    by = {(r["attack"], r["eps"]): r["checks"] for r in recs}
    assert by[("pgd", 0.1)]["weaker_than_fgsm"]
    assert by[("fgsm", 0.2)]["accuracy_rises_with_eps"] and not by[("fgsm", 0.1)]["accuracy_rises_with_eps"]
    assert by[("square", 0.1)]["gradient_free_stronger"]
    assert all(r["checks"]["zero_gradients"] for r in recs)


def test_cost_meter_counts_gradients(tiny_mlp, digits):
    _, _, x, y = digits
    atk = create_attack("pgd", tiny_mlp, 0.1, steps=3)
    with attack_cost.CostMeter(tiny_mlp) as m:
        atk(x[:10], y[:10])
    assert m.grad_rows == 30 and m.forward_rows == 30
    per_row = 2 * (64 * 32 + 32 * 10)
    assert m.flops == pytest.approx(30 * per_row * 2)


# --------------------------------------------------------------------------------------- CLI errors
def test_cli_unknown_attack(tmp_path, capsys):
    assert main(["attack", str(tmp_path), "--attacks", "pgd,nope"]) == 2
    assert "unknown attack 'nope'" in one_error_line(capsys)


def test_cli_eps_outside_unit_interval(tmp_path, capsys):
    assert main(["attack", str(tmp_path), "--eps", "0.1,1.5"]) == 2
    assert "outside [0, 1]" in one_error_line(capsys)


def test_cli_nonexistent_run_dir(tmp_path, capsys):
    assert main(["attack", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in one_error_line(capsys)


def test_cli_run_without_trained_models(tmp_path, capsys):
    Results.new({"dataset": {"name": "digits"}, "models": {}, "seeds": [0]}, {}).save(tmp_path)
    assert main(["attack", str(tmp_path)]) == 2
    assert "no trained models" in one_error_line(capsys)


def test_cli_list_attacks(capsys):
    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("fgsm", "pgd", "cw_l2", "eot_pgd", "autoattack", "square"))


# -------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    rc = main(
        [
            "train",
            "--models",
            "mlp,vib_beta1e-3",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--lr",
            "1e-2",
            "--set",
            "hidden=32",
            "--set",
            "k=8",
            "--set",
            "n_samples=4",
            "--out",
            str(run),
            "--no-progress",
        ]
    )
    assert rc == 0
    return run


ATTACK_ARGS = [
    "--attacks",
    "fgsm,pgd,eot_pgd,cw_l2",
    "--eps",
    "0,0.1",
    "--eps-l2",
    "1",
    "--n-examples",
    "64",
    "--attack-set",
    "pgd.steps=5",
    "--attack-set",
    "eot_pgd.steps=3",
    "--eot-iter",
    "2",
    "--attack-set",
    "cw_l2.steps=10",
    "--no-progress",
    "--grid-eps",
    "0.1",
]


def test_attack_end_to_end_and_resume(tiny_run, capsys, monkeypatch):
    from bench.rundir import load_per_example

    calls = []
    real = attack_cells.run_attack

    def counting(*a, **kw):
        if kw.get("desc"):  # the attack cells (model checks and the picture pass no desc)
            calls.append(kw["desc"])
        return real(*a, **kw)

    monkeypatch.setattr(attack_cells, "run_attack", counting)
    monkeypatch.setattr(attack_mitigate, "run_attack", counting)  # the traced cells run there
    assert main(["attack", str(tiny_run), *ATTACK_ARGS]) == 0
    out = capsys.readouterr().out
    assert "worst_case" in out and "pgd [paper]" in out
    data = Results.load(tiny_run).raw
    assert data["environments"]["attack"]["matmul_peak_gflops"] > 0
    mlp = data["models"]["mlp"]["seeds"]["0"]
    vib = data["models"]["vib_beta1e-3"]["seeds"]["0"]
    keys = {(r["attack"], r["eps"], r["protocol"]) for r in mlp["attacks"]}
    assert {
        ("fgsm", 0.1, "standard"),
        ("pgd", 0.1, "standard"),
        ("cw_l2", 1.0, "standard"),
        ("worst_case", 0.1, "standard"),
        ("worst_case", 1.0, "standard"),
    } <= keys
    assert not any(r["attack"] == "eot_pgd" for r in mlp["attacks"])  # deterministic: no EOT
    assert {("pgd", 0.1, "paper"), ("eot_pgd", 0.1, "eot"), ("worst_case", 0.1, "all")} <= {
        (r["attack"], r["eps"], r["protocol"]) for r in vib["attacks"]
    }
    for r in mlp["attacks"] + vib["attacks"]:
        assert 0.0 <= r["ci_low"] <= r["robust_acc"] <= r["ci_high"] <= 1.0 and r["n"] == 64
        assert not r["checks"].get("outside_eps_ball") and not r["checks"].get("outside_unit_box")
        if r["eps"] == 0:
            assert r["robust_acc"] == r["clean_acc"] and not r["checks"]["eps0_differs_from_clean"]
            if r["attack"] != "worst_case":  # filled from the clean pass, without running the attack
                assert r["from_clean_pass"] and r["wall_time_s"] == 0 and r["grad_evals"] == 0
    pgd = next(r for r in mlp["attacks"] if r["attack"] == "pgd" and r["eps"] == 0.1)
    assert "PGD(" in pgd["config"]["torchattacks"] and pgd["config"]["budget"]["steps"] == 5
    assert pgd["grad_evals"] == 64 * 5 and pgd["wall_time_s"] > 0 and pgd["gflop"] > 0
    assert pgd["robust_acc"] < pgd["clean_acc"]  # the attack really attacks an undefended model
    lead = next(r for r in vib["attacks"] if r["attack"] == "worst_case" and r["eps"] == 0.1 and r["leaderboard"])
    pv = load_per_example(tiny_run, "vib_beta1e-3", 0)
    every = pv["attack:fgsm@0.1"] & pv["attack:pgd@0.1"] & pv["attack:eot_pgd@0.1"]  # robust to every attack
    every &= pv["attack:transfer_pgd_strong@0.1"]  # the transfer from the mean mode (transfer failure's mitigation)
    assert (pv["attack:worst_case@0.1"] == every).all() and lead["n_robust"] == every.sum()
    assert vib["attack_checks"]["randomised"] and not mlp["attack_checks"]["randomised"]
    pe = load_per_example(tiny_run, "mlp", 0)
    assert {"attack:pgd@0.1", "attack:worst_case@0.1", "attack:worst_case_l2@1"} <= set(pe)
    assert pe["attack:pgd@0.1"].sum() == pgd["n_robust"]
    assert (tiny_run / "figures" / "adv_mlp_seed0.png").stat().st_size > 1000
    n_cells = len(calls)
    # mlp: fgsm, pgd at eps 0.1 (eps 0: the clean pass) + one CW run; vib: + eot_pgd, and a transfer cell per
    # nonzero eps group, L-inf 0.1 and L2 1 (the mitigation of transfer failure); a cell rerun with more steps
    # (incomplete optimization) repeats its desc
    assert len(set(calls)) == 2 + 1 + 3 + 1 + 2
    assert sum("transfer_pgd" in c for c in set(calls)) == 2

    # without --resume: refused, one line
    assert main(["attack", str(tiny_run), *ATTACK_ARGS]) == 2
    assert "--resume" in one_error_line(capsys)

    # --resume: nothing recomputed, records untouched; a new eps adds only its cells
    before = {m: data["models"][m]["seeds"]["0"]["attacks"] for m in ("mlp", "vib_beta1e-3")}
    assert main(["attack", str(tiny_run), *ATTACK_ARGS, "--resume", "--no-grid"]) == 0
    assert len(calls) == n_cells
    after = Results.load(tiny_run).raw
    for m in before:
        old = {(r["attack"], r["norm"], r["eps"], r["protocol"]): r["wall_time_s"] for r in before[m]}
        new = {
            (r["attack"], r["norm"], r["eps"], r["protocol"]): r["wall_time_s"]
            for r in after["models"][m]["seeds"]["0"]["attacks"]
        }
        assert old == new
    args = [a if a != "0,0.1" else "0,0.1,0.2" for a in ATTACK_ARGS]
    assert main(["attack", str(tiny_run), *args, "--resume", "--models", "mlp", "--no-grid"]) == 0
    assert calls[n_cells:] == [c for c in calls[n_cells:] if " 0.2" in c] and len(set(calls[n_cells:])) == 2


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("pgd.steps=abc", "integer"),
        ("pgd.steps=-3", "integer"),
        ("pgd.alpha=-1", "number >= 0"),
        ("pgd.random_start=maybe", "true or false"),
    ],
)
def test_bad_attack_set_values_are_refused_before_anything_is_written(tmp_path, capsys, setting, needle):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--models",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--set",
                "hidden=8",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    before = (run / "results.json").read_bytes()
    capsys.readouterr()
    assert (
        main(["attack", str(run), "--attacks", "pgd", "--eps", "0.1", "--n-examples", "20", "--attack-set", setting])
        == 2
    )
    assert needle in one_error_line(capsys)
    assert (run / "results.json").read_bytes() == before
