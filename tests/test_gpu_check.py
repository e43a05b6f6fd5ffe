"""The GPU self-check's rehearsal: ``benchmarks/gpu_check.py --tiny`` end to end on the CPU (digits, tiny
networks), through the real CLI, with a JSON summary whose checks all pass."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # 25-90 s measured on the shared 2-core CPU (three CLI processes, 9 models, an attack)
def test_gpu_check_runs_end_to_end_at_tiny_size(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/gpu_check.py"),
            "--tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    assert s["ok"] and s["tiny"]
    assert s["versions"]["device"] == "cpu" and "tf32_matmul" in s["versions"]
    for kind in ("mlp", "vib"):
        g = s["graph_vs_eager"][kind]
        assert g["equal_within_1e-5"] and g["params_moved"] and g["max_abs_diff"] <= 1e-5
    t = s["throughput"]
    assert t["members"] == 9 and t["stacked"]["member_steps_per_s"] > 0 and t["matmul_peak_gflops"] > 0
    e = s["paper_2_epochs"]
    assert e["hashes_equal"] and e["models"] == 9
    assert all(r["rc"] == 0 and 0 < r["overhead_fraction"] < 1 for r in e["runs"])
    assert s["attack"]["rc"] == 0 and s["attack"]["cells"] > 0
    assert "weights of the two runs" in proc.stdout and "identical" in proc.stdout
