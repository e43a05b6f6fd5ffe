"""The attack stage (``vib-bench attack`` and a suite's ``[attack]`` table).

* ``options``: what the stage may be told (``AttackOptions``), the defaults, the checked plan.
* ``stage``: the driver: cells, resume.
* ``checks``: the sanity checks of models, cells and records against each other.
* ``worst_case``: robust-accuracy records and the per-example worst case over attacks.
* ``cost``: what an attack costs against the measured matmul peak.
* ``summary``: the printed tables; ``grid``: the picture of adversarial examples.
"""

from .options import DEFAULT_ATTACKS, DEFAULT_EPS_L2, DEFAULT_EPS_LINF, AttackOptions
from .stage import AttackResult, attack_model, attack_run

__all__ = ["DEFAULT_ATTACKS", "DEFAULT_EPS_L2", "DEFAULT_EPS_LINF", "AttackOptions", "AttackResult", "attack_model",
           "attack_run"]
