"""``vib-bench run``: a whole suite in one run directory: train, attack, time, leaderboard, figures.

Everything is checked before anything runs: the suite's keys, names and budgets, the model overrides
against each model, the attack options. With ``resume`` it picks up where it stopped and never redoes
finished work; ``fresh`` starts over; ``dry_run`` only plans. ``log`` receives one line per finished
stage, ``detail`` the per-model and per-cell lines. ``executor`` chooses who runs the work
(``bench.executors``: this process, or a Ray cluster); both write the same results file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import BenchError
from .run_options import RunOptions
from .rundir import check_seeds, check_writable


def _silent(*_):
    pass


@dataclass
class RunOutcome:
    failed: list[tuple[str, int]] = field(default_factory=list)
    plan_lines: list[str] = field(default_factory=list)  # the dry run's description
    leaderboard: Path | None = None
    seconds: float = 0.0


def _prepare(opts: RunOptions):
    """Check the whole suite and build everything the stages need, before any work."""
    import registry
    from models import list_models

    from . import plugins
    from .attack import AttackOptions
    from .attack.options import plan_attacks
    from .data import load_dataset
    from .executors import make_executor
    from .suite import check_suite, suite_label, suite_overrides
    from .train.options import TrainSettings

    suite = opts.suite
    if opts.resume and opts.fresh:
        raise BenchError("--resume and --fresh contradict each other; pick one")
    executor = make_executor(opts.executor, opts.ray_address)
    plugins.load_plugins(opts.plugins)
    plugins.load_entry_points()
    check_suite(suite)
    names = all_names = list_models(suite["models"])
    if opts.models:
        try:
            names = registry.select(all_names, opts.models)
        except registry.NoMatch as e:
            raise BenchError(
                f"--models {e.pattern!r}: no model of suite {suite['name']} matches{e.hint()} "
                f"(it runs {', '.join(names)})"
            ) from None
    seeds = check_seeds(opts.seeds if opts.seeds is not None else suite.get("seeds", [0]))
    if not seeds:
        raise BenchError("--seeds must name at least one seed")
    try:
        cfg = TrainSettings.from_suite(suite.get("train")).config().validate()
    except BenchError as e:
        raise BenchError(f"{suite_label(suite)}: [train] {e}") from None
    dataset = load_dataset(suite["dataset"], opts.data_dir)
    per_model = suite_overrides(suite, all_names, dataset)  # checked against every model of the suite
    per_model = {m: per_model[m] for m in names}
    attack_opts = attack_plan = None
    if "attack" in suite:
        attack_opts = AttackOptions.from_suite(
            opts.out, suite["attack"], device=opts.device, data_dir=opts.data_dir, progress=opts.progress
        )
        n_test = len(dataset.split("test")[0])
        if attack_opts.n_examples is not None and attack_opts.n_examples > n_test:
            raise BenchError(
                f"{suite_label(suite)}: [attack] n_examples: {attack_opts.n_examples} is more than "
                f"the {n_test} test examples of {dataset.name}"
            )
        attack_plan = plan_attacks(attack_opts)
    return executor, names, seeds, cfg, dataset, per_model, attack_opts, attack_plan


def run_suite(opts: RunOptions, log=print, detail=_silent) -> RunOutcome:
    """Train, evaluate, attack, time (through the chosen executor), then write the leaderboard and figures."""
    from .attack.cost import matmul_peak_flops
    from .executors import Campaign
    from .plan import describe_plan, make_plan
    from .reporting.figures import make_figures
    from .reporting.leaderboard_render import write_leaderboard
    from .rundir import RESULTS, clear_run
    from .runs import failed_models

    suite, out, device = opts.suite, Path(opts.out), opts.device
    executor, names, seeds, cfg, dataset, per_model, attack_opts, attack_plan = _prepare(opts)
    outcome = RunOutcome()
    if opts.dry_run:
        plan = make_plan(suite, dataset, per_model, seeds, cfg.epochs, cfg.train_split, attack_plan, attack_opts)
        outcome.plan_lines = describe_plan(plan, str(device), matmul_peak_flops(str(torch.device(device))) / 1e9)
        return outcome
    if (out / RESULTS).exists() and not (opts.resume or opts.fresh):
        raise BenchError(
            f"{out} already holds a run; pass --resume to continue it, --fresh to start over, or choose another --out"
        )
    check_writable(out)
    if opts.fresh:
        clear_run(out)
    t0 = time.perf_counter()
    log(
        f"suite {suite['name']}: {len(names)} models x {len(seeds)} seed(s) on {dataset.name}, "
        f"{cfg.epochs} epochs, on {device} -> {out}" + ("" if opts.executor == "local" else f" ({executor.describe()})")
    )
    campaign = Campaign(
        out,
        names,
        seeds,
        dataset,
        per_model,
        cfg,
        attack_opts,
        attack_plan,
        suite.get("timing", {}),
        device,
        opts.resume,
        opts.progress,
        list(opts.plugins),
        {k: v for k, v in suite.items() if k != "path"},
        opts.stack,
    )
    done = executor.run(campaign, log, detail)
    if "claims" in suite and done.trained_any:  # the claims check runs here, after either executor
        from .claims import options_for_run, run_claims

        t3 = time.perf_counter()
        rows = run_claims(
            options_for_run(out, device=device, data_dir=opts.data_dir, progress=opts.progress), log=detail
        )
        log(f"[claims] {len(rows)} claim(s) judged in {time.perf_counter() - t3:.0f} s (vib-bench claims {out})")
    outcome.leaderboard = write_leaderboard(out)
    if done.trained_any:
        make_figures(out)
    outcome.failed = failed_models(_results(out), names, seeds)
    outcome.failed += sorted({(m, s) for m, s, _, _ in done.failures} - set(outcome.failed))
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _results(out: Path):
    from .runs import open_run

    return open_run(out)
