"""The attack stage (``vib-bench attack`` and a suite's ``[attack]`` table).

* ``options``: what the stage may be told (``AttackOptions``), the defaults, the checked plan.
* ``stage``: the driver: cells, resume.
* ``checks``: the sanity checks of models, cells and records against each other.
* ``worst_case``: robust-accuracy records and the per-example worst case over attacks.
* ``cost``: what an attack costs against the measured matmul peak.
* ``summary``: the printed tables; ``grid``: the picture of adversarial examples.

Importing the package (or ``bench.attack.options``) does not import torch; the driver's names load on first use.
"""

from .options import DEFAULT_ATTACKS, DEFAULT_EPS_L2, DEFAULT_EPS_LINF, AttackOptions

_STAGE = ("AttackResult", "attack_model", "attack_run")

__all__ = ["DEFAULT_ATTACKS", "DEFAULT_EPS_L2", "DEFAULT_EPS_LINF", "AttackOptions", *_STAGE]


def __getattr__(name: str):
    if name in _STAGE:
        from . import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
