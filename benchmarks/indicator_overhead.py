"""What the indicators of attack failure cost: the attack stage of one run with and without them, in one run.

Takes a run directory whose models are trained (e.g. ``vib-bench run --suite smoke --out RUN``) and attacks
copies of it with the run's own suite ``[attack]`` table, alternately with the indicators and their
mitigations (the default) and with ``indicators = false``, ``--reps`` times each; prints every wall time
and the ratio of the medians. The two measurements share the machine and the moment, so the ratio holds
even where the absolute times do not (a loaded CPU).

    python benchmarks/indicator_overhead.py RUN [--models mlp,vib_beta1e-3] [--reps 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def attack_once(run_dir: Path, work: Path, models: list[str], indicators: bool) -> float:
    from bench.attack import AttackOptions, attack_run
    from bench.results import Results

    dst = work / ("on" if indicators else "off")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(run_dir, dst)
    table = dict(Results.load(dst).suite.get("attack") or {})
    table["indicators"] = indicators
    opts = AttackOptions.from_suite(dst, table, models=models, progress=False, grid=False)
    opts.resume, opts.fresh = False, True
    t0 = time.perf_counter()
    attack_run(opts, log=lambda *_: None, on_result=lambda _: None)
    return time.perf_counter() - t0


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--models", default="mlp,vib_beta1e-3")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="vib-indicators-") as tmp:
        for rep in range(args.reps):
            for on in (False, True) if rep % 2 == 0 else (True, False):
                t = attack_once(args.run_dir, Path(tmp), models, on)
                times[on].append(t)
                print(f"rep {rep}: indicators {'on ' if on else 'off'} {t:7.1f} s", flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"attack stage of {', '.join(models)}: median {off:.1f} s without the indicators, {on:.1f} s with them: "
        f"ratio {on / off:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
