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
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import BenchError

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
    """Everything ``vib-bench claims`` needs; a suite's ``[claims]`` table sets the same fields."""

    run_dir: Path
    n_examples: int = 1000  # the paper: the first 1,000 test images
    eps_l2: float = 2.0  # the L2 budget at which (b) and (c) compare accuracies
    eps_linf: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3])  # FGS budgets
    baseline: str = "mlp"  # the deterministic baseline
    models: list[str] | None = None  # patterns; default: the baseline and every VIB model of the run
    strong_l2: list[str] = field(default_factory=lambda: list(STRONG_L2))
    strong_linf: list[str] = field(default_factory=lambda: list(STRONG_LINF))
    attack_set: dict = field(default_factory=dict)  # attack -> budget overrides (both protocols)
    eot_iter: int = 20  # forward passes averaged by the EOT attacks on randomised models
    zeros_n: int = 10  # the first ten test zeros...
    zeros_label: int = 0
    zeros_target: int = 1  # ...attacked towards class 1
    broad_min: int = 3  # "a broad range of beta": at least this many betas
    alpha: float = 0.05  # significance level of every paired test
    batch_size: int = 500
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    fresh: bool = False
    judge_only: bool = False  # recompute the verdicts from stored measurements, attack nothing
    progress: bool | None = None

    SUITE_KEYS = (
        "n_examples",
        "eps_l2",
        "eps_linf",
        "baseline",
        "models",
        "strong_l2",
        "strong_linf",
        "set",
        "eot_iter",
        "zeros_n",
        "broad_min",
        "alpha",
        "batch_size",
    )

    @classmethod
    def from_suite(cls, run_dir, table: dict, **kw) -> ClaimsOptions:
        """Options from a suite's ``[claims]`` table (``set`` holds the attack budgets); ``kw`` wins."""
        vals = {k: v for k, v in (table or {}).items() if k in cls.SUITE_KEYS and k != "set"}
        budgets = {a: dict(ov) for a, ov in ((table or {}).get("set") or {}).items()}
        for a, ov in (kw.pop("attack_set", None) or {}).items():  # per setting, over the suite's
            budgets[a] = {**budgets.get(a, {}), **ov}
        vals.update({k: v for k, v in kw.items() if v is not None})
        return cls(Path(run_dir), attack_set=budgets, **vals)

    def validate(self) -> ClaimsOptions:
        from attacks import check_eps, get_spec

        checks = [
            (
                isinstance(self.n_examples, int) and self.n_examples >= 1,
                f"n_examples must be >= 1, got {self.n_examples}",
            ),
            (isinstance(self.eot_iter, int) and self.eot_iter >= 1, f"eot_iter must be >= 1, got {self.eot_iter}"),
            (isinstance(self.zeros_n, int) and self.zeros_n >= 0, f"zeros_n must be >= 0, got {self.zeros_n}"),
            (isinstance(self.broad_min, int) and self.broad_min >= 1, f"broad_min must be >= 1, got {self.broad_min}"),
            (0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
            (
                isinstance(self.batch_size, int) and self.batch_size >= 1,
                f"batch_size must be >= 1, got {self.batch_size}",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise BenchError(f"claims: {msg}")
        try:
            self.eps_l2 = check_eps("L2", self.eps_l2, "claims eps_l2")
            self.eps_linf = sorted({check_eps("Linf", e, "claims eps_linf") for e in self.eps_linf})
        except ValueError as e:  # AttackError
            raise BenchError(str(e)) from None
        if not self.eps_l2 > 0:
            raise BenchError("claims: eps_l2 must be > 0")
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
