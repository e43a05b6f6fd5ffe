"""Tests for bench.mi: neural MI estimators checked against known ground truth.

All training runs are small (a few thousand samples, a few hundred steps, one restart) and take
about a second each on one CPU thread.
"""

import argparse
import json
import math

import numpy as np
import pytest
import torch

from bench.cli import mi_validate
from bench.errors import BenchError
from bench.info import critics, estimate
from bench.info import truth as gt
from bench.info import validate as vd

LN2 = math.log(2.0)

# Small-but-honest training settings shared by the accuracy tests.
N_SMALL = 4000
FAST = dict(steps=400, batch_size=128, restarts=1)

# Tolerance for recovering a Gaussian MI of 0.673 nats (d=2, rho=0.7) from 4,000 samples.
# Two error sources: (1) the bound is evaluated on an 800-sample held-out part; with the exact
# optimal critic, that evaluation scatters by about 0.04 nats (1 sd) over fresh samples;
# (2) the critic trains for only 400 steps, so the lower bound is not tight: with data seeds 0-5
# the measured errors were between -0.09 and -0.02 nats for all three estimators. 0.14 nats
# covers both with margin, and is under half the gap to the classic mistakes: the truth in bits
# (0.971) is 0.298 away, and critics that are wrong (see the bound tests below) land at least
# 0.3 nats lower.
RHO, DIM = 0.7, 2
TOL_NATS = 0.14


def _gaussian_pair(seed=0, n=N_SMALL, d=DIM, rho=RHO):
    return gt.sample_correlated_gaussians(n, d, rho, seed=seed)


# ----------------------------------------------------------------------------------------------
# Estimators against truth
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mine", "jsd", "infonce"])
def test_estimator_recovers_gaussian_mi(name):
    truth = gt.gaussian_mi_truth(RHO, DIM)
    truth_bits = truth / LN2
    # The tolerance separates the right answer from a unit mix-up (nats reported as bits).
    assert abs(truth_bits - truth) > 2 * TOL_NATS

    a, b = _gaussian_pair(seed=1)
    est = estimate.estimate_mi(a, b, name, seed=0, **FAST)

    assert abs(est.nats - truth) < TOL_NATS, (name, est.nats, truth)
    assert abs(est.nats - truth_bits) > TOL_NATS
    assert est.bits == pytest.approx(est.nats / LN2)
    assert est.std_bits == pytest.approx(est.std_nats / LN2)
    assert est.estimator == name and est.n_samples == N_SMALL
    assert len(est.values_nats) == 1 and est.seconds > 0
    if name == "jsd":
        # The Jensen-Shannon score is a divergence in [0, log 2], not an MI.
        assert 0.0 < est.jsd_nats < LN2
    else:
        assert est.jsd_nats is None
    if name == "infonce":
        assert est.ceiling_nats == pytest.approx(math.log(128))
        assert not est.near_ceiling and est.notice is None
    else:
        assert est.ceiling_nats is None


@pytest.mark.parametrize("name", ["mine", "jsd", "infonce"])
def test_independent_variables_give_near_zero(name):
    a, _ = gt.sample_correlated_gaussians(N_SMALL, 2, 0.0, seed=11)
    b, _ = gt.sample_correlated_gaussians(N_SMALL, 2, 0.0, seed=12)
    est = estimate.estimate_mi(a, b, name, seed=0, **FAST)
    assert abs(est.nats) < 0.1, (name, est.nats)


def test_infonce_never_exceeds_log_batch_and_flags_ceiling():
    a, _ = gt.sample_correlated_gaussians(2000, 3, 0.0, seed=3)
    k = 64
    est = estimate.estimate_mi(a, a.clone(), "infonce", steps=300, batch_size=k, restarts=2, seed=0)
    log_k = math.log(k)
    assert est.ceiling_nats == pytest.approx(log_k)
    assert all(v <= log_k + 1e-5 for v in est.values_nats)
    assert est.nats <= log_k + 1e-5
    assert est.near_ceiling is True
    assert est.notice and "log N ceiling" in est.notice and "may be higher" in est.notice
    assert est.as_dict()["near_ceiling"] is True and [f["flag"] for f in est.flags] == ["near_ceiling"]


def test_same_seed_same_value_and_global_state_untouched():
    a, b = _gaussian_pair(seed=5, n=2000)
    torch.manual_seed(1234)
    rng_before = torch.random.get_rng_state().clone()
    threads_before = torch.get_num_threads()
    first = estimate.estimate_mi(a, b, "mine", steps=150, batch_size=64, restarts=2, seed=7)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before
    second = estimate.estimate_mi(a, b, "mine", steps=150, batch_size=64, restarts=2, seed=7)
    other = estimate.estimate_mi(a, b, "mine", steps=150, batch_size=64, restarts=2, seed=8)
    assert first.values_nats == second.values_nats
    assert first.nats == second.nats
    assert other.values_nats != first.values_nats
    # Restarts differ from each other (fresh split, init and batches per restart).
    assert first.values_nats[0] != first.values_nats[1]


def test_as_dict_is_plain_json():
    a, b = _gaussian_pair(seed=6, n=2000)
    est = estimate.estimate_mi(a, b, "jsd", steps=50, batch_size=64, restarts=2, seed=0)
    d = est.as_dict()
    json.dumps(d)
    for key in ("nats", "bits", "std_nats", "std_bits", "seconds", "jsd_nats"):
        assert type(d[key]) is float
    assert all(type(v) is float for v in d["values_nats"])
    assert d["values_bits"] == pytest.approx([v / LN2 for v in d["values_nats"]])
    assert d["n_samples"] == 2000 and d["estimator"] == "jsd"


# ----------------------------------------------------------------------------------------------
# The bounds themselves, with the exact optimal critic (no training): right formula vs wrong
# ----------------------------------------------------------------------------------------------


def test_bounds_with_optimal_critic_hit_truth_and_wrong_critics_fall_short():
    rho, d = 0.8, 2
    truth = gt.gaussian_mi_truth(rho, d)  # 1.02 nats
    a, b = gt.sample_correlated_gaussians(20000, d, rho, seed=21)
    b_marg = torch.roll(b, 1, dims=0)
    t_joint = gt.gaussian_log_density_ratio(a, b, rho)
    t_marg = gt.gaussian_log_density_ratio(a, b_marg, rho)
    assert float(critics.dv_bound(t_joint, t_marg)) == pytest.approx(truth, abs=0.05)

    k = 128
    scores = gt.gaussian_log_density_ratio(a[:k, None, :], b[None, :k, :], rho)
    batches = torch.stack(
        [
            gt.gaussian_log_density_ratio(a[i : i + k, None, :], b[None, i : i + k, :], rho)
            for i in range(0, 20000 - k, k)
        ]
    )
    assert scores.shape == (k, k)
    assert float(critics.infonce_bound(batches)) == pytest.approx(truth, abs=0.08)

    # Wrong critics give clearly lower values (the bounds are maximised only at the truth):
    # an overconfident critic (2x the log ratio), a sign-flipped one, and one for rho -> -rho.
    wrong_critics = [
        (2.0 * t_joint, 2.0 * t_marg),
        (-t_joint, -t_marg),
        (gt.gaussian_log_density_ratio(a, b, -rho), gt.gaussian_log_density_ratio(a, b_marg, -rho)),
    ]
    for wrong_joint, wrong_marg in wrong_critics:
        assert float(critics.dv_bound(wrong_joint, wrong_marg)) < truth - 0.3


def test_infonce_bound_is_capped_at_log_k_and_jsd_score_range():
    k = 32
    scores = torch.full((k, k), -50.0)
    scores.fill_diagonal_(50.0)
    assert float(critics.infonce_bound(scores)) == pytest.approx(math.log(k), abs=1e-6)
    assert float(critics.infonce_bound(scores * 10)) <= math.log(k) + 1e-6
    # A perfect separator gives JSD = log 2; a constant critic gives JSD = 0.
    assert critics.jsd_from_objective(
        float(critics.jsd_objective(torch.full((10,), 40.0), torch.full((10,), -40.0)))
    ) == pytest.approx(LN2, abs=1e-6)
    assert critics.jsd_from_objective(float(critics.jsd_objective(torch.zeros(10), torch.zeros(10)))) == pytest.approx(
        0.0, abs=1e-6
    )


# ----------------------------------------------------------------------------------------------
# Ground truth formulas
# ----------------------------------------------------------------------------------------------


def _grid_binary_channel_mi(sigma):
    """Independent check: h(Y) by the trapezoid rule on a fine grid in y."""
    y = np.linspace(-1 - 12 * sigma, 1 + 12 * sigma, 400001)
    c = 1.0 / math.sqrt(2 * math.pi * sigma**2)
    p = 0.5 * c * (np.exp(-((y - 1) ** 2) / (2 * sigma**2)) + np.exp(-((y + 1) ** 2) / (2 * sigma**2)))
    integrand = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h_y = float(np.sum((integrand[1:] + integrand[:-1]) * np.diff(y)) / 2)
    return h_y - 0.5 * math.log(2 * math.pi * math.e * sigma**2)


def test_binary_channel_truth_limits_and_cross_checks():
    # sigma -> 0: the input is recovered exactly, I = H(X) = log 2.
    assert gt.binary_channel_mi_truth(1e-3) == pytest.approx(LN2, abs=1e-9)
    assert gt.binary_channel_mi_truth(0.05) == pytest.approx(LN2, abs=1e-9)
    # sigma large: I -> 0, with the low-SNR expansion I ~ SNR/2 = 1/(2 sigma^2).
    for sigma in (10.0, 30.0):
        assert gt.binary_channel_mi_truth(sigma) == pytest.approx(1 / (2 * sigma**2), rel=0.03)
    assert gt.binary_channel_mi_truth(100.0) < 1e-4
    values = [gt.binary_channel_mi_truth(s) for s in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(x > y for x, y in zip(values, values[1:]))
    # Independent numerical integration on a grid, and the posterior form
    # I = log 2 - E[softplus(-2 y / sigma^2) | x = +1].
    for sigma in (0.5, 1.0, 2.0):
        truth = gt.binary_channel_mi_truth(sigma)
        assert truth == pytest.approx(_grid_binary_channel_mi(sigma), abs=1e-5)
        z = np.random.default_rng(0).standard_normal(400000)
        posterior = LN2 - np.mean(np.logaddexp(0.0, -2 * (1 + sigma * z) / sigma**2))
        assert truth == pytest.approx(posterior, abs=5e-3)


def test_binary_channel_sampler():
    x, y = gt.sample_binary_channel(20000, 0.5, seed=0)
    assert x.shape == y.shape == (20000, 1)
    assert set(torch.unique(x).tolist()) == {-1.0, 1.0}
    assert float((y - x).std()) == pytest.approx(0.5, rel=0.03)
    x2, y2 = gt.sample_binary_channel(20000, 0.5, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_gaussian_truth_formula_and_sampler():
    # Closed form vs the log-determinant formula 0.5 log(det Sa det Sb / det S).
    for rho, d in ((0.3, 1), (0.6, 3), (0.9, 5)):
        cov = np.block([[np.eye(d), rho * np.eye(d)], [rho * np.eye(d), np.eye(d)]])
        logdet = 0.5 * (0.0 - np.linalg.slogdet(cov)[1])
        assert gt.gaussian_mi_truth(rho, d) == pytest.approx(logdet, rel=1e-9)
        assert gt.gaussian_rho_for_mi(gt.gaussian_mi_truth(rho, d), d) == pytest.approx(rho)
    assert gt.gaussian_mi_truth(0.0, 4) == 0.0
    # Sampler: correlation per component, none across components, and mean log-ratio = truth.
    a, b = gt.sample_correlated_gaussians(100000, 3, 0.6, seed=2)
    c = np.corrcoef(torch.cat([a, b], 1).T.numpy())
    assert np.allclose(np.diag(c[:3, 3:]), 0.6, atol=0.01)
    assert np.allclose(c[:3, 3:] - np.diag(np.diag(c[:3, 3:])), 0.0, atol=0.015)
    plug_in = float(gt.gaussian_log_density_ratio(a, b, 0.6).mean())
    assert plug_in == pytest.approx(gt.gaussian_mi_truth(0.6, 3), abs=0.02)
    with pytest.raises(BenchError):
        gt.gaussian_mi_truth(1.0, 2)


# ----------------------------------------------------------------------------------------------
# User errors, registry, table, CLI
# ----------------------------------------------------------------------------------------------


def _one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def test_unknown_estimator_raises_bench_error():
    a, b = _gaussian_pair(n=2000)
    with pytest.raises(BenchError) as exc:
        estimate.estimate_mi(a, b, "nwj")
    msg = _one_line(exc)
    assert "nwj" in msg and "mine" in msg and "infonce" in msg


def test_too_few_samples_for_batch_raises_bench_error():
    a, b = _gaussian_pair(n=500)
    with pytest.raises(BenchError) as exc:
        estimate.estimate_mi(a, b, "mine", batch_size=256)
    msg = _one_line(exc)
    assert "too few samples" in msg and "256" in msg


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(restarts=0),
        dict(steps=0),
        dict(batch_size=1),
        dict(critic="bilinear"),
        dict(test_frac=1.5),
        dict(device="not-a-device"),
    ],
)
def test_bad_settings_raise_bench_error(kwargs):
    a, b = _gaussian_pair(n=2000)
    with pytest.raises(BenchError) as exc:
        estimate.estimate_mi(a, b, "jsd", **{"steps": 5, **kwargs})
    _one_line(exc)


def test_bad_inputs_raise_bench_error():
    a, b = _gaussian_pair(n=2000)
    with pytest.raises(BenchError) as exc:
        estimate.estimate_mi(a, b[:1999], "mine")
    assert "same number of samples" in _one_line(exc)
    bad = a.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(BenchError):
        estimate.estimate_mi(bad, b, "mine")
    with pytest.raises(BenchError):
        estimate.estimate_mi(torch.zeros(10, 2, 2), torch.zeros(10, 2), "mine")


def test_every_registered_estimator_estimates():
    assert critics.list_estimators() == ["mine", "jsd", "infonce"]
    a, b = gt.sample_correlated_gaussians(600, 1, 0.9, seed=1)
    for name, spec in critics.ESTIMATORS.items():
        assert spec.name == name and spec.description
        r = estimate.estimate_mi(a, b, name, steps=60, restarts=1, batch_size=32)
        assert r.estimator == name and math.isfinite(r.nats) and r.nats > 0.2  # truth 0.83 nats


def test_estimate_mi_returns_the_flags_info_computes_with_one_function():
    from bench.info import bounds as ib

    a, b = _gaussian_pair(seed=6, n=2000)
    est = estimate.estimate_mi(a, b, "jsd", steps=50, batch_size=64, restarts=2, seed=0)
    d = est.as_dict()
    assert est.flags == estimate.estimate_flags(d) and d["flags"] == est.flags
    # the same function gives info's flags: against MI >= 0 they agree exactly
    no_bounds = {"h_y_nats": None, "izy_lower_nats": None}
    assert ib.check_estimate("I(Z;Y)", d, no_bounds) == estimate.estimate_flags(d, "I(Z;Y)")
    wild_d = {**d, "std_nats": 0.9, "values_nats": [0.0, 1.3]}
    assert ib.check_estimate("I(Z;Y)", wild_d, no_bounds) == estimate.estimate_flags(wild_d, "I(Z;Y)") != []
    neg = {"estimator": "mine", "nats": -0.4, "std_nats": 0.05, "values_nats": [-0.45, -0.35]}
    (f,) = estimate.estimate_flags(neg)
    assert f["flag"] == "below_lower_bound" and f["bound"] == "MI >= 0" and "negative" in f["message"]
    wild = {"estimator": "mine", "nats": 1.0, "std_nats": 0.9, "values_nats": [0.1, 1.9]}
    assert [f["flag"] for f in estimate.estimate_flags(wild)] == ["unstable"]
    near = {"estimator": "infonce", "nats": 4.6, "std_nats": 0.01, "near_ceiling": True, "ceiling_nats": 4.85}
    assert [f["flag"] for f in estimate.estimate_flags(near)] == ["near_ceiling"]
    assert estimate.estimate_flags({"estimator": "mine", "nats": 0.5, "std_nats": 0.01}) == []


def test_format_validation_table():
    rows = [
        dict(
            case="gaussian d=1 rho=0.4",
            truth_nats=0.0872,
            estimator="mine",
            estimate_nats=0.09,
            std_nats=0.006,
            abs_error=0.0028,
            near_ceiling=False,
            seconds=3.2,
        ),
        dict(
            case="binary channel sigma=1.0",
            truth_nats=0.3368,
            estimator="infonce",
            estimate_nats=0.33,
            std_nats=0.01,
            abs_error=0.0068,
            near_ceiling=True,
            seconds=2.0,
        ),
    ]
    table = vd.format_validation_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4
    assert "truth (nats)" in lines[0] and "estimator" in lines[0]
    assert set(lines[1]) <= set("|-: ")
    assert "0.087" in lines[2] and "no" in lines[2] and "yes" in lines[3]


def test_cli_register(monkeypatch, capsys):
    parser = argparse.ArgumentParser(prog="vib-bench")
    mi_validate.register(parser.add_subparsers(dest="command"))

    seen = {}

    def fake_validate(estimators, seed=0, quick=False, **kwargs):
        seen.update(
            estimators=list(estimators), seed=seed, quick=quick, copula=kwargs["copula"], bounds=kwargs["bounds"]
        )
        assert kwargs["kinds"] is None
        return [
            dict(
                case="c",
                truth_nats=1.0,
                estimator=e,
                estimate_nats=0.9,
                std_nats=0.01,
                abs_error=0.1,
                tolerance_nats=0.15,
                ok="yes" if e == "mine" or quick else "NO",
                near_ceiling=False,
                seconds=0.1,
            )
            for e in estimators
        ]

    monkeypatch.setattr(vd, "validate_estimators", fake_validate)
    args = parser.parse_args(["mi-validate", "--estimators", "mine,infonce", "--quick", "--seed", "3"])
    assert args.func(args) == 0
    assert seen == dict(estimators=["mine", "infonce"], seed=3, quick=True, copula=True, bounds=True)
    out = capsys.readouterr().out
    assert "| c " in out and "infonce" in out and "within tolerance" in out and "marginals on" in out

    # a row outside its tolerance: exit 1, named; --no-copula and --no-bounds reach the harness
    args = parser.parse_args(["mi-validate", "--estimators", "mine,infonce", "--no-copula", "--no-bounds"])
    assert args.func(args) == 1
    assert seen["copula"] is False and seen["bounds"] is False
    args = parser.parse_args(["mi-validate", "--kinds", "warped,curly"])
    with pytest.raises(BenchError) as exc:
        args.func(args)
    assert "unknown case kind 'curly'" in _one_line(exc)
    assert "1 of 2 rows outside their tolerance: c / infonce" in capsys.readouterr().out

    args = parser.parse_args(["mi-validate", "--estimators", "mine,bogus"])
    with pytest.raises(BenchError) as exc:
        args.func(args)
    assert "bogus" in _one_line(exc)


def test_validation_cases_cover_required_range():
    cases = vd.validation_cases(seed=0, n_samples=100)
    truths = [c["truth_nats"] for c in cases]
    gauss = [c for c in cases if c["case"].startswith("gaussian") and c["kind"] == "plain"]
    channel = [c for c in cases if c["case"].startswith("binary")]
    assert len(gauss) >= 4 and 2 <= len(channel) <= 3
    assert sum(c["kind"] == "warped" for c in cases) >= 1 and sum(c["kind"] == "heavy-tailed" for c in cases) >= 2
    assert min(truths) < 0.15 and max(truths) > 1.9
    assert all(c["a"].shape[0] == 100 for c in cases)


def test_validate_estimators_rows_compare_with_truth():
    rows = vd.validate_estimators(
        ["mine"], quick=True, n_samples=3000, steps=80, restarts=1, kinds=["plain"], bounds=False
    )
    plain = [c for c in vd.validation_cases(n_samples=10) if c["kind"] == "plain"]
    assert [r["estimator"] for r in rows] == ["mine"] * len(plain)
    for r in rows:
        assert r["abs_error"] == pytest.approx(abs(r["estimate_nats"] - r["truth_nats"]))
        assert math.isfinite(r["estimate_nats"]) and r["seconds"] > 0
        assert r["tolerance_nats"] == pytest.approx(vd.tolerance_nats(r["truth_nats"], quick=True))
        assert r["ok"] == ("yes" if r["abs_error"] <= r["tolerance_nats"] else "NO")
    # the small Gaussian case is easy: even this tiny budget gets within 0.15 nats of the truth
    first = next(r for r in rows if r["case"] == "gaussian d=1 rho=0.4")
    assert first["abs_error"] < 0.15
