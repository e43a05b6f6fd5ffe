"""The attack stage's options: what ``vib-bench attack`` and a suite's ``[attack]`` table may set, the
default attacks and eps grids, and the checked plan (:func:`plan_attacks`) and per-attack budget overrides
(:func:`attack_overrides`) every executor uses. The bottom of the package: it imports no other module of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BenchError
from ..settings import from_table, setting

if TYPE_CHECKING:
    import torch

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
    attacks: list[str] | None = setting(
        None,
        kind="list",
        what="attack",
        shown=",".join(DEFAULT_ATTACKS),
        help="comma-separated attacks or wildcards (default, the strong set: {default}; eot_pgd runs on randomised "
        "models only); see `vib-bench list attacks`",
    )
    eps: list[float] | None = setting(
        None,
        kind="list",
        item="float",
        lo=0,
        hi=1,
        metavar="LIST",
        shown=",".join(f"{e:g}" for e in DEFAULT_EPS_LINF),
        help="L-inf budgets for L-inf attacks, in [0, 1] (default: {default})",
    )
    eps_l2: list[float] | None = setting(
        None,
        kind="list",
        item="float",
        lo=0,
        nonempty=False,
        metavar="LIST",
        what="eps",
        shown=",".join(f"{e:g}" for e in DEFAULT_EPS_L2),
        help="L2 budgets for L2 attacks (default: {default})",
    )
    n_examples: int | None = setting(
        None,
        kind="int",
        lo=1,
        metavar="N",
        shown="the whole test split",
        help="attack the first N test examples (default: {default})",
    )
    batch_size: int | None = setting(  # None: as large as memory allows (bench.attack.batching)
        None,
        kind="int",
        lo=1,
        shown="as many as a quarter of the free memory holds",
        help="examples per attack batch (default: {default})",
    )
    eot_iter: int | None = setting(
        None,
        kind="int",
        lo=1,
        metavar="K",
        shown="EOT-PGD 10, APGD 20",
        help="draws averaged per gradient by the EOT attacks on randomised models (default: {default})",
    )
    attack_set: dict = setting(
        kind="table",
        default_factory=dict,
        suite="set",
        flag="--attack-set",
        metavar="ATTACK.KEY=VALUE",
        repeat=True,
        help="override one attack's budget, e.g. --attack-set pgd.steps=100 (repeatable)",
    )
    grid_eps: float = setting(
        0.2,
        kind="float",
        lo=0,
        suite=None,
        help="eps of the picture of adversarial examples (closest one run; default: {default})",
    )
    grid: bool = setting(True, kind="bool", suite=None, help="skip the picture")
    cascade: bool = setting(  # costly attacks run only on the examples still robust at that eps
        True,
        kind="bool",
        help="run the costly attacks (APGD, Square, AutoAttack) on every example, not only on those still robust "
        "after the cheaper ones (standalone figures; slower; same worst case)",
    )
    indicators: bool = setting(  # measure the indicators of attack failure and apply their mitigations
        True,
        kind="bool",
        help="do not measure the six indicators of attack failure nor apply their mitigations (best iterate, more "
        "steps, transfer and EOT cells, unbounded sanity run): faster, less checked",
    )
    # process-level settings: the shared flags of bench.cli.common, not in a suite's [attack] table
    models: list[str] | None = None
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    resume: bool = setting(
        False,
        kind="bool",
        suite=None,
        help="keep finished (model, seed, attack, eps, protocol) cells and run only the missing ones",
    )
    fresh: bool = setting(
        False,
        kind="bool",
        suite=None,
        help="discard this command's earlier results for the selected models and recompute them",
    )
    progress: bool | None = None
    plugins: list[str] = field(default_factory=list)

    @classmethod
    def from_suite(cls, run_dir, table: dict, **kw) -> AttackOptions:
        """The options of a suite's ``[attack]`` table (checked by ``bench.suite``); a campaign resumes."""
        return cls(run_dir, **{**from_table(cls, table), "resume": True, **kw})


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
    batch_size: int | None  # None: each model-seed's own, as large as memory allows


def plan_attacks(opts: AttackOptions) -> AttackPlan:
    from attacks import check_eps, get_spec, list_attacks

    if opts.resume and opts.fresh:
        raise BenchError("--resume and --fresh contradict each other; pick one")
    attacks = list_attacks(list(opts.attacks)) if opts.attacks else list(DEFAULT_ATTACKS)
    if not attacks:
        raise BenchError("--attacks is empty")
    eps_linf = sorted({check_eps("Linf", e, "--eps") for e in (opts.eps if opts.eps is not None else DEFAULT_EPS_LINF)})
    eps_l2 = sorted(
        {check_eps("L2", e, "--eps-l2") for e in (opts.eps_l2 if opts.eps_l2 is not None else DEFAULT_EPS_L2)}
    )
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
            raise BenchError(
                f"--attack-set {a}.{bad[0]}: attack {a} has no such setting "
                f"(settings: {', '.join(spec.budget) or 'none'})"
            )
        for key, value in ov.items():
            check_budget_value(a, key, value, spec.budget[key])
    norms_run = {get_spec(a).norm for a in attacks}
    if not any(eps_linf if norm == "Linf" else eps_l2 for norm in norms_run):
        raise BenchError(
            f"nothing to run: no eps for the {' and '.join(sorted(norms_run))} attacks selected "
            "(see --eps and --eps-l2)"
        )
    return AttackPlan(attacks, eps_linf, eps_l2, batch_size)


def attack_overrides(name: str, opts: AttackOptions, randomised: bool) -> dict:
    """The budget overrides of one attack: ``attack_set``, ``eot_iter`` and the protocol's AutoAttack version."""
    from attacks import get_spec

    from .. import protocol

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
