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
from ..protocol import EVAL_BATCH, EVAL_SEED, MODEL_FLAGS, predict_correct
from ..results import AttackRecord, CellKey, Results, per_example_key, update_results
from ..rundir import load_per_example, require_run_dir, save_per_example
from .checks import LARGE_EPS, model_checks, post_checks, tolerance
from .cost import matmul_peak_flops
from .summary import speed_text
from .worst_case import worst_case_records

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
    batch_size: int | None = 1000
    eot_iter: int | None = None
    attack_set: dict = field(default_factory=dict)
    grid_eps: float = 0.2
    grid: bool = True
    cascade: bool = True            # costly attacks run only on the examples still robust at that eps
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
                   cascade=table.get("cascade", True), resume=True, **kw)


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
    batch_size: int


def plan_attacks(opts: AttackOptions) -> AttackPlan:
    from attacks import check_eps, get_spec, list_attacks

    if opts.resume and opts.fresh:
        raise BenchError("--resume and --fresh contradict each other; pick one")
    attacks = list_attacks(list(opts.attacks)) if opts.attacks else list(DEFAULT_ATTACKS)
    if not attacks:
        raise BenchError("--attacks is empty")
    eps_linf = sorted({check_eps("Linf", e, "--eps") for e in (opts.eps if opts.eps is not None else DEFAULT_EPS_LINF)})
    eps_l2 = sorted({check_eps("L2", e, "--eps-l2") for e in (opts.eps_l2 if opts.eps_l2 is not None else DEFAULT_EPS_L2)})
    batch_size = 1000 if opts.batch_size is None else int(opts.batch_size)
    if batch_size < 1:
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


def _order(names: list[str], cascade: bool) -> tuple[list[str], list[str]]:
    """(standalone attacks, cascade chain): with the cascade, costly attacks form the chain, gradient
    attacks first and gradient-free ones last (so that a gradient-free success means masking)."""
    from attacks import get_spec

    if not cascade:
        return list(names), []
    chain = [a for a in names if get_spec(a).costly]
    chain.sort(key=lambda a: get_spec(a).gradient_free)
    return [a for a in names if a not in chain], chain


def attack_model(run_dir: Path, name: str, seed: int, x, y, opts: AttackOptions, plan: AttackPlan, log=print):
    """Run every missing cell for one (model, seed); returns its :class:`AttackResult` and the model."""
    from attacks import create_attack, get_spec

    from ..weights import load_trained
    from . import cells

    device = opts.device
    model = load_trained(run_dir, name, seed, device)
    n = len(x)
    clean = predict_correct(model, x, y, device)
    clean_acc = float(clean.double().mean())
    setup = {"n_examples": n, "eval_seed": EVAL_SEED, "eval_batch": EVAL_BATCH, "clean_acc": clean_acc,
             "split": "test", "first_n": True}

    entry = Results.load(run_dir).seed(name, seed, create=True)
    records = [] if opts.fresh else entry.records()
    if records and not opts.resume:
        raise BenchError(f"{run_dir}: {name} seed {seed} already has attack results; pass --resume to keep them "
                         "and add what is missing, or --fresh to recompute them")
    old_setup = entry.attack_setup
    if records and old_setup and old_setup.get("n_examples") != n:
        raise BenchError(f"--resume: {name} seed {seed} was attacked on {old_setup.get('n_examples')} examples, "
                         f"not {n}; pass the same --n-examples, or --fresh")

    checks = model_checks(model, x, y, device)
    randomised = checks["randomised"]
    mflags = [f for f in MODEL_FLAGS if checks.get(f)]
    log(f"{name} seed {seed}: clean accuracy {100 * clean_acc:.2f}% on {n} test examples; "
        f"{'randomised' if randomised else 'deterministic'}"
        f"{' (undeclared!)' if checks['undeclared_randomness'] else ''}; "
        f"vanishing gradients {100 * checks['vanishing_grad_fraction']:.1f}%; "
        f"PGD at L-inf {LARGE_EPS:g}: {100 * checks['large_eps']['robust_acc']:.1f}%"
        + (f"; FLAGS: {', '.join(mflags)}" if mflags else ""))

    vectors = {k: torch.from_numpy(v) for k, v in load_per_example(run_dir, name, seed).items()} if records else {}

    def save():
        update_results(run_dir, lambda res: res.seed(name, seed, create=True).set_attacks(records, checks, setup))

    def find(key: CellKey) -> AttackRecord | None:
        return next((r for r in records if r.key == key), None)

    def put(rec: AttackRecord, robust):
        old = find(rec.key)
        if old is not None:
            records.remove(old)
        records.append(rec)
        key = per_example_key(rec.attack, rec.norm, rec.eps, rec.protocol)
        vectors[key] = robust
        save_per_example(run_dir, name, seed, key, robust)

    def report(rec: AttackRecord):
        cell_flags = [k for k, v in rec.checks.items() if v is True]
        scope = (f" on {rec['attacked_n']} still robust" if rec.get("cascade") else "")
        log(f"  {rec.attack:10s} {rec.norm:4s} eps={rec.eps:<5g} [{rec.protocol}] robust {100 * rec.robust_acc:6.2f}% "
            f"[{100 * rec['ci_low']:.1f}, {100 * rec['ci_high']:.1f}]{scope}  "
            + ("(same CW run as above) " if rec.get("shared_run") else speed_text(rec.raw) + " ")
            + (f"FLAGS: {', '.join(cell_flags)}" if cell_flags else ""))

    for attack_name in plan.attacks:
        s = get_spec(attack_name)
        if s.randomised_only and not randomised:
            log(f"  {attack_name}: skipped (the model is deterministic: EOT would repeat {attack_name.replace('eot_', '')})")

    min_norm_runs = {}
    for norm, eps_list in (("Linf", plan.eps_linf), ("L2", plan.eps_l2)):
        names = [a for a in plan.attacks if get_spec(a).norm == norm
                 and not (get_spec(a).randomised_only and not randomised)]
        if not names:
            continue
        standalone, chain = _order(names, opts.cascade)
        for eps in eps_list:
            def prepare(attack_name):
                s = get_spec(attack_name)
                atk = create_attack(attack_name, model, None if s.minimum_norm else eps,
                                    **attack_overrides(attack_name, opts, randomised))
                proto = protocol.protocol_for(atk.eot, randomised)
                config = atk.config()
                if s.minimum_norm:
                    config["counted_within_eps"] = float(eps)
                cseed = protocol.cell_seed(seed, attack_name, norm, None if s.minimum_norm else eps, proto)
                cell = cells.Cell(model, atk, x, y, clean, device, cseed, plan.batch_size, opts.progress,
                                  f"{name} {attack_name} {norm} {eps:g}")
                return s, proto, config, cell

            def is_done(attack_name, proto, config, after=None, before=None):
                done = find(CellKey.of(attack_name, norm, eps, proto))
                return (done is not None and done.budget == config["budget"]
                        and per_example_key(attack_name, norm, eps) in vectors
                        and (after is None or (done.get("cascade_after") == after
                                               and done.get("robust_acc_before") == before)))

            for attack_name in standalone:
                s, proto, config, cell = prepare(attack_name)
                if (eps == 0 and s.costly) or is_done(attack_name, proto, config):
                    continue  # a costly attack at eps 0 could only return x; the cheap ones carry the eps-0 check
                if s.minimum_norm:
                    first = attack_name not in min_norm_runs
                    if first:
                        min_norm_runs[attack_name] = cells.min_norm_run(cell)
                    rec, robust = cells.min_norm_at(cell, min_norm_runs[attack_name], attack_name, norm, eps, proto,
                                                    config, first)
                else:
                    rec, robust = cells.standalone(cell, attack_name, norm, eps, proto, config)
                put(rec, robust)
                report(rec)
                post_checks(records, checks)
                save()
            if chain and eps > 0:
                robust_now = clean.clone()
                for r in records:
                    if r.norm == norm and r.eps == eps and not r.is_worst_case and not r.get("cascade"):
                        robust_now &= vectors[per_example_key(r.attack, norm, eps)]
                after = []
                for attack_name in chain:
                    s, proto, config, cell = prepare(attack_name)
                    if not is_done(attack_name, proto, config, after, float(robust_now.double().mean())):
                        rec, robust = cells.cascade(cell, attack_name, norm, eps, proto, config, robust_now, after)
                        put(rec, robust)
                        report(rec)
                        post_checks(records, checks)
                        save()
                    robust_now = vectors[per_example_key(attack_name, norm, eps)]
                    after = after + [attack_name]
            # the worst case over every attack recorded at this eps, including earlier invocations'
            for rec, robust in worst_case_records(records, vectors, norm, eps, randomised, clean_acc):
                put(rec, robust)
            post_checks(records, checks)
            save()

    # Randomised model: did averaging over the randomness matter?
    if randomised:
        lead = [r for r in records if r.is_worst_case and r.protocol == "all"
                and r.get("paper_robust_acc") is not None and r.get("eot_robust_acc") is not None]
        checks["eot_needed"] = any(r["eot_robust_acc"] < r["paper_robust_acc"] - tolerance(r.n) for r in lead) \
            if lead else None
        save()
    model.cpu()
    return AttackResult(name, seed, records, checks, setup), model


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

