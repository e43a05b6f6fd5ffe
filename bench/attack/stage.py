"""The attack stage: robust accuracy of a run's trained models, cell by cell, resumably.

A cell is (model, seed, attack, norm, eps, protocol). Every cell records its attack's full
configuration, timing, throughput and sanity-check flags, with a per-example robustness vector
beside it; per (norm, eps) the worst case over attacks is recorded too (``worst_case``). The
evaluation rules (predictions, examples, protocols, seeds) are ``bench.protocol``'s.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import protocol
from ..errors import BenchError
from ..results import AttackRecord, Results, update_results
from ..rundir import check_writable, load_per_example, model_dir, require_run_dir, save_per_example
from .checks import model_checks, post_checks
from .cost import matmul_peak_flops
from .group import cell_line

DEFAULT_EPS_LINF = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
DEFAULT_EPS_L2 = (0.5, 1.0, 1.5, 2.0, 3.0)
# The default set is the strongest the tool has: cheap standalone attacks (their own figures), then, in
# the cascade, APGD with cross-entropy and with the targeted DLR loss and the gradient-free Square
# attack, for L-inf and L2 alike. eot_pgd runs on randomised models only.
DEFAULT_ATTACKS = ("fgsm", "pgd", "eot_pgd", "pgd_l2", "apgd_ce", "apgd_t", "square", "apgd_t_l2", "square_l2")


@dataclass
class AttackOptions:
    """Everything the attack stage needs (``vib-bench attack`` and a suite's ``[attack]`` table).

    ``attacks`` are names or wildcards (default: ``DEFAULT_ATTACKS``); ``eps`` / ``eps_l2`` the L-inf
    and L2 grids; ``models`` patterns; ``attack_set`` maps an attack to budget overrides.
    """

    run_dir: Path
    attacks: list[str] | None = None
    eps: list[float] | None = None
    eps_l2: list[float] | None = None
    n_examples: int | None = None
    batch_size: int | None = None   # None: as large as memory allows (bench.attack.batching)
    eot_iter: int | None = None
    attack_set: dict = field(default_factory=dict)
    grid_eps: float = 0.2
    grid: bool = True
    cascade: bool = True            # costly attacks run only on the examples still robust at that eps
    indicators: bool = True         # measure the indicators of attack failure and apply their mitigations
    models: list[str] | None = None
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    resume: bool = False
    fresh: bool = False
    progress: bool | None = None
    plugins: list[str] = field(default_factory=list)

    @classmethod
    def from_suite(cls, run_dir, table: dict, **kw) -> "AttackOptions":
        return cls(run_dir, attacks=table.get("attacks"), eps=table.get("eps"), eps_l2=table.get("eps_l2"),
                   n_examples=table.get("n_examples"), batch_size=table.get("batch_size"),
                   eot_iter=table.get("eot_iter"), attack_set=table.get("set") or {},
                   cascade=table.get("cascade", True), indicators=table.get("indicators", True), resume=True, **kw)


@dataclass
class AttackResult:
    """What the stage measured for one (model, seed)."""

    name: str
    seed: int
    records: list[AttackRecord]
    checks: dict
    setup: dict
    grid: Path | None = None


def check_budget_value(attack: str, key: str, value, default, where: str | None = None) -> None:
    """A budget override must have the type of the registry's default; numbers must be >= 0."""
    where = where or f"--attack-set {attack}.{key}={value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise BenchError(f"{where}: expected true or false")
    elif isinstance(default, int):
        least = 1 if key in ("steps", "n_queries", "eot_iter", "square_queries", "n_restarts") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BenchError(f"{where}: expected an integer >= {least}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise BenchError(f"{where}: expected a number >= 0")
    elif isinstance(default, str) and not isinstance(value, str):
        raise BenchError(f"{where}: expected a string")


@dataclass
class AttackPlan:
    """The checked options: attack names, eps grids and budgets."""

    attacks: list[str]
    eps_linf: list[float]
    eps_l2: list[float]
    batch_size: int | None      # None: each model-seed's own, as large as memory allows


def plan_attacks(opts: AttackOptions) -> AttackPlan:
    from attacks import check_eps, get_spec, list_attacks

    if opts.resume and opts.fresh:
        raise BenchError("--resume and --fresh contradict each other; pick one")
    attacks = list_attacks(list(opts.attacks)) if opts.attacks else list(DEFAULT_ATTACKS)
    if not attacks:
        raise BenchError("--attacks is empty")
    eps_linf = sorted({check_eps("Linf", e, "--eps") for e in (opts.eps if opts.eps is not None else DEFAULT_EPS_LINF)})
    eps_l2 = sorted({check_eps("L2", e, "--eps-l2") for e in (opts.eps_l2 if opts.eps_l2 is not None else DEFAULT_EPS_L2)})
    batch_size = None if opts.batch_size is None else int(opts.batch_size)
    if batch_size is not None and batch_size < 1:
        raise BenchError(f"--batch-size must be >= 1, got {batch_size}")
    if opts.eot_iter is not None and opts.eot_iter < 1:
        raise BenchError(f"--eot-iter must be >= 1, got {opts.eot_iter}")
    if not 0 <= opts.grid_eps:
        raise BenchError(f"--grid-eps must be >= 0, got {opts.grid_eps}")
    for a, ov in (opts.attack_set or {}).items():
        spec = get_spec(a)
        bad = sorted(set(ov) - set(spec.budget))
        if bad:
            raise BenchError(f"--attack-set {a}.{bad[0]}: attack {a} has no such setting "
                             f"(settings: {', '.join(spec.budget) or 'none'})")
        for key, value in ov.items():
            check_budget_value(a, key, value, spec.budget[key])
    norms_run = {get_spec(a).norm for a in attacks}
    if not any(eps_linf if norm == "Linf" else eps_l2 for norm in norms_run):
        raise BenchError(f"nothing to run: no eps for the {' and '.join(sorted(norms_run))} attacks selected "
                         "(see --eps and --eps-l2)")
    return AttackPlan(attacks, eps_linf, eps_l2, batch_size)


def attack_overrides(name: str, opts: AttackOptions, randomised: bool) -> dict:
    """The budget overrides of one attack: ``attack_set``, ``eot_iter`` and the protocol's AutoAttack version."""
    from attacks import get_spec

    spec = get_spec(name)
    ov = dict((opts.attack_set or {}).get(name, {}))
    if "version" in spec.budget and ov.get("version", "auto") == "auto":
        ov["version"] = protocol.autoattack_version(randomised)
    if randomised and "eot_iter" in spec.budget:  # EOT-PGD and APGD: average gradients over draws
        if opts.eot_iter is not None:
            ov.setdefault("eot_iter", opts.eot_iter)
        elif not spec.eot:
            ov.setdefault("eot_iter", protocol.EOT_ITER)
    return ov


def attack_model(run_dir: Path, name: str, seed: int, x, y, opts: AttackOptions, plan: AttackPlan, log=print):
    """Run every missing cell for one (model, seed), saving after each; returns its :class:`AttackResult` and
    the model. The groups are computed by :func:`bench.attack.group.attack_group`, shared with other executors."""
    from .group import attack_group, batch_size_for, eot_needed, groups, load_for_attack, model_line, skipped_lines

    m, setup = load_for_attack(run_dir, name, seed, x, y, opts.device)
    n = len(x)
    entry = Results.load(run_dir).seed(name, seed, create=True)
    records = [] if opts.fresh else entry.records()
    check_resumable(run_dir, name, seed, bool(records), entry.attack_setup, n, opts)

    checks = model_checks(m.model, x, y, opts.device)
    m.randomised = checks["randomised"]
    m.checks = checks
    log(model_line(name, seed, setup, checks) + f"; attack batch {batch_size_for(m, plan, opts)}"
        + ("" if plan.batch_size else " (from free memory)"))

    vectors = {k: torch.from_numpy(v) for k, v in load_per_example(run_dir, name, seed).items()} if records else {}

    def save():
        def write(res: Results):
            entry = res.seed(name, seed, create=True)
            entry.set_attacks(records, checks, setup)
            entry.set_failures("attack", [])   # what an earlier (Ray) invocation failed to do is done now
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


def check_resumable(run_dir, name: str, seed: int, has_records: bool, old_setup: dict, n: int,
                    opts: AttackOptions) -> None:
    """Refuse to mix a model-seed's earlier attack results with this invocation's unless asked to."""
    if has_records and not opts.resume:
        raise BenchError(f"{run_dir}: {name} seed {seed} already has attack results; pass --resume to keep them "
                         "and add what is missing, or --fresh to recompute them")
    if has_records and old_setup and old_setup.get("n_examples") != n:
        raise BenchError(f"--resume: {name} seed {seed} was attacked on {old_setup.get('n_examples')} examples, "
                         f"not {n}; pass the same --n-examples, or --fresh")


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
                raise BenchError(f"{run_dir}: {m} seed {s} already has attack results; pass --resume to keep them "
                                 "and add what is missing, or --fresh to recompute them")
    peak = matmul_peak_flops(str(device))
    env = {**environment(device), "matmul_peak_gflops": peak / 1e9}

    def set_env(r: Results):
        r.set_environment("attack", env)
        r.add_plugins(opts.plugins)  # attack plugins are recorded like model plugins, so --resume finds them
    update_results(run_dir, set_env)
    opts.device = device
    if opts.progress is None:
        opts.progress = sys.stderr.isatty()
    log(f"attacking {len(pairs)} model(s) on {len(x)} {ds.name} test examples with {', '.join(plan.attacks)} on "
        f"{device} (fp32 matmul peak measured: {peak / 1e9:.1f} GFLOP/s)")
    results = []
    for m, s in pairs:
        result, model = attack_model(run_dir, m, s, x, y, opts, plan, log=log)
        if opts.grid:
            result.grid = save_grid(run_dir, m, s, model, result.records, x, y, grid_eps=opts.grid_eps,
                                    device=device, overrides_for=lambda a, r: attack_overrides(a, opts, r))
            if result.grid:
                log(f"  picture: {result.grid}")
        if on_result is not None:
            on_result(result)
        else:
            for line in summary_lines(m, s, result.records, result.checks, result.setup):
                log(line)
        results.append(result)
    return results

