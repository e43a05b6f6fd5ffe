"""A received run directory is untrusted input: hostile names never become paths outside it, recorded
plugins are not executed without the user's word, and `import` never overwrites a slot by surprise."""

import json
import os
from pathlib import Path

import pytest
from conftest import golden_data, one_error_line

from bench.cli import main
from bench.errors import BenchError


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes: what a command must not change."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_results(run: Path, raw) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.json").write_text(json.dumps(raw))
    return run


HOSTILE_NAMES = [
    "../a",
    "../../victim/models/vib_beta1e-3",
    "/abs",
    "a/b",
    "a\\b",
    "a\nb",
    ".hidden",
    "..",
    "",
    "x" * 101,
    "a\x00b",
    "a b",
    "-rf",
    "é",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_model_name_in_results_is_refused(tmp_path, capsys, name):
    raw = golden_data()
    raw["models"][name] = raw["models"].pop("mlp")
    run = write_results(tmp_path / "run", raw)
    before = snapshot(tmp_path)
    assert main(["leaderboard", str(run)]) == 2
    line = one_error_line(capsys)
    assert "results.json: models." in line and "is not a safe name" in line, line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("key", ["../0", "abc", "-1", "4294967296", "0x1", " 0"])
def test_a_hostile_seed_key_is_refused(tmp_path, capsys, key):
    raw = golden_data()
    seeds = raw["models"]["mlp"]["seeds"]
    seeds[key] = seeds.pop(next(iter(seeds)))
    run = write_results(tmp_path / "run", raw)
    assert main(["report", str(run)]) == 2
    assert "seed key" in one_error_line(capsys)
    assert not (run / "report.html").exists()


def test_a_hostile_name_in_the_run_section_is_refused(tmp_path, capsys):
    raw = golden_data()
    raw["run"]["models"]["../../x"] = {}
    run = write_results(tmp_path / "run", raw)
    assert main(["leaderboard", str(run)]) == 2
    assert 'run.models."../../x"' in one_error_line(capsys)


def test_safe_names_of_the_shipped_models_pass():
    from bench.rundir import name_problem

    for name in ["mlp", "vib_beta1e-3", "vib_k2_beta1e-3", "vib_beta0", "label_smoothing", "a.b", "a+b=c"]:
        assert name_problem(name) is None, name
    for name in HOSTILE_NAMES:
        assert name_problem(name) is not None, name


def test_run_path_refuses_names_and_symlinks_that_leave_the_run(tmp_path):
    from bench import rundir

    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    outside = tmp_path / "victim"
    outside.mkdir()
    for name in ["../victim", "/etc", "a/../../b"]:
        with pytest.raises(BenchError, match="not a safe name"):
            rundir.model_dir(run, name, 0)
    with pytest.raises(BenchError, match="not a safe name"):
        rundir.figure_path(run, "../x.png")
    (run / "models" / "evil").symlink_to(outside)
    with pytest.raises(BenchError, match="outside the run directory"):
        rundir.model_dir(run, "evil", 0)
    assert rundir.model_dir(run, "mlp", 3) == run / "models" / "mlp" / "seed3"
    assert rundir.stack_checkpoint_path(run, "stack-0123abcd").parent == run / "stacks"


# ------------------------------------------------------------------------------------------ import
@pytest.fixture
def plain_weights(tmp_path):
    """A plain state dict (no vib-bench metadata) of mlp with hidden=16 on digits."""
    from safetensors.torch import save_file

    from models import create_model

    path = tmp_path / "w.safetensors"
    save_file(create_model("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=[16]).state_dict(), str(path))
    return path


@pytest.mark.parametrize("name", ["../../victim/models/vib_beta1e-3", "/tmp/abs", "a/b", ".x"])
def test_import_refuses_an_unsafe_name_before_writing(tmp_path, capsys, plain_weights, name):
    victim = tmp_path / "victim"
    (victim / "models" / "vib_beta1e-3").mkdir(parents=True)
    before = snapshot(tmp_path)
    rc = main(
        [
            "import",
            "mlp",
            str(plain_weights),
            "--into",
            str(tmp_path / "run"),
            "--dataset",
            "digits",
            "--set",
            "hidden=16",
            "--name",
            name,
        ]
    )
    assert rc == 2
    assert "--name" in one_error_line(capsys)
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_import_checks_the_slot_on_disk_and_replace_overwrites_it(tmp_path, capsys, plain_weights):
    base = [
        "import",
        "mlp",
        str(plain_weights),
        "--into",
        str(tmp_path / "run"),
        "--dataset",
        "digits",
        "--set",
        "hidden=16",
    ]
    assert main(base) == 0  # the documented plain state dict works
    capsys.readouterr()
    slot = tmp_path / "run" / "models" / "other" / "seed0"
    slot.mkdir(parents=True)
    (slot / "keep.txt").write_text("someone's file")
    before = snapshot(tmp_path / "run")
    assert main([*base, "--name", "other"]) == 2  # not in results.json, but on disk
    assert "already holds other seed 0" in one_error_line(capsys)
    assert snapshot(tmp_path / "run") == before
    assert main(base) == 2  # in results.json
    assert "--replace" in one_error_line(capsys)
    assert main([*base, "--name", "other", "--replace"]) == 0
    assert not (slot / "keep.txt").exists() and (slot / "model.safetensors").exists()
    raw = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(raw["models"]) == {"mlp", "other"}


def test_import_replace_refuses_a_slot_another_process_is_training(tmp_path, capsys, plain_weights):
    from bench.locking import member_locks
    from bench.rundir import member_lock_path

    base = ["import", "mlp", str(plain_weights), "--into", str(tmp_path / "run"), "--dataset", "digits"]
    base += ["--set", "hidden=16"]
    assert main(base) == 0
    capsys.readouterr()
    weights = tmp_path / "run" / "models" / "mlp" / "seed0" / "model.safetensors"
    before = weights.read_bytes()
    with member_locks([member_lock_path(tmp_path / "run", "mlp", 0)]) as got:
        assert got == [True]
        # another process holds the slot: filelock is per process, so take it in a child
        import subprocess
        import sys

        code = f"import sys; from bench.cli import main; sys.exit(main({[*base, '--replace']!r}))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "being trained by another process" in proc.stderr
    assert weights.read_bytes() == before


# ----------------------------------------------------------------------------------------- plugins
PLUGIN = "import pathlib\npathlib.Path({marker!r}).write_text('executed')\n"


def registered_only(raw: dict) -> dict:
    from models import is_model

    raw["models"] = {n: m for n, m in raw["models"].items() if is_model(n)}
    return raw


def test_plugins_listed_in_results_are_not_executed(tmp_path, capsys):
    marker = tmp_path / "executed.txt"
    plugin = tmp_path / "notes.py"
    plugin.write_text(PLUGIN.format(marker=str(marker)))
    raw = registered_only(golden_data())
    raw["run"]["plugins"] = [str(plugin)]
    run = write_results(tmp_path / "run", raw)
    assert main(["time", str(run), "--threads", "1"]) == 2  # the golden run has no weights: refused after
    err = capsys.readouterr().err
    assert "notice:" in err and "not executed" in err and str(plugin) in err
    assert not marker.exists()
    assert main(["time", str(run), "--threads", "1", "--trust-plugins"]) == 2
    capsys.readouterr()
    assert marker.read_text() == "executed"  # trusted: loaded


def test_a_model_that_needs_an_untrusted_plugin_is_refused_naming_the_flag(tmp_path, capsys):
    plugin = tmp_path / "my_models.py"
    plugin.write_text("raise SystemExit('must not run')\n")
    raw = golden_data()
    raw["models"] = {"my_plugin_model": raw["models"]["mlp"]}
    raw["run"]["plugins"] = [str(plugin)]
    run = write_results(tmp_path / "run", raw)
    assert main(["time", str(run), "--threads", "1"]) == 2
    line = one_error_line(capsys)
    assert "my_plugin_model" in line and "--trust-plugins" in line and "--plugin" in line


def test_a_plugin_calling_sys_exit_is_an_error_not_a_success(tmp_path, capsys):
    plugin = tmp_path / "quits.py"
    plugin.write_text("import sys\nsys.exit(0)\n")
    out = tmp_path / "run"
    rc = main(["train", "--models", "mlp", "--plugin", str(plugin), "--epochs", "1", "--out", str(out)])
    assert rc == 2
    line = one_error_line(capsys)
    assert "quits.py" in line and "sys.exit(0)" in line
    assert not out.exists()


# ------------------------------------------------------------------------------ one lock per member
def test_train_resume_skips_a_model_seed_another_process_holds(tmp_path, capsys):
    from bench import rundir
    from bench.locking import member_locks

    out = tmp_path / "run"
    base = [
        "train",
        "--models",
        "mlp",
        "--seeds",
        "0,1",
        "--set",
        "hidden=16",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
    ]
    with member_locks([rundir.member_lock_path(out, "mlp", 0)]) as got:
        assert got == [True]
        assert main([*base, "--stack", "on", "--resume"]) == 0  # seed 0 is "elsewhere": not a failure
    text = capsys.readouterr().out
    assert "mlp seed 0: another process is training it" in text and "mlp seed 1: trained" in text
    assert rundir.read_status(rundir.model_dir(out, "mlp", 0)) is None
    raw = json.loads((out / "results.json").read_text())
    assert list(raw["models"]["mlp"]["seeds"]) == ["1"]
    assert main([*base, "--resume"]) == 0  # the lock is free now: seed 0 trains
    assert "mlp seed 0: trained" in capsys.readouterr().out
    assert set(json.loads((out / "results.json").read_text())["models"]["mlp"]["seeds"]) == {"0", "1"}


def test_member_locks_exclude_each_other_across_processes(tmp_path):
    import subprocess
    import sys

    lock = tmp_path / "m" / ".train.lock"
    code = (
        "import sys, time; from bench.locking import member_locks\n"
        f"with member_locks([{str(lock)!r}]) as got:\n"
        "    print(got[0], flush=True); time.sleep(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "True"
        from bench.locking import member_busy, member_locks

        assert member_busy(lock)
        with member_locks([lock]) as got:
            assert got == [False]
    finally:
        proc.wait(timeout=30)
    assert not member_busy(lock)


@pytest.mark.parametrize("name", [".vib-bench.lock", ".vib-bench.lock.owner"])
def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path, capsys, name):
    """A received run directory whose lock files point elsewhere: taking the run's lock must neither write
    through the link nor crash."""
    from conftest import golden_run_dir, one_error_line

    from bench.cli import main

    run = golden_run_dir(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / name).symlink_to(victim)
    assert main(["upgrade", str(run)]) == 2
    assert "symbolic link" in one_error_line(capsys)
    assert victim.read_text() == "precious"
