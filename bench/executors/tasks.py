"""The bodies of the Ray executor's tasks: plain functions that compute and return, and write only what
they own.

A train unit writes its model directories (weights, checkpoint, status, training log: each file has one
owner, and a retried unit resumes from its last checkpoint). Every other task writes nothing: its records,
per-example vectors and metrics go back to the driver, the only writer of ``results.json`` and the
per-example stores. Nothing here imports Ray, so each body can be called and tested in-process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import BenchError


def enter(run_dir, plugin_paths, threads: int) -> Path:
    """What every task does first: its thread count, the run's plugins, a run directory it can see."""
    import platform

    from .. import plugins

    torch.set_num_threads(max(1, int(threads)))
    plugins.load_plugins(plugin_paths)
    plugins.load_entry_points()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(
            f"{run_dir} is not visible on node {platform.node()}: with the ray executor the run "
            "directory must be on storage that every node shares"
        )
    return run_dir


def worker_environment(run_dir, device, plugin_paths, threads: int) -> dict:
    """The environment of a worker that runs the campaign's tasks (recorded as the stages' environment)."""
    from ..attack.cost import matmul_peak_flops
    from ..env import environment

    enter(run_dir, plugin_paths, threads)
    return {**environment(device), "matmul_peak_gflops": matmul_peak_flops(str(torch.device(device))) / 1e9}


def train_unit(
    run_dir,
    members: list[tuple[str, int, dict, bool]],
    data,
    cfg,
    device,
    plugin_paths,
    threads: int,
    stacked: bool = False,
    strict: bool = False,
) -> list[dict]:
    """Train a unit of model-seeds ``(name, seed, overrides, evaluate)`` and evaluate each on the test split.

    A unit is one model-seed, or with ``stacked`` a stack of same-architecture model-seeds trained as one
    computation (``bench.train.stacked.run_job``; one task, one result per member). Training resumes from the
    checkpoint a failed attempt left (the driver has checked that the run is new or resumed).
    ``evaluate`` asks for the clean metrics of a model that was already trained; a model trained now is
    always evaluated. ``strict`` (``--stack on``): a stack whose stacked loss differs from its members' own
    raises ``BenchError`` instead of falling back to the per-model loop, as in the local executor.
    """
    from ..train.stacked import Job, run_job
    from ..train.stage import clean_result

    run_dir = enter(run_dir, plugin_paths, threads)
    overrides = {name: ov for name, _, ov, _ in members}
    job = Job([(name, seed) for name, seed, _, _ in members], stacked, strict=stacked and strict)
    statuses = {
        (n, s): st
        for done in run_job(job, run_dir, data, overrides, cfg, device=device, resume=True, progress=False)
        for n, s, st in done
    }
    out = []
    for name, seed, _, evaluate in members:
        status = statuses[(name, seed)]
        clean = None
        if status["state"] == "done" and (evaluate or not status.get("skipped")):
            clean = clean_result(run_dir, data, name, seed, device)
        out.append({"name": name, "seed": seed, "status": status, "clean": clean})
    return out


def _trained(unit_result, name: str, seed: int) -> bool:
    if unit_result is None:  # trained before this invocation
        return True
    return any(r["name"] == name and r["seed"] == seed and r["status"]["state"] == "done" for r in unit_result)


def attack_setup(run_dir, name: str, seed: int, xy, device, plugin_paths, threads: int, trained=None) -> dict | None:
    """Clean correctness, the setup record and the model checks of one model-seed (None: it did not train)."""
    from ..attack.checks import model_checks
    from ..attack.group import load_for_attack

    if not _trained(trained, name, seed):
        return None
    run_dir = enter(run_dir, plugin_paths, threads)
    x, y = xy
    m, setup = load_for_attack(run_dir, name, seed, x, y, device)
    checks = model_checks(m.model, x, y, device)
    return {"clean": m.clean, "setup": setup, "checks": checks}


def attack_unit(
    run_dir,
    name: str,
    seed: int,
    xy,
    setup: dict | None,
    unit: list[tuple[str, float]],
    opts,
    plan,
    records: list[dict],
    vectors: dict,
    plugin_paths,
    threads: int,
) -> list | None:
    """The groups ``unit`` ((norm, eps) pairs) of one model-seed: ``[(record dict, robust vector)]`` in the order
    they were put, or None when the model-seed has no setup (it did not train)."""
    from ..attack.group import ModelUnderAttack, attack_group, groups
    from ..results import AttackRecord
    from ..train.weights import load_trained

    if setup is None:
        return None
    run_dir = enter(run_dir, plugin_paths, threads)
    x, y = xy
    randomised = setup["checks"]["randomised"]
    m = ModelUnderAttack(
        name,
        seed,
        load_trained(run_dir, name, seed, opts.device),
        x,
        y,
        setup["clean"],
        opts.device,
        randomised,
        checks=setup["checks"],
    )
    recs = [AttackRecord(r) for r in records]
    vectors = dict(vectors)
    min_norm_runs: dict = {}
    puts = []
    for g in groups(plan, opts.cascade, randomised):
        if (g.norm, g.eps) in unit:
            puts += attack_group(m, g, opts, plan, recs, vectors, min_norm_runs)
    return [(rec.raw, robust) for rec, robust in puts]


def attack_grid(
    run_dir, name: str, seed: int, xy, records: list[dict], opts, plugin_paths, threads: int
) -> tuple[str, bytes] | None:
    """The picture of one model-seed's strongest L-inf attack: (file name, PNG bytes), or None."""
    from ..attack.grid import save_grid
    from ..attack.stage import attack_overrides
    from ..results import AttackRecord
    from ..train.weights import load_trained

    run_dir = enter(run_dir, plugin_paths, threads)
    x, y = xy
    model = load_trained(run_dir, name, seed, opts.device)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_grid(
            Path(tmp),
            name,
            seed,
            model,
            [AttackRecord(r) for r in records],
            x,
            y,
            grid_eps=opts.grid_eps,
            device=opts.device,
            overrides_for=lambda a, r: attack_overrides(a, opts, r),
        )
        return (path.name, path.read_bytes()) if path else None


def time_model(
    run_dir, name: str, seed: int, in_shape, num_classes: int, timing: dict, device, plugin_paths, threads: int
) -> dict:
    """Throughput of one trained model (``bench.timing.time_model`` in a worker)."""
    from ..timing import time_model

    return time_model(enter(run_dir, plugin_paths, threads), name, seed, in_shape, num_classes, timing, device)
