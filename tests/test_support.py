"""The support modules: environment records, atomic writes, plugins (files and entry points)."""

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from bench import env, io, plugins
from bench.errors import BenchError
from models import list_models, unregister_model


# ------------------------------------------------------------------------------------ env
def test_environment_records_what_a_number_depends_on():
    e = env.environment("cpu")
    assert e["device"] == "cpu" and e["device_name"] == env.cpu_model() and e["threads"] >= 1
    assert e["packages"]["torch"] and e["vib_bench"]
    assert set(e["git"]) == {"commit", "dirty"}
    assert env.machine_key(e) == (e["cpu"], e["threads"], e["device_name"])


def test_git_state_of_a_tree_and_outside_one(tmp_path):
    assert env.git_state(tmp_path) == {"commit": None, "dirty": None}  # not a git tree
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True
    )
    clean = env.git_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f").write_text("b")
    assert env.git_state(tmp_path)["dirty"] is True


def test_resolve_device_errors_are_one_line():
    assert str(env.resolve_device("cpu")) == "cpu"
    with pytest.raises(BenchError, match="unknown device"):
        env.resolve_device("tpu")


# ------------------------------------------------------------------------------------ io
def test_atomic_json_replaces_nan_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "r.json"
    io.atomic_write_json(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": {"d": 2}}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~io._UMASK)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    io.atomic_write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        io.atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ------------------------------------------------------------------------------------ plugins
MODEL_SOURCE = '''
from models import register_model
from models.mlp import MLPClassifier


@register_model(name="{name}")
def factory(**kw):
    """A model from outside the package."""
    return MLPClassifier(**kw)
'''


def test_plugin_file_registers_a_model(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(MODEL_SOURCE.format(name="plugin_file_model"))
    try:
        plugins.load_plugins([f, f])  # loading twice is a no-op
        assert "plugin_file_model" in list_models()
    finally:
        unregister_model("plugin_file_model")


@pytest.mark.parametrize(
    "content, needle", [("raise RuntimeError('boom')", "failed to import"), (None, "no such file")]
)
def test_bad_plugin_files(tmp_path, content, needle):
    f = tmp_path / "bad.py"
    if content is not None:
        f.write_text(content)
    with pytest.raises(BenchError, match=needle):
        plugins.load_plugin(f)


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    (tmp_path / "vb_ep_plugin.py").write_text(MODEL_SOURCE.format(name="entry_point_model"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="mine", value="vb_ep_plugin", group="vib_bench.models")
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep] if group == "vib_bench.models" else [])
    try:
        plugins.load_entry_points()
        assert "entry_point_model" in list_models()
    finally:
        unregister_model("entry_point_model")
        sys.modules.pop("vb_ep_plugin", None)
        plugins._loaded.pop("vb_ep_plugin", None)


def test_a_broken_entry_point_is_one_line(monkeypatch):
    ep = metadata.EntryPoint(name="broken", value="no_such_module_anywhere", group="vib_bench.models")
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep])
    with pytest.raises(BenchError, match="entry point broken"):
        plugins.load_entry_points()


# ------------------------------------------------------------------------------------ exit codes
def test_an_internal_error_exits_3_in_one_line(monkeypatch, capsys):
    from bench.cli import listing as list_cmd
    from bench.cli import main

    def crash(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(list_cmd, "cmd_list", crash)
    monkeypatch.delenv("VIB_BENCH_DEBUG", raising=False)
    assert main(["list", "models"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vib-bench: internal error: ZeroDivisionError: a bug")


def test_bad_input_exits_2(capsys):
    from bench.cli import main

    assert main(["list", "models", "mpl"]) == 2
    assert "did you mean 'mlp'" in capsys.readouterr().err


def test_git_state_ignores_an_enclosing_repository(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True
    )
    vendored = tmp_path / "third_party" / "vib-bench"
    vendored.mkdir(parents=True)
    assert env.git_state(vendored) == {"commit": None, "dirty": None}  # not this package's repository
    assert env.git_state(tmp_path)["commit"] is not None


def test_results_record_the_vib_bench_version():
    from bench import __version__
    from bench.results import Results

    assert Results.new({}, {}).version == __version__


@pytest.mark.parametrize("command", ["attack", "time"])
def test_reference_runs_without_weights_say_so(tmp_path, capsys, command):
    import shutil
    from pathlib import Path

    from bench.cli import main

    ref = Path(__file__).resolve().parent.parent / "results" / "smoke"
    run = tmp_path / "smoke"
    shutil.copytree(ref, run, ignore=shutil.ignore_patterns("*.png", "*.html"))
    assert main([command, str(run)]) == 2
    err = capsys.readouterr().err
    assert "weights of its" in err and "are absent" in err and "vib-bench run --suite smoke" in err
