"""Tests for the known-encoder bounds, the rank-Gaussian marginals, the new ground truths and what the
leaderboard shows of ``vib-bench info``. Everything here runs in well under a second per test."""

import math

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.info import bounds as ib
from bench.info import marginals, sandwich, summary
from bench.info import truth as gt
from bench.info import validate as vd
from bench.info.estimate import estimate_mi
from bench.reporting.leaderboard import build_leaderboard
from bench.reporting.leaderboard_render import render, to_csv
from bench.results import Results


def _brute(mu, log_sigma, z):
    """Both bounds from the full N x N matrix of directly computed log densities (the reference)."""
    L = sandwich._log_density_exact(z[:, None, :], mu[None], log_sigma[None])
    n = len(mu)
    diag = L.diagonal().clone()
    lower = (diag - (torch.logsumexp(L, 1) - math.log(n))).mean()
    L.fill_diagonal_(-math.inf)
    upper = (diag - (torch.logsumexp(L, 1) - math.log(n - 1))).mean()
    return float(lower), float(upper)


# ------------------------------------------------------------------------------ known-encoder bounds
@pytest.mark.parametrize("mi", [0.5, 2.0])
def test_known_encoder_bounds_bracket_the_gaussian_channel(mi):
    sigma = gt.gaussian_channel_sigma_for_mi(mi, 2)
    assert gt.gaussian_channel_mi_truth(sigma, 2) == pytest.approx(mi)
    mu, log_sigma, z = gt.sample_gaussian_channel(2000, 2, sigma, seed=1)
    b = sandwich.known_encoder_bounds(mu, log_sigma, z)
    tol = vd.tolerance_nats(mi, quick=True)
    assert abs(b["lower_nats"] - mi) < tol and abs(b["upper_nats"] - mi) < tol, b
    assert b["lower_nats"] <= b["upper_nats"] and b["lower_nats"] <= b["log_n_nats"]
    assert not b["near_cap"] and b["n"] == 2000
    # a wrong encoder (sigma twice too large) gives clearly different numbers: the bounds use it
    wrong = sandwich.known_encoder_bounds(mu, log_sigma + math.log(2.0), z)
    assert wrong["upper_nats"] < mi - tol


def test_beyond_log_n_the_lower_bound_caps_and_the_upper_stays_above():
    sigma = gt.gaussian_channel_sigma_for_mi(12.0, 4)
    b = sandwich.known_encoder_bounds(*gt.sample_gaussian_channel(1500, 4, sigma, seed=2))
    assert b["near_cap"] and b["lower_nats"] <= math.log(1500) + 1e-12
    assert b["lower_nats"] > 0.95 * math.log(1500)
    assert b["upper_nats"] > 12.0


def test_chunked_matmul_equals_direct_densities_with_heteroscedastic_noise():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(150, 5, generator=g, dtype=torch.float64)
    log_sigma = -1.0 + 0.6 * torch.randn(150, 5, generator=g, dtype=torch.float64)
    z = mu + torch.exp(log_sigma) * torch.randn(150, 5, generator=g, dtype=torch.float64)
    lo, up = _brute(mu, log_sigma, z)
    for chunk in (7, 64, 1000):
        b = sandwich.known_encoder_bounds(mu, log_sigma, z, chunk=chunk, refine=0)
        assert b["lower_nats"] == pytest.approx(lo, abs=1e-9) and b["upper_nats"] == pytest.approx(up, abs=1e-9)


def test_exact_refinement_removes_cancellation_of_the_expanded_quadratic_form():
    # two clusters 2e4 apart (centering cannot help), sigma 2e-4: the expanded form's terms are ~1e16
    g = torch.Generator().manual_seed(0)
    sign = torch.where(torch.arange(200) % 2 == 0, 1.0, -1.0).double()[:, None]
    mu = sign * 1e4 + 1e-3 * torch.randn(200, 3, generator=g, dtype=torch.float64)
    log_sigma = torch.full((200, 3), math.log(2e-4), dtype=torch.float64)
    z = mu + torch.exp(log_sigma) * torch.randn(200, 3, generator=g, dtype=torch.float64)
    lo, up = _brute(mu, log_sigma, z)
    naive = sandwich.known_encoder_bounds(mu, log_sigma, z, refine=0)
    assert abs(naive["upper_nats"] - up) > 0.05  # the cancellation is real here
    fixed = sandwich.known_encoder_bounds(mu, log_sigma, z)
    assert fixed["lower_nats"] == pytest.approx(lo, abs=1e-4) and fixed["upper_nats"] == pytest.approx(up, abs=1e-4)


def test_known_encoder_bounds_reject_bad_input():
    with pytest.raises(BenchError, match="at least 2"):
        sandwich.known_encoder_bounds(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(BenchError, match="shape"):
        sandwich.known_encoder_bounds(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(BenchError, match="NaN"):
        sandwich.known_encoder_bounds(torch.full((4, 2), math.nan), torch.zeros(4, 2), torch.zeros(4, 2))


# ------------------------------------------------------------------------------ rank-Gaussian marginals
def test_rank_gaussian_is_blind_to_monotone_warps_and_normal():
    a, _ = gt.sample_correlated_gaussians(3000, 3, 0.5, seed=4)
    ra, mask = marginals.rank_gaussian(a)
    rw, _ = marginals.rank_gaussian(gt.cubic_warp(a))
    rc, _ = marginals.rank_gaussian(gt.cauchy_marginals(a))
    assert bool(mask.all())
    torch.testing.assert_close(ra, rw)
    torch.testing.assert_close(ra, rc)
    assert ra.mean(0).abs().max() < 1e-3 and (ra.std(0) - 1).abs().max() < 0.01


def test_ties_are_detected_kept_together_and_left_alone_when_common():
    x = torch.tensor([[0.0, 1.0], [0.0, 3.0], [2.0, 3.0], [5.0, 4.0]])
    assert marginals.tied_fraction(x).tolist() == [0.5, 0.5]
    relu = torch.relu(torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)))  # ~50% zeros
    cont = torch.randn(1000, 1, generator=torch.Generator().manual_seed(1))
    cont[1] = cont[0]  # 2 of 1000 tied: rare
    out, mask = marginals.rank_gaussian(torch.cat([relu, cont], 1))
    assert mask.tolist() == [False, True]
    torch.testing.assert_close(out[:, 0], relu[:, 0])  # many ties: unchanged
    assert out[0, 1] == out[1, 1]  # tied values: one average rank
    assert len(torch.unique(out[:, 1])) == 999


def test_estimates_with_the_copula_do_not_see_a_warp():
    a, b = gt.sample_correlated_gaussians(2000, 2, 0.7, seed=5)
    kw = dict(steps=150, restarts=1, batch_size=64, seed=0)
    plain = estimate_mi(a, b, "mine", **kw)
    warped = estimate_mi(gt.cubic_warp(a), gt.cubic_warp(b), "mine", **kw)
    assert warped.values_nats == plain.values_nats  # identical inputs after the transform
    assert warped.settings["copula"] is True and warped.settings["rank_gaussian_dims"] == [2, 2]
    raw = estimate_mi(gt.cubic_warp(a), gt.cubic_warp(b), "mine", copula=False, **kw)
    assert raw.values_nats != plain.values_nats and raw.settings["rank_gaussian_dims"] is None


# ------------------------------------------------------------------------------ ground truth
@pytest.mark.parametrize("d, rho, nu", [(2, 0.6, 3.0), (5, 0.5, 3.0)])  # the heavy-tailed and the hard case
def test_student_t_truth_matches_monte_carlo_and_tends_to_the_gaussian(d, rho, nu):
    from scipy.stats import multivariate_t

    a, b = gt.sample_student_t(100_000, d, rho, nu, seed=6)
    cov = np.eye(2 * d)
    for k in range(d):
        cov[k, d + k] = cov[d + k, k] = rho
    ab = torch.cat([a, b], 1).double().numpy()
    ratio = (
        multivariate_t(np.zeros(2 * d), cov, df=nu).logpdf(ab)
        - multivariate_t(np.zeros(d), np.eye(d), df=nu).logpdf(ab[:, :d])
        - multivariate_t(np.zeros(d), np.eye(d), df=nu).logpdf(ab[:, d:])
    )
    se = ratio.std() / math.sqrt(len(ratio))
    truth = gt.student_t_mi_truth(rho, d, nu)
    assert abs(ratio.mean() - truth) < 4 * se and truth > gt.gaussian_mi_truth(rho, d) + 0.05
    assert gt.student_t_mi_truth(rho, d, 1e7) == pytest.approx(gt.gaussian_mi_truth(rho, d), abs=1e-5)
    assert gt.student_t_mi_truth(0.0, d, nu) > 0.05  # the shared scale alone is information


def test_spiral_is_invertible_mixes_coordinates_and_keeps_the_norm():
    t = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = gt.spiral(t, 0.5)
    assert torch.allclose(s.norm(dim=1), t.norm(dim=1)) and torch.allclose(s[:, 2], t[:, 2])
    assert torch.allclose(gt.spiral(s, -0.5), t)  # its inverse: MI unchanged
    assert abs(float(torch.corrcoef(torch.stack([s[:, 0], t[:, 0]]))[0, 1])) < 0.9  # coordinates mixed
    with pytest.raises(BenchError):
        gt.spiral(torch.zeros(3, 1))


def test_sparse_gaussians_put_all_mi_in_the_pairs():
    a, b = gt.sample_sparse_gaussians(20_000, 25, 2, 0.8, seed=1)
    c = torch.corrcoef(torch.cat([a, b], 1).T)[:25, 25:]
    assert c[0, 0] == pytest.approx(0.8, abs=0.02) and c[1, 1] == pytest.approx(0.8, abs=0.02)
    rest = c.abs().clone()
    rest[0, 0] = rest[1, 1] = 0.0
    assert float(rest.max()) < 0.05  # every other pair: independent
    assert gt.sparse_gaussian_mi_truth(0.8, 2) == pytest.approx(-math.log(1 - 0.64))  # 1.02 nats
    assert 2 * (25 - 2) == 46


def test_hard_cases_are_reported_as_known_limitations_not_hidden():
    hard = vd.hard_cases(seed=0, n_samples=50)
    assert [c["kind"] for c in hard] == ["hard"] * 3 and all(1.0 < c["truth_nats"] < 1.05 for c in hard)
    assert {c["a"].shape[1] for c in hard} == {3, 25, 5}
    assert [c["case"] for c in hard] == [c["case"] for c in vd.validation_cases(n_samples=50) if c["kind"] == "hard"]
    assert vd.judge("hard", 0.70, 1.02, 0.10) == "known limitation: -31%"
    assert vd.judge("hard", 1.00, 1.02, 0.10) == "yes" and vd.judge("plain", 0.70, 1.02, 0.10) == "NO"
    rows = [{"case": "x", "ok": "known limitation: -31%"}, {"case": "y", "ok": "NO"}, {"case": "z", "ok": "yes"}]
    assert [r["case"] for r in vd.misses(rows)] == ["y"] and [r["case"] for r in vd.limitations(rows)] == ["x"]
    assert "known limitation: -31%" in vd.format_validation_table(rows)


def test_warps_are_monotone():
    t = torch.linspace(-4, 4, 101)
    for f in (gt.cubic_warp, gt.cauchy_marginals):
        assert bool((f(t)[1:] > f(t)[:-1]).all())


# ------------------------------------------------------------------------------ validation rows
def test_bound_rows_are_within_tolerance_and_say_what_they_check():
    rows = vd.bound_rows(seed=0, n_samples=1500, quick=True)
    assert [r["estimator"] for r in rows] == list(vd.BOUND_NAMES) * 4
    assert not vd.misses(rows), rows
    tight = [r for r in rows if r["truth_nats"] < 5.5]
    assert all(r["ok"] == "yes" and r["abs_error"] <= r["tolerance_nats"] for r in tight)
    beyond = [r for r in rows if r["truth_nats"] > math.log(1500)]
    assert [r["ok"].split(":")[1].strip()[:5] for r in beyond] == ["at lo", "valid"]
    assert "within tolerance" in vd.format_validation_table(rows)


def test_validation_of_warped_and_heavy_tailed_kinds_runs():
    rows = vd.validate_estimators(
        ["infonce"], quick=True, n_samples=1500, steps=40, restarts=1, kinds=["warped", "heavy-tailed"], bounds=False
    )
    assert {r["kind"] for r in rows} == {"warped", "heavy-tailed"} and len(rows) == 4
    assert all(r["ok"] in ("yes", "NO") for r in rows)


def test_validation_of_the_hard_kind_runs_and_judges_every_row():
    rows = vd.validate_estimators(
        ["infonce"], quick=True, n_samples=1500, steps=40, restarts=1, kinds=["hard"], bounds=False
    )
    assert [r["kind"] for r in rows] == ["hard"] * 3 and all("flags" in r for r in rows)
    for r in rows:
        assert r["ok"] == vd.judge("hard", r["estimate_nats"], r["truth_nats"], r["tolerance_nats"])


# ------------------------------------------------------------------------------ leaderboard
def _info(kind, estimates, flags=(), **bounds):
    est = {q: {e: {"estimator": e, "nats": v, "std_nats": 0.01} for e, v in d.items()} for q, d in estimates.items()}
    return {
        "n": 1000,
        "representation": kind,
        "estimates": est,
        "flags": list(flags),
        "bounds": {"rate_nats": None, "izy_lower_nats": 2.2, "h_y_nats": 2.3, **bounds},
    }


def _results(tmp_path):
    below = {"flag": "below_lower_bound", "quantity": "I(X;Z)", "estimator": "mine"}
    models = {
        "vib": _info(
            "z sample",
            {"I(X;Z)": {"mine": 1.7}, "I(Z;Y)": {"mine": 2.25, "jsd": 2.1}},
            [below],
            rate_nats=23.0,
            ixz_lower_nats=9.1,
            ixz_upper_nats=30.0,
            ixz_lower_at_cap=True,
        ),
        "mlp": _info(
            "last hidden",
            {"I(X;Z)": {"mine": 4.0}, "I(Z;Y)": {"jsd": 2.0}},  # as older records had
            [
                {"flag": "below_lower_bound", "quantity": "I(Z;Y)", "estimator": "jsd"},
                {"flag": "unstable", "quantity": "I(X;Z)", "estimator": "mine"},
            ],
        ),
    }
    res = Results.new({"dataset": {}, "train": {}, "models": {}, "seeds": [0]}, {})
    for name, info in models.items():
        e = res.seed(name, 0, create=True)
        e.set_train({"state": "done"})
        e.set_clean({"error": 0.02, "n": 1000})
        e.set_info(info)
    res.model("vib").set_config({"beta": 1e-3, "k": 256}, True)
    res.model("mlp").set_config({}, False)
    res.save(tmp_path)
    return res


def test_leaderboard_shows_the_interval_inf_and_only_unflagged_estimates(tmp_path):
    res = _results(tmp_path)
    lb = build_leaderboard(res)
    table = render(lb, "github")
    row = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert "[9.10, 23.00]" in row["vib"]  # the upper end: min(leave-one-out, rate)
    assert "1.70" not in row["vib"] and "2.250" in row["vib"]  # flagged mine I(X;Z) hidden; best unflagged I(Z;Y)
    assert "inf (deterministic)" in row["mlp"] and "4.00" not in row["mlp"]
    assert "2.000" not in row["mlp"]  # its only I(Z;Y) estimate is flagged
    assert "I(X;Z) below-bound: mine" in row["vib"] and "I(X;Z) lower at log N" in row["vib"]
    assert "I(Z;Y) below-bound: jsd" in row["mlp"] and "I(X;Z)" not in row["mlp"].split("|")[-2]
    assert lb.mean.at["vib", "ixz"] == pytest.approx(9.1) and math.isnan(lb.mean.at["mlp", "ixz"])
    csv = to_csv(lb)
    assert "ixz_upper" in csv.splitlines()[0] and ",23," in csv
    assert math.isnan(summary.seed_info_values(res.seed("mlp", 0))["izy_critic"])  # its only estimate is flagged


def test_every_model_gets_a_provable_izy_interval_in_every_format(tmp_path):
    import json

    res = _results(tmp_path)
    lb = build_leaderboard(res)
    table = render(lb, "github")
    row = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    # [H(Y) - CE, H(Y)] for both, though the mlp's only critic estimate is flagged
    assert "[2.200, 2.300]" in row["vib"] and "[2.200, 2.300]" in row["mlp"]
    assert lb.mean.at["mlp", "izy"] == pytest.approx(2.2) and math.isnan(lb.mean.at["mlp", "izy_critic"])
    assert lb.mean.at["vib", "izy_critic"] == pytest.approx(2.25)
    doc = json.loads(render(lb, "json"))
    rows = {r["model"]: r for r in doc["rows"]}
    assert rows["mlp"]["intervals"]["izy"] == {"lower": pytest.approx(2.2), "upper": pytest.approx(2.3)}
    assert rows["vib"]["intervals"]["ixz"] == {"lower": pytest.approx(9.1), "upper": pytest.approx(23.0)}
    assert rows["mlp"]["intervals"]["ixz"] == {"lower": None, "upper": None}
    header = to_csv(lb).splitlines()[0].split(",")
    assert header.index("izy_upper") == header.index("izy") + 1
    for fmt in ("latex", "html"):
        assert "[2.200, 2.300]" in render(lb, fmt)


def test_izy_interval_upper_end_is_the_tightest_bound_and_lower_never_negative():
    # a rate below H(Y) bounds I(Z;Y) through I(Z;Y) <= I(X;Z) <= rate
    b = {"rate_nats": 1.2, "izy_lower_nats": 0.9, "h_y_nats": 2.3}
    assert ib.izy_interval(b) == (pytest.approx(0.9), pytest.approx(1.2), "H(Y)-CE", "rate")
    b = {"rate_nats": None, "izy_lower_nats": -0.4, "h_y_nats": 2.3, "ixz_lower_nats": 0.5, "ixz_upper_nats": 1.0}
    assert ib.izy_interval(b) == (0.0, pytest.approx(1.0), "MI >= 0", "leave-one-out")
    assert ib.izy_interval({}) is None


def test_info_beta_figure_draws_flagged_negative_estimates(tmp_path):
    from bench.info.plots import plot_info_beta

    res = _results(tmp_path)
    neg = _info(
        "z sample",
        {"I(X;Z)": {"mine": -5.6, "jsd": 2.5}, "I(Z;Y)": {"mine": 2.2}},
        [{"flag": "unstable", "quantity": "I(X;Z)", "estimator": "mine"}],
        rate_nats=110.0,
    )
    e = res.seed("vib2", 0, create=True)
    e.set_info(neg)
    res.model("vib2").set_config({"beta": 1e-4, "k": 256}, True)
    path = plot_info_beta(res, tmp_path / "info_beta.png")
    assert path.stat().st_size > 10_000
