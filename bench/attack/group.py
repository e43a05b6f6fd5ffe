"""One (model, seed, norm, eps) group of the attack stage, computed in memory: what every executor runs.

At one (norm, eps) the cheap attacks run on every example, then the costly ones in a cascade on the
examples still robust, then the per-example worst case over every attack recorded there. The attacks
of a group depend on each other (the cascade), the groups of a model-seed do not, except that a
minimum-norm attack (CW) runs once for every eps of its norm: :func:`units` keeps such groups together.

:func:`attack_group` writes nothing: it updates the caller's records and vectors in memory and
returns what it put, in order. The in-process stage (``bench.attack.stage``) saves after every cell;
the Ray executor returns a unit's puts to the driver, the only writer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .. import protocol
from ..protocol import EVAL_BATCH, EVAL_SEED, MODEL_FLAGS
from ..results import AttackRecord, CellKey, per_example_key, put_record
from .checks import LARGE_EPS
from .options import attack_overrides
from .summary import speed_text
from .worst_case import worst_case_records


@dataclass
class ModelUnderAttack:
    """What every group of one (model, seed) shares: the model, the examples and its clean correctness."""

    name: str
    seed: int
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    clean: torch.Tensor  # bool (N,): correct on the clean input, under the protocol
    device: object
    randomised: bool = False
    batch_size: int | None = None  # attack batch size; None: chosen by :func:`batch_size_for`
    checks: dict = field(default_factory=dict)  # the model checks (bench.attack.checks.model_checks)
    sanity: dict = field(
        default_factory=dict
    )  # (attack, norm) -> unconstrained failure (bench.attack.group_indicators)
    clean_log_probs: torch.Tensor | None = None  # the clean pass's log-probabilities, when kept
    _reproducible: bool | None = None

    def reproducible(self) -> bool:
        """The protocol's reproducibility probe (``bench.protocol.reproducible``), run once, when an eps-0
        cell first needs it; it reuses the clean pass's log-probabilities when they were kept."""
        if self._reproducible is None:
            self._reproducible = protocol.reproducible(self.model, self.x, self.device, self.clean_log_probs)
        return self._reproducible

    @property
    def clean_acc(self) -> float:
        return float(self.clean.double().mean())


def batch_size_for(m: ModelUnderAttack, plan, opts) -> int:
    """The model-seed's attack batch size: the user's (``plan.batch_size``), or as large as memory allows
    for its largest EOT draw count (``bench.attack.batching``); chosen once per model-seed."""
    if m.batch_size is None:
        if plan.batch_size:
            m.batch_size = int(plan.batch_size)
        else:
            from .batching import auto_batch_size

            draws = max([int(attack_overrides(a, opts, m.randomised).get("eot_iter", 1)) for a in plan.attacks] + [1])
            m.batch_size = auto_batch_size(m.model, len(m.x), tuple(m.x.shape[1:]), m.device, draws)
    return m.batch_size


@dataclass(frozen=True)
class Group:
    """One (norm, eps) of a model-seed: its standalone attacks and its cascade chain, in order."""

    norm: str
    eps: float
    standalone: tuple[str, ...]
    chain: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.norm} eps={self.eps:g}"


def load_for_attack(run_dir, name: str, seed: int, x, y, device) -> tuple[ModelUnderAttack, dict]:
    """Load a trained model and its clean correctness on ``x``; returns it with the stage's setup record."""
    from ..train.weights import load_trained

    model = load_trained(run_dir, name, seed, device)
    logp = protocol.predict_log_probs(model, x, EVAL_BATCH, device, EVAL_SEED)
    m = ModelUnderAttack(name, seed, model, x, y, protocol.correct(logp, y), device, clean_log_probs=logp)
    setup = {
        "n_examples": len(x),
        "eval_seed": EVAL_SEED,
        "eval_batch": EVAL_BATCH,
        "eval_noise": protocol.EVAL_NOISE,
        "clean_acc": m.clean_acc,
        "split": "test",
        "first_n": True,
    }
    return m, setup


def model_line(name: str, seed: int, setup: dict, checks: dict) -> str:
    """The stage's line about one model: clean accuracy, randomness and the model checks."""
    mflags = [f for f in MODEL_FLAGS if checks.get(f)]
    return (
        f"{name} seed {seed}: clean accuracy {100 * setup['clean_acc']:.2f}% on {setup['n_examples']} test "
        f"examples; {'randomised' if checks['randomised'] else 'deterministic'}"
        f"{' (undeclared!)' if checks['undeclared_randomness'] else ''}; "
        f"vanishing gradients {100 * checks['vanishing_grad_fraction']:.1f}%; "
        f"PGD at L-inf {LARGE_EPS:g}: {100 * checks['large_eps']['robust_acc']:.1f}%"
        + (f"; FLAGS: {', '.join(mflags)}" if mflags else "")
    )


def skipped_lines(attacks: list[str], randomised: bool) -> list[str]:
    """Lines for the attacks a deterministic model skips (EOT would only repeat the plain attack)."""
    from attacks import get_spec

    return [
        f"  {a}: skipped (the model is deterministic: EOT would repeat {a.replace('eot_', '')})"
        for a in attacks
        if get_spec(a).randomised_only and not randomised
    ]


def cell_line(rec: AttackRecord) -> str:
    """One printed line per computed cell."""
    cell_flags = [k for k, v in rec.checks.items() if v is True]
    scope = f" on {rec['attacked_n']} still robust" if rec.get("cascade") else ""
    return (
        f"  {rec.attack:10s} {rec.norm:4s} eps={rec.eps:<5g} [{rec.protocol}] robust {100 * rec.robust_acc:6.2f}% "
        f"[{100 * rec['ci_low']:.1f}, {100 * rec['ci_high']:.1f}]{scope}  "
        + ("(same CW run as above) " if rec.get("shared_run") else speed_text(rec.raw) + " ")
        + (f"FLAGS: {', '.join(cell_flags)}" if cell_flags else "")
    )


def _order(names: list[str], cascade: bool) -> tuple[list[str], list[str]]:
    """(standalone attacks, cascade chain): with the cascade, costly attacks form the chain, gradient
    attacks first and gradient-free ones last (so that a gradient-free success means masking)."""
    from attacks import get_spec

    if not cascade:
        return list(names), []
    chain = [a for a in names if get_spec(a).costly]
    chain.sort(key=lambda a: get_spec(a).gradient_free)
    return [a for a in names if a not in chain], chain


def groups(plan, cascade: bool, randomised: bool) -> list[Group]:
    """Every (norm, eps) group of a model-seed, in the order the stage runs them."""
    from attacks import get_spec

    out = []
    for norm, eps_list in (("Linf", plan.eps_linf), ("L2", plan.eps_l2)):
        names = [
            a for a in plan.attacks if get_spec(a).norm == norm and not (get_spec(a).randomised_only and not randomised)
        ]
        if not names:
            continue
        standalone, chain = _order(names, cascade)
        out += [Group(norm, eps, tuple(standalone), tuple(chain)) for eps in eps_list]
    return out


def units(gs: list[Group]) -> list[list[Group]]:
    """Groups that can run apart: one per group, except that the groups of a norm whose attacks include a
    minimum-norm one stay together (that attack runs once for every eps of the norm)."""
    from attacks import get_spec

    out: list[list[Group]] = []
    for g in gs:
        shared = any(get_spec(a).minimum_norm for a in g.standalone)
        if shared and out and out[-1][0].norm == g.norm:
            out[-1].append(g)
        else:
            out.append([g])
    return out


def attack_group(
    m: ModelUnderAttack,
    g: Group,
    opts,
    plan,
    records: list[AttackRecord],
    vectors: dict,
    min_norm_runs: dict,
    on_cell=None,
) -> list[tuple[AttackRecord, torch.Tensor]]:
    """Run the missing cells of one group, then its worst case; writes nothing.

    ``records`` (the model-seed's, at least those of this group) and ``vectors`` (per-example key ->
    bool tensor) are updated in place; ``min_norm_runs`` caches the minimum-norm runs across the groups
    of a norm; ``on_cell(record, robust)`` is called after each computed cell. Returns every record it
    put (computed cells, then the worst cases) with its per-example vector.
    """
    from attacks import create_attack, get_spec

    from . import cells, group_indicators

    norm, eps, seed, randomised = g.norm, g.eps, m.seed, m.randomised
    puts: list[tuple[AttackRecord, torch.Tensor]] = []

    def find(key: CellKey) -> AttackRecord | None:
        return next((r for r in records if r.key == key), None)

    def put(rec: AttackRecord, robust):
        put_record(records, rec)
        vectors[rec.vector_key] = robust
        puts.append((rec, robust))

    def computed(rec, robust):
        put(rec, robust)
        if on_cell is not None:
            on_cell(rec, robust)

    def prepare(attack_name):
        s = get_spec(attack_name)
        atk = create_attack(
            attack_name, m.model, None if s.minimum_norm else eps, **attack_overrides(attack_name, opts, randomised)
        )
        proto = protocol.protocol_for(atk.eot, randomised)
        config = atk.config()
        if s.minimum_norm:
            config["counted_within_eps"] = float(eps)
        cseed = protocol.cell_seed(seed, attack_name, norm, None if s.minimum_norm else eps, proto)
        cell = cells.Cell(
            m.model,
            atk,
            m.x,
            m.y,
            m.clean,
            m.device,
            cseed,
            batch_size_for(m, plan, opts),
            opts.progress,
            f"{m.name} {attack_name} {norm} {eps:g}",
            randomised=randomised,
            indicators=getattr(opts, "indicators", True),
        )
        return s, proto, config, cell

    def is_done(attack_name, proto, config, after=None, before=None):
        done = find(CellKey.of(attack_name, norm, eps, proto))
        return (
            done is not None
            and done.budget == config["budget"]
            and per_example_key(attack_name, norm, eps) in vectors
            and (after is None or (done.get("cascade_after") == after and done.get("robust_acc_before") == before))
        )

    for attack_name in g.standalone:
        s, proto, config, cell = prepare(attack_name)
        if (eps == 0 and s.costly) or is_done(attack_name, proto, config):
            continue  # a costly attack at eps 0 could only return x; the cheap ones carry the eps-0 check
        if s.minimum_norm:
            first = attack_name not in min_norm_runs
            if first:
                min_norm_runs[attack_name] = cells.min_norm_run(cell)
            rec, robust = cells.min_norm_at(
                cell, min_norm_runs[attack_name], attack_name, norm, eps, proto, config, first
            )
        elif eps == 0:  # the probe runs once per model-seed, and only when an eps-0 cell is computed
            cell = dataclasses.replace(cell, reproducible=m.reproducible())
            rec, robust = cells.from_clean(cell, attack_name, norm, eps, proto, config)
        else:
            rec, robust = cells.standalone(cell, attack_name, norm, eps, proto, config)
        computed(rec, robust)
    if g.chain and eps > 0:
        robust_now = m.clean.clone()
        for r in records:
            # mitigation cells are added after the chain ran: counting them would change its starting point
            if (
                r.norm == norm
                and r.eps == eps
                and not r.is_worst_case
                and not r.get("cascade")
                and not r.get("mitigation_for")
            ):
                robust_now &= vectors[r.vector_key]
        after: list[str] = []
        for attack_name in g.chain:
            s, proto, config, cell = prepare(attack_name)
            if not is_done(attack_name, proto, config, after, float(robust_now.double().mean())):
                rec, robust = cells.cascade(cell, attack_name, norm, eps, proto, config, robust_now, after)
                computed(rec, robust)
            robust_now = vectors[per_example_key(attack_name, norm, eps)]
            after = after + [attack_name]
    # indicators of attack failure measured per group, and their mitigations (transfer and EOT cells)
    group_indicators.group_pass(m, g, opts, plan, records, vectors, [r for r, _ in puts], computed)
    # the worst case over every attack recorded at this eps, including earlier invocations'
    worst = worst_case_records(records, vectors, norm, eps, randomised, m.clean_acc)
    group_indicators.worst_case_pass(worst, records, vectors)
    for rec, robust in worst:
        put(rec, robust)
    return puts


def eot_needed(records: list[AttackRecord]) -> bool | None:
    """For a randomised model: did averaging over the randomness (EOT) lower the leaderboard number?"""
    from .checks import tolerance

    lead = [
        r
        for r in records
        if r.is_worst_case
        and r.protocol == "all"
        and r.get("paper_robust_acc") is not None
        and r.get("eot_robust_acc") is not None
    ]
    return any(r["eot_robust_acc"] < r["paper_robust_acc"] - tolerance(r.n) for r in lead) if lead else None
