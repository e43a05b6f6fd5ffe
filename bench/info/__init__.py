"""Information diagnostics: how much a representation keeps about the input and the label.

* ``critics`` and ``estimate``: neural MI estimators (MINE, JSD, InfoNCE) and ``estimate_mi``;
* ``truth``: distributions with known MI and the estimators' validation (``mi-validate``);
* ``bounds``: the analytic bounds (rate, H(Y) - CE, H(Y)) and the checks of estimates against them;
* ``stage``: ``vib-bench info``; ``infoplane``: ``vib-bench infoplane``; ``plots``: their figures.
"""

from .critics import ESTIMATORS, list_estimators
from .estimate import MIEstimate, estimate_mi

__all__ = ["ESTIMATORS", "MIEstimate", "estimate_mi", "list_estimators"]
