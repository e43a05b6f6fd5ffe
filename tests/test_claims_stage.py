"""``vib-bench claims`` on a run directory: measured once, resumed, judged again, rendered, and its suite."""

import pytest

from bench.claims import REPRODUCED, VERDICTS, ClaimsOptions, claims_html, options_for_run, run_claims
from bench.cli import main
from bench.data import load_dataset
from bench.errors import BenchError
from bench.results import Results
from bench.rundir import claims_path, figure_path, load_per_example
from bench.settings import settings
from bench.suite import SCHEMA, load_suite
from bench.train.recipe import TrainConfig
from bench.train.stage import train_run

FAST = {
    "cw_paper": {"steps": 20, "binary_steps": 3, "initial_const": 1.0, "lr": 0.05},
    "cw_paper_targeted": {"steps": 20, "binary_steps": 3, "initial_const": 1.0, "lr": 0.05},
    "pgd_l2_strong": {"steps": 5, "restarts": 1},
    "eot_pgd_l2_strong": {"steps": 3, "restarts": 1},
    "pgd_strong": {"steps": 5, "restarts": 1},
}
CLAIMS_TABLE = {
    "n_examples": 24,
    "eps_l2": 1.5,
    "eps_linf": [0.2],
    "eot_iter": 2,
    "zeros_n": 2,
    "broad_min": 1,
    "strong_l2": ["pgd_l2_strong", "eot_pgd_l2_strong"],
    "strong_linf": ["pgd_strong"],
    "set": FAST,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims") / "run"
    ds = load_dataset("digits")
    models = {
        "mlp": {"hidden": [16, 16]},
        "vib_beta0": {"hidden": [16, 16], "k": 4},
        "vib_beta1e-2": {"hidden": [16, 16], "k": 4},
    }
    train_run(
        out,
        ds,
        models,
        [0],
        TrainConfig(epochs=2, lr=3e-3, batch_size=100),
        log=lambda *_: None,
        suite={"name": "t", "claims": CLAIMS_TABLE},
    )
    return out


@pytest.fixture(scope="module")
def measured(run_dir):
    logs = []
    rows = run_claims(options_for_run(run_dir), log=logs.append)
    return rows, logs


def test_claims_are_measured_recorded_and_rendered(run_dir, measured):
    rows, logs = measured
    assert [r["id"] for r in rows] == ["T1", "a", "b", "c", "d", "d'", "e"]
    assert all(r["verdict"] in VERDICTS for r in rows)
    res = Results.load(run_dir)
    assert [r["id"] for r in res.claims["rows"]] == [r["id"] for r in rows]
    assert res.claims["setup"]["n_examples"] == 24 and res.claims["setup"]["models"] == [
        "mlp",
        "vib_beta0",
        "vib_beta1e-2",
    ]
    seed = res.seed("vib_beta0", 0)
    cells = {c["key"] for c in seed.claims["cells"]}
    assert {"cw_paper|L2|inf", "cw_paper_targeted|L2|inf", "eot_pgd_l2_strong|L2|1.5", "pgd_strong|Linf|0.2"} <= cells
    assert "eot_pgd_l2_strong|L2|1.5" not in {c["key"] for c in res.seed("mlp", 0).claims["cells"]}  # deterministic
    vec = load_per_example(run_dir, "vib_beta0", 0)
    assert vec["claims:cw_paper@inf"].shape == (24,) and "claims:cw_paper@1.5" in vec
    # robust under an attack implies clean-correct; inside the budget is at least as robust as unbounded
    assert not (vec["claims:cw_paper@1.5"] & ~vec["claims:clean"]).any()
    assert (vec["claims:cw_paper@1.5"] >= vec["claims:cw_paper@inf"]).all()
    assert seed.claims["zeros"]["n"] == 2 and len(seed.claims["zeros"]["strongest"]["success"]) == 2
    text = claims_path(run_dir).read_text()
    assert "| Claim (the paper's statement) |" in text and rows[1]["verdict"] in text
    for name in ("claims_beta.png", "claims_zeros.png"):
        assert figure_path(run_dir, name).stat().st_size > 1000
    page = claims_html(res)
    assert page.startswith('<section id="claims">') and "<table>" in page and rows[0]["claim"][:20] in page
    assert claims_html(Results.new({}, {})) == ""
    from bench.reporting.report import report_html

    report = report_html(run_dir)
    assert '<section id="claims">' in report and 'href="#claims"' in report  # the report shows the claims


def test_a_second_run_reuses_every_cell_and_a_changed_setup_is_refused(run_dir, measured):
    logs = []
    run_claims(options_for_run(run_dir), log=logs.append)
    assert any("0 to run" in line for line in logs) and not any("robust" in line for line in logs)
    with pytest.raises(BenchError, match="another setup"):
        run_claims(options_for_run(run_dir, n_examples=12), log=lambda *_: None)


def test_the_command_judges_again_and_prints_the_table(run_dir, measured, capsys):
    assert main(["claims", str(run_dir), "--judge-only"]) == 0
    out = capsys.readouterr().out
    assert "(a) The deterministic baseline has 0% accuracy" in out and "verdict:" in out
    assert main(["claims", str(run_dir), "--baseline", "dropout", "--judge-only"]) == 2  # not trained


def test_table1_row_is_computed_from_the_full_test_vectors(run_dir, measured):
    rows, _ = measured
    t1 = rows[0]
    assert t1["id"] == "T1"
    # this run has no vib_beta1e-3: the row says so instead of inventing a number
    assert t1["verdict"] == "not measured"


def test_options_are_checked_before_any_work(run_dir):
    with pytest.raises(BenchError, match="eps_l2"):
        ClaimsOptions(run_dir, eps_l2=-1).validate()
    with pytest.raises(BenchError, match="no setting"):
        ClaimsOptions(run_dir, attack_set={"cw_paper": {"stepz": 3}}).validate()
    with pytest.raises(BenchError, match="L-inf|Linf"):
        ClaimsOptions(run_dir, strong_l2=["pgd_strong"]).validate()


def test_the_claims_suite_loads_and_its_keys_are_the_options():
    suite = load_suite("claims")
    assert "mlp" in suite["models"] and "vib_beta0" in suite["models"] and "vib_beta1e-10" in suite["models"]
    assert set(SCHEMA["claims"]) == {s.suite for _, s in settings(ClaimsOptions) if s.suite}
    opts = ClaimsOptions.from_suite(".", suite["claims"]).validate()
    assert opts.n_examples == suite["claims"]["n_examples"]
    assert REPRODUCED in VERDICTS


def test_command_budgets_refine_the_suite_s():
    table = {"n_examples": 50, "set": {"cw_paper": {"steps": 100, "binary_steps": 5}}}
    opts = ClaimsOptions.from_suite(".", table, n_examples=None, attack_set={"cw_paper": {"steps": 7}})
    assert opts.n_examples == 50
    assert opts.attack_set == {"cw_paper": {"steps": 7, "binary_steps": 5}}
    assert opts.budget("eot_pgd_l2_strong", randomised=True) == {"eot_iter": opts.eot_iter}
    assert opts.budget("eot_pgd_l2_strong", randomised=False) == {}


def test_a_run_without_weights_is_judged_again_from_its_measurements(run_dir, measured, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for w in copy.glob("models/*/seed*/model.safetensors"):
        w.unlink()
    assert main(["claims", str(copy), "--judge-only"]) == 0
    assert Results.load(copy).claims["rows"] == Results.load(run_dir).claims["rows"]
    assert main(["claims", str(copy)]) == 2  # measuring needs the weights: one line, not a traceback


def test_the_committed_claims_table_follows_from_its_committed_measurements(tmp_path):
    """results/claims: the verdicts are re-derived from the stored per-example vectors (no attack runs)."""
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "results" / "claims"
    if not (src / "results.json").exists():
        pytest.skip("no committed claims results")
    copy = tmp_path / "claims"
    shutil.copytree(src, copy)
    committed = Results.load(copy).claims["rows"]
    rows = run_claims(options_for_run(copy, judge_only=True), log=lambda *_: None)
    assert [r["verdict"] for r in rows] == [r["verdict"] for r in committed]
    assert [r["paper_protocol"] for r in rows] == [r["paper_protocol"] for r in committed]
