"""What a claims check runs: models, examples, budgets and the attack sets of both protocols.

Two protocols are run on the same examples (the first ``n_examples`` test images):

* the **paper's protocol**: Carlini-Wagner L2 in the reference implementation's form, untargeted and
  targeted at seeded random classes (``cw_paper``, ``cw_paper_targeted``), and FGS for the L-inf
  claim, each through the model's own ``forward`` (VIB: the 12-sample average, no EOT);
* the **strongest evaluation**: the paper's attacks plus PGD and APGD with many steps and restarts,
  EOT over the model's sampling, a transfer attack from the model's mean mode and the gradient-free
  Square attack; an example counts as robust only if it survives every one of them.

The defaults are the full size (meant for a GPU); ``bench/suites/claims.toml`` sets a CPU size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BenchError
from ..settings import first_error, from_table, setting

if TYPE_CHECKING:
    import torch

PAPER_L2 = ("cw_paper", "cw_paper_targeted")
PAPER_LINF = ("fgsm",)
STRONG_L2 = ("pgd_l2_strong", "apgd_l2_strong", "eot_pgd_l2_strong", "transfer_pgd_l2_strong", "square_l2_strong")
STRONG_LINF = ("pgd_strong", "apgd_strong", "eot_pgd_strong", "transfer_pgd_strong", "square")
EOT_KEYS = {
    "apgd_strong": "eot_iter",
    "apgd_l2_strong": "eot_iter",
    "eot_pgd_strong": "eot_iter",
    "eot_pgd_l2_strong": "eot_iter",
}  # attacks whose eot_iter is set to ``eot_iter`` on randomised models


@dataclass
class ClaimsOptions:
    """Everything ``vib-bench claims`` needs, declared once (``bench.settings``): a suite's ``[claims]`` table
    sets the fields with a suite key, the command's flags refine the run's table (``FLAGS_REFINE_SUITE``)."""

    FLAGS_REFINE_SUITE = True  # a flag not given leaves the run's suite's value, else the field's default

    run_dir: Path
    n_examples: int = setting(  # the paper: the first 1,000 test images
        1000,
        kind="int",
        lo=1,
        metavar="N",
        help="attack the first N test images (default: the suite's, else {default} as in the paper)",
    )
    eps_l2: float = setting(  # the L2 budget at which (b) and (c) compare accuracies
        2.0,
        kind="float",
        lo=0,
        open_lo=True,
        metavar="EPS",
        help="L2 budget at which accuracies are compared (default: the suite's, else {default})",
    )
    eps_linf: list[float] = setting(  # FGS budgets
        kind="list",
        default_factory=lambda: [0.1, 0.2, 0.3],
        item="float",
        lo=0,
        hi=1,
        flag="--eps",
        metavar="LIST",
        what="eps",
        blank="empty",
        help="FGS / L-inf budgets (default: the suite's, else {default})",
    )
    baseline: str = setting("mlp", kind="str", help="the deterministic baseline (default: the suite's, else {default})")
    models: list[str] | None = setting(  # patterns; default: the baseline and every VIB model of the run
        None,
        kind="list",
        what="model pattern",
        blank="none",
        help="models to check, names or wildcards (default: the suite's, else the baseline and every VIB model)",
    )
    strong_l2: list[str] = setting(
        kind="list", default_factory=lambda: list(STRONG_L2), flag=None, help="the strongest evaluation's L2 attacks"
    )
    strong_linf: list[str] = setting(
        kind="list",
        default_factory=lambda: list(STRONG_LINF),
        flag=None,
        help="the strongest evaluation's L-inf attacks",
    )
    attack_set: dict = setting(  # attack -> budget overrides (both protocols)
        kind="table",
        default_factory=dict,
        suite="set",
        flag="--attack-set",
        metavar="ATTACK.KEY=VALUE",
        repeat=True,
        help="override one attack's budget, e.g. --attack-set cw_paper.steps=1000 (repeatable)",
    )
    eot_iter: int = setting(  # forward passes averaged by the EOT attacks on randomised models
        20,
        kind="int",
        lo=1,
        metavar="K",
        help="forward passes averaged by the EOT attacks (default: the suite's, else {default})",
    )
    zeros_n: int = setting(  # the first ten test zeros...
        10,
        kind="int",
        lo=0,
        metavar="N",
        help="first N test zeros for claim (d) (default: the suite's, else {default})",
    )
    zeros_label: int = 0
    zeros_target: int = 1  # ...attacked towards class 1
    broad_min: int = setting(  # "a broad range of beta": at least this many betas
        3, kind="int", lo=1, flag=None, help="at least this many betas make a broad range"
    )
    alpha: float = setting(  # significance level of every paired test
        0.05, kind="float", lo=0, open_lo=True, hi=1, open_hi=True, flag=None, help="significance level of every test"
    )
    batch_size: int = setting(
        500, kind="int", lo=1, help="examples per attack batch (default: the suite's, else {default})"
    )
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    fresh: bool = setting(False, kind="bool", suite=None, help="measure everything again")
    judge_only: bool = setting(  # recompute the verdicts from stored measurements, attack nothing
        False, kind="bool", suite=None, help="recompute the verdicts from stored measurements only"
    )
    progress: bool | None = None

    @classmethod
    def from_suite(cls, run_dir, table: dict, **kw) -> ClaimsOptions:
        """Options from a suite's ``[claims]`` table (``set`` holds the attack budgets); ``kw`` wins."""
        vals = from_table(cls, table or {})
        budgets = {a: dict(ov) for a, ov in (vals.pop("attack_set", None) or {}).items()}
        for a, ov in (kw.pop("attack_set", None) or {}).items():  # per setting, over the suite's
            budgets[a] = {**budgets.get(a, {}), **ov}
        vals.update({k: v for k, v in kw.items() if v is not None})
        return cls(Path(run_dir), attack_set=budgets, **vals)

    def validate(self) -> ClaimsOptions:
        from attacks import check_eps, get_spec

        bad = first_error(self)
        if bad:
            raise BenchError(f"claims: {bad[0]}: {bad[1]}")
        try:
            self.eps_l2 = check_eps("L2", self.eps_l2, "claims eps_l2")
            self.eps_linf = sorted({check_eps("Linf", e, "claims eps_linf") for e in self.eps_linf})
        except ValueError as e:  # AttackError
            raise BenchError(str(e)) from None
        if not self.eps_linf or self.eps_linf[0] <= 0:
            raise BenchError("claims: eps_linf must list budgets > 0")
        for name, norm in [(a, "L2") for a in self.strong_l2] + [(a, "Linf") for a in self.strong_linf]:
            if get_spec(name).norm != norm:
                raise BenchError(f"claims: {name} is an {get_spec(name).norm} attack, listed among the {norm} ones")
        for name, ov in (self.attack_set or {}).items():
            budget = get_spec(name).budget
            bad = sorted(set(ov) - set(budget))
            if bad:
                raise BenchError(f"claims: attack {name} has no setting {bad[0]!r} (settings: {', '.join(budget)})")
        return self

    def setup(self) -> dict:
        """What makes two measurements comparable: a stored cell is reused only under the same setup."""
        return {
            "n_examples": self.n_examples,
            "eps_l2": self.eps_l2,
            "eps_linf": list(self.eps_linf),
            "eot_iter": self.eot_iter,
            "zeros": [self.zeros_n, self.zeros_label, self.zeros_target],
            "split": "test",
            "first_n": True,
        }

    def budget(self, attack: str, randomised: bool, **extra) -> dict:
        """The budget overrides of one attack on one model."""
        ov = dict((self.attack_set or {}).get(attack, {}))
        if randomised and attack in EOT_KEYS:
            ov.setdefault(EOT_KEYS[attack], self.eot_iter)
        ov.update(extra)
        return ov


def eps_key(eps: float | None) -> str:
    """``2`` -> ``"2"``; None (no bound) -> ``"inf"``: how a budget appears in vector keys."""
    return "inf" if eps is None or (isinstance(eps, float) and math.isinf(eps)) else f"{float(eps):g}"
