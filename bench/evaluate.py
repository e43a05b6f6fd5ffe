"""Clean evaluation: error, NLL, calibration (ECE, Brier) and, for VIB, the rate."""

from __future__ import annotations

import torch

from .protocol import EVAL_BATCH, EVAL_SEED, eval_mode, predict_log_probs


def reliability_bins(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict:
    """Equal-width confidence bins: per bin, the count, mean confidence and accuracy (empty: None)."""
    conf, pred = probs.double().max(dim=1)
    correct = (pred == y).double()
    bins = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).double()
    conf_sum = torch.bincount(bins, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    nz = count > 0
    mean = lambda s: [float(v) if ok else None for v, ok in zip(s / count.clamp_min(1), nz)]  # noqa: E731
    return {
        "edges": [i / n_bins for i in range(n_bins + 1)],
        "count": [int(c) for c in count],
        "confidence": mean(conf_sum),
        "accuracy": mean(acc_sum),
    }


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017)."""
    r = reliability_bins(probs, y, n_bins)
    n = sum(r["count"])
    return float(sum(c / n * abs(cf - a) for c, cf, a in zip(r["count"], r["confidence"], r["accuracy"]) if c))


@torch.no_grad()
def clean_metrics(
    model, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = EVAL_BATCH, seed: int = EVAL_SEED, device=None
) -> tuple[dict, torch.Tensor]:
    """Metrics on (x, y) and the per-example correctness vector.

    A stochastic model is evaluated as it predicts (averaging its samples) with keyed noise; the
    defaults are the evaluation protocol's (``bench.protocol``), so attacks at eps = 0 reproduce them.
    """
    device = device or next(model.parameters()).device
    logp = predict_log_probs(model, x, batch_size, device, seed).cpu()
    y = y.cpu()
    probs = logp.exp()
    correct = logp.argmax(1) == y
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).to(probs.dtype)
    metrics = {
        "n": int(len(y)),
        "error": float(1.0 - correct.double().mean()),
        "nll": float(-logp.gather(1, y[:, None]).double().mean()),
        "ece": expected_calibration_error(probs, y),
        "brier": float(((probs - onehot) ** 2).sum(1).double().mean()),
        "reliability": reliability_bins(probs, y),
    }
    extra: dict[str, list] = {}
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            for k, v in model.extra_metrics(x[i : i + batch_size].to(device)).items():
                extra.setdefault(k, []).append(v.double().cpu())
    for k, parts in extra.items():
        metrics[f"{k}_nats"] = float(torch.cat(parts).mean())
    return metrics, correct
