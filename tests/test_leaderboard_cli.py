"""The leaderboard and history command lines as a researcher uses them: eps columns, JSON, format aliases,
and which files a command writes."""

import json
import shutil

import pytest
from conftest import golden_data, golden_run_dir, one_error_line

from bench.cli import main
from bench.reporting.leaderboard import build_leaderboard, default_eps, pick_eps
from bench.results import Results


@pytest.fixture
def run_dir(tmp_path):
    return golden_run_dir(tmp_path)


def header(out: str) -> str:
    return out.splitlines()[0]


def test_default_eps_come_from_the_runs_grid(run_dir):
    assert default_eps(Results.load(run_dir)) == [0.1, 0.2, 0.3]  # the golden grid 0, 0.1, 0.2, 0.3: all nonzero
    data = golden_data()
    for m in data["models"].values():
        for s in m["seeds"].values():
            s.pop("attacks", None)
    assert default_eps(Results(data)) == [0.1, 0.3]  # nothing attacked: the standard pair (columns are empty)


@pytest.mark.parametrize(
    "grid, chosen",
    [
        ([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], [0.1, 0.2, 0.3]),  # the paper suite: standard pair + the middle
        ([0.0, 0.05, 0.1, 0.25, 0.3], [0.05, 0.1, 0.3]),  # a tie goes to the smaller eps
        ([0.5, 1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 4.0]),  # no standard eps: the ends and the farthest
        ([0.0, 0.3], [0.3]),
    ],
)
def test_pick_eps(grid, chosen):
    assert pick_eps(grid) == chosen


def test_eps_chooses_the_robust_columns(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--eps", "0.2"]) == 0
    head = header(capsys.readouterr().out)
    assert "PGD ε=0.2 %" in head and "worst ε=0.2 %" in head
    assert "ε=0.1" not in head and "ε=0.3" not in head


def test_sort_by_any_eps_of_the_grid_adds_its_column(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--eps", "0.1", "--sort-by", "pgd@0.2", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "pgd@0.2" in lines[0].split(",") and "pgd@0.1" in lines[0].split(",")
    col = lines[0].split(",").index("pgd@0.2")
    values = [float(line.split(",")[col]) for line in lines[1:] if line.split(",")[col]]
    assert values == sorted(values, reverse=True) and len(values) == 4  # best first; 'broken' has none


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--eps", "0.25"], "attacked no L-inf eps 0.25"),
        (["--eps", "fast"], "bad eps 'fast'"),
        (["--sort-by", "pgd@0.25"], "attacked no L-inf eps 0.25"),
        (["--sort-by", "cw@0.1"], "unknown column"),
    ],
)
def test_bad_eps_is_one_line_error(run_dir, argv, message, capsys):
    assert main(["leaderboard", str(run_dir), *argv]) == 2
    assert message in one_error_line(capsys)


def test_json_holds_natural_units_and_the_marks(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["eps"] == [0.1, 0.2, 0.3] and doc["sort_by"] == "clean_error"
    rows = {r["model"]: r for r in doc["rows"]}
    assert rows["mlp"]["values"]["clean_error"] == pytest.approx(0.1208, abs=1e-4)  # a fraction, not %
    assert rows["mlp"]["std"]["clean_error"] == pytest.approx(0.0020, abs=1e-4)
    assert "clean_error" in rows["mlp"]["best"] and "clean_error" in rows["dropout"]["best"]  # tied, both marked
    assert rows["broken"]["values"]["clean_error"] is None and "out of memory" in rows["broken"]["notes"]
    assert rows["vib_beta1e-3"]["flags"] == ["masking?", "eot-needed", "randomised"]
    assert {c["key"] for c in doc["columns"]} >= {"clean_error", "worst@0.2", "auc"}
    assert any("McNemar" in n for n in doc["notes"])
    assert not (run_dir / "leaderboard.md").exists()


def test_markdown_is_github(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert main(["leaderboard", str(run_dir), "--format", "github"]) == 0
    assert capsys.readouterr().out == md and md.startswith("| model")


def test_csv_out_leaves_leaderboard_md_alone(run_dir, tmp_path, capsys):
    (run_dir / "leaderboard.md").write_text("mine\n")
    out = tmp_path / "board.csv"
    assert main(["leaderboard", str(run_dir), "--format", "csv", "--out", str(out)]) == 0
    assert (run_dir / "leaderboard.md").read_text() == "mine\n"
    assert out.read_text().startswith("model,seeds,clean_error")
    # the default rendering refreshes it, and says so
    assert main(["leaderboard", str(run_dir)]) == 0
    assert (run_dir / "leaderboard.md").read_text().startswith("# vib-bench leaderboard")
    assert "updated" in capsys.readouterr().err


def test_leaderboard_object_knows_its_eps(run_dir):
    lb = build_leaderboard(Results.load(run_dir), eps=[0.3, 0.1])
    assert lb.eps == [0.1, 0.3]
    assert [c.key for c in lb.columns if c.key.startswith("worst@")] == ["worst@0.1", "worst@0.3"]


# ---------------------------------------------------------------------------------------------- history
def test_history_json_and_any_eps(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    assert (
        main(["history", str(run_dir), str(other), "--metric", "worst@0.2", "--format", "json", "--order", "given"])
        == 0
    )
    out = capsys.readouterr().out
    doc = json.loads(out)  # stdout is JSON alone: no "step" lines
    assert doc["metric"] == "worst@0.2" and doc["better"] == "max"
    mlp = [r for r in doc["rows"] if r["model"] == "mlp"]
    assert [r["run"] for r in mlp] == ["run", "other"]
    assert mlp[0]["value"] == pytest.approx(0.055) and mlp[1]["step"] is False
    assert [r for r in doc["rows"] if r["model"] == "broken"][0]["value"] is None


def test_history_accepts_markdown(run_dir, capsys):
    assert main(["history", str(run_dir), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| run")
    assert main(["history", str(run_dir), "--format", "yaml"]) == 2
    assert "invalid choice" in one_error_line(capsys)
