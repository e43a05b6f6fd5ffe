"""The attack stage: robust accuracy of a run's trained models, cell by cell, resumably.

A cell is (model, seed, attack, norm, eps, protocol). Every cell records its attack's full
configuration, timing, throughput and sanity-check flags, with a per-example robustness vector
beside it; per (norm, eps) the worst case over attacks is recorded too (``worst_case``). The
evaluation rules (predictions, examples, protocols, seeds) are ``bench.protocol``'s.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import protocol
from ..errors import BenchError
from ..results import AttackRecord, Results, recorded_noise, update_results
from ..rundir import check_writable, load_per_example, model_dir, require_run_dir, save_per_example
from .checks import model_checks, post_checks
from .cost import matmul_peak_flops
from .group import cell_line
from .options import (
    AttackOptions,
    AttackPlan,  # noqa: F401
    attack_overrides,
    plan_attacks,
)


@dataclass
class AttackResult:
    """What the stage measured for one (model, seed)."""

    name: str
    seed: int
    records: list[AttackRecord]
    checks: dict
    setup: dict
    grid: Path | None = None


def attack_model(run_dir: Path, name: str, seed: int, x, y, opts: AttackOptions, plan: AttackPlan, log=print):
    """Run every missing cell for one (model, seed), saving after each; returns its :class:`AttackResult` and
    the model. The groups are computed by :func:`bench.attack.group.attack_group`, shared with other executors."""
    from .group import attack_group, batch_size_for, eot_needed, groups, load_for_attack, model_line, skipped_lines

    m, setup = load_for_attack(run_dir, name, seed, x, y, opts.device)
    n = len(x)
    entry = Results.load(run_dir).seed(name, seed, create=True)
    records = [] if opts.fresh else entry.records()
    check_resumable(run_dir, name, seed, bool(records), entry.attack_setup, n, opts, entry.attack_checks)

    checks = model_checks(m.model, x, y, opts.device)
    m.randomised = checks["randomised"]
    m.checks = checks
    log(
        model_line(name, seed, setup, checks)
        + f"; attack batch {batch_size_for(m, plan, opts)}"
        + ("" if plan.batch_size else " (from free memory)")
    )

    vectors = {k: torch.from_numpy(v) for k, v in load_per_example(run_dir, name, seed).items()} if records else {}

    def save():
        def write(res: Results):
            entry = res.seed(name, seed, create=True)
            entry.set_attacks(records, checks, setup)
            entry.set_failures("attack", [])  # what an earlier (Ray) invocation failed to do is done now

        update_results(run_dir, write)

    def on_cell(rec: AttackRecord, robust):
        save_per_example(run_dir, name, seed, rec.vector_key, robust)
        log(cell_line(rec))
        post_checks(records, checks)
        save()

    for line in skipped_lines(plan.attacks, m.randomised):
        log(line)
    min_norm_runs = {}
    for g in groups(plan, opts.cascade, m.randomised):
        for rec, robust in attack_group(m, g, opts, plan, records, vectors, min_norm_runs, on_cell):
            if rec.is_worst_case:
                save_per_example(run_dir, name, seed, rec.vector_key, robust)
        post_checks(records, checks)
        save()

    # Randomised model: did averaging over the randomness matter?
    if m.randomised:
        checks["eot_needed"] = eot_needed(records)
        save()
    m.model.cpu()
    return AttackResult(name, seed, records, checks, setup), m.model


def check_resumable(
    run_dir,
    name: str,
    seed: int,
    has_records: bool,
    old_setup: dict,
    n: int,
    opts: AttackOptions,
    old_checks: dict | None = None,
) -> None:
    """Refuse to mix a model-seed's earlier attack results with this invocation's unless asked to: other
    examples, or (for a model the earlier checks found randomised, or did not record) another noise scheme."""
    if has_records and not opts.resume:
        raise BenchError(
            f"{run_dir}: {name} seed {seed} already has attack results; pass --resume to keep them "
            "and add what is missing, or --fresh to recompute them"
        )
    if has_records and old_setup and old_setup.get("n_examples") != n:
        raise BenchError(
            f"--resume: {name} seed {seed} was attacked on {old_setup.get('n_examples')} examples, "
            f"not {n}; pass the same --n-examples, or --fresh"
        )
    noise = recorded_noise(old_setup) if old_setup else protocol.EVAL_NOISE
    if has_records and noise != protocol.EVAL_NOISE and (old_checks or {}).get("randomised", True):
        raise BenchError(
            f"--resume: {name} seed {seed} was attacked with evaluation noise '{noise}', not "
            f"'{protocol.EVAL_NOISE}' (bench.protocol.EVAL_NOISE); its numbers might mix two noise schemes: "
            "pass --fresh"
        )


def attack_run(opts: AttackOptions, log=print, on_result=None) -> list[AttackResult]:
    """Attack every trained model of a run (the ``attack`` command and the ``run`` suite stage).

    ``on_result(result)`` is called after each (model, seed); by default its summary is logged.
    """
    from ..env import environment
    from ..runs import load_run_dataset, open_run, select_trained
    from .grid import save_grid
    from .summary import summary_lines

    run_dir = require_run_dir(opts.run_dir)
    plan = plan_attacks(opts)
    res = open_run(run_dir)
    pairs = select_trained(run_dir, res, opts.models)
    check_writable(run_dir, [model_dir(run_dir, m, s) for m, s in pairs])
    device = torch.device(opts.device)
    ds = load_run_dataset(res, opts.data_dir)
    x, y = protocol.select_examples(*ds.split("test"), opts.n_examples)
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise BenchError(f"dataset {ds.name}: pixels are outside [0, 1]; attacks assume [0, 1] images")
    # refuse before any work rather than after the first model
    if not (opts.resume or opts.fresh):
        for m, s in pairs:
            if res.seed(m, s).has_attacks():
                raise BenchError(
                    f"{run_dir}: {m} seed {s} already has attack results; pass --resume to keep them "
                    "and add what is missing, or --fresh to recompute them"
                )
    peak = matmul_peak_flops(str(device))
    env = {**environment(device), "matmul_peak_gflops": peak / 1e9}

    def set_env(r: Results):
        r.set_environment("attack", env)
        r.add_plugins(opts.plugins)  # attack plugins are recorded like model plugins, so --resume finds them

    update_results(run_dir, set_env)
    opts.device = device
    if opts.progress is None:
        opts.progress = sys.stderr.isatty()
    log(
        f"attacking {len(pairs)} model(s) on {len(x)} {ds.name} test examples with {', '.join(plan.attacks)} on "
        f"{device} (fp32 matmul peak measured: {peak / 1e9:.1f} GFLOP/s)"
    )
    results = []
    for m, s in pairs:
        result, model = attack_model(run_dir, m, s, x, y, opts, plan, log=log)
        if opts.grid:
            result.grid = save_grid(
                run_dir,
                m,
                s,
                model,
                result.records,
                x,
                y,
                grid_eps=opts.grid_eps,
                device=device,
                overrides_for=lambda a, r: attack_overrides(a, opts, r),
            )
            if result.grid:
                log(f"  picture: {result.grid}")
        if on_result is not None:
            on_result(result)
        else:
            for line in summary_lines(m, s, result.records, result.checks, result.setup):
                log(line)
        results.append(result)
    return results
