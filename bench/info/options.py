"""The info package's settings and their checks: the defaults of ``vib-bench info`` and
``vib-bench infoplane``, the information-plane estimators, and the one-line errors that name a flag.
The bottom of the package: it imports no other module of it, nor torch.
"""

from __future__ import annotations

import contextlib

from ..errors import BenchError

DEFAULT_ESTIMATORS = ("mine", "jsd", "infonce")
DEFAULT_N_EXAMPLES = 10_000
DEFAULT_STEPS = 1000  # per restart; ~25-40 s per I(X;Z) estimate on 10,000 MNIST examples, 1 thread
DEFAULT_RESTARTS = 3

PLANE_ESTIMATORS = ("binning", "mine")
PLANE_BINS = (30,)
BOUNDS_KEY = "known-encoder"
PLANE_MINE_STEPS = 300
PLANE_MINE_RESTARTS = 1
PLANE_MINE_BATCH = 64


@contextlib.contextmanager
def hint(text: str):
    """Add which flag to change to the estimators' 'too few samples' error."""
    try:
        yield
    except BenchError as e:
        if "too few samples" in str(e):
            raise BenchError(f"{str(e).rstrip('.')} ({text})") from None
        raise


def check_positive(value, flag, low=1):
    if value is not None and value < low:
        raise BenchError(f"{flag} must be >= {low}, got {value}")
