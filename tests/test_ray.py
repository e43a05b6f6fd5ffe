"""`vib-bench run --executor ray`: the same results file as the in-process executor, nothing lost when a
worker dies, a task that fails for good recorded (and redone by --resume), one line when Ray is missing.

The Ray tests start a local cluster (``ray.init(num_cpus=2)``) once and run a reduced smoke-like suite:
one deterministic and one randomised model, cheap attacks, the cascade, and CW (a minimum-norm attack
whose single run serves every L2 eps). The deterministic model comes from a plugin that kills its own
worker process (or fails) when the test arms it, so no test hook lives in the package.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch
from conftest import one_error_line
from safetensors.torch import load_file

from bench.cli import main
from bench.rundir import load_per_example

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason='ray is not installed (pip install "vib-bench[ray]")'
)

SUITE = """
name = "mini-ray"
dataset = "digits"
models = ["doomed_mlp", "vib_beta1e-3"]
seeds = [0]
[train]
epochs = 3
lr = 1e-3
[overrides]
hidden = [16]
k = 4
[attack]
attacks = ["fgsm", "pgd", "eot_pgd", "apgd_ce", "square", "cw_l2", "pgd_l2"]
eps = [0.0, 0.1, 0.3]
eps_l2 = [1.0, 2.0]
n_examples = 40
[attack.set.pgd]
steps = 5
[attack.set.eot_pgd]
steps = 5
eot_iter = 2
[attack.set.apgd_ce]
steps = 5
[attack.set.square]
n_queries = 30
[attack.set.cw_l2]
steps = 10
[attack.set.pgd_l2]
steps = 5
[timing]
batch_sizes = [1, 100]
min_run_time = 0.01
"""

# Armed by a file beside it: kill-train / kill-attack (consumed: the worker dies once, the retry succeeds),
# fail-attack (stays: every attempt raises).
PLUGIN = '''
import os
import signal
from pathlib import Path

import torch

from models import register_model
from models.mlp import MLPClassifier

HERE = Path(__file__).resolve().parent


def _trip(kind):
    try:
        (HERE / f"kill-{kind}").unlink()
    except FileNotFoundError:
        pass
    else:
        with open(HERE / "killed.log", "a") as f:
            f.write(f"{kind} {os.getpid()}\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    if (HERE / f"fail-{kind}").exists():
        raise RuntimeError(f"planted {kind} failure")


class Doomed(MLPClassifier):
    calls = 0

    def loss(self, x, y):
        Doomed.calls += 1
        if Doomed.calls == 15:   # in the second epoch: a checkpoint exists
            _trip("train")
        return super().loss(x, y)

    def forward(self, x):
        if torch.is_grad_enabled() and not self.training:   # an attack, not training or evaluation
            _trip("attack")
        return super().forward(x)


@register_model(name="doomed_mlp")
def doomed_mlp(**kw):
    """An MLP whose worker dies (or fails) when the test arms it."""
    return Doomed(**kw)
'''

VOLATILE = {
    "recorded_at",
    "wall_time_s",
    "grad_evals_per_s",
    "gflop_per_s",
    "peak_fraction",
    "throughput",
    "train_time_s",
    "time_per_epoch_s",
    "examples_per_s",
    "wall_time_per_epoch_s",
    "overhead_fraction",
}


def _stable(obj):
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray")
    (d / "mini.toml").write_text(SUITE)
    (d / "doomed.py").write_text(PLUGIN)
    return d


def _run(work, out, *extra):
    return main(
        [
            "run",
            "--suite",
            str(work / "mini.toml"),
            "--plugin",
            str(work / "doomed.py"),
            "--out",
            str(out),
            "--threads",
            "1",
            "--no-progress",
            "-q",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def local_run(work):
    out = work / "local"
    assert _run(work, out) == 0
    return out


@pytest.fixture(scope="module")
def cluster(work):
    import ray

    from bench.executors.ray import local_runtime_env

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env())
    except Exception as e:  # noqa: BLE001 - the machine, not vib-bench: say so and skip
        pytest.skip(f"a local Ray instance did not start here ({type(e).__name__}: {e})")
    yield ray
    ray.shutdown()


def _by_key(models):
    for m in models.values():
        for s in m["seeds"].values():
            s["attacks"].sort(key=lambda r: (r["attack"], r["norm"], r["eps"], r["protocol"]))
    return models


def assert_same_results(local, other, capsys, ordered=True):
    """`compare --all`: every clean and robust row the same, 0 lost / 0 gained; and the files agree exactly
    (``ordered``: the attack records in the same order too; a resumed run puts what it redid last)."""
    capsys.readouterr()
    assert main(["compare", str(local), str(other), "--all", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = [r for r in doc["rows"] if r["family"] != "throughput"]  # throughput is measured, not computed
    assert len(rows) > 40 and doc["setting_changes"] == []
    for r in rows:
        assert r["verdict"] == "same" and "(0 lost, 0 gained)" in r["test"], r
    a, b = (json.loads((d / "results.json").read_text()) for d in (local, other))
    if ordered:
        assert _stable(a["models"]) == _stable(b["models"])  # records, their order, checks, setups
    else:
        assert _by_key(_stable(a["models"])) == _by_key(_stable(b["models"]))
    for m in a["models"]:
        va, vb = load_per_example(local, m, 0), load_per_example(other, m, 0)
        assert va.keys() == vb.keys() and all((va[k] == vb[k]).all() for k in va)
    assert b["environments"]["attack"]["executor"]["name"] == "ray"  # `other` is always a Ray run here


@needs_ray
def test_ray_executor_writes_the_same_results_as_the_local_one(work, local_run, cluster, capsys):
    out = work / "ray"
    assert _run(work, out, "--executor", "ray") == 0
    assert_same_results(local_run, out, capsys)
    assert (out / "leaderboard.md").exists() and (out / "figures" / "adv_doomed_mlp_seed0.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    assert all(s["throughput"]["train"]["median"] > 0 for m in res["models"].values() for s in m["seeds"].values())


@needs_ray
def test_a_killed_worker_loses_nothing(work, local_run, cluster, capsys):
    out = work / "killed"
    (work / "kill-train").touch()
    (work / "kill-attack").touch()
    assert _run(work, out, "--executor", "ray") == 0
    assert not (work / "kill-train").exists() and not (work / "kill-attack").exists()  # both fired
    assert sorted(ln.split()[0] for ln in (work / "killed.log").read_text().splitlines()) == ["attack", "train"]
    assert_same_results(local_run, out, capsys)  # the retries finished the work: nothing missing, nothing changed


@needs_ray
def test_a_task_that_fails_for_good_is_recorded_and_resume_redoes_it(work, local_run, cluster, capsys, monkeypatch):
    import bench.executors.ray as ray_executor

    monkeypatch.setattr(ray_executor, "MAX_RETRIES", 1)
    out = work / "failing"
    (work / "fail-attack").touch()
    try:
        assert _run(work, out, "--executor", "ray") == 1  # a model-seed's work failed
    finally:
        (work / "fail-attack").unlink()
    res = json.loads((out / "results.json").read_text())
    doomed = res["models"]["doomed_mlp"]["seeds"]["0"]
    assert doomed["train"]["state"] == "done"
    assert [(f["stage"], f["task"], f["error"]) for f in doomed["failures"]] == [
        ("attack", "attack setup", "RuntimeError: planted attack failure")
    ]
    assert not doomed.get("attacks")
    assert res["models"]["vib_beta1e-3"]["seeds"]["0"]["attacks"]  # the other model is complete
    weights = out / "models" / "vib_beta1e-3" / "seed0" / "model.safetensors"
    stamp, vib_before = weights.stat().st_mtime_ns, res["models"]["vib_beta1e-3"]["seeds"]["0"]["attacks"]

    # --resume: only the failed work runs again, the rest is kept as it was; as the local executor resumes it
    shutil.copytree(out, work / "failing-local")
    assert _run(work, out, "--executor", "ray", "--resume") == 0
    assert _run(work, work / "failing-local", "--resume") == 0
    res = json.loads((out / "results.json").read_text())
    assert "failures" not in res["models"]["doomed_mlp"]["seeds"]["0"]
    assert weights.stat().st_mtime_ns == stamp
    vib_after = {
        (r["attack"], r["norm"], r["eps"], r["protocol"]): r["recorded_at"]
        for r in res["models"]["vib_beta1e-3"]["seeds"]["0"]["attacks"]
        if r["attack"] != "worst_case"
    }
    assert vib_after == {
        (r["attack"], r["norm"], r["eps"], r["protocol"]): r["recorded_at"]
        for r in vib_before
        if r["attack"] != "worst_case"
    }
    assert_same_results(work / "failing-local", out, capsys)
    assert_same_results(local_run, out, capsys, ordered=False)


STACK_SUITE = """
name = "mini-stack"
dataset = "digits"
models = ["vib_beta1e-3", "vib_beta1e-2"]
seeds = [0]
[train]
epochs = 3
lr = 1e-3
[overrides]
hidden = [16]
k = 4
[attack]
attacks = ["fgsm"]
eps = [0.1]
eps_l2 = []
n_examples = 20
[timing]
batch_sizes = [1]
min_run_time = 0.01
"""


@needs_ray
def test_ray_trains_stacks_as_one_task_and_matches_the_local_stacks(work, cluster, capsys):
    """--stack on: the two VIBs are one Ray task (one stack), and the weights and results are those of the
    in-process executor's stack."""
    (work / "stack.toml").write_text(STACK_SUITE)
    common = ["run", "--suite", str(work / "stack.toml"), "--threads", "1", "--no-progress", "--stack", "on"]
    assert main([*common, "--out", str(work / "stack-local")]) == 0
    capsys.readouterr()
    assert main([*common, "--out", str(work / "stack-ray"), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert "1 train unit(s), 1 of them stack(s) of 2 model-seeds" in out
    for name in ("vib_beta1e-3", "vib_beta1e-2"):
        st = json.loads((work / "stack-ray" / "models" / name / "seed0" / "status.json").read_text())
        assert st["stack_size"] == 2
        a, b = (
            load_file(str(work / run / "models" / name / "seed0" / "model.safetensors"))
            for run in ("stack-local", "stack-ray")
        )
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    capsys.readouterr()
    assert main(["compare", str(work / "stack-local"), str(work / "stack-ray"), "--all", "--format", "json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out)["rows"] if r["family"] != "throughput"]
    assert rows and all(r["verdict"] == "same" for r in rows)


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    (tmp_path / "mini.toml").write_text(SUITE.replace('"doomed_mlp"', '"mlp"'))
    out = tmp_path / "run"
    assert main(["run", "--suite", str(tmp_path / "mini.toml"), "--out", str(out), "--executor", "ray"]) == 2
    assert 'pip install "vib-bench[ray]"' in one_error_line(capsys)
    assert not out.exists()  # before any work


def test_ray_address_needs_the_ray_executor(tmp_path, capsys):
    (tmp_path / "mini.toml").write_text(SUITE.replace('"doomed_mlp"', '"mlp"'))
    assert (
        main(["run", "--suite", str(tmp_path / "mini.toml"), "--out", str(tmp_path / "run"), "--ray-address", "auto"])
        == 2
    )
    assert "--executor ray" in one_error_line(capsys)
