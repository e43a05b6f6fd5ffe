"""Stacked training against today's per-model loop, measured in one run: a suite's models at its sizes.

For each (model, seed) of the suite, today's loop (``bench.train.recipe.make_train_step``: one model at a
time, fused Adam, EMA) and the stacked trainer (``bench.train.stacked``: every member of one architecture
as one computation) run the same number of steps on the same data, alternating in rounds so that any
drift of the machine hits both. Printed, all measured here:

  * the device's fp32 matmul peak (``bench.flops.matmul_peak_gflops``);
  * per trainer: seconds per epoch per model-seed (the median step time x steps per epoch / members),
    GFLOP/s (nominal 6 x MACs per example) and the fraction of the peak;
  * the ratio loop / stacked (> 1: stacked is faster).

It times steps only (no validation, no checkpoints), a few hundred of them, not whole epochs:

    flock /tmp/vib-compute.lock python benchmarks/stacked_speed.py --threads 1
    python benchmarks/stacked_speed.py --device cuda --seeds 0,1,2 --suite paper   # graphs on CUDA
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def load_data(name: str, split: str, device):
    from bench.data import load_dataset
    from bench.errors import BenchError

    try:
        ds = load_dataset(name)
        x, y = ds.split(split)
        return ds, x.to(device), y.to(device), name
    except BenchError:  # no MNIST here: random images of its shape (speed does not depend on them)
        from types import SimpleNamespace

        g = torch.Generator().manual_seed(0)
        n = 50_000 if split == "train" else 60_000
        ds = SimpleNamespace(in_shape=(1, 28, 28), num_classes=10)
        return (
            ds,
            torch.rand(n, 1, 28, 28, generator=g).to(device),
            torch.randint(0, 10, (n,), generator=g).to(device),
            "random 28x28",
        )


def members(suite: dict, seeds, ds, device):
    from bench.suite import suite_overrides
    from bench.train.recipe import build_member
    from bench.train.stacked.state import Member
    from models import list_models

    names = list_models(suite["models"])
    per_model = suite_overrides(suite, names, ds)
    out = []
    for name in names:
        for seed in seeds:
            model, rng = build_member(name, seed, per_model[name], ds, device)
            out.append(Member(name, seed, per_model[name], model, rng))
    return out


class Loop:
    """Today's trainer: one make_train_step per (model, seed), run one after the other."""

    def __init__(self, mems, cfg, x, y):
        import copy

        from bench.train.recipe import make_optimizer, make_train_step

        self.steps = []
        for m in mems:
            model = copy.deepcopy(m.model).train()
            ema = copy.deepcopy(model).eval()
            opt = make_optimizer(list(model.parameters()), cfg, x.device)
            self.steps.append(make_train_step(model, ema, opt, cfg))
        self.x, self.y, self.n = x, y, len(x)
        self.perms = [
            torch.randperm(self.n, generator=torch.Generator().manual_seed(m.seed)).to(x.device) for m in mems
        ]

    def run(self, first: int, count: int, bs: int) -> None:
        for step, perm in zip(self.steps, self.perms):
            for i in range(first, first + count):
                j = (i * bs) % (self.n - bs)
                idx = perm[j : j + bs]
                step(self.x[idx], self.y[idx], i)


class Stacked:
    """The stacked trainer: one StackStep per architecture."""

    def __init__(self, mems, cfg, x, y, graphs):
        import copy

        from bench.train.stacked.program import StackProgram, structure
        from bench.train.stacked.state import Member, Stack
        from bench.train.stacked.step import StackStep
        from models.base import scale_input

        groups: dict = {}
        for m in mems:
            s = structure(m.model)
            if s is None:
                raise SystemExit(f"{m.name} cannot be stacked")
            groups.setdefault(s.key, []).append((m, s))
        self.steps = []
        xs = scale_input(x)
        for group in groups.values():
            copies = [Member(m.name, m.seed, m.overrides, copy.deepcopy(m.model), m.rng) for m, _ in group]
            stack = Stack(copies, x.device)
            program = StackProgram([s for _, s in group], 10, x.device)
            self.steps.append((StackStep(program, stack, cfg, xs, y, graphs), len(group)))
        self.sizes = [len(g) for g in groups.values()]
        self.n, self.device = len(x), x.device
        self.perms = [
            torch.stack([torch.randperm(self.n, generator=torch.Generator().manual_seed(m.seed)) for m, _ in g]).to(
                x.device
            )
            for g in groups.values()
        ]

    def run(self, first: int, count: int, bs: int) -> None:
        for (step, _), perm in zip(self.steps, self.perms):
            for i in range(first, first + count):
                j = (i * bs) % (self.n - bs)
                step(perm[:, j : j + bs], i)


def timed(trainer, first, count, bs, device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    trainer.run(first, count, bs)
    sync()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="quick", help="a shipped suite or a .toml file (default: quick)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per member per trainer (default 300)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds the steps are split into")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-graphs", action="store_true", help="eager stacked steps on CUDA too")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from bench.env import device_name
    from bench.flops import matmul_peak_gflops, train_flops_per_example
    from bench.suite import load_suite
    from bench.train.recipe import TrainConfig

    suite = load_suite(args.suite)
    cfg = TrainConfig.from_dict({"epochs": 20, **suite.get("train", {})})
    seeds = [int(s) for s in args.seeds.split(",")]
    ds, x, y, what = load_data(suite["dataset"], cfg.train_split, device)
    mems = members(suite, seeds, ds, device)
    bs = cfg.batch_size
    steps_per_epoch = math.ceil(len(x) / bs)
    flops_per_step = sum(train_flops_per_example(m.model) for m in mems) * bs  # all members, one step each
    peak = matmul_peak_gflops(device, seconds=2.0)

    graphs = device.type == "cuda" and not args.no_graphs
    trainers = {"loop": Loop(mems, cfg, x, y), "stacked": Stacked(mems, cfg, x, y, graphs)}
    for t in trainers.values():
        t.run(0, args.warmup, bs)
    per_round = max(args.steps // args.rounds, 1)
    times = {k: [] for k in trainers}
    for r in range(args.rounds):
        for k, t in trainers.items():
            times[k].append(timed(t, args.warmup + r * per_round, per_round, bs, device) / per_round)

    print(
        f"device: {device_name(device)} ({device}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"data: {what} ({len(x)} examples, {steps_per_epoch} steps per epoch at batch {bs})"
    )
    print(
        f"suite {suite['name']}: {len(mems)} model-seeds ({', '.join(sorted({m.name for m in mems}))}), "
        f"stacks of {', '.join(map(str, trainers['stacked'].sizes))}; "
        f"{per_round * args.rounds} timed steps per member in {args.rounds} alternating rounds"
        f"{', CUDA graphs' if graphs else ''}"
    )
    print(f"fp32 matmul peak (2048x2048): {peak:.1f} GFLOP/s")
    print(
        f"{'trainer':<8} {'s/epoch per model-seed':>22} {'GFLOP/s':>9} {'of peak':>8}   "
        "rounds (ms per step of all members)"
    )
    summary = {}
    for k, ts in times.items():
        med = statistics.median(ts)
        gflops = flops_per_step / med / 1e9
        summary[k] = med
        print(
            f"{k:<8} {med * steps_per_epoch / len(mems):22.3f} {gflops:9.1f} {gflops / peak:8.2f}   "
            + " ".join(f"{t * 1e3:.1f}" for t in ts)
        )
    print(f"ratio loop / stacked: {summary['loop'] / summary['stacked']:.2f}x (> 1: the stacked trainer is faster)")


if __name__ == "__main__":
    main()
