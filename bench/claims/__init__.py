"""Checking the claims of Alemi et al. (2017) end to end: ``vib-bench claims RUN_DIR``.

Each claim (Table 1, the adversarial claims (a)-(d) and the later FGS claim) is measured twice on the
same examples, under the paper's protocol and under the strongest evaluation, and gets a verdict:
reproduced, reproduced only under the paper's protocol (which points to gradient masking), or not
reproduced. ``options`` says what runs, ``measure`` runs it, ``verdicts`` judges, ``stage`` ties them
to a run directory, ``render`` and ``figures`` show the result.
"""

from .options import PAPER_L2, PAPER_LINF, STRONG_L2, STRONG_LINF, ClaimsOptions
from .render import claims_html, claims_markdown, claims_text
from .stage import check_models, options_for_run, run_claims
from .verdicts import NOT_MEASURED, NOT_REPRODUCED, PAPER_ONLY, REPRODUCED, VERDICTS, judge_claims

__all__ = [
    "ClaimsOptions",
    "check_models",
    "NOT_MEASURED",
    "NOT_REPRODUCED",
    "PAPER_L2",
    "PAPER_LINF",
    "PAPER_ONLY",
    "REPRODUCED",
    "STRONG_L2",
    "STRONG_LINF",
    "VERDICTS",
    "claims_html",
    "claims_markdown",
    "claims_text",
    "judge_claims",
    "options_for_run",
    "run_claims",
]
