"""Running one attack cell: on every example (standalone), on the examples still robust (cascade), or
once for every eps (minimum-norm attacks such as CW, counted inside each eps ball)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import torch

from ..protocol import EVAL_SEED, predict_correct
from ..results import AttackRecord
from . import mitigate
from .checks import BALL_TOL, cell_checks
from .cost import perturbation_fields, run_attack
from .worst_case import acc_fields


@dataclass
class Cell:
    """What a cell needs: the model, its attack, the examples and the clean correctness vector."""

    model: object
    attack: object  # attacks.Attack
    x: torch.Tensor
    y: torch.Tensor
    clean: torch.Tensor  # bool (N,): correct on the clean input
    device: object
    seed: int
    batch_size: int
    progress: bool = False
    desc: str = ""
    randomised: bool = False  # the model's predictions are random (unstable predictions are measured)
    indicators: bool = True  # measure the indicators of attack failure (bench.attack.mitigate)
    reproducible: bool | None = None  # eps-0 cells: the protocol's reproducibility probe passed


def new_record(
    name, norm, eps, proto, robust, clean_acc, adv_acc, pert, config, cost, seed, batch_size, **extra
) -> AttackRecord:
    return AttackRecord.build(
        name,
        norm,
        eps,
        proto,
        **acc_fields(robust),
        clean_acc=clean_acc,
        adv_acc=adv_acc,
        perturbation=pert,
        checks={},
        config=config,
        **cost,
        attack_seed=seed,
        eval_seed=EVAL_SEED,
        batch_size=batch_size,
        **extra,
        recorded_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def _run(c: Cell, x, y):
    return run_attack(
        c.model, c.attack, x, y, batch_size=c.batch_size, seed=c.seed, device=c.device, progress=c.progress, desc=c.desc
    )


def standalone(c: Cell, name, norm, eps, proto, config) -> tuple[AttackRecord, torch.Tensor]:
    """Attack every example; robust = correct both clean and attacked (after the per-cell mitigations)."""
    adv, cost, tracer = mitigate.traced_run(c, c.x, c.y)
    adv, adv_ok, found = mitigate.finish(
        c, c.x, c.y, c.clean, adv, tracer, lambda ok: float((c.clean & ok).double().mean())
    )
    robust = c.clean & adv_ok
    pert, linf, l2 = perturbation_fields(c.x, adv)
    rec = new_record(
        name,
        norm,
        eps,
        proto,
        robust,
        float(c.clean.double().mean()),
        float(adv_ok.double().mean()),
        pert,
        config,
        cost,
        c.seed,
        c.batch_size,
    )
    found.apply(rec)
    cell_checks(rec, norm, eps, adv, linf, l2, int(c.clean.sum()))
    return rec, robust


NO_COST = {
    "wall_time_s": 0.0,
    "grad_evals": 0,
    "forward_evals": 0,
    "grad_evals_per_s": 0.0,
    "gflop": 0.0,
    "gflop_per_s": 0.0,
    "peak_fraction": 0.0,
}


def from_clean(c: Cell, name, norm, eps, proto, config) -> tuple[AttackRecord, torch.Tensor]:
    """An eps = 0 cell without running the attack: the only image in a ball of radius 0 is the example
    itself, and predictions are keyed on the example (``bench.protocol``), so the attacked prediction is
    the clean one, provided predictions do not depend on batching: the eps-0 check is the protocol's
    reproducibility probe (``c.reproducible``). The record says so (``from_clean_pass``) and costs nothing."""
    robust = c.clean.clone()
    pert, linf, l2 = perturbation_fields(c.x, c.x)
    acc = float(c.clean.double().mean())
    rec = new_record(
        name,
        norm,
        eps,
        proto,
        robust,
        acc,
        acc,
        pert,
        config,
        dict(NO_COST),
        c.seed,
        c.batch_size,
        from_clean_pass=True,
    )
    cell_checks(rec, norm, eps, c.x, linf, l2, int(c.clean.sum()))
    if c.reproducible is not None:
        rec.checks["eps0_differs_from_clean"] = not c.reproducible
    return rec, robust


def cascade(
    c: Cell, name, norm, eps, proto, config, robust_before: torch.Tensor, after: list[str]
) -> tuple[AttackRecord, torch.Tensor]:
    """Attack only the examples every earlier attack at this eps failed on (AutoAttack's cascade).

    The record's robust accuracy is the worst case so far (this attack and ``after``, the attacks run
    before it); ``robust_before`` is that worst case without it.
    """
    idx = robust_before.nonzero().flatten()
    robust = robust_before.clone()
    found = None
    if len(idx):
        adv, cost, tracer = mitigate.traced_run(c, c.x[idx], c.y[idx])

        def robust_of(ok):
            r = robust_before.clone()
            r[idx] = ok
            return float(r.double().mean())

        adv, robust[idx], found = mitigate.finish(
            c, c.x[idx], c.y[idx], torch.ones(len(idx), dtype=torch.bool), adv, tracer, robust_of
        )
        pert, linf, l2 = perturbation_fields(c.x[idx], adv)
    else:  # nothing left to attack
        adv, cost = c.x[:0], dict(NO_COST)
        pert, linf, l2 = {}, torch.zeros(0), torch.zeros(0)
    rec = new_record(
        name,
        norm,
        eps,
        proto,
        robust,
        float(c.clean.double().mean()),
        None,
        pert,
        config,
        cost,
        c.seed,
        c.batch_size,
        cascade=True,
        attacked_n=int(len(idx)),
        cascade_after=list(after),
        robust_acc_before=float(robust_before.double().mean()),
    )
    if found is not None:
        found.apply(rec)
    if len(idx):
        cell_checks(rec, norm, eps, adv, linf, l2, int(c.clean.sum()))
    return rec, robust


def min_norm_run(c: Cell):
    """Run a minimum-norm attack once: (adversarial inputs, wrong after attack, L2 norms, cost)."""
    adv, cost = _run(c, c.x, c.y)
    wrong = ~predict_correct(c.model, adv, c.y, c.device)
    _, _, l2 = perturbation_fields(c.x, adv)
    return adv, wrong, l2, cost


def min_norm_at(c: Cell, run, name, norm, eps, proto, config, first: bool) -> tuple[AttackRecord, torch.Tensor]:
    """A minimum-norm attack's success counted inside the eps ball (the attack itself has no eps)."""
    adv_all, wrong, l2_all, cost = run
    success = wrong & c.clean & (l2_all <= eps + BALL_TOL)
    used = torch.where(success.view(-1, 1, 1, 1), adv_all, c.x)
    robust = c.clean & ~success
    adv_acc = float((~(wrong & (l2_all <= eps + BALL_TOL))).double().mean())
    pert, linf, l2 = perturbation_fields(c.x, used)
    rec = new_record(
        name,
        norm,
        eps,
        proto,
        robust,
        float(c.clean.double().mean()),
        adv_acc,
        pert,
        config,
        cost,
        c.seed,
        c.batch_size,
    )
    ok = wrong & c.clean
    rec["shared_run"] = not first
    rec["min_norm"] = {
        "success_rate_unbounded": float(ok.double().mean()),
        "l2_median_of_successes": float(l2_all[ok].median()) if ok.any() else None,
        "l2_mean_of_successes": float(l2_all[ok].double().mean()) if ok.any() else None,
    }
    cell_checks(rec, norm, eps, used, linf, l2, int(c.clean.sum()))
    return rec, robust
