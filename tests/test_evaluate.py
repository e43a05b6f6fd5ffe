"""Clean metrics: error, NLL, ECE and the reliability bins, against direct computations."""

import math

import torch

from bench.evaluate import clean_metrics, expected_calibration_error, reliability_bins
from bench.protocol import eval_mode


def test_ece_against_a_direct_loop():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 10, generator=g), 1)
    y = torch.randint(0, 10, (500,), generator=g)
    conf, pred = probs.max(1)
    direct = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        m = (conf >= lo) & ((conf < hi) if b < 14 else (conf <= hi))
        if m.any():
            direct += m.float().mean() * abs(conf[m].mean() - (pred[m] == y[m]).float().mean())
    assert math.isclose(expected_calibration_error(probs, y), float(direct), abs_tol=1e-6)
    r = reliability_bins(probs, y)
    assert sum(r["count"]) == 500 and len(r["edges"]) == 16


def test_confident_and_right_is_calibrated_confident_and_wrong_is_not():
    y = torch.arange(10).repeat(20)
    right = torch.nn.functional.one_hot(y, 10).float() * 0.999 + 0.0001
    wrong = torch.nn.functional.one_hot((y + 1) % 10, 10).float() * 0.999 + 0.0001
    assert expected_calibration_error(right, y) < 0.01
    assert expected_calibration_error(wrong, y) > 0.98


def test_clean_metrics_and_mode_restored():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    model.extra_metrics = lambda x: {}
    x, y = torch.rand(50, 1, 2, 2), torch.randint(0, 3, (50,))
    model.train()
    metrics, correct = clean_metrics(model, x, y)
    assert model.training  # restored
    with torch.no_grad():
        logp = torch.log_softmax(model(x), 1)
    assert math.isclose(metrics["error"], float((logp.argmax(1) != y).double().mean()), abs_tol=1e-9)
    assert math.isclose(metrics["nll"], float(-logp.gather(1, y[:, None]).mean()), rel_tol=1e-5)
    assert correct.dtype == torch.bool and int(correct.sum()) == round(50 * (1 - metrics["error"]))
    with eval_mode(model):
        assert not model.training
