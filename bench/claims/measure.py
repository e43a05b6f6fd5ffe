"""Measuring one model for the claims: every attack of both protocols on the same examples.

``measure_model`` runs the cells of one (model, seed) that are not already done and hands each
finished cell to a callback (the stage persists it); it works on a model object, so tests can call it
without a run directory. A cell is one attack at one budget; a minimum-norm attack (CW) is run once
and counted both without a bound (``@inf``, the paper's own measure) and inside ``eps_l2``.

Every prediction follows ``bench.protocol`` (fixed noise seed, fixed batches): an example is robust
to an attack when the model classifies it correctly both clean and after the attack.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from .. import protocol
from ..attack.cost import run_attack
from ..protocol import predict_correct, predict_labels
from .options import PAPER_L2, PAPER_LINF, ClaimsOptions, eps_key

BALL_TOL = 1e-5  # slack for "inside the eps ball" (float32 arithmetic in the attacks)
L0_TOL = 0.5 / 255  # a pixel counts as changed when it moves by more than half an 8-bit grey level
TRANSFER_KAPPAS = (0.0, 2.0, 5.0)  # confidence margins of the mean-mode CW: a barely-crossing one rarely transfers


def vector_key(attack: str, eps: float | None) -> str:
    """Per-example key of one attack at one budget: ``claims:cw_paper@inf``, ``claims:pgd_strong@0.1``."""
    return f"claims:{attack}@{eps_key(eps)}"


CLEAN_KEY = "claims:clean"


def is_randomised(model, x: torch.Tensor, device) -> bool:
    """Declared stochastic, or two forward passes differ (an undeclared random model is attacked as one)."""
    if getattr(model, "stochastic", False):
        return True
    with torch.no_grad(), protocol.eval_mode(model):
        xb = x[:64].to(device)
        return bool((model(xb) - model(xb)).abs().max() > 1e-6)


def plan_cells(opts: ClaimsOptions, randomised: bool) -> list[tuple[str, str, float | None, str]]:
    """(attack, norm, eps or None for a minimum-norm attack, group) of every cell of one model."""
    from attacks import get_spec

    def runs(name):
        return randomised or not get_spec(name).randomised_only

    cells = [(a, "L2", None, "paper") for a in PAPER_L2]
    cells += [(a, "L2", opts.eps_l2, "strong") for a in opts.strong_l2 if runs(a)]
    for e in opts.eps_linf:
        cells += [(a, "Linf", e, "paper") for a in PAPER_LINF]
        cells += [(a, "Linf", e, "strong") for a in opts.strong_linf if runs(a)]
    return cells


def _norms(x: torch.Tensor, adv: torch.Tensor) -> dict[str, torch.Tensor]:
    d = (adv - x).flatten(1).double()
    return {"l0": (d.abs() > L0_TOL).sum(1).double(), "l2": d.norm(dim=1), "linf": d.abs().amax(1)}


def _cell_seed(model_seed: int, attack: str, norm: str, eps) -> int:
    return protocol.cell_seed(model_seed, attack, norm, eps, "claims")


def run_cell(
    model,
    x,
    y,
    clean,
    attack: str,
    norm: str,
    eps,
    group: str,
    opts: ClaimsOptions,
    randomised: bool,
    model_seed: int,
    device,
) -> tuple[dict, dict[str, torch.Tensor]]:
    """One attack on every example: its record and its per-example robustness vector(s)."""
    from attacks import create_attack

    atk = create_attack(attack, model, eps, **opts.budget(attack, randomised))
    seed = _cell_seed(model_seed, attack, norm, eps)
    adv, cost = run_attack(
        model,
        atk,
        x,
        y,
        batch_size=opts.batch_size,
        seed=seed,
        device=device,
        progress=opts.progress,
        desc=f"{attack} {norm} {eps_key(eps)}",
    )
    ok = predict_correct(model, adv, y, device)
    norms = _norms(x, adv)
    rec = {
        "attack": attack,
        "norm": norm,
        "eps": eps,
        "group": group,
        "n": len(x),
        "attack_seed": seed,
        "config": atk.config(),
        "wall_time_s": cost["wall_time_s"],
        "grad_evals": cost["grad_evals"],
        "forward_evals": cost["forward_evals"],
        "outside_unit_box": bool(adv.min() < 0 or adv.max() > 1),
    }
    vectors = {}
    if eps is None:  # minimum-norm: success anywhere (the paper's measure) and inside the claims' L2 budget
        fooled = clean & ~ok
        inside = norms["l2"] <= opts.eps_l2 + BALL_TOL
        vectors[vector_key(attack, None)] = clean & ok
        vectors[vector_key(attack, opts.eps_l2)] = clean & ~(fooled & inside)
        l2 = norms["l2"][fooled]
        rec.update(
            robust_acc=float((clean & ok).double().mean()),
            robust_acc_at_eps=float(vectors[vector_key(attack, opts.eps_l2)].double().mean()),
            l2_median_success=float(l2.median()) if len(l2) else None,
            l2_mean_success=float(l2.mean()) if len(l2) else None,
        )
    else:
        robust = clean & ok
        vectors[vector_key(attack, eps)] = robust
        size = norms["linf" if norm == "Linf" else "l2"]
        rec.update(robust_acc=float(robust.double().mean()), outside_eps_ball=bool(size.max() > eps + BALL_TOL))
    return rec, vectors


def measure_model(
    model,
    x,
    y,
    opts: ClaimsOptions,
    model_seed: int,
    *,
    device="cpu",
    done: dict | None = None,
    on_cell: Callable[[dict, dict], None] | None = None,
    log=print,
) -> tuple[list[dict], dict]:
    """Run every cell of one model not already in ``done`` (cell key -> record); returns (records, vectors).

    ``on_cell(record, vectors)`` is called after each cell, so a long measurement can be resumed.
    """
    done = dict(done or {})
    randomised = is_randomised(model, x, device)
    clean = predict_correct(model, x, y, device)
    vectors: dict[str, torch.Tensor] = {CLEAN_KEY: clean}
    records = []
    for attack, norm, eps, group in plan_cells(opts, randomised):
        key = cell_key(attack, norm, eps)
        if key in done:
            records.append(done[key])
            continue
        t0 = time.perf_counter()
        rec, vecs = run_cell(model, x, y, clean, attack, norm, eps, group, opts, randomised, model_seed, device)
        rec["key"] = key
        records.append(rec)
        vectors.update(vecs)
        if on_cell is not None:
            on_cell(rec, {CLEAN_KEY: clean, **vecs})
        extra = f", {100 * rec['robust_acc_at_eps']:.1f}% inside L2 {opts.eps_l2:g}" if eps is None else ""
        log(
            f"  {attack:22s} {norm:4s} {eps_key(eps):>4s} [{group}] robust {100 * rec['robust_acc']:5.1f}%{extra} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    return records, vectors


def cell_key(attack: str, norm: str, eps) -> str:
    return f"{attack}|{norm}|{eps_key(eps)}"


# --------------------------------------------------------------------------- the first ten zeros
def first_of_class(x: torch.Tensor, y: torch.Tensor, label: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples of class ``label`` (the paper: the first ten test zeros)."""
    idx = (y == label).nonzero().squeeze(1)[:n]
    return x[idx].contiguous(), idx


def measure_zeros(model, xz: torch.Tensor, opts: ClaimsOptions, model_seed: int, *, device="cpu") -> tuple[dict, dict]:
    """Targeted CW towards ``zeros_target`` on the first zeros: the paper's run, and the strongest one.

    The strongest run takes, per example, the smallest successful perturbation among the paper's run,
    CW with EOT over the sampling, and CW on the model's mean mode transferred to the model, at the
    confidence margins ``TRANSFER_KAPPAS`` (the last two only for a randomised model). Returns
    (record, {"paper": adv, "strongest": adv}).
    """
    from attacks import create_attack

    randomised = is_randomised(model, xz, device)
    target = opts.zeros_target
    yz = torch.full((len(xz),), opts.zeros_label, dtype=torch.long)
    runs = {"paper": {}}
    if randomised:
        runs["eot"] = {"eot_iter": opts.eot_iter}
        for kappa in TRANSFER_KAPPAS:
            runs[f"mean_mode_transfer_kappa{kappa:g}"] = {"from_mean_mode": True, "kappa": kappa}
    cands, configs = {}, {}
    for name, extra in runs.items():
        atk = create_attack(
            "cw_paper_targeted", model, None, **opts.budget("cw_paper_targeted", False, target=target, **extra)
        )
        adv, _ = run_attack(
            model,
            atk,
            xz,
            yz,
            batch_size=opts.batch_size,
            seed=_cell_seed(model_seed, f"zeros-{name}", "L2", None),
            device=device,
        )
        hit = predict_labels(model, adv, device) == target
        cands[name] = (adv, hit, _norms(xz, adv))
        configs[name] = atk.config()

    def summary(adv, hit, norms):
        return {
            "success": hit.tolist(),
            **{k: [float(v) if h else None for v, h in zip(norms[k], hit)] for k in ("l0", "l2", "linf")},
        }

    adv_p, hit_p, norms_p = cands["paper"]
    best_adv, best_hit = adv_p.clone(), hit_p.clone()
    best_l2 = torch.where(hit_p, norms_p["l2"], torch.full_like(norms_p["l2"], math.inf))
    source = ["paper" if h else None for h in hit_p.tolist()]
    for name, (adv, hit, norms) in cands.items():
        better = hit & (norms["l2"] < best_l2)
        best_adv[better] = adv[better]
        best_hit |= hit
        best_l2 = torch.where(better, norms["l2"], best_l2)
        for i in better.nonzero().squeeze(1).tolist():
            source[i] = name
    rec = {
        "n": len(xz),
        "label": opts.zeros_label,
        "target": target,
        "randomised": randomised,
        "paper": summary(adv_p, hit_p, norms_p),
        "strongest": {**summary(best_adv, best_hit, _norms(xz, best_adv)), "source": source},
        "configs": configs,
    }
    return rec, {"paper": adv_p, "strongest": best_adv}
