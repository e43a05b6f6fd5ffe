"""Two commands on one run lose nothing: every read-modify-write of a run directory holds its lock."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.cli import main
from bench.errors import BenchError
from bench.locking import run_lock
from bench.results import Results

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

HAMMER = textwrap.dedent("""
    import sys
    from bench.results import update_results
    run, tag = sys.argv[1], sys.argv[2]
    for i in range(300):
        update_results(run, lambda r, i=i: r.seed(f"{tag}_{i}", 0, create=True).set_train({"state": "done"}))
""")


def test_two_processes_hammering_one_run_lose_nothing(tmp_path):
    Results.new({"dataset": {"name": "digits"}, "models": {}, "seeds": [0]}, {}).save(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, str(tmp_path), tag], env=ENV) for tag in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    names = Results.load(tmp_path).model_names()
    assert len(names) == 600 and len(set(names)) == 600


def test_a_held_lock_times_out_naming_its_holder(tmp_path):
    probe = "from bench.locking import run_lock\nwith run_lock(__import__('sys').argv[1]):\n    pass\n"
    with run_lock(tmp_path):
        out = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path)],
            capture_output=True,
            text=True,
            env={**ENV, "VIB_BENCH_LOCK_TIMEOUT": "0.3"},
        )
    assert out.returncode != 0 and "is locked by process" in out.stderr and str(os.getpid()) in out.stderr
    with run_lock(tmp_path, timeout=1):  # released: free again
        with run_lock(tmp_path, timeout=0):  # and re-entrant in one thread
            pass


def test_attack_and_info_side_by_side_both_keep_their_results(tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--models",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "2",
                "--lr",
                "1e-2",
                "--set",
                "hidden=16",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    attack = [
        sys.executable,
        "-m",
        "bench",
        "attack",
        str(run),
        "--attacks",
        "fgsm,pgd",
        "--eps",
        "0.1",
        "--eps-l2",
        "",
        "--n-examples",
        "64",
        "--attack-set",
        "pgd.steps=3",
        "--no-grid",
        "--threads",
        "1",
    ]
    info = [
        sys.executable,
        "-m",
        "bench",
        "info",
        str(run),
        "--estimators",
        "mine",
        "--steps",
        "30",
        "--restarts",
        "1",
        "--batch-size",
        "32",
        "--no-plot",
        "--threads",
        "1",
    ]
    procs = [
        subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for cmd in (attack, info)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    entry = Results.load(run).seed("mlp", 0)
    assert entry.has_attacks() and entry.info_estimates("I(Z;Y)")  # I(X;Z) of a deterministic map: none
    assert set(Results.load(run).environments()) >= {"train", "attack", "info"}


def test_bench_error_is_raised_in_process(tmp_path, monkeypatch):
    import bench.locking as locking

    monkeypatch.setattr(locking, "TIMEOUT_S", 0.2)
    done = []

    def other_thread():
        try:
            with locking.run_lock(tmp_path):
                done.append("got it")
        except BenchError as e:
            done.append(str(e))

    import threading

    with run_lock(tmp_path):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert "is locked by" in done[0]
