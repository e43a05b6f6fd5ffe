"""GPU self-check: is this machine's CUDA path correct and fast enough for the paper campaign?

One command, meant to take under 3 minutes on one H100/H200, that measures in one run:

  1. versions and numerics: torch, CUDA, cuDNN, the device, TF32 and determinism settings (as training
     sets them, ``bench.env.use_deterministic_cuda``);
  2. graph vs eager: a stack of the paper's MLP members and one of its VIB members, 20 steps captured as
     CUDA graphs against 20 eager steps: equal within 1e-5, and the parameters moved;
  3. throughput: stacked member-steps/s against the per-model loop (``benchmarks/stacked_speed.py``'s
     trainers) and the fp32 matmul peak measured now;
  4. 2 epochs of the ``paper`` suite's models x 3 seeds through the CLI (``vib-bench train``), twice:
     wall time, the overhead fraction the runs record, and whether every weight file hashes the same;
  5. the attack stage (``vib-bench attack``) on one VIB model of the first run: wall time and exit status.

It prints a compact table and writes everything to ``--out`` (JSON). ``--tiny`` runs the same checks at
small sizes on digits (a few seconds of work on a CPU: the test suite's rehearsal)::

    python benchmarks/gpu_check.py --out gpu_check.json                 # on a GPU machine
    python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(1 + len([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]), str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # stacked_speed's trainers

import torch  # noqa: E402

PAPER_MODELS = [
    "mlp",
    "dropout",
    "confidence_penalty",
    "label_smoothing",
    "vib_beta1e-4",
    "vib_beta1e-3",
    "vib_beta1e-2",
    "vib_beta1e-1",
    "vib_k2_beta1e-3",
]
ATTACK_MODEL = "vib_beta1e-3"


def sizes(tiny: bool) -> dict:
    if tiny:
        return {
            "dataset": "digits",
            "set": ["hidden=32,32"],
            "seeds": "0",
            "graph_steps": 6,
            "speed_steps": 6,
            "attack": [
                "--attacks",
                "fgsm,pgd",
                "--eps",
                "0,0.1",
                "--eps-l2",
                "",
                "--n-examples",
                "40",
                "--attack-set",
                "pgd.steps=5",
            ],
        }
    return {
        "dataset": "mnist",
        "set": [],
        "seeds": "0,1,2",
        "graph_steps": 20,
        "speed_steps": 200,
        "attack": [
            "--attacks",
            "fgsm,pgd,eot_pgd,apgd_ce,square",
            "--eps",
            "0,0.1,0.2,0.3",
            "--eps-l2",
            "",
            "--n-examples",
            "1000",
            "--eot-iter",
            "4",
            "--attack-set",
            "square.n_queries=1000",
        ],
    }


# ------------------------------------------------------------------------------------------ checks
def versions(device: torch.device) -> dict:
    from bench.env import environment, use_deterministic_cuda

    if device.type == "cuda":
        use_deterministic_cuda()
    env = environment(device)
    return {"torch": torch.__version__, "device": str(device), "device_name": env["device_name"], **env["numerics"]}


def _stack(names, overrides, data, device, graphs):
    from bench.train.recipe import TrainConfig, build_member
    from bench.train.stacked.program import StackProgram, structure
    from bench.train.stacked.state import Member, Stack
    from bench.train.stacked.step import StackStep
    from models.base import scale_input

    x, y = (t.to(device) for t in data.split("trainval"))
    members = []
    for name in names:
        model, rng = build_member(name, 0, overrides, data, device)
        members.append(Member(name, 0, overrides, model, rng))
    stack = Stack(members, device)
    program = StackProgram([structure(m.model) for m in members], data.num_classes, device)
    return stack, StackStep(program, stack, TrainConfig(), scale_input(x), y, graphs), len(x)


def graph_vs_eager(data, overrides, device, steps: int) -> dict:
    """The captured step (uncaptured static path on the CPU) against the eager one, from the same start."""
    from bench.train.recipe import on_device

    out = {}
    graphs = True if device.type == "cuda" else "static"
    with on_device(device):
        for kind, names in (
            ("mlp", ["mlp", "dropout", "confidence_penalty", "label_smoothing"]),
            ("vib", ["vib_beta1e-3", "vib_beta1e-2"]),
        ):
            finals = []
            for mode in (graphs, False):
                stack, step, n = _stack(names, overrides, data, device, mode)
                start = [p.detach().clone() for p in stack.params]
                perm = torch.stack([torch.randperm(n, generator=g) for g in stack.shuffles]).to(device)
                for i in range(steps):
                    step(perm[:, (i * 100) % (n - 100) : (i * 100) % (n - 100) + 100], i)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                finals.append([p.detach().clone() for p in stack.params])
            diff = max(float((a - b).abs().max()) for a, b in zip(*finals))
            moved = min(float((a - b).abs().max()) for a, b in zip(finals[0], start))
            out[kind] = {
                "captured": graphs is True,
                "max_abs_diff": diff,
                "min_param_change": moved,
                "equal_within_1e-5": diff <= 1e-5,
                "params_moved": moved > 0,
            }
    return out


def throughput(data_name: str, overrides: dict, seeds, device, steps: int) -> dict:
    """Stacked and per-model-loop member-steps/s of the paper suite's models, and the matmul peak."""
    from stacked_speed import Loop, Stacked, load_data, timed

    from bench.flops import matmul_peak_gflops, train_flops_per_example
    from bench.train.recipe import TrainConfig, build_member, on_device
    from bench.train.stacked.state import Member

    cfg = TrainConfig()
    ds, x, y, what = load_data(data_name, "trainval", device)
    with on_device(device):
        mems = []
        for name in PAPER_MODELS:
            for seed in seeds:
                model, rng = build_member(name, seed, overrides, ds, device)
                mems.append(Member(name, seed, overrides, model, rng))
        peak = matmul_peak_gflops(device, seconds=1.0)
        trainers = {"loop": Loop(mems, cfg, x, y), "stacked": Stacked(mems, cfg, x, y, device.type == "cuda")}
        out = {"data": what, "members": len(mems), "matmul_peak_gflops": peak}
        flops = sum(train_flops_per_example(m.model) for m in mems) * cfg.batch_size
        for k, t in trainers.items():
            t.run(0, 3, cfg.batch_size)  # warm-up (and graph capture)
            sec = timed(t, 3, steps, cfg.batch_size, device) / steps
            out[k] = {
                "member_steps_per_s": len(mems) / sec,
                "gflops": flops / sec / 1e9,
                "fraction_of_peak": flops / sec / 1e9 / peak,
            }
    out["stacked_over_loop"] = out["stacked"]["member_steps_per_s"] / out["loop"]["member_steps_per_s"]
    return out


def _cli(args: list[str], threads: int | None) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    extra = ["--threads", str(threads)] if threads else []
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench", *args, *extra], env=env, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, (proc.stderr or proc.stdout).strip()[-400:]


def weight_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of each weights file's tensors (names, dtypes, shapes, bytes): the file's bytes can differ
    between identical runs, since safetensors writes its metadata in no fixed order."""
    from safetensors.torch import load_file

    out = {}
    for p in sorted(run_dir.glob("models/*/seed*/model.safetensors")):
        h = hashlib.sha256()
        for k, v in sorted(load_file(str(p)).items()):
            h.update(f"{k} {v.dtype} {tuple(v.shape)}".encode())
            h.update(v.contiguous().view(torch.uint8).numpy().tobytes())
        out[str(p.relative_to(run_dir))] = h.hexdigest()
    return out


def paper_epochs(root: Path, sz: dict, device, threads) -> dict:
    """2 epochs of the paper suite's models through ``vib-bench train``, twice."""
    from bench.runs import open_run

    runs = []
    for name in ("a", "b"):
        out = root / name
        rc, wall, tail = _cli(
            [
                "train",
                "--models",
                ",".join(PAPER_MODELS),
                "--dataset",
                sz["dataset"],
                "--epochs",
                "2",
                "--seeds",
                sz["seeds"],
                "--train-split",
                "trainval",
                *[a for s in sz["set"] for a in ("--set", s)],
                "--device",
                str(device),
                "--no-progress",
                "--out",
                str(out),
            ],
            threads,
        )
        rec = {"rc": rc, "wall_s": wall}
        if rc == 0:
            res = open_run(out)
            trains = [res.seed(m, int(s)).train for m in PAPER_MODELS for s in sz["seeds"].split(",")]
            rec["train_wall_s"] = sum(t["wall_time_s"] for t in trains)  # member shares add up per stack
            rec["train_step_s"] = sum(t["train_time_s"] for t in trains)
            rec["overhead_fraction"] = 1 - rec["train_step_s"] / rec["train_wall_s"]
            rec["hashes"] = weight_hashes(out)
        else:
            rec["error"] = tail
        runs.append(rec)
    ok = all(r["rc"] == 0 for r in runs)
    return {
        "runs": [{k: v for k, v in r.items() if k != "hashes"} for r in runs],
        "models": len(runs[0].get("hashes", {})),
        "hashes_equal": ok and runs[0]["hashes"] == runs[1]["hashes"] and bool(runs[0]["hashes"]),
    }


def attack_stage(run_dir: Path, sz: dict, device, threads) -> dict:
    rc, wall, tail = _cli(
        [
            "attack",
            str(run_dir),
            "--models",
            ATTACK_MODEL,
            *sz["attack"],
            "--device",
            str(device),
            "--no-grid",
            "--no-progress",
        ],
        threads,
    )
    out = {"model": ATTACK_MODEL, "args": sz["attack"], "rc": rc, "wall_s": wall}
    if rc == 0:
        from bench.runs import open_run

        res = open_run(run_dir)
        out["cells"] = sum(
            len([r for r in res.seed(ATTACK_MODEL, int(s)).records() if not r.is_worst_case])
            for s in sz["seeds"].split(",")
        )
    else:
        out["error"] = tail
    return out


# --------------------------------------------------------------------------------------------- main
def table(summary: dict) -> str:
    v, g, t, e, a = (summary[k] for k in ("versions", "graph_vs_eager", "throughput", "paper_2_epochs", "attack"))
    rows = [
        (
            "device",
            f"{v['device_name']} ({v['device']}), torch {v['torch']}, CUDA {v['cuda_version']}, "
            f"cuDNN {v['cudnn_version']}",
        ),
        (
            "numerics",
            f"TF32 matmul {v['tf32_matmul']}, TF32 cuDNN {v['tf32_cudnn']}, fp32 precision "
            f"{v['float32_matmul_precision']}, CUBLAS_WORKSPACE_CONFIG {v['CUBLAS_WORKSPACE_CONFIG']}",
        ),
    ]
    for kind, r in g.items():
        rows.append(
            (
                f"graph vs eager ({kind})",
                f"{'captured' if r['captured'] else 'static, uncaptured'}: max |diff| "
                f"{r['max_abs_diff']:.2e} ({'OK' if r['equal_within_1e-5'] else 'FAIL'}), "
                f"params moved {'yes' if r['params_moved'] else 'NO'}",
            )
        )
    rows.append(
        (
            "member-steps/s",
            f"stacked {t['stacked']['member_steps_per_s']:.0f} "
            f"({t['stacked']['fraction_of_peak']:.2f} of peak), loop "
            f"{t['loop']['member_steps_per_s']:.0f} ({t['loop']['fraction_of_peak']:.2f}); "
            f"stacked/loop {t['stacked_over_loop']:.1f}x; peak {t['matmul_peak_gflops']:.0f} GFLOP/s",
        )
    )
    for i, r in enumerate(e["runs"]):
        rows.append(
            (
                f"paper 2 epochs, run {i + 1}",
                f"rc {r['rc']}, {r['wall_s']:.1f} s wall"
                + (f", overhead fraction {r['overhead_fraction']:.3f}" if "overhead_fraction" in r else ""),
            )
        )
    rows.append(
        ("weights of the two runs", f"{e['models']} files, {'identical' if e['hashes_equal'] else 'DIFFERENT'}")
    )
    rows.append(
        (
            f"attack {a['model']}",
            f"rc {a['rc']}, {a['wall_s']:.1f} s" + (f", {a['cells']} cells" if "cells" in a else ""),
        )
    )
    rows.append(("total", f"{summary['wall_s']:.1f} s; {'PASS' if summary['ok'] else 'FAIL'}"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="small sizes on digits (a CPU rehearsal)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="the JSON summary")
    p.add_argument("--keep", default=None, help="keep the two training runs here (default: a temporary folder)")
    args = p.parse_args(argv)
    from bench.cli.common import parse_overrides
    from bench.data import load_dataset
    from bench.env import resolve_device
    from bench.errors import BenchError

    try:
        device = resolve_device(args.device)
        sz = sizes(args.tiny)
        data = load_dataset(sz["dataset"])
    except BenchError as e:
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = parse_overrides(sz["set"])
    t0 = time.perf_counter()
    summary = {"tiny": args.tiny, "versions": versions(device)}
    summary["graph_vs_eager"] = graph_vs_eager(data, overrides, device, sz["graph_steps"])
    summary["throughput"] = throughput(
        sz["dataset"], overrides, [int(s) for s in sz["seeds"].split(",")], device, sz["speed_steps"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        summary["paper_2_epochs"] = paper_epochs(root, sz, device, args.threads)
        summary["attack"] = attack_stage(root / "a", sz, device, args.threads)
    summary["wall_s"] = time.perf_counter() - t0
    summary["ok"] = (
        all(r["equal_within_1e-5"] and r["params_moved"] for r in summary["graph_vs_eager"].values())
        and summary["paper_2_epochs"]["hashes_equal"]
        and summary["attack"]["rc"] == 0
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(table(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
