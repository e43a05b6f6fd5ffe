"""The plan of a campaign: which model-seeds train, which attack cells run, and a rough time estimate.

``vib-bench run --dry-run`` prints it; executors can walk it. Estimates count the Linear layers'
FLOPs (``bench.flops``) and divide by the measured fp32 matmul peak times an assumed efficiency, so
they are rough (the training loop reaches about half of the peak on a 2-core CPU, see the README's
speed section) and, for the cascade, an upper bound: cascade attacks run only on the examples still
robust, which is usually a small fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .timing_options import TimingOptions

EFFICIENCY = 0.5  # fraction of the matmul peak a training or attack loop reaches (CPU, measured ~0.5-0.6)
# Typical share of the examples a cascade attack still sees: most models keep a fraction at the smallest
# eps and almost nothing above (MNIST MLPs: 15-40% at L-inf 0.1, 0-2% at 0.2). An assumption, stated.
TYPICAL_ROBUST = (0.3, 0.05)
TIMING_OVERHEAD = 3.0  # blocked_autorange runs warm-up and several blocks per measurement


@dataclass
class AttackCell:
    model: str
    seed: int
    attack: str
    norm: str
    eps: float
    cascade: bool
    grad_evals: float  # per attacked example (forward-only queries count a third)


@dataclass
class Plan:
    suite: str
    dataset: str
    n_fit: int
    epochs: int
    models: list[str]
    seeds: list[int]
    attack_examples: int = 0
    cells: list[AttackCell] = field(default_factory=list)
    train_flops: float = 0.0  # the whole training stage
    attack_flops: float = 0.0  # upper bound (cascade attacks on every example)
    attack_flops_typical: float = 0.0
    timing_s: float = 0.0

    @property
    def model_seeds(self) -> int:
        return len(self.models) * len(self.seeds)

    def seconds(self, peak_gflops: float) -> dict[str, float]:
        rate = peak_gflops * 1e9 * EFFICIENCY
        return {
            "train": self.train_flops / rate,
            "attack": self.attack_flops / rate,
            "attack_typical": self.attack_flops_typical / rate,
            "timing": self.timing_s,
        }


def grad_evals_per_example(name: str, budget: dict, randomised: bool) -> float:
    """How many input-gradient evaluations an attack spends per example (its budget's worst case)."""
    from attacks import get_spec

    spec = get_spec(name)
    steps = budget.get("steps", 1)
    eot = budget.get("eot_iter", 1)
    restarts = budget.get("n_restarts", 1)
    if spec.gradient_free:
        return budget.get("n_queries", 1000) / 3.0
    if name.startswith("autoattack"):
        if randomised:
            return 2 * steps * 20
        return steps * (1 + 9 + 9) + budget.get("square_queries", 5000) / 3.0
    if "n_target_classes" in budget:
        return steps * budget["n_target_classes"] * restarts * eot
    if not spec.iterative:
        return 1.0
    return steps * restarts * eot


def make_plan(
    suite: dict,
    dataset,
    per_model: dict[str, dict],
    seeds: list[int],
    epochs: int,
    train_split: str,
    attack_plan=None,
    attack_opts=None,
) -> Plan:
    """The plan of ``suite`` on ``dataset`` (``per_model``: each model's overrides)."""
    from attacks import get_spec

    from .flops import linear_macs
    from .train.weights import build_model

    n_fit = len(dataset.split(train_split)[0])
    n_val = len(dataset.split("val")[0])
    plan = Plan(suite.get("name", "?"), dataset.name, n_fit, epochs, list(per_model), list(seeds))
    macs = {}
    for name, ov in per_model.items():
        model = build_model(name, ov, dataset.in_shape, dataset.num_classes)
        macs[name] = (linear_macs(model), bool(getattr(model, "stochastic", False)))
        per_epoch = 6.0 * macs[name][0] * n_fit + 2.0 * macs[name][0] * n_val
        plan.train_flops += per_epoch * epochs * len(seeds)
    if attack_plan is not None:
        from .attack.options import attack_overrides

        n = attack_opts.n_examples or len(dataset.split("test")[0])
        plan.attack_examples = n
        for name, (m, randomised) in macs.items():
            for norm, grid in (("Linf", attack_plan.eps_linf), ("L2", attack_plan.eps_l2)):
                for attack in attack_plan.attacks:
                    spec = get_spec(attack)
                    if spec.norm != norm or (spec.randomised_only and not randomised):
                        continue
                    budget = {**spec.budget, **attack_overrides(attack, attack_opts, randomised)}
                    per_example = grad_evals_per_example(attack, budget, randomised)
                    cascade = spec.costly and attack_opts.cascade
                    nonzero = [e for e in grid if e > 0]
                    for eps in grid:
                        if eps == 0 and spec.costly:
                            continue
                        share = (TYPICAL_ROBUST[0] if eps == nonzero[0] else TYPICAL_ROBUST[1]) if cascade else 1.0
                        for seed in seeds:
                            plan.cells.append(AttackCell(name, seed, attack, norm, eps, cascade, per_example))
                            # min-norm attacks run once for all eps; count them once
                            if not (spec.minimum_norm and eps != grid[0]):
                                flops = 4.0 * m * per_example * n
                                plan.attack_flops += flops
                                plan.attack_flops_typical += flops * share
    timing = TimingOptions.from_suite(suite.get("timing"))
    rounds = len(timing.batch_sizes) + 1
    plan.timing_s = len(per_model) * rounds * float(timing.min_run_time) * TIMING_OVERHEAD
    return plan


def describe_plan(plan: Plan, device: str, peak_gflops: float) -> list[str]:
    """The dry run's text: what would run and roughly how long it would take."""
    sec = plan.seconds(peak_gflops)

    def dur(s: float) -> str:
        return f"{s:,.0f} s" if s < 120 else f"{s / 60:,.0f} min" if s < 7200 else f"{s / 3600:,.1f} h"

    lines = [
        f"suite {plan.suite}: {plan.dataset}, {len(plan.models)} model(s) x {len(plan.seeds)} seed(s) = "
        f"{plan.model_seeds} model-seed(s), {plan.epochs} epochs on {plan.n_fit:,} training examples",
        f"  models: {', '.join(plan.models)}",
        f"  seeds: {', '.join(map(str, plan.seeds))}",
    ]
    if plan.cells:
        by_attack: dict[str, int] = {}
        for c in plan.cells:
            by_attack[c.attack] = by_attack.get(c.attack, 0) + 1
        lines.append(
            f"  attack cells: {len(plan.cells)} on the first {plan.attack_examples:,} test examples ("
            + ", ".join(f"{a} {k}" for a, k in by_attack.items())
            + ")"
        )
    else:
        lines.append("  attack cells: none (the suite has no [attack] table)")
    lines += [
        f"estimated time on {device} (fp32 matmul peak measured now: {peak_gflops:,.0f} GFLOP/s, assuming "
        f"{EFFICIENCY:.0%} of it; rough):",
        f"  train   ~{dur(sec['train'])}  ({plan.train_flops / 1e15:.3g} PFLOP)",
        f"  attack  ~{dur(sec['attack_typical'])} if {TYPICAL_ROBUST[0]:.0%} of the examples are still robust "
        f"at the smallest eps and {TYPICAL_ROBUST[1]:.0%} above (at most {dur(sec['attack'])}: the cascade "
        "attacks see only what is still robust)",
        f"  timing  ~{dur(sec['timing'])}",
        f"  total   ~{dur(sec['train'] + sec['attack_typical'] + sec['timing'])}",
    ]
    return lines
