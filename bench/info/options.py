"""The info package's settings and their checks: the options of ``vib-bench info`` (:class:`InfoOptions`)
and ``vib-bench infoplane`` (:class:`InfoplaneOptions`), declared once (``bench.settings``: their flags come
from the fields; no suite table sets them), the information-plane estimators, and the one-line errors that
name a flag. The bottom of the package: it imports no other module of it, nor torch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BenchError
from ..settings import setting

if TYPE_CHECKING:
    import torch

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

# vib-bench infoplane12 (bench.info.plane12) and the estimators of bench.info.mixture
ACTIVATIONS = ("tanh", "relu")
PLANE12_ESTIMATORS = ("binning", "kde", "noisy")
BINS = 30
OUTER_ROWS = 512  # kde and noisy: outer mean over this many random patterns (the inner sum over all)
NOISY_BETA = 0.1  # noise std of the noise-regularised estimate (activations of tanh units lie in [-1, 1])
KDE_VARIANCE = 0.1  # noise variance of the KDE bounds (Saxe et al. 2018)


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


def flag(default=None, **kw):
    """A setting of a command no suite table sets: a flag only."""
    if "default_factory" in kw or kw.get("required"):
        return setting(suite=None, **kw)
    return setting(default, suite=None, **kw)


COPULA_HELP = "rank-Gaussian transform of every coordinate with at most 1%% tied values"  # argparse: %% is %


@dataclass
class InfoOptions:
    """What ``vib-bench info`` measures (``bench.info.stage.run_info``)."""

    run_dir: Path
    models: list[str] | None = None  # patterns; the shared --models flag (default: every trained model)
    estimators: list[str] | None = flag(
        kind="list",
        what="estimator",
        shown=",".join(DEFAULT_ESTIMATORS),
        help="comma-separated MI estimators (default: {default}); see `vib-bench list estimators`",
    )
    n_examples: int | None = flag(
        kind="int",
        lo=1,
        metavar="N",
        shown=f"{DEFAULT_N_EXAMPLES:,} or the whole test split",
        help="use the first N test examples (default: {default})",
    )
    steps: int = flag(DEFAULT_STEPS, kind="int", lo=1, help="critic steps per restart (default {default})")
    restarts: int = flag(
        DEFAULT_RESTARTS, kind="int", lo=1, help="restarts per estimate; the spread is their std (default {default})"
    )
    batch_size: int | None = flag(
        kind="int",
        lo=2,
        shown="the estimator's, 256 or 128 for infonce; small test splits such as digits need e.g. 32",
        help="critic batch size (default: {default})",
    )
    seed: int = flag(0, kind="int", help="seed of the MI estimates (default {default})")
    resume: bool = flag(
        False,
        kind="bool",
        help="skip (model, seed)s that already have info for the requested estimators on the same N; "
        "compute only the missing estimators of the others",
    )
    plot: bool = flag(True, kind="bool", help="do not write figures/info_beta.png")
    mi_threads: int = flag(
        1,
        kind="int",
        lo=1,
        help="torch threads inside each MI estimate (default {default}: small critics gain little from more)",
    )
    copula: bool = flag(  # rank-Gaussian transform of every coordinate with few ties (bench.info.marginals)
        True,
        kind="bool",
        help=f"feed the raw coordinates to the critics (default: {COPULA_HELP}, which makes the estimates blind to "
        "the marginals' shape)",
    )
    data_dir: str | None = None
    device: torch.device | str = "cpu"


@dataclass
class InfoplaneOptions:
    """What ``vib-bench infoplane`` measures (``bench.info.infoplane.run_infoplane``)."""

    run_dir: Path
    models: list[str] | None = None  # patterns; the shared --models flag (default: every trained model)
    estimators: list[str] = flag(
        kind="list",
        default_factory=lambda: ["binning"],
        flag="--estimator",
        what="estimator",
        blank="empty",
        help="binning, mine, or both comma-separated (default: {default})",
    )
    bins: list[int] = flag(  # one record per bin count
        kind="list",
        default_factory=lambda: list(PLANE_BINS),
        item="int",
        lo=2,
        what="bin count",
        blank="empty",
        help="bins per unit for binning, one or more comma-separated counts (one record and panel each, e.g. "
        "2,8,30,100; default {default})",
    )
    layers: list[str] | None = flag(
        kind="list",
        what="layer",
        help="comma-separated snapshot layers (hidden1, hidden2, ..., representation, logits; default: every "
        "hidden layer, plus the representation when it is not the last hidden)",
    )
    steps: int = flag(PLANE_MINE_STEPS, kind="int", lo=1, help="mine: critic steps per estimate (default {default})")
    restarts: int = flag(PLANE_MINE_RESTARTS, kind="int", lo=1, help="mine: restarts per estimate (default {default})")
    batch_size: int = flag(PLANE_MINE_BATCH, kind="int", lo=2, help="mine: critic batch size (default {default})")
    seed: int = flag(0, kind="int", help="mine: seed (default {default})")
    mi_threads: int = flag(1, kind="int", lo=1, help="mine: torch threads inside each estimate (default {default})")
    copula: bool = flag(  # mine: rank-Gaussian transform of every coordinate with few ties
        True, kind="bool", help=f"mine: feed the raw coordinates to the critic (default: {COPULA_HELP})"
    )
    data_dir: str | None = None
    device: torch.device | str = "cpu"


@dataclass
class Plane12Training:
    """How ``vib-bench infoplane12`` trains each network (``bench.info.plane12.TrainSettings``)."""

    epochs: int = flag(3000, kind="int", lo=1, help="training epochs (default {default})")
    batch_size: int = flag(  # 0: full batch (every training pattern in every step); else minibatches
        0, kind="int", lo=0, help="minibatch size; 0: full batch (default {default})"
    )
    lr: float = flag(1e-3, kind="float", lo=0, open_lo=True, help="Adam learning rate (default {default})")
    snapshots: int = flag(  # log-spaced snapshot epochs in [1, epochs], plus epoch 0 (the initialisation)
        16, kind="int", lo=2, help="log-spaced snapshot epochs, plus epoch 0 (default {default})"
    )


@dataclass
class Plane12Options:
    """What ``vib-bench infoplane12`` runs (``bench.info.plane12.run_plane12``); ``train``: its own flags."""

    out: Path = flag(kind="str", required=True, help="output folder (results file, report, figure)")
    activations: list[str] = flag(
        kind="list",
        default_factory=lambda: list(ACTIVATIONS),
        what="activation",
        blank="empty",
        shown="both",
        help="tanh, relu or both (default: {default})",
    )
    seeds: list[int] = flag(
        kind="list",
        default_factory=lambda: [0, 1, 2],
        item="int",
        what="seed",
        blank="empty",
        help="comma-separated training seeds (default {default})",
    )
    estimators: list[str] = flag(
        kind="list",
        default_factory=lambda: list(PLANE12_ESTIMATORS),
        what="estimator",
        blank="empty",
        shown="all",
        help=f"comma-separated: {', '.join(PLANE12_ESTIMATORS)} (default: {{default}})",
    )
    train: Plane12Training = field(default_factory=Plane12Training)
    bins: int = flag(BINS, kind="int", lo=2, help="binning: bins per unit (default {default})")
    noise_beta: float = flag(NOISY_BETA, kind="float", lo=0, open_lo=True, help="noisy: noise std (default {default})")
    kde_variance: float = flag(
        KDE_VARIANCE, kind="float", lo=0, open_lo=True, help="kde: noise variance (default {default})"
    )
    outer_rows: int = flag(
        OUTER_ROWS,
        kind="int",
        lo=2,
        flag="--rows",
        help="kde, noisy: patterns the outer mean runs over (default {default})",
    )


VALIDATE_KINDS = ("plain", "warped", "heavy-tailed", "hard")  # the critic cases of bench.info.validate


@dataclass
class MiValidateOptions:
    """What ``vib-bench mi-validate`` runs (``bench.info.validate.validate_estimators``); no suite sets it."""

    estimators: list[str] | None = flag(
        kind="list",
        what="estimator",
        blank="empty",
        shown="every registered one",
        help="comma-separated estimators (default: {default})",
    )
    quick: bool = flag(
        False, kind="bool", help="fewer samples, steps and restarts (seconds per estimate instead of ~10)"
    )
    copula: bool = flag(
        True,
        kind="bool",
        help="feed the raw coordinates to the critics (default: rank-Gaussian transform of every coordinate "
        "with few ties)",
    )
    bounds: bool = flag(True, kind="bool", help="leave out the known-encoder bounds (default: included; a few seconds)")
    kinds: list[str] | None = flag(
        kind="list",
        what="case kind",
        blank="none",
        shown="all",
        help=f"comma-separated critic case kinds: {', '.join(VALIDATE_KINDS)} (default: {{default}})",
    )
    seed: int = flag(0, kind="int", lo=0, help="random seed (default: {default})")
