"""Information diagnostics: how much a representation keeps about the input and the label.

* ``critics`` and ``estimate``: neural MI estimators (MINE, JSD, InfoNCE) and ``estimate_mi``;
* ``marginals``: the rank-Gaussian (copula) transform applied before them;
* ``sandwich``: the known-encoder bounds on I(X;Z) of a Gaussian encoder (Poole et al. 2019);
* ``truth``: distributions with known MI; ``validate``: the validation against them (``mi-validate``);
* ``bounds``: the analytic bounds (rate, H(Y) - CE, H(Y)) and the checks of estimates against them;
* ``stage``: ``vib-bench info``; ``infoplane``: ``vib-bench infoplane``; ``plots``: their figures;
* ``summary``: what the leaderboard shows of ``info`` (interval, unflagged estimates, flags).
"""

from .critics import ESTIMATORS, list_estimators
from .estimate import MIEstimate, estimate_mi

__all__ = ["ESTIMATORS", "MIEstimate", "estimate_mi", "list_estimators"]
