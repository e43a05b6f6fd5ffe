"""Measuring the indicators of attack failure and applying their mitigations (:mod:`bench.attack.indicators`).

Per cell (:func:`traced_run`, :func:`finish`), while the attack's numbers are still in memory:

* **silent success**: the attack runs inside :class:`attacks.trace.TracedAttack`; its best visited
  point is judged under the protocol and replaces the returned point where it is adversarial and the
  returned one is not;
* **incomplete optimization**: examples still robust whose margin was still falling at the end are
  attacked again with 2x, then 4x the steps (``steps``, else ``n_queries``) until the indicator clears;
* **unstable predictions**: the returned points are predicted under a second noise draw.

The per-group indicators, measured once a (norm, eps) group's cells ran, are
:mod:`bench.attack.group_indicators`'s. Every mitigation that changed a number is recorded beside it
(``AttackRecord.add_mitigation``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import protocol
from ..protocol import EVAL_BATCH, EVAL_SEED, predict_correct, predict_log_probs, seeded
from ..results import AttackRecord
from . import indicators as ind
from .cost import run_attack

MAX_STEP_FACTOR = 4  # incomplete optimization: at most 4x the attack's steps
SECOND_DRAW = EVAL_SEED + 7  # the noise seed of the second prediction (unstable predictions)


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
    adv, cost = run_attack(
        c.model,
        tracer or attack,
        x,
        y,
        batch_size=c.batch_size,
        seed=c.seed if seed is None else seed,
        device=c.device,
        progress=c.progress,
        desc=c.desc,
    )
    return adv, cost, tracer


@dataclass
class Findings:
    """What :func:`finish` measured for one cell, put into its record by :meth:`apply`."""

    n_attacked: int
    values: dict = field(default_factory=dict)  # indicator -> value
    after: dict = field(default_factory=dict)  # indicator -> value after its mitigation
    mitigations: list = field(default_factory=list)  # (indicator, action, before, after, extra)
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
            f.mitigations.append(
                (ind.SILENT, "kept the best visited iterate", before, robust_of(ok), {"examples": int(silent.sum())})
            )
        s = _spec(c.attack)
        if (s is None or s.iterative) and tracer.truncated:  # the history was cut: not measured, never a 0
            f.values[ind.INCOMPLETE] = None
        elif s is None or s.iterative:
            still = attacked & ok & tracer.still_improving()
            f.values[ind.INCOMPLETE] = value = ind.fraction(still, n_att)
            key = _steps_key(c.attack)
            if value > ind.INDICATORS[ind.INCOMPLETE].threshold and key and s is not None:
                adv, ok = _more_steps(c, x, y, attacked, adv, ok, still, key, robust_of, f)
    if getattr(c, "randomised", False):
        if f.mitigations:  # the points changed
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
        todo = (attacked & ok & still).nonzero().squeeze(1)  # only the examples still improving
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
    f.mitigations.append(
        (
            ind.INCOMPLETE,
            f"reran the examples still improving with up to {factor}x {key}",
            before,
            robust_of(ok),
            {key: base * factor, "cap": base * MAX_STEP_FACTOR},
        )
    )
    return adv, ok
