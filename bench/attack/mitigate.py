"""Measuring the indicators of attack failure and applying their mitigations (:mod:`bench.attack.indicators`).

Per cell (:func:`traced_run`, :func:`finish`), while the attack's numbers are still in memory:

* **silent success**: the attack runs inside :class:`attacks.trace.TracedAttack`; its best visited
  point is judged under the protocol and replaces the returned point where it is adversarial and the
  returned one is not;
* **incomplete optimization**: examples still robust whose margin was still falling at the end are
  attacked again with 2x, then 4x the steps (``steps``, else ``n_queries``) until the indicator clears;
* **unstable predictions**: the returned points are predicted under a second noise draw.

Per (norm, eps) group (:func:`group_pass`), once its cells ran: unavailable gradients (from the model
checks), unconstrained failure (each attack once per norm with no effective budget, cached per model),
transfer failure (a transfer attack from the model's mean mode, when it has one, joins the worst case)
and, for unstable predictions on a randomised model with no EOT attack at that eps, an EOT attack.
Every mitigation that changed a number is recorded beside it (``AttackRecord.add_mitigation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import protocol
from ..protocol import EVAL_BATCH, EVAL_SEED, predict_correct, predict_log_probs, seeded
from ..results import AttackRecord, CellKey
from . import indicators as ind
from .cost import run_attack

MAX_STEP_FACTOR = 4          # incomplete optimization: at most 4x the attack's steps
SANITY_N = 100               # examples of the unbounded sanity run
SECOND_DRAW = EVAL_SEED + 7  # the noise seed of the second prediction (unstable predictions)
TRANSFER = {"Linf": "transfer_pgd_strong", "L2": "transfer_pgd_l2_strong"}
EOT_ATTACK = {"Linf": "eot_pgd", "L2": "eot_pgd_l2_strong"}


def _spec(attack):
    return getattr(attack, "spec", None)


def traceable(attack) -> bool:
    """Whether the attack's iterates can be matched to examples: a bounded attack at eps > 0."""
    s = _spec(attack)
    eps = getattr(attack, "eps", None)
    return bool(eps) and getattr(attack, "norm", None) in ("Linf", "L2") and not (s is not None and s.minimum_norm)


def traced_run(c, x, y, attack=None, seed=None):
    """``run_attack`` of a cell with its iterates traced when possible: (adversarial inputs, cost, tracer)."""
    from attacks.trace import TracedAttack

    attack = attack or c.attack
    on = getattr(c, "indicators", True) and traceable(attack)
    tracer = TracedAttack(attack, c.model, attack.norm, attack.eps) if on else None
    adv, cost = run_attack(c.model, tracer or attack, x, y, batch_size=c.batch_size,
                           seed=c.seed if seed is None else seed, device=c.device, progress=c.progress, desc=c.desc)
    return adv, cost, tracer


@dataclass
class Findings:
    """What :func:`finish` measured for one cell, put into its record by :meth:`apply`."""

    n_attacked: int
    values: dict = field(default_factory=dict)        # indicator -> value
    after: dict = field(default_factory=dict)         # indicator -> value after its mitigation
    mitigations: list = field(default_factory=list)   # (indicator, action, before, after, extra)
    loss_trace: list | None = None
    extra_cost: dict = field(default_factory=dict)

    def apply(self, rec: AttackRecord) -> None:
        for name, v in self.values.items():
            ind.set_value(rec, name, v, of=self.n_attacked)
        for name, v in self.after.items():
            rec.set_indicator_after(name, v)
        for name, action, before, after, extra in self.mitigations:
            rec.add_mitigation(name, action, before, after, **extra)
        if self.loss_trace is not None:
            rec["loss_trace"] = self.loss_trace
        if self.extra_cost:
            rec["mitigation_cost"] = self.extra_cost


def _steps_key(attack) -> str | None:
    budget = getattr(attack, "budget", None) or {}
    for k in ("steps", "n_queries"):
        if isinstance(budget.get(k), int) and not isinstance(budget.get(k), bool):
            return k
    return None


def finish(c, x, y, attacked: torch.Tensor, adv, tracer, robust_of) -> tuple[torch.Tensor, torch.Tensor, Findings]:
    """Measure silent success, incomplete optimization and unstable predictions of one cell's run and
    apply the first two mitigations. ``attacked``: the examples that count (clean-correct); ``robust_of(ok)``
    the cell's robust accuracy for a correctness vector over ``x``. Returns (adv, correct on adv, findings)."""
    n_att = int(attacked.sum())
    f = Findings(n_att)
    labels = protocol.predict_labels(c.model, adv, c.device)
    ok = labels == y.cpu()
    if not getattr(c, "indicators", True):
        return adv, ok, f
    if tracer is not None:
        f.loss_trace = tracer.loss_trace()
        # silent success: a visited point fools the model (under the protocol) where the returned one does not
        best = tracer.best
        best_ok = predict_correct(c.model, best, y, c.device)
        silent = attacked & ok & ~best_ok
        f.values[ind.SILENT] = ind.fraction(silent, n_att)
        if bool(silent.any()):
            before = robust_of(ok)
            adv = torch.where(silent.view(-1, *([1] * (adv.dim() - 1))), best, adv)
            ok = predict_correct(c.model, adv, y, c.device)
            f.after[ind.SILENT] = ind.fraction(attacked & ok & ~predict_correct(c.model, best, y, c.device), n_att)
            f.mitigations.append((ind.SILENT, "kept the best visited iterate", before, robust_of(ok),
                                  {"examples": int(silent.sum())}))
        s = _spec(c.attack)
        if (s is None or s.iterative) and tracer.truncated:   # the history was cut: not measured, never a 0
            f.values[ind.INCOMPLETE] = None
        elif s is None or s.iterative:
            still = attacked & ok & tracer.still_improving()
            f.values[ind.INCOMPLETE] = value = ind.fraction(still, n_att)
            key = _steps_key(c.attack)
            if value > ind.INDICATORS[ind.INCOMPLETE].threshold and key and s is not None:
                adv, ok = _more_steps(c, x, y, attacked, adv, ok, still, key, robust_of, f)
    if getattr(c, "randomised", False):
        if f.mitigations:   # the points changed
            labels = protocol.predict_labels(c.model, adv, c.device)
        # a second draw: another noise key (keyed models) and another global-RNG seed (any other randomised model)
        with seeded(SECOND_DRAW, c.device):
            other = predict_log_probs(c.model, adv, EVAL_BATCH, c.device, SECOND_DRAW).argmax(1).cpu()
        f.values[ind.UNSTABLE] = ind.fraction(attacked & (labels != other), n_att)
    else:
        f.values[ind.UNSTABLE] = 0.0
    return adv, ok, f


def _more_steps(c, x, y, attacked, adv, ok, still, key, robust_of, f: Findings):
    """Rerun the attack with 2x, then up to ``MAX_STEP_FACTOR`` x its steps on the examples still improving."""
    from attacks import create_attack

    before, base = robust_of(ok), int(c.attack.budget[key])
    factor, value = 1, f.values[ind.INCOMPLETE]
    cost = {"wall_time_s": 0.0, "grad_evals": 0, "forward_evals": 0}
    while value > ind.INDICATORS[ind.INCOMPLETE].threshold and factor < MAX_STEP_FACTOR:
        factor *= 2
        todo = (attacked & ok & still).nonzero().squeeze(1)   # only the examples still improving
        if not len(todo):
            value = 0.0
            break
        budget = {k: v for k, v in c.attack.budget.items() if k != key}
        atk = create_attack(c.attack.name, c.model, c.attack.eps, **budget, **{key: base * factor})
        adv2, cst, tr = traced_run(c, x[todo], y[todo], attack=atk, seed=c.seed + factor)
        for k in cost:
            cost[k] += cst[k]
        cand = adv.clone()
        cand[todo] = adv2
        cand_ok = predict_correct(c.model, cand, y, c.device)
        fooled = attacked & ok & ~cand_ok
        adv = torch.where(fooled.view(-1, *([1] * (adv.dim() - 1))), cand, adv)
        ok = predict_correct(c.model, adv, y, c.device)
        still_sub = tr.still_improving() if tr is not None else torch.zeros(len(todo), dtype=torch.bool)
        still = torch.zeros_like(attacked)
        still[todo] = still_sub
        value = ind.fraction(still & attacked & ok, int(attacked.sum()))
    f.after[ind.INCOMPLETE] = value
    f.extra_cost = cost
    f.mitigations.append((ind.INCOMPLETE, f"reran the examples still improving with up to {factor}x {key}", before,
                          robust_of(ok), {key: base * factor, "cap": base * MAX_STEP_FACTOR}))
    return adv, ok


# ------------------------------------------------------------------------------------ per group
def _attacked(rec: AttackRecord, clean_n: int) -> int:
    return int(rec["attacked_n"]) if rec.get("cascade") else clean_n


def unbounded_value(m, attack_name: str, norm: str, rec: AttackRecord, overrides: dict, batch_size: int) -> float | None:
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
    """The group-level indicators of the cells ``new`` computed now at (g.norm, g.eps), and their mitigations
    (a transfer cell, an EOT cell) put through ``computed(record, robust)``."""
    from attacks import AttackError, get_spec

    from . import cells
    from .stage import attack_overrides

    if g.eps == 0 or not new or not getattr(opts, "indicators", True):
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
        cell = cells.Cell(m.model, atk, m.x, m.y, m.clean, m.device, seed, m.batch_size or plan.batch_size, opts.progress,
                          f"{m.name} {name} {g.norm} {g.eps:g}", randomised=m.randomised)
        rec, robust = cells.standalone(cell, name, g.norm, g.eps, proto, atk.config())
        rec["mitigation_for"] = why
        computed(rec, robust)
        return rec

    for r in new:
        try:
            spec = get_spec(r.attack)
        except AttackError:  # a plugin attack that is not loaded now
            continue
        ind.set_value(r, ind.UNAVAILABLE, ind.unavailable_value(checks, spec.loss, spec.gradient_free),
                      of=checks.get("n"))
        if not r.get("mitigation_for"):
            ind.set_value(r, ind.UNCONSTRAINED,
                          unbounded_value(m, r.attack, g.norm, r, attack_overrides(r.attack, opts, m.randomised),
                                          m.batch_size or plan.batch_size), of=min(SANITY_N, len(m.x)))
    # transfer failure: a transfer attack from the surrogate joins the worst case
    if has_surrogate(m.model):
        t = run_extra(TRANSFER[g.norm], ind.TRANSFER)
        t_robust = vectors[t.vector_key]
        for r in new:
            if r is t or r.get("mitigation_for"):
                continue
            gain = vectors[r.vector_key] & ~t_robust
            ind.set_value(r, ind.TRANSFER, ind.fraction(gain, _attacked(r, n_clean)), of=_attacked(r, n_clean))
            r.set_indicator_after(ind.TRANSFER, 0.0)   # the worst case includes the transfer attack
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
        if ind.UNAVAILABLE in wc.indicators and any(_gradient_free(r) or r.get("mitigation_for") == ind.TRANSFER
                                                    for r in members):
            wc.set_indicator_after(ind.UNAVAILABLE, 0.0)   # a gradient-free or transfer attack is in the set
        if ind.UNSTABLE in wc.indicators and any(r.protocol == "eot" for r in members):
            wc.set_indicator_after(ind.UNSTABLE, 0.0)      # an EOT attack is in the set
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
