"""Suites load and validate; throughput timing measures what it says."""

import pytest
import torch
from conftest import one_error_line

from bench.cli import main
from bench.errors import BenchError
from bench.suite import list_suites, load_suite
from bench.timing import throughput
from models import create_model


def test_shipped_suites_load_and_name_real_models():
    from models import list_models

    assert {"smoke", "quick", "paper"} <= set(list_suites())
    for name in list_suites():
        suite = load_suite(name)
        assert list_models(suite["models"])  # every pattern matches a registered model
        assert suite["dataset"] in ("digits", "mnist", "fashion-mnist")
    smoke = load_suite("smoke")
    assert smoke["dataset"] == "digits" and list_models(smoke["models"]) == list_models()
    paper = load_suite("paper")
    assert paper["train"]["epochs"] == 200 and paper["train"]["train_split"] == "trainval" and len(paper["seeds"]) == 3


def test_user_suite_files_are_validated(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "digits"\nmodels = ["mlp"]\n[train]\nepochz = 3\n')
    with pytest.raises(BenchError, match="unknown key 'epochz'"):
        load_suite(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("dataset = \n")
    with pytest.raises(BenchError, match="not a valid suite file"):
        load_suite(str(broken))
    with pytest.raises(BenchError, match="unknown suite"):
        load_suite("nonexistent")


def test_run_with_unknown_suite_is_one_line(tmp_path, capsys):
    assert main(["run", "--suite", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "unknown suite" in one_error_line(capsys)


def test_throughput_scales_with_model_cost():
    torch.manual_seed(0)
    small = create_model("mlp", in_shape=(1, 8, 8), hidden=(16,))
    big = create_model("mlp", in_shape=(1, 8, 8), hidden=(1024, 1024))
    t_small = throughput(small, (1, 8, 8), 10, batch_sizes=(100,), min_run_time=0.05)
    t_big = throughput(big, (1, 8, 8), 10, batch_sizes=(100,), min_run_time=0.05)
    assert t_small["params"] == sum(p.numel() for p in small.parameters())
    for t in (t_small, t_big):
        s = t["inference"]["100"]
        assert s["rounds"] >= 1 and s["min"] <= s["median"] <= s["max"] and s["batch_size"] == 100
        assert t["train"]["median"] > 0 and t["machine"]["threads"] == torch.get_num_threads()
    # ~1,000x the multiply-adds must be clearly slower (a timer that measured nothing would not be)
    assert t_small["inference"]["100"]["median"] > 3 * t_big["inference"]["100"]["median"]
    assert t_small["train"]["median"] > 3 * t_big["train"]["median"]


def test_suite_overrides_shared_and_per_model(digits):
    from bench.suite import suite_overrides

    suite = load_suite("smoke")
    per_model = suite_overrides(suite, ["mlp", "vib_beta1e-3", "vib_k2_beta1e-3"], digits)
    assert per_model["mlp"] == {"hidden": [64, 64]}
    assert per_model["vib_beta1e-3"] == {"hidden": [64, 64], "k": 16}
    assert per_model["vib_k2_beta1e-3"] == {"hidden": [64, 64], "k": 2}
    with pytest.raises(BenchError, match="does not run"):
        suite_overrides(suite, ["mlp", "vib_beta1e-3"], digits)
