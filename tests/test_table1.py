"""Table 1 over seeds against the paper (bench.reporting.table1): on a tiny digits run of the five Table 1 models x two
seeds, its means and spreads are the results file's clean errors, the paired test is the leaderboard's,
and it lands in table1.md and in the report."""

import math

import pytest

from bench.claims.verdicts import PAPER_TABLE1
from bench.reporting.ranking import compare_models
from bench.reporting.report import report_html
from bench.reporting.table1 import TABLE1, table1, table1_markdown, write_table1
from bench.results import Results
from bench.train.recipe import TrainConfig
from bench.train.stage import train_run

TINY = {"hidden": [16]}
MODELS = {
    "mlp": TINY,
    "dropout": TINY,
    "confidence_penalty": TINY,
    "label_smoothing": TINY,
    "vib_beta1e-3": {**TINY, "k": 4},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from bench.data import load_dataset

    out = tmp_path_factory.mktemp("t1") / "run"
    train_run(
        out, load_dataset("digits"), MODELS, [0, 1], TrainConfig(epochs=1, lr=1e-3), progress=False, log=lambda *_: None
    )
    return out


def test_rows_are_the_mean_and_spread_over_seeds_of_the_recorded_errors(run):
    res = Results.load(run)
    t = table1(res)
    assert [r.model for r in t.rows] == list(PAPER_TABLE1) and t.dataset == "digits"
    for r in t.rows:
        errs = [100 * res.seed(r.model, s).clean["error"] for s in (0, 1)]
        mean = sum(errs) / 2
        assert r.n == 2 and math.isclose(r.mean_std[0], mean)
        assert math.isclose(r.mean_std[1], abs(errs[0] - errs[1]) / math.sqrt(2))
        assert math.isclose(r.difference, mean - PAPER_TABLE1[r.model])
    paired = compare_models(res, "vib_beta1e-3", "mlp", "clean_error")
    assert (t.paired.a_only, t.paired.b_only, t.paired.p) == (paired.a_only, paired.b_only, paired.p)
    assert t.paired.n == 2 * t.n_test


def test_table1_md_and_the_report_section(run):
    path = write_table1(run)
    assert path == run / TABLE1
    text = path.read_text()
    t = table1(Results.load(run))
    vib = t.rows[-1]
    row = f"| VIB (beta = 1e-3) | 2 | {vib.mean_std[0]:.2f} ± {vib.mean_std[1]:.2f} | 1.13 | {vib.difference:+.2f} |"
    assert row in text
    assert "| Baseline (no regularization) | 2 |" in text and "| 1.38 |" in text
    assert f"p = {t.paired.p:.3g}" in text and "Fisher-combined over 2 seeds" in text
    assert "not MNIST" in text
    page = report_html(run)
    assert '<section id="table1">' in page and f"{vib.mean_std[0]:.2f} ± {vib.mean_std[1]:.2f}" in page


def test_a_missing_model_and_a_single_seed(tmp_path, digits):
    out = tmp_path / "run"
    train_run(out, digits, {"mlp": TINY}, [3], TrainConfig(epochs=1), progress=False, log=lambda *_: None)
    text = table1_markdown(table1(Results.load(out)))
    assert "(one seed)" in text and "| Dropout | 0 | not in this run | 1.34 | - |" in text
    assert "No paired test" in text


def test_no_table_without_its_models(tmp_path, digits):
    out = tmp_path / "run"
    train_run(out, digits, {"mlp_tanh": TINY}, [0], TrainConfig(epochs=1), progress=False, log=lambda *_: None)
    assert table1(Results.load(out)) is None and write_table1(out) is None and not (out / TABLE1).exists()
    assert 'id="table1"' not in report_html(out)
