"""The attack registry over torchattacks. Importing this package registers the built-in attacks.

``attacks/`` stands alone: it imports neither the harness (``bench/``) nor the models.
"""

from . import builtin as _builtin  # noqa: F401  (registers fgsm, pgd, pgd_l2, cw_l2, eot_pgd, ...)
from . import paper as _paper  # noqa: F401  (registers cw_paper, cw_paper_targeted and the *_strong counterparts)
from ._registry import (
    NORMS,
    Attack,
    AttackError,
    AttackSpec,
    attack_mode,
    check_eps,
    create_attack,
    describe_attacks,
    get_spec,
    list_attacks,
    register_attack,
)

__all__ = [
    "NORMS",
    "Attack",
    "AttackError",
    "AttackSpec",
    "attack_mode",
    "check_eps",
    "create_attack",
    "describe_attacks",
    "get_spec",
    "list_attacks",
    "register_attack",
]
