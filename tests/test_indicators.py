"""The indicators of attack failure, each caught on a planted failure, and none on an honest plain MLP.

Tiny models trained here on scikit-learn's 8x8 digits; each test runs one (norm, eps) group of the
attack stage in memory (``bench.attack.group.attack_group``) in a few seconds.
"""

from __future__ import annotations

import pytest
import torch

from attacks import create_attack
from bench.attack import indicators as ind
from bench.attack.checks import model_checks
from bench.attack.group import Group, ModelUnderAttack, attack_group
from bench.attack.stage import AttackOptions, plan_attacks
from bench.data import load_dataset
from bench.protocol import predict_correct
from models.mlp import MLPClassifier

EPS = 0.1


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds.x_train, ds.y_train, ds.x_test[:96], ds.y_test[:96]


@pytest.fixture(scope="module")
def mlp(digits):
    x, y, _, _ = digits
    torch.manual_seed(0)
    model = MLPClassifier(in_shape=(1, 8, 8), hidden=(32,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class Quantised(torch.nn.Module):
    """The MLP behind a non-differentiable input quantisation (zero input gradients everywhere); its
    ``mean_mode`` switches the quantisation off: the un-quantised twin, the surrogate to transfer from."""

    stochastic = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.num_classes = inner.num_classes
        self.mean_mode = False

    def forward(self, x):
        if not self.mean_mode:
            x = 0 * x + (torch.round(x * 4) / 4).detach()  # value round(4x)/4, input gradient exactly 0
        return self.inner(x)


class LastNotBest:
    """PGD that returns its last iterate, having stepped back towards the clean input after it fooled the
    model: the adversarial points it visited are not what it returns."""

    def __init__(self, model, eps):
        self.inner = create_attack("pgd", model, eps, steps=20, alpha=0.03)
        self.name, self.norm, self.eps, self.model = "pgd", "Linf", eps, model
        self.spec, self.budget = self.inner.spec, self.inner.budget

    def config(self):
        return self.inner.config()

    @property
    def eot(self):
        return False

    def __call__(self, x, y):
        adv = self.inner(x, y)
        with torch.no_grad():
            self.model(adv)  # the attack looks at its last point...
        return x + 0.0 * (adv - x)  # ...and returns the starting point


def _group(model, digits, attacks, *, set_=None, standalone=None, chain=(), model_name="m"):
    _, _, x, y = digits
    opts = AttackOptions(run_dir=None, attacks=list(attacks), eps=[EPS], eps_l2=[], attack_set=set_ or {})
    plan = plan_attacks(opts)
    clean = predict_correct(model, x, y, "cpu")
    m = ModelUnderAttack(model_name, 0, model, x, y, clean, "cpu", checks=model_checks(model, x, y, "cpu"))
    m.randomised = m.checks["randomised"]  # as the attack stage sets it
    records, vectors = [], {}
    attack_group(m, Group("Linf", EPS, tuple(standalone or attacks), tuple(chain)), opts, plan, records, vectors, {})
    return {r.attack: r for r in records}


def _fired(rec) -> set[str]:
    return set(rec.fired_indicators())


def test_nothing_fires_on_a_plain_mlp(mlp, digits):
    recs = _group(
        mlp,
        digits,
        ["fgsm", "pgd", "apgd_t"],
        standalone=["fgsm", "pgd"],
        chain=["apgd_t"],
        set_={"apgd_t": {"steps": 20, "n_target_classes": 3}},
    )
    for name in ("fgsm", "pgd", "apgd_t", "worst_case"):
        rec = recs[name]
        assert set(rec.indicators) >= {ind.SILENT, ind.UNSTABLE, ind.UNAVAILABLE}, (name, rec.indicators)
        assert _fired(rec) == set(), (name, rec.indicators)
        assert rec.mitigations == []
    # the iterative attacks were traced: a loss trace of at most 20 points that falls
    trace = recs["pgd"].loss_trace
    assert 2 <= len(trace) <= 20 and trace[-1] < trace[0]
    assert recs["pgd"].indicators[ind.UNCONSTRAINED]["value"] <= 0.05
    assert ind.TRANSFER not in recs["pgd"].indicators  # no surrogate: a plain MLP has no mean mode


def test_quantised_inputs_fire_unavailable_gradients_and_transfer_failure(mlp, digits):
    model = Quantised(mlp).eval()
    recs = _group(model, digits, ["pgd"])
    pgd = recs["pgd"]
    assert pgd.indicators[ind.UNAVAILABLE]["value"] == 1.0 and ind.UNAVAILABLE in _fired(pgd)
    # the transfer from the un-quantised twin fooled examples PGD could not move
    assert ind.TRANSFER in _fired(pgd), pgd.indicators
    assert recs["transfer_pgd_strong"].get("mitigation_for") == ind.TRANSFER
    assert ind.SILENT not in _fired(pgd) and ind.INCOMPLETE not in _fired(pgd)
    # mitigation: the transfer attack joined the worst case, which is lower than PGD alone
    wc = recs["worst_case"]
    assert "transfer_pgd_strong[standard]" in wc["attacks"]
    assert wc.robust_acc < pgd.robust_acc
    assert any(m["indicator"] == ind.TRANSFER for m in wc.mitigations)
    assert ind.UNAVAILABLE not in wc.fired_indicators(after=True)


def test_two_tiny_steps_fire_incomplete_optimization(mlp, digits):
    recs = _group(mlp, digits, ["pgd"], set_={"pgd": {"steps": 2, "alpha": 0.005}})
    pgd = recs["pgd"]
    assert ind.INCOMPLETE in _fired(pgd), pgd.indicators
    # 2 tiny steps cannot leave the neighbourhood of x even with no budget: unconstrained failure fires too
    assert _fired(pgd) - {ind.INCOMPLETE, ind.UNCONSTRAINED} == set(), pgd.indicators
    # mitigation: rerun with more steps (capped at 4x), recorded with the robust accuracy before and after
    (mit,) = pgd.mitigations
    assert mit["indicator"] == ind.INCOMPLETE and mit["steps"] == 8 and mit["cap"] == 8
    assert mit["robust_acc_after"] < mit["robust_acc_before"]
    assert pgd.robust_acc == pytest.approx(mit["robust_acc_after"])


def test_returning_the_last_iterate_fires_silent_success(mlp, digits):
    from bench.attack import cells

    _, _, x, y = digits
    clean = predict_correct(mlp, x, y, "cpu")
    atk = LastNotBest(mlp, 0.2)
    cell = cells.Cell(mlp, atk, x, y, clean, "cpu", 0, 1000)
    rec, robust = cells.standalone(cell, "pgd", "Linf", 0.2, "standard", atk.config())
    assert ind.SILENT in _fired(rec), rec.indicators
    assert ind.INCOMPLETE not in _fired(rec)
    # mitigation: the visited adversarial points replaced the returned ones, and the robust number uses them
    (mit,) = rec.mitigations
    assert mit["indicator"] == ind.SILENT and mit["robust_acc_before"] == pytest.approx(float(clean.double().mean()))
    assert rec.robust_acc == pytest.approx(mit["robust_acc_after"])
    assert mit["robust_acc_after"] < mit["robust_acc_before"]
    assert float(robust.double().mean()) == pytest.approx(rec.robust_acc)
    assert rec.indicators[ind.SILENT]["after"] == 0.0


# ------------------------------------------------------------------ leaderboard, report and summary
def _golden_with_indicators(tmp_path, failed_worst_case: bool):
    """The golden results with indicators on mlp seed 0 at L-inf 0.1: silent success fired on pgd and was
    mitigated; with ``failed_worst_case`` incomplete optimization fires on every attack and the worst case."""
    from conftest import golden_run_dir

    from bench.results import Results

    tmp_path.mkdir()
    run = golden_run_dir(tmp_path)
    res = Results.load(run)
    recs = res.model("mlp").seed(0).records()
    at = {r.attack: r for r in recs if r.norm == "Linf" and r.eps == 0.1}
    for rec in at.values():
        for n in ind.ORDER:
            ind.set_value(rec, n, 0.0)
    ind.set_value(at["pgd"], ind.SILENT, 0.04)
    at["pgd"].set_indicator_after(ind.SILENT, 0.0)
    at["pgd"].add_mitigation(ind.SILENT, "kept the best visited iterate", 0.5, 0.46)
    if failed_worst_case:
        for name in ("fgsm", "pgd"):
            ind.set_value(at[name], ind.INCOMPLETE, 0.3)
    ind.worst_case_indicators(at["worst_case"], ind.members_of(at["worst_case"], recs))
    res.save()
    return run


def test_leaderboard_report_and_summary_say_whether_a_number_rests_on_a_failed_attack(tmp_path):
    from bench.reporting.leaderboard import build_leaderboard
    from bench.reporting.leaderboard_render import render
    from bench.reporting.report import report_html
    from bench.reporting.summary import summarize
    from bench.results import Results

    run = _golden_with_indicators(tmp_path / "a", failed_worst_case=False)
    res = Results.load(run)
    lb = build_leaderboard(res)
    assert lb.text.at["mlp", "attack_failure"] == "silent success x1"
    assert lb.text.at["dropout", "attack_failure"] == ""  # never measured
    assert "attack failure" in render(lb, "github")
    (finding,) = [f for f in summarize(res) if f.topic == "attack_failure"]
    assert finding.level == "info" and finding.text.startswith("No leaderboard number rests on a failed attack")
    assert "1 number(s) were changed" in finding.text
    page = report_html(run, figures=[])
    assert "Attack-failure indicators" in page and "4!-&gt;0" in page  # pgd's silent success: 4% -> 0%

    run = _golden_with_indicators(tmp_path / "b", failed_worst_case=True)
    res = Results.load(run)
    assert build_leaderboard(res).text.at["mlp", "attack_failure"] == "silent success x1, incomplete optimization x2!"
    (finding,) = [f for f in summarize(res) if f.topic == "attack_failure"]
    assert finding.level == "warning" and "rest on a failed attack" in finding.text
    assert finding.items == ("mlp: incomplete optimization (Linf eps 0.1).",)


def test_unstable_predictions_are_measured_on_a_keyed_randomised_model(digits):
    """A VIB's second draw must use another noise key: with the protocol's own key it would repeat the first
    draw exactly and the indicator would silently read 0."""
    from models import create_model

    x, y, _, _ = digits
    torch.manual_seed(0)
    vib = create_model(
        "vib_beta1e-3", in_shape=(1, 8, 8), num_classes=10, hidden=[32], k=8, n_samples=1, sigma_shift=0.0
    )  # large noise and one sample: its predictions do vary
    opt = torch.optim.Adam(vib.parameters(), lr=1e-2)
    for _ in range(100):
        loss, _ = vib.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    recs = _group(vib.eval(), digits, ["pgd"])
    assert recs["pgd"].indicators[ind.UNSTABLE]["value"] > 0, recs["pgd"].indicators


def test_a_second_pass_over_a_finished_group_computes_nothing(mlp, digits, monkeypatch):
    """Mitigation cells (the transfer cell here) join the records after the chain ran; they must not change
    the chain's starting point, or every resume would rerun the cascade."""
    from bench.attack import cells

    _, _, x, y = digits
    model = Quantised(mlp).eval()
    opts = AttackOptions(
        run_dir=None,
        attacks=["pgd", "apgd_t"],
        eps=[EPS],
        eps_l2=[],
        attack_set={"apgd_t": {"steps": 10, "n_target_classes": 2}},
    )
    plan = plan_attacks(opts)
    clean = predict_correct(model, x, y, "cpu")
    m = ModelUnderAttack("m", 0, model, x, y, clean, "cpu", checks=model_checks(model, x, y, "cpu"))
    records, vectors = [], {}
    group = Group("Linf", EPS, ("pgd",), ("apgd_t",))
    attack_group(m, group, opts, plan, records, vectors, {})
    assert any(r.get("mitigation_for") for r in records)  # the transfer cell joined
    runs = []
    for name in ("standalone", "cascade"):
        real = getattr(cells, name)
        monkeypatch.setattr(cells, name, lambda *a, real=real, name=name, **k: runs.append(name) or real(*a, **k))
    attack_group(m, group, opts, plan, records, vectors, {})
    assert runs == []


def test_a_cut_iterate_history_leaves_incomplete_optimization_unmeasured(mlp, digits, monkeypatch):
    """When the tracer had to cut its history, incomplete optimization is not judged from the early
    queries alone: it is recorded as not measured (None), never as a silent 0."""
    import attacks.trace as trace

    monkeypatch.setattr(trace, "MAX_HISTORY_ROWS", 50)
    recs = _group(mlp, digits, ["pgd"])
    assert recs["pgd"].indicators[ind.INCOMPLETE]["value"] is None


def test_a_resumed_group_gets_the_group_indicators_and_the_transfer_cell_it_missed(mlp, digits):
    """Cells recorded without their group pass (here: a first run with the indicators off) get them on the
    next pass: the transfer cell runs and joins the worst case."""
    _, _, x, y = digits
    model = Quantised(mlp).eval()
    clean = predict_correct(model, x, y, "cpu")
    m = ModelUnderAttack("m", 0, model, x, y, clean, "cpu", checks=model_checks(model, x, y, "cpu"))
    records, vectors, group = [], {}, Group("Linf", EPS, ("pgd",), ())
    off = AttackOptions(run_dir=None, attacks=["pgd"], eps=[EPS], eps_l2=[], indicators=False)
    attack_group(m, group, off, plan_attacks(off), records, vectors, {})
    assert not any(r.get("mitigation_for") for r in records)
    on = AttackOptions(run_dir=None, attacks=["pgd"], eps=[EPS], eps_l2=[])
    attack_group(m, group, on, plan_attacks(on), records, vectors, {})
    pgd = next(r for r in records if r.attack == "pgd")
    assert ind.UNAVAILABLE in pgd.indicators and ind.TRANSFER in pgd.indicators
    assert any(r.get("mitigation_for") == ind.TRANSFER for r in records)
