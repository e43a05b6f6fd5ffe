"""The attack registry: name -> a small factory over a torchattacks class with a fixed, named budget.

An attack variant is one decorated factory::

    @register_attack(norm="Linf", description="PGD, 40 steps of 0.01, random start")
    def pgd(model, eps, *, steps=40, alpha=0.01, random_start=True):
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)

The factory's keyword defaults *are* the budget: ``create_attack("pgd", model, 0.3, steps=100)``
overrides one of them, and the resolved budget is stored with every number the attack produces,
together with ``repr`` of the torchattacks object.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import registry

NORMS = ("Linf", "L2")


class AttackError(ValueError):
    """A mistake in naming, configuring or calling an attack; its message is one line."""


@dataclass(frozen=True)
class AttackSpec:
    name: str
    factory: Callable
    norm: str
    description: str
    budget: dict = field(default_factory=dict)  # the factory's keyword defaults
    gradient_free: bool = False  # queries outputs only (a masking detector)
    eot: bool = False  # averages gradients over the model's randomness
    minimum_norm: bool = False  # finds the smallest perturbation it can; has no eps (CW)
    iterative: bool = True
    randomised_only: bool = False  # pointless on a deterministic model (EOT = the plain attack)
    costly: bool = False  # expensive: skipped at eps = 0, and run in the harness's cascade
    loss: str = "ce"  # "ce" (saturates on confident models), "margin" or "dlr" (do not)

    @property
    def margin_loss(self) -> bool:
        """Whether its loss is a margin or DLR loss, which does not saturate where cross-entropy does."""
        return self.loss in ("margin", "dlr")

    def describe(self, width: int = 14) -> str:
        budget = ", ".join(f"{k}={v}" for k, v in self.budget.items())
        tags = [
            t
            for t, on in (
                ("gradient-free", self.gradient_free),
                ("EOT", self.eot),
                ("minimum-norm", self.minimum_norm),
                (f"{self.loss} loss", self.margin_loss),
            )
            if on
        ]
        return (
            f"{self.name:{width}s} {self.norm:5s} {self.description}"
            + (f" [{', '.join(tags)}]" if tags else "")
            + (f" ({budget})" if budget else "")
        )


_ATTACKS: dict[str, AttackSpec] = {}


def register_attack(
    fn: Callable | None = None,
    *,
    norm: str,
    description: str = "",
    name: str | None = None,
    gradient_free: bool = False,
    eot: bool = False,
    minimum_norm: bool = False,
    iterative: bool = True,
    randomised_only: bool = False,
    costly: bool = False,
    loss: str = "ce",
):
    """Register ``factory(model, eps, **budget) -> torchattacks.Attack``; a duplicate name is an error."""
    if norm not in NORMS:
        raise AttackError(f"attack norm must be one of {NORMS}, got {norm!r}")

    def deco(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _ATTACKS:
            raise AttackError(f"attack {key!r} is already registered")
        budget = {
            p.name: p.default
            for p in inspect.signature(f).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }
        doc = description or ((f.__doc__ or "").strip().splitlines() or [""])[0]
        _ATTACKS[key] = AttackSpec(
            key, f, norm, doc, budget, gradient_free, eot, minimum_norm, iterative, randomised_only, costly, loss
        )
        return f

    return deco(fn) if fn is not None else deco


def get_spec(name: str) -> AttackSpec:
    if name not in _ATTACKS:
        raise AttackError(
            f"unknown attack {name!r}{registry.NoMatch(name, registry.suggest(name, _ATTACKS)).hint()} "
            "(see `vib-bench list attacks`)"
        )
    return _ATTACKS[name]


def list_attacks(pattern: str | list[str] | None = None) -> list[str]:
    """Registered attack names matching shell-style patterns, in registration order."""
    try:
        return registry.select(list(_ATTACKS), pattern)
    except registry.NoMatch as e:
        raise AttackError(f"unknown attack {e.pattern!r}{e.hint()} (see `vib-bench list attacks`)") from None


def describe_attacks(pattern: str | list[str] | None = None) -> list[str]:
    """One line per registered attack matching ``pattern`` (all by default), names aligned."""
    names = list_attacks(pattern)
    width = max(map(len, names), default=0)
    return [_ATTACKS[n].describe(width) for n in names]


def check_eps(norm: str, eps: float, what: str = "eps") -> float:
    """Validate a budget for images in [0, 1]: L-inf eps in [0, 1], L2 eps >= 0."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise AttackError(f"{what} {eps!r} is not a number") from None
    if not math.isfinite(eps) or eps < 0:
        raise AttackError(f"{what} {eps:g} must be a finite number >= 0")
    if norm == "Linf" and eps > 1:
        raise AttackError(f"{what} {eps:g} is outside [0, 1]: an L-inf budget above 1 means nothing for [0, 1] images")
    return eps


@contextlib.contextmanager
def attack_mode(model: torch.nn.Module):
    """Eval mode with frozen parameters (no weight gradients are computed); both restored afterwards."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, g in zip(model.parameters(), flags):
            p.requires_grad_(g)
        model.train(was_training)


class Attack:
    """A torchattacks attack bound to one model and one budget, safe to call on our models.

    ``attack(x, y)`` runs it with the model in eval mode and its parameters frozen (so no weight
    gradients are computed), restoring both afterwards; inputs must lie in [0, 1].
    """

    def __init__(self, spec: AttackSpec, model, eps: float | None, budget: dict):
        self.spec, self.model, self.eps, self.budget = spec, model, eps, budget
        self.name, self.norm = spec.name, spec.norm
        self.ta = spec.factory(model, eps, **budget)
        # torchattacks switches modes itself; we own the mode (see __call__), so tell it to use eval.
        self.ta.set_model_training_mode(model_training=False)
        if "version" in self.budget and hasattr(self.ta, "version"):  # "auto" resolved by the factory
            self.budget["version"] = self.ta.version

    @property
    def eot(self) -> bool:
        """Whether the attack averages over the model's randomness (EOT-PGD, AutoAttack 'rand', APGD with
        ``eot_iter`` > 1)."""
        return self.spec.eot or self.budget.get("version") == "rand" or int(self.budget.get("eot_iter", 1)) > 1

    def config(self) -> dict:
        """Everything that determines this attack's output: our budget and torchattacks' repr."""
        import torchattacks

        cfg = {
            "name": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "budget": dict(self.budget),
            "torchattacks": repr(self.ta),
            "torchattacks_version": torchattacks.__version__,
            "gradient_free": self.spec.gradient_free,
            "eot": self.eot,
            "minimum_norm": self.spec.minimum_norm,
            "loss": self.spec.loss,
        }
        multi = getattr(self.ta, "_autoattack", None)  # AutoAttack's repr hides its sub-attacks
        if multi is not None:
            cfg["sub_attacks"] = [repr(a) for a in multi.attacks]
        return cfg

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise AttackError(
                f"attack {self.name}: inputs must be image batches (N, C, H, W), got shape {tuple(x.shape)}"
            )
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise AttackError(
                f"attack {self.name}: inputs must lie in [0, 1] (got [{float(x.min()):g}, {float(x.max()):g}])"
            )
        with attack_mode(self.model), torch.enable_grad():
            adv = self.ta(x, y)
        return adv.detach()

    def reseed(self, seed: int) -> None:
        """Give the attack's own RNG (APGD, APGD-T, Square, AutoAttack: torchattacks reseeds with it on every
        call) the seed ``seed`` plus the budget's ``seed``; attacks without one use torch's global RNG."""
        seed = (int(seed) + int(self.budget.get("seed", 0) or 0)) % (2**31)
        for obj in _seeded_parts(self.ta):
            obj.seed = seed

    def __repr__(self) -> str:
        return f"Attack({self.name}, norm={self.norm}, eps={self.eps}, budget={self.budget})"


def _seeded_parts(ta) -> list:
    """The torchattacks objects inside ``ta`` (itself, AutoAttack's sub-attacks, a transfer's inner attack)
    that have a seed."""
    found, todo = [], [ta]
    while todo:
        obj = todo.pop()
        if hasattr(obj, "seed"):
            found.append(obj)
        multi = getattr(obj, "_autoattack", None)
        todo += list(getattr(multi, "attacks", []) or []) + ([obj.inner] if hasattr(obj, "inner") else [])
    return found


def create_attack(name: str, model, eps: float | None = None, **overrides) -> Attack:
    """Bind a registered attack to ``model`` at budget ``eps``; ``None``-valued overrides are ignored."""
    spec = get_spec(name)
    if spec.minimum_norm:
        eps = None if eps is None else check_eps(spec.norm, eps)
    else:
        if eps is None:
            raise AttackError(f"attack {name} needs an eps")
        eps = check_eps(spec.norm, eps)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(spec.budget))
    if unknown:
        raise AttackError(f"attack {name} has no setting {unknown[0]!r} (settings: {', '.join(spec.budget) or 'none'})")
    budget = {**spec.budget, **overrides}
    try:
        return Attack(spec, model, eps, budget)
    except (TypeError, ValueError, AssertionError) as e:
        raise AttackError(f"attack {name}: {e}") from None
