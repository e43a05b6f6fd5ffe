"""``vib-bench run``: a whole suite in one run directory: train, attack, time, leaderboard, figures.

With ``resume`` it picks up where it stopped and never redoes finished work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class RunOptions:
    suite: dict                      # a loaded suite (bench.suite.load_suite)
    out: Path
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    plugins: list[str] = field(default_factory=list)
    resume: bool = False
    progress: bool | None = None
    stack: str = "auto"              # bench.stacked: auto | on | off


def run_suite(opts: RunOptions, log=print) -> list[tuple[str, int]]:
    """Train, evaluate, attack, time, then write the leaderboard; returns the (model, seed)s that failed."""
    from models import list_models

    from . import plugins
    from .attack import AttackOptions, attack_run
    from .data import load_dataset
    from .figures import make_figures
    from .leaderboard import write_leaderboard
    from .runs import failed_models, open_run
    from .suite import suite_overrides
    from .timing import time_run
    from .train_stage import train_run
    from .training import TrainConfig

    suite, out, device = opts.suite, Path(opts.out), opts.device
    plugins.load_plugins(opts.plugins)
    plugins.load_entry_points()
    names = list_models(suite["models"])
    seeds = [int(s) for s in suite.get("seeds", [0])]
    cfg = TrainConfig.from_dict({"epochs": 20, **suite.get("train", {})}).validate()
    dataset = load_dataset(suite["dataset"], opts.data_dir)
    per_model = suite_overrides(suite, names, dataset)
    t0 = time.perf_counter()
    log(f"suite {suite['name']}: {len(names)} models x {len(seeds)} seed(s) on {dataset.name}, "
        f"{cfg.epochs} epochs, on {device} -> {out}")
    suite_record = {k: v for k, v in suite.items() if k != "path"}
    train_run(out, dataset, per_model, seeds, cfg, plugin_paths=opts.plugins, device=device,
              resume=opts.resume, progress=opts.progress, log=log, suite=suite_record, stack=opts.stack)
    log(f"[train] done in {time.perf_counter() - t0:.0f} s")

    if "attack" in suite:
        t1 = time.perf_counter()
        attack_run(AttackOptions.from_suite(out, suite["attack"], device=device, data_dir=opts.data_dir,
                                            progress=opts.progress), log=log)
        log(f"[attack] done in {time.perf_counter() - t1:.0f} s")

    t2 = time.perf_counter()
    time_run(out, suite.get("timing", {}), device=device, log=log)
    log(f"[timing] done in {time.perf_counter() - t2:.0f} s")

    res = open_run(out)
    path = write_leaderboard(out)
    make_figures(out)
    log(f"leaderboard: {path}")
    log(path.read_text())
    log(f"suite {suite['name']} finished in {time.perf_counter() - t0:.0f} s")
    return failed_models(res, names, seeds)
