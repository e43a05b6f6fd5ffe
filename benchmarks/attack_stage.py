"""Wall time of the attack stage with the quick suite's attack settings, before and after a change.

Copies a trained run directory once per source tree, runs ``vib-bench attack`` there with the
``[attack]`` table of a suite (default: ``quick``: its attacks, eps grid, EOT draws and budget overrides)
on the first N test examples in a fresh process per tree, and prints each wall time, their ratio and
the exit status of ``vib-bench compare BEFORE AFTER --fail-on all`` (0: no significant change in any
robust or clean number). Both trees must key evaluation noise the same way for that comparison to mean
anything (the batch-invariant protocol).

    # train once (any tree), e.g. the paper width on MNIST for one epoch (long-running on one thread)
    VIB_BENCH_DATA=... python -m bench train --models mlp,vib_beta1e-3 --dataset mnist --epochs 1 --out RUN
    python benchmarks/attack_stage.py RUN --before-src /path/to/older/checkout --n-examples 200 --threads 1

Without ``--before-src`` only this tree is timed. ``--concurrent`` runs both trees at once (one
``--threads`` each), so that both see the same load on a shared machine. ``--json FILE`` writes the
figures (wall times, the compare verdicts, and each tree's recorded cell wall time per model and
attack), from which ``scripts/gen_docs.py`` makes the docs' table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def attack_args(suite: str) -> list[str]:
    """The ``vib-bench attack`` options equivalent to a suite's ``[attack]`` table (without n_examples)."""
    table = tomllib.loads((ROOT / "bench" / "suites" / f"{suite}.toml").read_text()).get("attack", {})
    args = []
    if "attacks" in table:
        args += ["--attacks", ",".join(table["attacks"])]
    if "eps" in table:
        args += ["--eps", ",".join(f"{e:g}" for e in table["eps"])]
    args += ["--eps-l2", ",".join(f"{e:g}" for e in table.get("eps_l2", []))] if "eps_l2" in table else []
    if "eot_iter" in table:
        args += ["--eot-iter", str(table["eot_iter"])]
    for attack, overrides in (table.get("set") or {}).items():
        for key, value in overrides.items():
            args += ["--attack-set", f"{attack}.{key}={str(value).lower() if isinstance(value, bool) else value}"]
    if table.get("cascade") is False:
        args.append("--no-cascade")
    return args


def start(src: Path, args: list[str]) -> tuple[float, subprocess.Popen]:
    """Start one ``python -m bench`` command from tree ``src``; its start time and process."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "bench", *args]
    t0 = time.perf_counter()
    return t0, subprocess.Popen(cmd, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(t0: float, p: subprocess.Popen) -> tuple[float, int, str]:
    """Seconds, exit status and output tail of a command :func:`start` began."""
    out, _ = p.communicate()
    return time.perf_counter() - t0, p.returncode, out[-3000:]


def run(src: Path, args: list[str]) -> tuple[float, int, str]:
    """Seconds, exit status and output tail of one ``python -m bench`` command run from tree ``src``."""
    return finish(*start(src, args))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a run directory with trained models (not modified)")
    ap.add_argument("--before-src", type=Path, default=None, help="another checkout to time first (the 'before')")
    ap.add_argument("--suite", default="quick", help="whose [attack] table to use (default: quick)")
    ap.add_argument("--n-examples", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra", default="", help="more `vib-bench attack` options, space-separated")
    ap.add_argument(
        "--keep", type=Path, default=None, help="put the attacked copies here (default: a temporary folder)"
    )
    ap.add_argument(
        "--concurrent",
        action="store_true",
        help="run both trees at the same time (one --threads each), so that both see the same machine load",
    )
    ap.add_argument(
        "--extra-after",
        default="",
        help="options for this tree only (e.g. --no-indicators, so that it does the before tree's work)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    if not (args.run_dir / "results.json").is_file():
        print(f"attack_stage.py: error: {args.run_dir} is not a run directory (no results.json)", file=sys.stderr)
        return 2
    base = args.keep or Path(tempfile.mkdtemp(prefix="vib-attack-stage-"))
    base.mkdir(parents=True, exist_ok=True)
    common = [
        *attack_args(args.suite),
        "--n-examples",
        str(args.n_examples),
        "--threads",
        str(args.threads),
        "--no-grid",
        "--no-progress",
        *args.extra.split(),
    ]
    trees = ([("before", args.before_src.resolve())] if args.before_src else []) + [("after", ROOT)]
    times = {}
    for label, _ in trees:
        dest = base / label
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(args.run_dir, dest)
    done = {}
    waiters = []
    for label, src in trees:
        extra = args.extra_after.split() if label == "after" else []
        proc = start(src, ["attack", str(base / label), *common, *extra])
        if args.concurrent:  # each process waited on (and its output drained) by its own thread: its own end time
            waiters.append(threading.Thread(target=lambda lb=label, pr=proc: done.__setitem__(lb, finish(*pr))))
            waiters[-1].start()
        else:
            done[label] = finish(*proc)
    for w in waiters:
        w.join()
    for label, src in trees:
        wall, rc, tail = done[label]
        print(f"{label}: {src}: attack stage {wall:.1f} s (exit {rc})")
        if rc != 0:
            print(tail, file=sys.stderr)
            return 1
        times[label] = wall
    summary = {
        "suite": args.suite,
        "n_examples": args.n_examples,
        "threads": args.threads,
        "concurrent": args.concurrent,
        "extra_after": args.extra_after,
        "trees": [str(src) for _, src in trees],
        "times": times,
        "cell_seconds": {label: cell_seconds(base / label) for label, _ in trees},
    }
    if "before" in times:
        print(f"speed-up: {times['before'] / times['after']:.2f}x ({times['before']:.1f} s -> {times['after']:.1f} s)")
        _, rc, tail = run(ROOT, ["compare", str(base / "before"), str(base / "after"), "--fail-on", "all"])
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        print(last)
        print(f"compare BEFORE AFTER --fail-on all: exit {rc}")
        summary.update(compare_exit=rc, compare_counts=last)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"run directories: {base}")
    return 0


def cell_seconds(run_dir: Path) -> dict:
    """{model: {attack: recorded wall seconds summed over its cells}} of an attacked run (this tree's reader,
    which upgrades an older results format in memory, so either tree's run reads)."""
    sys.path.insert(0, str(ROOT))
    from bench.results import Results

    out = {}
    for model in Results.load(run_dir).models():
        for seed in model.done_seeds():
            for rec in seed.records():
                if not rec.is_worst_case and not rec.get("shared_run"):
                    per = out.setdefault(model.name, {})
                    per[rec.attack] = per.get(rec.attack, 0.0) + float(rec.get("wall_time_s") or 0.0)
    return out


if __name__ == "__main__":
    sys.exit(main())
