"""Leaderboard rendering against committed golden files.

The golden results file (tests/data/golden_results.json) is hand-made in the results schema, with
attack records (deterministic and randomised protocols, a raised flag), throughput, a partly failed
and a wholly failed model. A rendering change must be deliberate: regenerate the golden outputs with
``VIB_BENCH_UPDATE_GOLDEN=1 pytest tests/test_leaderboard.py`` and review the diff.
"""

import copy
import json
import os
from pathlib import Path

import pytest
from conftest import golden_data, golden_run_dir, one_error_line

from bench.cli import main
from bench.reporting.leaderboard import COLUMNS, build_leaderboard, robust_accuracy
from bench.reporting.leaderboard_render import leaderboard_markdown, render_leaderboard, write_leaderboard
from bench.results import AttackRecord, Results

DATA = Path(__file__).parent / "data"
GOLDEN = {
    "github": "golden_leaderboard.md",
    "latex": "golden_leaderboard.tex",
    "html": "golden_leaderboard.html",
    "csv": "golden_leaderboard.csv",
}
UPDATE = os.environ.get("VIB_BENCH_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; if deliberate, regenerate with VIB_BENCH_UPDATE_GOLDEN=1"


@pytest.fixture
def golden():
    return golden_data()


@pytest.fixture
def run_dir(tmp_path):
    return golden_run_dir(tmp_path)


@pytest.mark.parametrize("fmt", list(GOLDEN))
def test_cli_renders_every_format_exactly(run_dir, fmt, capsys):
    assert main(["leaderboard", str(run_dir), "--format", fmt]) == 0
    check_golden(GOLDEN[fmt], capsys.readouterr().out)
    # only the default rendering (Markdown on stdout) refreshes leaderboard.md
    if fmt == "github":
        check_golden("golden_leaderboard_doc.md", (run_dir / "leaderboard.md").read_text())
    else:
        assert not (run_dir / "leaderboard.md").exists()


def test_write_leaderboard_is_the_document(run_dir):
    path = write_leaderboard(run_dir)
    assert path == run_dir / "leaderboard.md"
    check_golden("golden_leaderboard_doc.md", path.read_text())
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_columns_and_marks(golden):
    lb = build_leaderboard(Results(golden))
    assert lb.models == ["mlp", "dropout", "vib_beta1e-3", "vib_beta1e-2", "broken"]  # clean error, failures last
    # 12.08% vs 16.39% on 360 examples is not significant (two-proportion test, no vectors here): a tie
    assert lb.best("clean_error") == {"mlp", "dropout"} and not lb.ranking("clean_error").significant
    assert lb.best("worst@0.3") == set()  # all tied: nobody is best
    assert lb.best("rate") == set() and lb.best("nll") == set()  # no direction / no paired test: no mark
    text = render_leaderboard(Results(golden), "github")
    assert "**12.08 ± 0.20**" in text  # mean ± sample std, in %, bold best
    assert "masking?" in text and "randomised" in text  # raised flags and the randomised note
    assert "seed 0 failed: BenchError: out of memory at step 12" in text  # failure row keeps its error
    assert r"loss is NaN \| diverged" in text  # a pipe cannot break the Markdown table


def test_randomised_model_takes_the_worse_protocol(golden):
    recs = [AttackRecord(r) for r in golden["models"]["vib_beta1e-3"]["seeds"]["0"]["attacks"]]
    paper = next(r for r in recs if (r["attack"], r["eps"]) == ("pgd", 0.1))["robust_acc"]
    eot = next(r for r in recs if (r["attack"], r["eps"]) == ("eot_pgd", 0.1))["robust_acc"]
    assert eot < paper and robust_accuracy(recs, "pgd", 0.1) == eot
    worst = next(r for r in recs if r["attack"] == "worst_case" and r["eps"] == 0.1 and r.get("leaderboard"))
    assert robust_accuracy(recs, "worst", 0.1) == worst["robust_acc"]


def test_a_significant_best_is_marked_alone(golden):
    golden["models"]["mlp"]["seeds"]["0"]["clean"]["error"] = 0.01  # 1% vs 16-26% on 360 examples
    golden["models"]["mlp"]["seeds"]["1"]["clean"]["error"] = 0.01
    b = build_leaderboard(Results(golden)).ranking("clean_error")
    assert b.models == {"mlp"} and b.significant and b.runner_up == "dropout" and b.p < 1e-6


def test_sort_by(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--sort-by", "pgd@0.1", "--format", "csv"]) == 0
    order = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert order == ["mlp", "dropout", "vib_beta1e-2", "vib_beta1e-3", "broken"]  # higher is better: descending
    assert main(["leaderboard", str(run_dir), "--sort-by", "model", "--format", "csv"]) == 0
    order = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert order == sorted(order)


def test_unknown_sort_key_is_one_line_error(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--sort-by", "accuracy"]) == 2
    assert "unknown column" in one_error_line(capsys)


def test_run_without_attacks_or_timing_still_renders(tmp_path, golden, capsys):
    data = copy.deepcopy(golden)
    for m in data["models"].values():
        for e in m["seeds"].values():
            for k in ("attacks", "attack_checks", "throughput"):
                e.pop(k, None)
    d = tmp_path / "trained_only"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(data))
    assert main(["leaderboard", str(d)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "clean err %" in header and "rate (nats)" in header
    assert "PGD" not in header and "AUC" not in header and "ex/s" not in header and "params" not in header
    # a column that exists but has no data here cannot be sorted by
    assert main(["leaderboard", str(d), "--sort-by", "pgd@0.3"]) == 2
    assert "no pgd@0.3 data" in one_error_line(capsys)


def test_out_file(run_dir, tmp_path, capsys):
    out = tmp_path / "table.tex"
    assert main(["leaderboard", str(run_dir), "--format", "latex", "--out", str(out)]) == 0
    assert out.read_text() == (DATA / GOLDEN["latex"]).read_text()


@pytest.mark.parametrize("content", ['{"schema": "vib-bench/results/1", "models": {"mlp": ', "[1, 2, 3]\n", ""])
def test_bad_results_file_is_one_line_error(tmp_path, content, capsys):
    (tmp_path / "results.json").write_text(content)
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert "results file" in one_error_line(capsys)


def test_empty_run_renders(tmp_path, golden):
    golden["models"] = {}
    assert "No models in this run yet." in leaderboard_markdown(Results(golden))


def test_every_column_is_documented():
    assert all(c.doc for c in COLUMNS)
    assert len({c.key for c in COLUMNS}) == len(COLUMNS)


def test_cells_from_fewer_seeds_say_how_many(golden):
    # seed 1 of vib_beta1e-2 loses its attacks: its robust cells rest on one seed, its clean error on two
    golden["models"]["vib_beta1e-2"]["seeds"]["1"].pop("attacks")
    text = render_leaderboard(Results(golden), "github")
    row = next(line for line in text.splitlines() if line.startswith("| vib_beta1e-2"))
    assert "(1 seed)" in row and "26.39 ± 2.75 (" not in row
    mlp = next(line for line in text.splitlines() if line.startswith("| mlp"))
    assert "seed)" not in mlp
