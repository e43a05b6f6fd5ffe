"""Every bad input of issue 17 item 7 exits 2 with one line, before anything is written (never exit 3)."""

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import golden_data, one_error_line

from bench.cli import main
from bench.errors import BenchError

TINY = ["--set", "hidden=16", "--epochs", "1", "--no-progress", "--threads", "1"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_with(tmp_path, text: str | bytes) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return run


def golden_text(edit) -> str:
    raw = golden_data()
    edit(raw)
    return json.dumps(raw)


def _seed(raw):
    return raw["models"]["mlp"]["seeds"][next(iter(raw["models"]["mlp"]["seeds"]))]


BAD_RESULTS = {
    "clean error a string": (golden_text(lambda r: _seed(r)["clean"].update(error="abc")), "clean.error"),
    "attacks not a list": (golden_text(lambda r: _seed(r).update(attacks={"a": 1})), "attacks"),
    "an attack not an object": (golden_text(lambda r: _seed(r)["attacks"].insert(0, 5)), "attacks[0]"),
    "an indicator value a string": (
        golden_text(
            lambda r: _seed(r)["attacks"][0].update(indicators={"silent_success": {"value": "x", "threshold": 0.0}})
        ),
        "indicators.silent_success.value",
    ),
    "a mitigation not an object": (
        golden_text(lambda r: _seed(r)["attacks"][0].update(mitigations=[1])),
        "mitigations[0]",
    ),
    "seeds a list": (golden_text(lambda r: r["models"]["mlp"].update(seeds=[1, 2])), "seeds"),
    "model not an object": (golden_text(lambda r: r["models"].update(mlp=[])), "models.mlp"),
    "run seeds huge": (golden_text(lambda r: r["run"].update(seeds=[10**20])), "run.seeds[0]"),
    "dataset name a number": (golden_text(lambda r: r["run"]["dataset"].update(name=3)), "run.dataset.name"),
    "1e400": (
        golden_text(lambda r: _seed(r)["clean"].update(error=0.918273645)).replace("0.918273645", "1e400"),
        "clean.error",
    ),
    "NaN literal": (
        golden_text(lambda r: _seed(r)["clean"].update(nll=0.918273645)).replace("0.918273645", "NaN"),
        "clean.nll",
    ),
    "-Infinity": (
        golden_text(lambda r: _seed(r)["clean"].update(nll=0.918273645)).replace("0.918273645", "-Infinity"),
        "clean.nll",
    ),
    "deep nesting": (
        '{"schema": "vib-bench/results/1", "models": {}, "x": ' + "[" * 50000 + "]" * 50000 + "}",
        "nested",
    ),
    "moderately deep": (
        '{"schema": "vib-bench/results/1", "models": {}, "x": ' + "[" * 40 + "]" * 40 + "}",
        "nested more than",
    ),
    "truncated": (golden_text(lambda r: None)[:500], "malformed JSON"),
    "not UTF-8": (b'{"schema": "\xff\xfe"}', "not UTF-8"),
    "a list": ("[1, 2]", "not a vib-bench results file"),
}


@pytest.mark.parametrize("case", list(BAD_RESULTS))
@pytest.mark.parametrize("command", ["leaderboard", "report"])
def test_a_bad_results_file_exits_2_naming_file_and_field(tmp_path, capsys, case, command):
    text, needle = BAD_RESULTS[case]
    run = run_with(tmp_path, text)
    before = snapshot(tmp_path)
    assert main([command, str(run)]) == 2
    line = one_error_line(capsys)
    assert "results.json" in line and needle in line, line
    assert snapshot(tmp_path) == before


def test_a_directory_in_place_of_the_results_file(tmp_path, capsys):
    (tmp_path / "run" / "results.json").mkdir(parents=True)
    for cmd in (
        ["leaderboard", str(tmp_path / "run")],
        ["attack", str(tmp_path / "run")],
        ["train", "--models", "mlp", "--out", str(tmp_path / "run"), "--resume", *TINY],
    ):
        assert main(cmd) == 2, cmd
        assert "not a file" in one_error_line(capsys)
    written = {p.name for p in (tmp_path / "run").iterdir()} - {"results.json", ".vib-bench.lock"}
    assert not written  # the run's (empty) lock file is all train --resume leaves


# ------------------------------------------------------------------------------------ a trained run
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run with one tiny trained mlp (1 epoch on digits)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--models", "mlp", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


ATTACK = ["--attacks", "fgsm", "--eps", "0.1", "--n-examples", "10", "--threads", "1", "--no-progress"]


def _plain_state_dict(path: Path) -> None:
    from safetensors.torch import save_file

    from models import create_model

    save_file(create_model("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=[16]).state_dict(), str(path))


@pytest.mark.parametrize("damage", ["truncated", "random", "plain state dict", "empty"])
def test_a_damaged_weights_file_exits_2_naming_it(run_copy, capsys, damage):
    w = run_copy / "models" / "mlp" / "seed0" / "model.safetensors"
    data = w.read_bytes()
    if damage == "truncated":
        w.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        w.write_bytes(os.urandom(4096))
    elif damage == "empty":
        w.write_bytes(b"")
    else:
        _plain_state_dict(w)
    before = snapshot(run_copy)
    assert main(["attack", str(run_copy), *ATTACK]) == 2
    line = one_error_line(capsys)
    assert "model.safetensors" in line
    assert snapshot(run_copy) == before


def test_import_of_damaged_weights_exits_2(tmp_path, capsys):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(os.urandom(1000))
    assert main(["import", "mlp", str(bad), "--into", str(tmp_path / "run"), "--dataset", "digits"]) == 2
    assert "not a safetensors file" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def read_only(folder: Path, monkeypatch) -> None:
    """Make ``folder`` unwritable: chmod for a normal user; root ignores modes, so there the probe is refused
    the way a read-only mount refuses it."""
    if os.geteuid() != 0:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        return
    real = tempfile.mkstemp
    root = folder.resolve()

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and (Path(dir).resolve() == root or root in Path(dir).resolve().parents):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_a_read_only_run_exits_2_for_attack_and_train_resume(run_copy, capsys, monkeypatch):
    before = snapshot(run_copy)
    read_only(run_copy, monkeypatch)
    try:
        assert main(["attack", str(run_copy), *ATTACK]) == 2
        assert "not writable" in one_error_line(capsys)
        assert main(["train", "--models", "mlp", "--seeds", "0,1", "--out", str(run_copy), "--resume", *TINY]) == 2
        assert "not writable" in one_error_line(capsys)
    finally:
        for p in [run_copy, *run_copy.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
    assert snapshot(run_copy) == before


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from bench import io

    target = tmp_path / "f.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(BenchError, match="disk is full"):
        io.atomic_write_json(target, {"a": 1})
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.parametrize("stack", ["off", "on"])
def test_a_full_disk_while_training_exits_2_and_no_status_stays_running(tmp_path, capsys, monkeypatch, stack):
    import bench.train.recipe as training
    from bench.io import storage_error

    def full(path, durable=True):
        raise storage_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(training, "atomic_writer", full)  # the checkpoint write fails
    out = tmp_path / "run"
    rc = main(["train", "--models", "mlp", "--seeds", "0,1", "--out", str(out), "--stack", stack, *TINY])
    assert rc == 2
    assert "disk is full" in one_error_line(capsys)
    states = [json.loads(p.read_text())["state"] for p in out.rglob("status.json")]
    assert states and "running" not in states, states


def test_bad_lock_timeout_exits_2_before_writing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIB_BENCH_LOCK_TIMEOUT", "abc")
    assert main(["train", "--models", "mlp", "--out", str(tmp_path / "run"), *TINY]) == 2
    assert "VIB_BENCH_LOCK_TIMEOUT" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["[0,-5]", "0,-5", "[]", "-3", "1.5", "abc"])
def test_bad_hidden_widths_exit_2_before_writing(tmp_path, capsys, value):
    assert (
        main(["train", "--models", "mlp", "--out", str(tmp_path / "run"), "--epochs", "1", "--set", f"hidden={value}"])
        == 2
    )
    assert "hidden" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_huge_seeds_exit_2_before_writing_and_do_not_block_the_rerun(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--models", "mlp", "--seeds", "18446744073709551616", "--out", str(out), *TINY]) == 2
    assert "not in [0, 4294967295]" in one_error_line(capsys)
    assert not out.exists()
    suite = tmp_path / "s.toml"
    suite.write_text('dataset = "digits"\nmodels = ["mlp"]\nseeds = [100000000000000000000]\n')
    assert main(["run", "--suite", str(suite), "--out", str(out), "--threads", "1"]) == 2
    assert "seeds" in one_error_line(capsys)
    suite.write_text('dataset = "digits"\nmodels = ["mlp"]\nseeds = [1e20]\n')
    assert main(["run", "--suite", str(suite), "--out", str(out), "--threads", "1"]) == 2
    assert "not an integer" in one_error_line(capsys)
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seeds", "4294967296"]) == 2
    one_error_line(capsys)
    assert not out.exists()
    assert main(["train", "--models", "mlp", "--seeds", "4294967295", "--out", str(out), *TINY]) == 0
