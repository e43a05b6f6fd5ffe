"""The versioned results format: older files are upgraded (in memory on load, on disk by
``vib-bench upgrade``), newer ones refused, and an upgrade changes no measured number."""

import json
import logging
import shutil
from pathlib import Path

import pytest
from conftest import GOLDEN_RESULTS, one_error_line

from bench.cli import main
from bench.results import FORMAT, Results
from bench.results.upgrade import STEPS, format_of, update_to_2

DATA = Path(__file__).resolve().parent / "data"
FORMAT1 = DATA / "results_format1.json"  # the golden results file as format 1 wrote it (frozen)
SMOKE = Path(__file__).resolve().parent.parent / "results" / "smoke"


def as_format1(text: str) -> str:
    """A current results file's text as format 1 wrote it (format 2 changed only the header)."""
    head = f'{{\n "schema": "vib-bench/results",\n "format": {FORMAT},\n'
    assert FORMAT == 2 and text.startswith(head), "update this test's format-1 writer with the new format"
    return '{\n "schema": "vib-bench/results/1",\n' + text[len(head) :]


def test_every_format_has_one_step():
    assert sorted(STEPS) == list(range(2, FORMAT + 1))
    assert format_of(json.loads(FORMAT1.read_text())) == 1
    assert format_of(json.loads(GOLDEN_RESULTS.read_text())) == FORMAT
    assert format_of({"schema": "vib-bench/results", "format": "2"}) is None
    assert update_to_2({"schema": "vib-bench/results/1", "run": {}, "models": {}}) == {
        "schema": "vib-bench/results",
        "format": 2,
        "run": {},
        "models": {},
    }


def test_loading_an_old_file_upgrades_it_in_memory_with_one_notice(tmp_path, caplog):
    shutil.copy(FORMAT1, tmp_path / "results.json")
    with caplog.at_level(logging.INFO, logger="bench"):
        res = Results.load(tmp_path)
        Results.load(tmp_path)
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("bench")]
    assert len(notes) == 1 and "format 1" in notes[0] and "vib-bench upgrade" in notes[0]
    assert res.raw["format"] == FORMAT
    assert res.raw == json.loads(GOLDEN_RESULTS.read_text())  # the committed golden file is the upgraded one
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == "vib-bench/results/1"  # not written


def test_the_command_line_prints_the_notice_as_one_line(tmp_path, capsys):
    run = tmp_path / "old"
    run.mkdir()
    shutil.copy(FORMAT1, run / "results.json")
    assert main(["leaderboard", str(run), "--format", "csv"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vib-bench: note: ") and "results format 1" in err[0], err


def test_upgrade_writes_the_file_step_by_step_and_check_reports(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FORMAT1, run / "results.json")
    assert main(["upgrade", "--check", str(run)]) == 1
    assert json.loads((run / "results.json").read_text())["schema"] == "vib-bench/results/1"
    assert [p.name for p in run.iterdir()] == ["results.json"]  # --check writes nothing, not even a lock file
    assert main(["upgrade", str(run)]) == 0
    assert (run / "results.json").read_bytes() == GOLDEN_RESULTS.read_bytes()
    assert main(["upgrade", "--check", str(run)]) == 0
    out = capsys.readouterr().out
    assert "needs `vib-bench upgrade`" in out and "upgraded from format 1 to 2" in out and "up to date" in out


def test_a_file_newer_than_the_code_is_refused(tmp_path, capsys):
    data = json.loads(GOLDEN_RESULTS.read_text())
    data["format"] = FORMAT + 1
    (tmp_path / "results.json").write_text(json.dumps(data))
    for argv in (
        ["leaderboard", str(tmp_path), "--format", "csv"],
        ["upgrade", str(tmp_path)],
        ["upgrade", "--check", str(tmp_path)],
    ):
        assert main(argv) == 2
        line = one_error_line(capsys)
        assert f"results.json has format {FORMAT + 1}; this vib-bench reads up to {FORMAT}: upgrade vib-bench" in line


@pytest.mark.parametrize(
    "content", ['{"schema": "vib-bench/results", "models": {}}', '{"format": 2, "models": {}}', "[]"]
)
def test_a_file_without_a_format_is_not_a_results_file(tmp_path, capsys, content):
    (tmp_path / "results.json").write_text(content)
    assert main(["upgrade", str(tmp_path)]) == 2
    assert "not a vib-bench results file" in one_error_line(capsys)


def test_an_upgraded_committed_run_compares_equal_to_its_original(tmp_path, capsys):
    """A committed run written back in format 1, upgraded: byte-identical to the committed file, and
    ``compare --fail-on all --strict`` finds nothing between the two."""
    original, upgraded = tmp_path / "original", tmp_path / "upgraded"
    for d in (original, upgraded):
        shutil.copytree(SMOKE, d, ignore=shutil.ignore_patterns("*.png", "*.html", "*.md"))
        (d / "results.json").write_text(as_format1((SMOKE / "results.json").read_text()))
    assert main(["upgrade", str(upgraded)]) == 0
    assert (upgraded / "results.json").read_bytes() == (SMOKE / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["compare", str(original), str(upgraded), "--fail-on", "all", "--strict"]) == 0
    assert "0 worse, 0 better" in capsys.readouterr().out
