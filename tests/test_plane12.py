"""The 12-bit information-plane experiment: the ib12 data set, the ib12 networks, the noise-based estimators,
the verdict and ``vib-bench infoplane12``."""

import json
import math

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.data import _load_ib12, ib12_patterns, icosahedron, load_dataset
from bench.info import mixture, verdict
from bench.info.plane12 import snapshot_epochs
from bench.info.truth import binary_channel_mi_truth
from bench.train.snapshots import layer_activations
from models import create_model


def test_ib12_is_all_4096_patterns_split_80_20_and_half_positive():
    ds = load_dataset("ib12")
    x_tv, y_tv = ds.split("trainval")
    x_te, y_te = ds.split("test")
    assert len(x_tv) == 3277 and len(x_te) == 819 and len(ds.split("train")[0]) == 3277 - 328
    x = torch.cat([x_tv, x_te]).reshape(-1, 12)
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert len(torch.unique(x, dim=0)) == 4096
    y = torch.cat([y_tv, y_te])
    assert int(y.sum()) == 2036  # 49.7% positive
    again = _load_ib12(None)  # generated, not cached: the same every time
    assert again.checksum == ds.checksum and torch.equal(again.x_test, ds.x_test)


def test_ib12_labels_are_invariant_under_a_symmetry_of_the_sphere_and_a_global_flip():
    bits, y = ib12_patterns()
    u = icosahedron()
    assert np.allclose(np.linalg.norm(u, axis=1), 1.0)
    # the cyclic permutation of coordinates is a rotation mapping the vertex set onto itself
    rot = u[:, [1, 2, 0]]
    perm = [int(np.argmin(np.linalg.norm(u - r, axis=1))) for r in rot]
    assert sorted(perm) == list(range(12)) and np.allclose(u[perm], rot)
    moved = np.zeros_like(bits)
    moved[:, perm] = bits  # bit i moves to the vertex the rotation takes u_i to
    index = (moved.astype(np.int64) * (1 << np.arange(11, -1, -1))).sum(1)
    assert np.array_equal(y[index], y)
    flipped = ((1 - bits).astype(np.int64) * (1 << np.arange(11, -1, -1))).sum(1)
    assert np.array_equal(y[flipped], y)
    assert not np.array_equal(y[np.roll(np.arange(4096), 1)], y)  # the check can fail


def test_ib12_networks_are_12_10_7_5_4_3_2():
    for act, mod in (("tanh", torch.nn.Tanh), ("relu", torch.nn.ReLU)):
        m = create_model(f"ib12_{act}")
        assert [tuple(layer.weight.shape) for layer in m.modules() if isinstance(layer, torch.nn.Linear)] == [
            (10, 12),
            (7, 10),
            (5, 7),
            (4, 5),
            (3, 4),
            (2, 3),
        ]
        assert sum(isinstance(layer, mod) for layer in m.modules()) == 5
        acts = layer_activations(m, torch.zeros(3, 1, 1, 12))
        assert [acts[f"hidden{i}"].shape[1] for i in range(1, 6)] == [10, 7, 5, 4, 3]


def test_noisy_information_matches_the_binary_channel_and_its_limits():
    t = torch.tensor([[-1.0], [1.0]]).repeat(2000, 1)  # X uniform over rows: I(X; T+Z) = I(bit; T+Z)
    r = mixture.noisy_information(t, beta=1.0, samples=4, seed=1)
    assert abs(r["ixt_nats"] - binary_channel_mi_truth(1.0)) < 4 * r["ixt_se_nats"] + 0.01
    far = torch.arange(64.0).reshape(-1, 1) * 100
    y = torch.arange(64) % 2
    r = mixture.noisy_information(far, y, beta=0.1)
    assert r["ixt_nats"] == pytest.approx(math.log(64), abs=1e-6) and r["ity_nats"] == pytest.approx(math.log(2))
    r = mixture.noisy_information(torch.zeros(64, 3), y)
    assert r["ixt_nats"] == pytest.approx(0.0, abs=1e-9) and r["ity_nats"] == pytest.approx(0.0, abs=1e-9)


def test_kde_bounds_bracket_the_noisy_estimate_and_the_row_subset_is_unbiased():
    t = torch.randn(600, 2, generator=torch.Generator().manual_seed(0))
    y = (t[:, 0] > 0).long()
    noisy = mixture.noisy_information(t, y, beta=0.3, samples=8)
    kde = mixture.kde_information(t, y, variance=0.09)
    assert (
        kde["ixt_lower_nats"] - 3 * noisy["ixt_se_nats"]
        <= noisy["ixt_nats"]
        <= kde["ixt_nats"] + 3 * noisy["ixt_se_nats"]
    )
    sub = mixture.kde_information(t, y, variance=0.09, rows=200, seed=3)
    assert abs(sub["ixt_nats"] - kde["ixt_nats"]) < 4 * sub["ixt_se_nats"] and sub["ixt_se_nats"] > 0


def test_snapshot_epochs_are_log_spaced_from_zero_to_the_end():
    e = snapshot_epochs(3000, 16)
    assert e[0] == 0 and e[1] == 1 and e[-1] == 3000 and e == sorted(set(e)) and 10 <= len(e) <= 17
    assert snapshot_epochs(5, 16) == [0, 1, 2, 3, 4, 5]


def _curve(values, errors):
    epochs = list(range(len(values)))
    return (
        [{"epoch": e, "ixt_nats": v} for e, v in zip(epochs, values)],
        [{"epoch": e, "test_error": r} for e, r in zip(epochs, errors)],
    )


def test_seed_verdict_sees_a_fall_after_the_peak_and_its_rank_correlation():
    pts, errs = _curve([1.0, 3.0, 4.0, 3.5, 3.0, 2.5], [0.5, 0.3, 0.2, 0.15, 0.1, 0.05])
    v = verdict.seed_verdict(pts, errs)
    assert v["compresses"] and v["peak_epoch"] == 2 and v["drop_nats"] == pytest.approx(1.5)
    assert v["rho_after_peak"] == pytest.approx(1.0)
    pts, errs = _curve([1.0, 2.0, 3.0, 3.99, 4.0, 4.0], [0.5, 0.3, 0.2, 0.15, 0.1, 0.05])
    v = verdict.seed_verdict(pts, errs)
    assert not v["compresses"] and v["drop_nats"] == pytest.approx(0.0)
    pts, errs = _curve([1.0, 4.0, 3.98, 3.97, 3.96, 3.95], [0.5, 0.3, 0.2, 0.15, 0.1, 0.05])
    assert not verdict.seed_verdict(pts, errs)["compresses"]  # 0.05 nats: within the threshold


def test_infoplane12_end_to_end_writes_the_verdict(tmp_path, capsys):
    out = tmp_path / "p12"
    assert (
        main(
            [
                "infoplane12",
                "--out",
                str(out),
                "--seeds",
                "0,1",
                "--epochs",
                "20",
                "--snapshots",
                "4",
                "--rows",
                "64",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    doc = json.loads((out / "infoplane12.json").read_text())
    assert len(doc["runs"]) == 4 and {r["activation"] for r in doc["runs"]} == {"tanh", "relu"}
    assert len(doc["verdict"]) == 2 * 3 * 2  # activation x estimator x last two layers
    assert {r["layer"] for r in doc["verdict"]} == {"hidden4", "hidden5"}
    run = doc["runs"][0]
    assert set(run["plane"]) == {"binning", "kde", "noisy"} and len(run["plane"]["noisy"]) == 5
    pts = run["plane"]["binning"]["hidden1"]
    assert [p["epoch"] for p in pts] == doc["settings"]["snapshot_epochs"]
    assert all(
        0 <= p["ixt_nats"] <= math.log(4096) + 1e-9 and 0 <= p["ity_nats"] <= math.log(2) + 1e-9
        for r in doc["runs"]
        for est in r["plane"].values()
        for layer in est.values()
        for p in layer
    )
    report = (out / "report.md").read_text()
    assert "## Verdict" in report and "noise-regularised" in report and "falls after its peak" in printed
    assert "(estimator, layer, seed) cases" in report and "s of CPU time" in report
    assert (out / "figures" / "infoplane12.png").stat().st_size > 10_000
    assert doc["timings"]["total_s"] > 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--seeds", "0,0"], "--seeds"),
        (["--estimators", "mine"], "--estimators"),
        (["--epochs", "0"], "--epochs"),
        (["--activations", "sigmoid"], "--activations"),
        (["--noise-beta", "-1"], "--noise-beta"),
    ],
)
def test_infoplane12_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "p12"
    assert main(["infoplane12", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_ib12_trains_through_the_ordinary_train_command(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--models",
                "ib12_tanh",
                "--dataset",
                "ib12",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert (out / "results.json").is_file()
