"""One suite under both executors, in one run: wall time of each and their ratio, and whether they agree.

Runs ``vib-bench run --suite SUITE`` in a fresh process per executor (local first, then ray), each into
its own run directory, then ``vib-bench compare LOCAL RAY``. The Ray figure includes starting a local Ray
instance (or connecting to ``--ray-address``) and its workers importing torch: on a small suite that
start-up dominates; the executor pays off when tasks outnumber the cores of one machine.

    python benchmarks/executors.py [--suite smoke] [--threads 1] [--ray-address auto] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], env: dict) -> tuple[float, int, str]:
    """Seconds, exit status and last line of one ``vib-bench`` command."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = (p.stdout.strip() or p.stderr.strip()).splitlines()
    return time.perf_counter() - t0, p.returncode, lines[-1] if lines else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="smoke")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--keep", default=None, help="write the two run directories here (default: a temporary folder)")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vib-executors-"))
    common = ["run", "--suite", args.suite, "--threads", str(args.threads), "--no-progress", "-q", "--fresh"]
    times = {}
    for name, extra in (
        ("local", []),
        ("ray", ["--executor", "ray"] + (["--ray-address", args.ray_address] if args.ray_address else [])),
    ):
        wall, rc, last = run(common + ["--out", str(base / name)] + extra, env)
        times[name] = wall
        print(f"{name:5s}: {wall:6.1f} s wall (exit {rc}): {last}")
    print(f"ray / local: {times['ray'] / times['local']:.2f}x the local executor's wall time")
    p = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(base / "local"), str(base / "ray")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    print(f"compare local ray: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.stdout.strip()}")
    print(f"run directories: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
