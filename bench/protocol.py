"""The evaluation protocol: one place for every rule that makes two numbers comparable.

* **Predictions.** A prediction is always the model's own (a stochastic model averages its samples),
  made in eval mode with keyed noise (``models.noise``): the draws for an example depend only on the
  noise seed (``EVAL_SEED``), the example and the call, never on the batch size or the neighbours, so
  any batch size (``EVAL_BATCH`` is only a memory bound) gives bit-identical predictions. Clean
  evaluation and every attacked prediction use the same rule, so eps = 0 reproduces clean accuracy.
* **Examples.** The first ``n`` test examples, in file order (:func:`select_examples`).
* **Protocols.** A deterministic model is attacked under ``standard``. A randomised one under
  ``paper`` (gradients through the sample average ``forward`` already is) and ``eot`` (attacks that
  average gradients over many draws); its leaderboard number is the worse of the two.
* **Seeds of attack cells.** Each (model seed, attack, norm, eps, protocol) cell has its own seed.
* **Flags.** One table (:data:`FLAGS`) of every sanity-check flag: its letter in attack tables, its
  label, what it means and what to do. Attack, leaderboard and report all read it.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass

import torch

from models.noise import keyed_noise  # noqa: F401  (the protocol's way to key a model's noise)

from .errors import BenchError

EVAL_SEED = 0  # the noise seed of every prediction (clean and attacked)
EVAL_BATCH = 1000  # rows per prediction call (a memory bound: predictions do not depend on it)
# How a randomised model's evaluation noise is drawn, recorded in every attack setup (``compare --strict``
# refuses runs whose schemes differ): keyed on (seed, example content, call) by ``models.noise``. A run
# attacked before it was recorded does not say: per batch from the global RNG before commit d550e2d, keyed
# after it (results/quick), so its scheme reads as unrecorded (``bench.results.recorded_noise``).
EVAL_NOISE = "keyed-v1"
PROBE_BATCH = 7  # rows per call of the reproducibility probe (:func:`reproducible`): unlike any real batch
PROBE_TOL = 1e-3  # largest log-probability difference the probe takes for rounding

PROTOCOLS = ("standard", "paper", "eot")


# ------------------------------------------------------------------------------------ predictions
@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Put the model in eval mode and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | str = "cpu"):
    """Run a block with its own RNG stream, leaving the caller's RNG state untouched."""
    if seed is None:
        yield
        return
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda" if devices else "cpu"):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def predict_log_probs(
    model, x: torch.Tensor, batch_size: int = EVAL_BATCH, device=None, seed: int = EVAL_SEED
) -> torch.Tensor:
    """log p(y|x) for every row of ``x`` (model in eval mode); a randomised model's noise is keyed on
    (``seed``, the example), so the result does not depend on ``batch_size`` or on the other rows."""
    device = device or next(model.parameters()).device
    out = []
    # seeded too: a randomised model without keyed noise (a plugin's) is at least reproducible
    with eval_mode(model), seeded(seed, device):
        for i in range(0, len(x), batch_size):
            with keyed_noise(model, seed):  # one forward call per block: every row's draw is call 0
                out.append(torch.log_softmax(model(x[i : i + batch_size].to(device)), dim=-1))
    return torch.cat(out)


def predict_labels(model, x: torch.Tensor, device) -> torch.Tensor:
    """The model's predicted labels under the protocol (keyed noise with ``EVAL_SEED``), on the CPU."""
    return predict_log_probs(model, x, EVAL_BATCH, device, EVAL_SEED).argmax(1).cpu()


def predict_correct(model, x: torch.Tensor, y: torch.Tensor, device) -> torch.Tensor:
    """Per-example correctness of the model's own prediction under the protocol."""
    return correct(predict_log_probs(model, x, EVAL_BATCH, device, EVAL_SEED), y)


def correct(log_probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example correctness (on the CPU) of predictions given as log-probabilities."""
    return log_probs.argmax(1).cpu() == y.cpu()


def reproducible(model, x: torch.Tensor, device, once: torch.Tensor | None = None) -> bool:
    """Whether the protocol's predictions on ``x`` do not depend on batching: the log-probabilities predicted
    again in reverse order, ``PROBE_BATCH`` rows per call, equal those of ``EVAL_BATCH`` rows in file order
    within ``PROBE_TOL`` (float rounding between batch shapes is far below it; a draw of noise is far above).
    A model whose noise ignores the key (a plugin's, drawn per batch) fails it; that is the eps = 0 check of
    the attack stage (a ball of radius 0 holds only the example, so its prediction is the clean one exactly
    when this holds). ``once``: the usual pass's log-probabilities when the caller already has them."""
    if once is None:
        once = predict_log_probs(model, x, EVAL_BATCH, device, EVAL_SEED)
    again = predict_log_probs(model, x.flip(0), PROBE_BATCH, device, EVAL_SEED).flip(0)
    return bool((once - again).abs().max() <= PROBE_TOL) if len(x) else True


# ------------------------------------------------------------------------------------- examples
def select_examples(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples (all when ``n`` is None), checked against the split's size."""
    n = len(x) if n is None else int(n)
    if not 1 <= n <= len(x):
        raise BenchError(f"--n-examples must be between 1 and {len(x)} (the size of the test split), got {n}")
    return x[:n].contiguous(), y[:n].contiguous()


# ------------------------------------------------------------------------------------ protocols
def protocol_for(eot: bool, randomised: bool) -> str:
    """The protocol an attack runs under: ``standard``, or for a randomised model ``eot``/``paper``."""
    if not randomised:
        return "standard"
    return "eot" if eot else "paper"


def batch_seed(cell_seed: int, batch: int) -> int:
    """The seed of batch ``batch`` of a cell (random starts, APGD's and Square's own seeds); batch 0 uses the cell's."""
    return (int(cell_seed) + 104_729 * int(batch)) % (2**31)


def autoattack_version(randomised: bool) -> str:
    """AutoAttack's version: ``rand`` (with EOT) for a randomised model, ``standard`` otherwise."""
    return "rand" if randomised else "standard"


def cell_seed(model_seed: int, attack: str, norm: str, eps: float | None, protocol: str) -> int:
    """The seed of one attack cell: the same cell always gets the same random start and noise."""
    eps_text = f"{float(eps):g}" if eps is not None else "-"
    return (zlib.crc32(f"{attack}|{norm}|{eps_text}|{protocol}".encode()) + 1_000_003 * int(model_seed)) % (2**31)


# ---------------------------------------------------------------------------------------- flags
@dataclass(frozen=True)
class Flag:
    name: str
    label: str  # short, shown in leaderboards
    meaning: str  # what was observed
    remedy: str  # what it implies and what to do
    letter: str = ""  # marks an attack cell in printed tables (cell flags only)
    scope: str = "cell"  # "cell" (one attack record), "model" (the model checks) or "info" (not a warning)

    @property
    def text(self) -> str:
        return f"{self.meaning}: {self.remedy}"


_FLAG_LIST = [
    Flag(
        "outside_eps_ball",
        "outside-ball!",
        "An adversarial example left the eps-ball",
        "the attack or the projection is broken; do not trust this row's robust numbers and report the bug.",
        "B",
    ),
    Flag(
        "outside_unit_box",
        "outside-[0,1]!",
        "An adversarial image has pixels outside [0, 1]",
        "the attack does not clamp; the numbers are not for valid images.",
        "U",
    ),
    Flag(
        "eps0_differs_from_clean",
        "eps0!=clean",
        "At eps = 0 the robust accuracy differs from clean accuracy",
        "predictions are not reproducible (unseeded noise or batch-dependent behaviour); fix that before comparing.",
        "Z",
    ),
    Flag(
        "accuracy_rises_with_eps",
        "acc-rises-with-eps",
        "Robust accuracy increases with a larger budget",
        "the attack is failing to optimise (too few steps, bad step size); strengthen it.",
        "R",
    ),
    Flag(
        "weaker_than_fgsm",
        "weaker-than-fgsm",
        "An iterative attack did worse than single-step FGSM",
        "a sign of gradient masking or a badly tuned attack; add restarts or steps.",
        "F",
    ),
    Flag(
        "gradient_free_stronger",
        "masking?",
        "A gradient-free attack (Square) beat every gradient attack",
        "gradients are probably masked or obfuscated; trust the worst case, not PGD.",
        "G",
    ),
    Flag(
        "weak_attack_set",
        "weak-attack-set",
        "The worst case comes from an attack set that lacks a margin/DLR-loss attack or a gradient-free attack",
        "it can overstate robustness (cross-entropy saturates on confident models) "
        "and cannot reveal masking; add apgd_t and square (the default set).",
        "W",
    ),
    Flag(
        "zero_gradients",
        "zero-grad",
        "The input gradient is exactly zero for many examples",
        "gradient attacks cannot work (masking); evaluate with gradient-free or EOT attacks.",
        scope="model",
    ),
    Flag(
        "vanishing_gradients",
        "vanishing-grad",
        "The cross-entropy input gradient vanishes (a float32 loss of 0, or "
        "a norm below 1e-8) on many correctly classified examples",
        "attacks with a cross-entropy loss (FGSM, PGD, "
        "APGD-CE) stall there and understate the attack; trust the margin/DLR-loss attacks (APGD-T, CW, Square) and "
        "the worst case.",
        scope="model",
    ),
    Flag(
        "large_eps_not_zero",
        "large-eps-robust?",
        "At L-inf eps 0.5 any image can be turned grey, yet accuracy stayed above 5%",
        "the attack is not reaching the model; suspect masking.",
        scope="model",
    ),
    Flag(
        "returns_probabilities",
        "probs-not-logits",
        "forward() returns probabilities instead of logits",
        "attack losses saturate; return logits.",
        scope="model",
    ),
    Flag(
        "undeclared_randomness",
        "undeclared-random",
        "Repeated forward passes differ although the model does not declare itself stochastic",
        "attack it with EOT and declare it.",
        scope="model",
    ),
    Flag(
        "eot_not_run",
        "no-eot",
        "A randomised model was not attacked with an EOT attack",
        "its robust accuracy may be overstated; add eot_pgd.",
        "E",
    ),
    Flag(
        "eot_needed",
        "eot-needed",
        "Averaging gradients over the model's randomness (EOT) found lower accuracy than the paper protocol",
        "the paper-style number was inflated by noisy gradients.",
        scope="info",
    ),
    Flag(
        "randomised",
        "randomised",
        "The model's predictions are random (e.g. VIB samples z)",
        "it is evaluated with a fixed noise seed and attacked with both the paper and the EOT protocol; its "
        "leaderboard number is the worse of the two.",
        scope="info",
    ),
]
FLAGS: dict[str, Flag] = {f.name: f for f in _FLAG_LIST}  # display order
CELL_LETTERS: dict[str, str] = {f.name: f.letter for f in _FLAG_LIST if f.letter}
MODEL_FLAGS = tuple(f.name for f in _FLAG_LIST if f.scope == "model")
INFO_FLAGS = tuple(f.name for f in _FLAG_LIST if f.scope == "info")
FLAG_BY_LABEL: dict[str, Flag] = {f.label: f for f in _FLAG_LIST}


# ------------------------------------------------------------------------------ the attack set
EOT_ITER = 20  # draws averaged per gradient when APGD attacks a randomised model (AutoAttack's 'rand')
# Composite attacks whose deterministic ('standard') version already contains a gradient-free attack.
_CONTAINS_GRADIENT_FREE = {"autoattack", "autoattack_l2"}


def attack_set_gaps(attacks, randomised: bool) -> list[str]:
    """What a set of attacks lacks to give a trustworthy worst case (empty: nothing).

    A worst case needs a gradient attack with a margin or DLR loss (cross-entropy saturates on
    confident models, and its gradient vanishes) and a gradient-free attack (without one, masked
    gradients cannot be detected). EOT for randomised models is checked separately (``eot_not_run``).
    """
    from attacks import AttackError, get_spec

    specs = []
    for name in attacks:
        try:
            specs.append(get_spec(name))
        except AttackError:  # an attack from a plugin that is not loaded now
            continue
    gaps = []
    if not any(s.margin_loss and not s.gradient_free for s in specs):
        gaps.append("no margin or DLR-loss gradient attack")
    if not any(s.gradient_free or (s.name in _CONTAINS_GRADIENT_FREE and not randomised) for s in specs):
        gaps.append("no gradient-free attack, so masked gradients could not be detected")
    return gaps
