"""The indicators of attack failure measured per (norm, eps) group, once its cells ran, and their mitigations.

:func:`group_pass`: unavailable gradients (from the model checks), unconstrained failure (each attack once
per norm with no effective budget, cached per model), transfer failure (a transfer attack from the model's
mean mode, when it has one, joins the worst case) and, for unstable predictions on a randomised model with
no EOT attack at that eps, an EOT attack. :func:`worst_case_pass`: the indicators of the worst-case records
and the effect of those extra attacks on them. The per-cell indicators are :mod:`bench.attack.mitigate`'s.
"""

from __future__ import annotations

import math

import torch

from .. import protocol
from ..protocol import predict_correct
from ..results import AttackRecord, CellKey
from . import cells
from . import indicators as ind
from .cost import run_attack
from .options import attack_overrides

SANITY_N = 100  # examples of the unbounded sanity run
TRANSFER = {"Linf": "transfer_pgd_strong", "L2": "transfer_pgd_l2_strong"}
EOT_ATTACK = {"Linf": "eot_pgd", "L2": "eot_pgd_l2_strong"}


def _attacked(rec: AttackRecord, clean_n: int) -> int:
    return int(rec["attacked_n"]) if rec.get("cascade") else clean_n


def unbounded_value(
    m, attack_name: str, norm: str, rec: AttackRecord, overrides: dict, batch_size: int
) -> float | None:
    """Unconstrained failure of one attack on one model: cached per (attack, norm) on ``m.sanity``."""
    from attacks import create_attack, get_spec

    key = (attack_name, norm)
    if key in m.sanity:
        return m.sanity[key]
    spec = get_spec(attack_name)
    n = min(SANITY_N, len(m.x))
    clean = m.clean[:n]
    if not bool(clean.any()):
        value = None
    elif spec.minimum_norm:
        mn = rec.get("min_norm") or {}
        ok = mn.get("success_rate_unbounded")
        value = None if ok is None else max(0.0, 1.0 - float(ok) / max(m.clean_acc, 1e-12))
    else:
        big = 1.0 if norm == "Linf" else math.sqrt(m.x[0].numel())
        atk = create_attack(attack_name, m.model, big, **overrides)
        seed = protocol.cell_seed(m.seed, attack_name, norm, big, "unbounded")
        adv, _ = run_attack(m.model, atk, m.x[:n], m.y[:n], batch_size=batch_size, seed=seed, device=m.device)
        still = clean & predict_correct(m.model, adv, m.y[:n], m.device)
        value = ind.fraction(still, int(clean.sum()))
    m.sanity[key] = value
    return value


def has_surrogate(model) -> bool:
    """A model with a mean mode (VIB: z = mu; any model exposing ``mean_mode``) has a surrogate to transfer from."""
    return hasattr(model, "mean_mode")


def group_pass(m, g, opts, plan, records: list[AttackRecord], vectors: dict, new: list[AttackRecord], computed) -> None:
    """The group-level indicators of the cells ``new`` computed now at (g.norm, g.eps), and of earlier cells of
    the group that never got them (a run resumed after a crash in this pass, or one made with
    ``--no-indicators``), and their mitigations (a transfer cell, an EOT cell) put through
    ``computed(record, robust)``."""
    from attacks import AttackError, get_spec

    if g.eps == 0 or not getattr(opts, "indicators", True):
        return
    new = list(new) + [
        r
        for r in records
        if r.norm == g.norm
        and r.eps == g.eps
        and not r.is_worst_case
        and not r.get("mitigation_for")
        and ind.UNAVAILABLE not in r.indicators
        and all(r is not x for x in new)
    ]
    if not new:
        return
    n_clean = int(m.clean.sum())
    checks = getattr(m, "checks", None) or {}

    def run_extra(name: str, why: str):
        key = CellKey.of(name, g.norm, g.eps, None)
        done = [r for r in records if (r.attack, r.norm, r.eps) == key[:3] and r.vector_key in vectors]
        if done:
            return done[0]
        from attacks import create_attack

        atk = create_attack(name, m.model, g.eps, **attack_overrides(name, opts, m.randomised))
        proto = protocol.protocol_for(atk.eot, m.randomised)
        seed = protocol.cell_seed(m.seed, name, g.norm, g.eps, proto)
        cell = cells.Cell(
            m.model,
            atk,
            m.x,
            m.y,
            m.clean,
            m.device,
            seed,
            m.batch_size or plan.batch_size,
            opts.progress,
            f"{m.name} {name} {g.norm} {g.eps:g}",
            randomised=m.randomised,
        )
        rec, robust = cells.standalone(cell, name, g.norm, g.eps, proto, atk.config())
        rec["mitigation_for"] = why
        computed(rec, robust)
        return rec

    for r in new:
        try:
            spec = get_spec(r.attack)
        except AttackError:  # a plugin attack that is not loaded now
            continue
        ind.set_value(
            r, ind.UNAVAILABLE, ind.unavailable_value(checks, spec.loss, spec.gradient_free), of=checks.get("n")
        )
        if not r.get("mitigation_for"):
            ind.set_value(
                r,
                ind.UNCONSTRAINED,
                unbounded_value(
                    m,
                    r.attack,
                    g.norm,
                    r,
                    attack_overrides(r.attack, opts, m.randomised),
                    m.batch_size or plan.batch_size,
                ),
                of=min(SANITY_N, len(m.x)),
            )
    # transfer failure: a transfer attack from the surrogate joins the worst case
    if has_surrogate(m.model):
        t = run_extra(TRANSFER[g.norm], ind.TRANSFER)
        t_robust = vectors[t.vector_key]
        for r in new:
            if r is t or r.get("mitigation_for"):
                continue
            gain = vectors[r.vector_key] & ~t_robust
            ind.set_value(r, ind.TRANSFER, ind.fraction(gain, _attacked(r, n_clean)), of=_attacked(r, n_clean))
            r.set_indicator_after(ind.TRANSFER, 0.0)  # the worst case includes the transfer attack
    # unstable predictions on a randomised model: make sure an EOT attack covers this eps
    if m.randomised and any(ind.UNSTABLE in r.fired_indicators() for r in new):
        here = [r for r in records if r.norm == g.norm and r.eps == g.eps and not r.is_worst_case]
        if not any(r.protocol == "eot" for r in here):
            run_extra(EOT_ATTACK[g.norm], ind.UNSTABLE)
        for r in new:
            if ind.UNSTABLE in r.fired_indicators():
                r["unstable_covered_by_eot"] = True


def _gradient_free(rec: AttackRecord) -> bool:
    from attacks import AttackError, get_spec

    try:
        return get_spec(rec.attack).gradient_free
    except AttackError:
        return False


def worst_case_pass(puts: list[tuple[AttackRecord, torch.Tensor]], records: list[AttackRecord], vectors: dict) -> None:
    """Indicators of the worst-case records just put, and the transfer attack's effect on them."""
    for wc, robust in puts:
        if not wc.is_worst_case or wc.eps == 0:
            continue
        members = ind.members_of(wc, records)
        ind.worst_case_indicators(wc, members)
        if ind.UNAVAILABLE in wc.indicators and any(
            _gradient_free(r) or r.get("mitigation_for") == ind.TRANSFER for r in members
        ):
            wc.set_indicator_after(ind.UNAVAILABLE, 0.0)  # a gradient-free or transfer attack is in the set
        if ind.UNSTABLE in wc.indicators and any(r.protocol == "eot" for r in members):
            wc.set_indicator_after(ind.UNSTABLE, 0.0)  # an EOT attack is in the set
        extra = [r for r in members if r.get("mitigation_for")]
        if extra:
            rest = [r for r in members if not r.get("mitigation_for")]
            if rest:
                before = rest[0].vector_key
                v = vectors[before].clone()
                for r in rest[1:]:
                    v &= vectors[r.vector_key]
                b, a = float(v.double().mean()), float(robust.double().mean())
                for r in extra:
                    if b != a:
                        wc.add_mitigation(r["mitigation_for"], f"{r.attack} joined the worst case", b, a)
