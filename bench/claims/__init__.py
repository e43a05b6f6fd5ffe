"""Checking the claims of Alemi et al. (2017) end to end: ``vib-bench claims RUN_DIR``.

Each claim (Table 1, the adversarial claims (a)-(d) and the later FGS claim) is measured twice on the
same examples, under the paper's protocol and under the strongest evaluation, and gets a verdict:
reproduced, reproduced only under the paper's protocol (which points to gradient masking), or not
reproduced. ``options`` says what runs, ``measure`` runs it, ``verdicts`` judges, ``stage`` ties them
to a run directory, ``render`` and ``figures`` show the result.

Importing the package (or ``bench.claims.options``) does not import torch; the other names load on first use.
"""

from .options import PAPER_L2, PAPER_LINF, STRONG_L2, STRONG_LINF, ClaimsOptions

_LAZY = {
    "claims_html": "render",
    "claims_markdown": "render",
    "claims_text": "render",
    "check_models": "stage",
    "options_for_run": "stage",
    "run_claims": "stage",
    "NOT_MEASURED": "verdicts",
    "NOT_REPRODUCED": "verdicts",
    "PAPER_ONLY": "verdicts",
    "REPRODUCED": "verdicts",
    "VERDICTS": "verdicts",
    "judge_claims": "verdicts",
}

__all__ = ["ClaimsOptions", "PAPER_L2", "PAPER_LINF", "STRONG_L2", "STRONG_LINF", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        from . import render, stage, verdicts

        return getattr({"render": render, "stage": stage, "verdicts": verdicts}[_LAZY[name]], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
