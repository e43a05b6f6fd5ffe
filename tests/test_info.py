"""Tests for bench.info: the ``info`` and ``infoplane`` subcommands and their building blocks.

Models are tiny digits networks trained in-test on one thread; MI estimates use a few dozen critic
steps, so each test takes a few seconds at most.
"""

import json
import math

import pytest
import torch
from conftest import one_error_line

from bench.cli import main
from bench.errors import BenchError
from bench.info import bounds as ib
from bench.info import infoplane
from bench.train.recipe import TrainConfig, train_model
from bench.train.weights import load_weights
from models import create_model

# Few critic steps: these tests check plumbing and bookkeeping, not the estimators' accuracy.
FAST_MI = ["--steps", "30", "--restarts", "2", "--batch-size", "32", "--threads", "1"]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A digits run with an MLP, a tanh MLP and a VIB, snapshots every epoch on 400 examples."""
    out = tmp_path_factory.mktemp("info") / "run"
    rc = main(
        [
            "train",
            "--models",
            "mlp,mlp_tanh,vib_beta1e-3",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--lr",
            "3e-3",
            "--set",
            "hidden=16,12",
            "--set",
            "k=4",
            "--snapshot-every",
            "1",
            "--snapshot-n",
            "400",
            "--threads",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    return out


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def info_of(run_dir, model, seed="0"):
    return results(run_dir)["models"][model]["seeds"][seed].get("info")


# ---------------------------------------------------------------------------- the rate (KL bound)
def _vib_rate(tmp_path, digits, beta):
    train_model(
        "vib_beta1e-3",
        0,
        digits,
        TrainConfig(epochs=25, lr=3e-3),
        tmp_path / f"b{beta:g}",
        overrides={"hidden": [32], "k": 4, "beta": beta},
        progress=False,
    )
    model = load_weights(tmp_path / f"b{beta:g}" / "models/vib_beta1e-3/seed0/model.safetensors")
    x, y = digits.split("test")
    rep = ib.info_representation(model, x, y)
    return ib.info_bounds(rep["rate"], rep["ce"], y)


def test_large_beta_collapses_the_rate_and_small_beta_does_not(tmp_path, digits):
    collapsed = _vib_rate(tmp_path, digits, 30.0)
    assert 0 <= collapsed["rate_nats"] < 0.05
    # a collapsed posterior carries no label information either: the variational bound is ~0 or below
    assert collapsed["izy_lower_nats"] < 0.1
    free = _vib_rate(tmp_path, digits, 1e-4)
    assert free["rate_nats"] > 5.0
    assert free["izy_lower_nats"] > 1.0
    # data processing: H(Y) - CE <= I(Z;Y) <= I(X;Z) <= rate
    assert free["izy_lower_nats"] <= free["h_y_nats"] <= free["rate_nats"]


def test_bounds_of_a_deterministic_model(digits):

    torch.manual_seed(0)
    model = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=[8])
    x, y = digits.split("test")
    rep = ib.info_representation(model, x, y)
    assert rep["kind"] == "last hidden" and rep["rate"] is None and rep["z"].shape == (len(x), 8)
    b = ib.info_bounds(rep["rate"], rep["ce"], y)
    assert b["rate_nats"] is None
    assert b["h_y_nats"] == pytest.approx(ib.label_entropy(y))
    expected_ce = torch.nn.functional.cross_entropy(model.eval()(x), y).item()
    assert b["izy_lower_nats"] == pytest.approx(b["h_y_nats"] - expected_ce, abs=1e-5)


def test_vib_sample_is_fixed_and_not_the_mean(digits):

    torch.manual_seed(0)
    model = create_model("vib_beta1e-3", in_shape=(1, 8, 8), num_classes=10, hidden=[8], k=3, sigma_shift=0.0)
    x, y = digits.split("test")
    a = ib.info_representation(model, x, y)["z"]
    b = ib.info_representation(model, x, y, batch_size=7)["z"]  # batching does not change the draw
    torch.testing.assert_close(a, b)
    mu = model.eval().encode(x)[0]
    assert (a - mu).abs().mean() > 0.1
    # the float64 copy for the known-encoder bounds is the same sample, mu + exp(log_sigma) * eps
    rep = ib.info_representation(model, x, y)
    assert rep["z64"].dtype == torch.float64 and rep["mu"].shape == rep["log_sigma"].shape == a.shape
    torch.testing.assert_close(rep["z64"].float(), a, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- flags
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_snapshot_interval_equals_the_direct_interval_on_the_same_weights(digits, dtype):
    """The per-epoch interval rebuilt from a snapshot's stored p(z|x) is the one computed from the model
    (also for a float64 model: the same z sample, drawn in the encoder's dtype)."""
    from bench.train.snapshots import encoder_terms, layer_activations, layers_of

    torch.manual_seed(0)
    model = create_model("vib_beta1e-3", in_shape=(1, 8, 8), num_classes=10, hidden=[16], k=4, sigma_shift=0.0).to(
        dtype
    )
    x, y = digits.split("train")
    x, y = x[:300].to(dtype), y[:300]
    snap = {**layer_activations(model, x), "labels": y, **encoder_terms(model, x, y)}
    assert set(snap) >= {"z_mu", "z_log_sigma", "z_rate", "z_ce"} and "z_mu" not in layers_of(snap)
    rec, setup = infoplane.z_bounds_record({7: snap}, [], model, lambda: (x, y))
    (direct,), (from_snap,) = rec[infoplane.FINAL_INTERVAL], rec[infoplane.SNAPSHOT_INTERVALS]
    for key in ("ixt_nats", "ixt_upper_nats", "ity_nats", "rate_nats", "loo_upper_nats"):
        assert from_snap[key] == pytest.approx(direct[key], rel=1e-5, abs=1e-6), key
    assert from_snap["epoch"] == direct["epoch"] == 7 and setup["n"] == 300
    # a deterministic model stores no encoder terms and gets no record
    mlp = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=[16]).to(dtype)
    assert encoder_terms(mlp, x, y) == {}
    assert infoplane.z_bounds_record({1: {**layer_activations(mlp, x), "labels": y}}, [], mlp, lambda: (x, y)) is None


def test_an_encoder_without_a_decoder_gets_intervals_but_no_izy(digits, tmp_path):
    """No decoder, no H(Y) - CE: the interval is still there, I(Z;Y) is None, and the figure draws."""
    from bench.info.plots import plot_infoplane
    from bench.train.snapshots import encoder_terms, layer_activations

    torch.manual_seed(0)
    model = create_model("vib_beta1e-3", in_shape=(1, 8, 8), num_classes=10, hidden=[16], k=4, sigma_shift=0.0)
    x, y = digits.split("train")
    x, y = x[:200], y[:200]
    snaps = {}
    for epoch in (1, 2):
        terms = encoder_terms(model, x, y)
        terms.pop("z_ce")  # what a model with no decoder/head stores
        snaps[epoch] = {**layer_activations(model, x), "labels": y, **terms}
    rec, setup = infoplane.z_bounds_record(snaps, [{"epoch": 1, "kl": 30.0, "ce": 1.0}])
    pts = rec[infoplane.SNAPSHOT_INTERVALS]
    assert [p["epoch"] for p in pts] == [1, 2] and all(p["ity_nats"] is None and p["ixt_nats"] > 0 for p in pts)
    assert infoplane.FINAL_INTERVAL not in rec and setup["weights"] is None
    out = plot_infoplane("vib", 0, {infoplane.BOUNDS_KEY: rec}, {infoplane.BOUNDS_KEY: setup}, tmp_path / "p.png")
    assert out.stat().st_size > 1000


def test_flags_say_which_bound_is_contradicted():
    bounds = {"rate_nats": 3.0, "rate_se_nats": 0.0, "izy_lower_nats": 1.5, "izy_lower_se_nats": 0.0, "h_y_nats": 2.3}
    est = lambda v, s=0.05: {"estimator": "mine", "nats": v, "std_nats": s}  # noqa: E731
    assert ib.check_estimate("I(X;Z)", est(2.0), bounds) == []
    (f,) = ib.check_estimate("I(X;Z)", est(3.5), bounds)
    assert f["flag"] == "above_upper_bound" and f["bound"] == "rate"
    (f,) = ib.check_estimate("I(X;Z)", est(1.0), bounds)  # I(X;Z) >= I(Z;Y) >= H(Y) - CE
    assert f["flag"] == "below_lower_bound" and "loose" in f["message"]
    (f,) = ib.check_estimate("I(Z;Y)", est(2.6), bounds)
    assert f["flag"] == "above_upper_bound" and f["bound"] == "H(Y)"
    assert ib.check_estimate("I(Z;Y)", est(2.6, s=0.2), bounds) == []  # within its spread
    # the spread of the bound itself widens the tolerance
    assert ib.check_estimate("I(X;Z)", est(3.2), {**bounds, "rate_se_nats": 0.1}) == []
    # restarts that disagree, and a negative mean where no analytic lower bound applies (MI >= 0)
    (f,) = ib.check_estimate("I(X;Z)", {**est(2.0, s=1.5), "values_nats": [0.5, 2.0, 3.5]}, bounds)
    assert f["flag"] == "unstable" and "0.50, 2.00, 3.50" in f["message"]
    (f,) = ib.check_estimate("I(Z;Y)", est(-0.3), {**bounds, "izy_lower_nats": -0.2})
    assert f["flag"] == "below_lower_bound" and f["bound_nats"] == 0.0
    near = {**est(4.5), "near_ceiling": True, "notice": "near the log N ceiling", "ceiling_nats": 4.85}
    assert [f["flag"] for f in ib.check_estimate("I(X;Z)", near, {**bounds, "rate_nats": None})] == ["near_ceiling"]


# ------------------------------------------------------------------------------------- binning
def test_binning_of_the_label_itself_gives_h_y():
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0, 1, 0])
    h_y = ib.label_entropy(y)
    assert h_y == pytest.approx(
        -(0.4 * math.log(0.4) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    )
    r = infoplane.binned_information(y.float()[:, None], y, bins=4, lo=0.0, hi=3.0)
    assert r["ixt_nats"] == pytest.approx(h_y) and r["ity_nats"] == pytest.approx(h_y)
    # a constant layer carries nothing
    r = infoplane.binned_information(torch.full((10, 5), 0.3), y, bins=30, lo=-1.0, hi=1.0)
    assert r["ixt_nats"] == 0.0 and r["ity_nats"] == 0.0 and r["distinct"] == 1


def test_binning_hand_computed_cases():
    y = torch.tensor([0, 1, 0, 1])
    # T splits the samples in two halves independent of Y: H(T) = ln 2, I(T;Y) = 0
    t = torch.tensor([[-0.9], [-0.9], [0.9], [0.9]])
    r = infoplane.binned_information(t, y, bins=2, lo=-1.0, hi=1.0)
    assert r["ixt_nats"] == pytest.approx(math.log(2)) and r["ity_nats"] == pytest.approx(0.0, abs=1e-12)
    # two units, rows (a, a, b, c): H(T) = 1.5 ln 2; I(T;Y) = H(T) + H(Y) - H(T,Y) = 1.5 ln2 + ln2 - 2 ln2
    t = torch.tensor([[0.1, 0.1], [0.1, 0.1], [0.9, 0.1], [0.9, 0.9]])
    r = infoplane.binned_information(t, y, bins=2, lo=0.0, hi=1.0)
    assert r["distinct"] == 3
    assert r["ixt_nats"] == pytest.approx(1.5 * math.log(2))
    assert r["ity_nats"] == pytest.approx(0.5 * math.log(2))
    # equal-width bins over [lo, hi], the top edge inside the last bin, values outside clamped
    codes = infoplane.discretize(torch.tensor([-1.0, -0.34, 0.0, 0.99, 1.0, 7.0]), -1.0, 1.0, 3)
    assert codes.tolist() == [0, 0, 1, 2, 2, 2]


def test_binning_never_exceeds_log_n():
    gen = torch.Generator().manual_seed(0)
    for n, units, bins in ((50, 1, 3), (200, 20, 30), (500, 64, 100)):
        t = torch.rand(n, units, generator=gen) * 2 - 1
        y = torch.randint(0, 10, (n,), generator=gen)
        r = infoplane.binned_information(t, y, bins, -1.0, 1.0)
        assert 0 <= r["ity_nats"] <= r["ixt_nats"] <= math.log(n) + 1e-9
        assert r["ity_nats"] <= ib.label_entropy(y) + 1e-9
        assert (r["ixt_nats"] / math.log(2)) <= math.log2(n) + 1e-9
    # wide layer, fine bins: every example is its own binned vector, H(T) = log n exactly
    r = infoplane.binned_information(torch.rand(300, 64, generator=gen), torch.zeros(300, dtype=torch.long), 30, 0, 1)
    assert r["ixt_nats"] == pytest.approx(math.log(300)) and r["ity_nats"] == 0.0


def test_layer_ranges():
    acts = [torch.tensor([[0.0, 0.5]]), torch.tensor([[0.2, 3.0]])]
    assert infoplane.layer_range("hidden1", acts, "relu")[:2] == (0.0, 3.0)
    assert infoplane.layer_range("hidden2", [a - 0.5 for a in acts], "tanh")[:2] == (-1.0, 1.0)
    assert infoplane.layer_range("representation", [a - 1 for a in acts], "relu")[:2] == (-1.0, 2.0)


# ------------------------------------------------------------------------------- info command
def test_info_end_to_end_writes_records_and_resume_skips(run_copy, capsys):
    rc = main(["info", str(run_copy), "--estimators", "mine", *FAST_MI])
    assert rc == 0
    out = capsys.readouterr().out
    assert "I(X;Z)" in out and "estimate (bits)" in out and "is infinite for a deterministic, injective map" in out
    assert "inf (deterministic)" in out and "I(X;Z) in [lower, upper]" in out
    data = results(run_copy)
    assert "info" in data["environments"]
    for model in ("mlp", "mlp_tanh", "vib_beta1e-3"):
        rec = info_of(run_copy, model)
        assert rec["n"] == 360
        assert set(rec["estimates"]) == {"I(X;Z)", "I(Z;Y)"}
        for q in ("I(X;Z)", "I(Z;Y)") if model.startswith("vib") else ("I(Z;Y)",):
            e = rec["estimates"][q]["mine"]
            assert e["n_samples"] == 360 and len(e["values_nats"]) == 2
            assert e["bits"] == pytest.approx(e["nats"] / math.log(2))
            assert e["settings"]["copula"] is True
        assert {"rate_nats", "izy_lower_nats", "h_y_nats"} <= set(rec["bounds"])
        assert isinstance(rec["flags"], list) and rec["seconds"] > 0
        assert rec["flags"] == ib.record_flags(rec)
    vib = info_of(run_copy, "vib_beta1e-3")
    assert vib["representation"] == "z sample" and vib["bounds"]["rate_nats"] > 0 and vib["notes"] == []
    b = vib["bounds"]
    assert 0 < b["ixz_lower_nats"] <= b["log_n_nats"] == pytest.approx(math.log(360))
    assert b["ixz_lower_nats"] <= b["ixz_upper_nats"] and vib["deterministic"] is False
    assert f"[{b['ixz_lower_nats']:.3f}" in out
    mlp = info_of(run_copy, "mlp")
    assert mlp["representation"] == "last hidden" and mlp["bounds"]["rate_nats"] is None and mlp["notes"]
    assert mlp["deterministic"] is True and mlp["estimates"]["I(X;Z)"] == {}  # no number for an infinite MI
    assert "ixz_lower_nats" not in mlp["bounds"]
    assert mlp["bounds"]["h_y_nats"] == pytest.approx(vib["bounds"]["h_y_nats"])
    for rec in (vib, mlp):  # every model: a provable I(Z;Y) interval, printed and in the leaderboard
        lo, up, _, _ = ib.izy_interval(rec["bounds"])
        assert 0 <= lo <= up <= rec["bounds"]["h_y_nats"] + 1e-12 and f"[{lo:.3f}, {up:.3f}]" in out
    assert main(["leaderboard", str(run_copy), "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert all(r["intervals"]["izy"]["lower"] is not None for r in rows.values())
    assert (run_copy / "figures" / "info_beta.png").stat().st_size > 1000

    # --resume: everything is there, nothing is recomputed
    before = results(run_copy)["models"]
    assert main(["info", str(run_copy), "--estimators", "mine", "--resume", *FAST_MI]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 3
    assert results(run_copy)["models"] == before

    # --no-copula estimates are other estimates: --resume does not take the stored ones for them
    assert (
        main(["info", str(run_copy), "--models", "mlp", "--estimators", "mine", "--resume", "--no-copula", *FAST_MI])
        == 0
    )
    assert "skipped" not in capsys.readouterr().out
    assert info_of(run_copy, "mlp")["estimates"]["I(Z;Y)"]["mine"]["settings"]["copula"] is False

    # --resume with another estimator computes only that one and keeps the first
    assert main(["info", str(run_copy), "--models", "vib*", "--estimators", "mine,infonce", "--resume", *FAST_MI]) == 0
    rec = info_of(run_copy, "vib_beta1e-3")
    assert set(rec["estimates"]["I(X;Z)"]) == {"mine", "infonce"}
    assert (
        rec["estimates"]["I(X;Z)"]["mine"]
        == before["vib_beta1e-3"]["seeds"]["0"]["info"]["estimates"]["I(X;Z)"]["mine"]
    )
    assert info_of(run_copy, "mlp_tanh") == before["mlp_tanh"]["seeds"]["0"]["info"]  # not selected: untouched


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--estimators", "mine,magic"], "unknown MI estimator 'magic'"),
        (["--estimators", "mine", "--n-examples", "100"], "too few samples"),
        (["--estimators", "mine", "--n-examples", "100000"], "--n-examples"),
        (["--models", "nothing*"], "no trained models"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_info_bad_input_is_one_line_and_exit_2(run_copy, capsys, argv, needle):
    before = (run_copy / "results.json").read_bytes()
    assert main(["info", str(run_copy), *argv]) == 2
    assert needle in one_error_line(capsys)
    assert (run_copy / "results.json").read_bytes() == before


# -------------------------------------------------------------------------- infoplane command
def test_infoplane_binning_and_mine(run_copy, capsys):
    assert (
        main(
            [
                "infoplane",
                str(run_copy),
                "--models",
                "mlp_tanh,vib*",
                "--estimator",
                "binning,mine",
                "--bins",
                "2,30",
                "--steps",
                "30",
                "--batch-size",
                "32",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    data = results(run_copy)
    assert "infoplane" in data["environments"]
    tanh = data["models"]["mlp_tanh"]["seeds"]["0"]
    assert set(tanh["infoplane"]) == {"binning@2", "binning@30", "mine"}
    assert list(tanh["infoplane"]["binning@30"]) == ["hidden1", "hidden2"]
    for est in ("binning@2", "binning@30", "mine"):
        pts = tanh["infoplane"][est]["hidden1"]
        assert [p["epoch"] for p in pts] == [1, 2, 3]
        assert all({"epoch", "ixt_nats", "ity_nats"} <= set(p) for p in pts)
    assert all(p["ixt_nats"] <= math.log(400) + 1e-9 for p in tanh["infoplane"]["binning@30"]["hidden2"])
    # fewer bins can only merge binned vectors: never more distinct values, never more I(X;T)
    for a, b in zip(tanh["infoplane"]["binning@2"]["hidden1"], tanh["infoplane"]["binning@30"]["hidden1"]):
        assert a["distinct"] <= b["distinct"] and a["ixt_nats"] <= b["ixt_nats"] + 1e-12
    assert tanh["infoplane_setup"]["binning@30"]["ranges"]["hidden1"]["lo"] == -1.0  # tanh: [-1, 1]
    assert tanh["infoplane_setup"]["binning@2"]["bins"] == 2 and tanh["infoplane_setup"]["mine"]["steps"] == 30
    assert tanh["infoplane_setup"]["mine"]["copula"] is True
    assert "known-encoder" not in tanh["infoplane"]  # deterministic: no encoder, no bounds
    # the VIB's representation (mu) is not a hidden ReLU output, so it is a layer of its own
    vib = data["models"]["vib_beta1e-3"]["seeds"]["0"]
    assert list(vib["infoplane"]["binning@30"]) == ["hidden1", "hidden2", "representation"]
    # ... and its z gets bounds: the rate per epoch from the training log, the interval at the end
    kb = vib["infoplane"]["known-encoder"]
    per_epoch = kb["z: rate, H(Y)-CE (training log)"]
    assert [p["epoch"] for p in per_epoch] == [1, 2, 3] and all(p["ixt_nats"] > 0 for p in per_epoch)
    (final,) = kb["z: known-encoder interval (final weights)"]
    assert 0 < final["ixt_nats"] <= math.log(400) + 1e-9 and final["ixt_nats"] <= final["ixt_upper_nats"]
    assert final["epoch"] == 3 and vib["infoplane_setup"]["known-encoder"]["n"] == 400
    # the snapshots keep p(z|x), so every snapshot epoch has its interval too (live weights, not the EMA)
    snap_iv = kb["z: known-encoder interval (snapshots)"]
    assert [p["epoch"] for p in snap_iv] == [1, 2, 3]
    assert all(0 < p["ixt_nats"] <= min(math.log(400) + 1e-9, p["ixt_upper_nats"]) for p in snap_iv)
    assert all(p["ixt_upper_nats"] <= p["rate_nats"] + 1e-9 for p in snap_iv)
    assert "known-encoder: z at epoch 3 (final weights): I(X;Z) in [" in out
    assert "known-encoder: z at epoch 3 (snapshots): I(X;Z) in [" in out
    assert "infoplane" not in data["models"]["mlp"]["seeds"]["0"]
    for m in ("mlp_tanh", "vib_beta1e-3"):
        assert (run_copy / "figures" / f"infoplane_{m}_seed0.png").stat().st_size > 1000

    # a second estimator run keeps the first one's record; --layers picks layers
    assert main(["infoplane", str(run_copy), "--models", "mlp_tanh", "--bins", "5", "--layers", "hidden2,logits"]) == 0
    tanh = results(run_copy)["models"]["mlp_tanh"]["seeds"]["0"]
    assert list(tanh["infoplane"]["binning@5"]) == ["hidden2", "logits"] and "mine" in tanh["infoplane"]
    assert list(tanh["infoplane"]["binning@30"]) == ["hidden1", "hidden2"]


def test_infoplane_without_snapshots_is_one_line(tmp_path, capsys):
    out = tmp_path / "nosnap"
    assert (
        main(
            [
                "train",
                "--models",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--set",
                "hidden=8",
                "--threads",
                "1",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["infoplane", str(out)]) == 2
    assert "--snapshot-every" in one_error_line(capsys)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--estimator", "kde"], "unknown information-plane estimator 'kde'"),
        (["--estimator", "mine", "--batch-size", "256"], "too few samples"),
        (["--bins", "1"], "--bins"),
        (["--bins", "8,x"], "bad bin count 'x'"),
        (["--layers", "hidden9"], "no layer 'hidden9'"),
    ],
)
def test_infoplane_bad_input_is_one_line_and_exit_2(run_copy, capsys, argv, needle):
    before = (run_copy / "results.json").read_bytes()
    assert main(["infoplane", str(run_copy), "--models", "mlp", *argv]) == 2
    assert needle in one_error_line(capsys)
    assert (run_copy / "results.json").read_bytes() == before


def test_binned_information_rejects_mismatched_lengths():
    with pytest.raises(BenchError):
        infoplane.binned_information(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), 10, 0, 1)
