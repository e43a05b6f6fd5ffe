"""``compare`` as a CI gate on the committed MNIST reference (results/quick, 10,000 test examples),
with coherent injected changes: the per-example vectors and the rates in results.json change together."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_error_line

from bench.cli import main
from bench.rundir import load_per_example, save_per_example
from bench.stats import fisher_combine, paired_seeds_p

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "quick"


@pytest.fixture
def copy_of_reference(tmp_path):
    dst = tmp_path / "new"
    shutil.copytree(REFERENCE, dst, ignore=shutil.ignore_patterns("*.png", "*.html"))
    return dst


def inject_clean(run: Path, model: str, lost: int, gained: int) -> None:
    """Flip ``lost`` correct examples to wrong and ``gained`` wrong ones to right, in the vector and the rate."""
    v = load_per_example(run, model, 0)["clean"].copy()
    right, wrong = np.flatnonzero(v), np.flatnonzero(~v)
    v[right[:lost]] = False
    v[wrong[:gained]] = True
    save_per_example(run, model, 0, "clean", torch.from_numpy(v))
    data = json.loads((run / "results.json").read_text())
    data["models"][model]["seeds"]["0"]["clean"]["error"] = float(1 - v.mean())
    (run / "results.json").write_text(json.dumps(data))


def test_a_run_compared_with_itself_passes(capsys):
    assert main(["compare", str(REFERENCE), str(REFERENCE)]) == 0
    assert "0 worse" in capsys.readouterr().out


def test_losing_15_of_10000_clean_examples_fails(copy_of_reference, capsys):
    inject_clean(copy_of_reference, "mlp", lost=15, gained=0)
    assert main(["compare", str(REFERENCE), str(copy_of_reference)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "| clean error" in line)
    assert "primary" in row and "mlp" in row and "(15 lost, 0 gained)" in row and "worse" in row
    # a practical threshold: 0.15 points is below --min-effect 0.2, so it does not fail
    assert main(["compare", str(REFERENCE), str(copy_of_reference), "--min-effect", "0.2"]) == 0


def test_balanced_flips_pass(copy_of_reference, capsys):
    inject_clean(copy_of_reference, "mlp", lost=4, gained=4)
    assert main(["compare", str(REFERENCE), str(copy_of_reference), "--all"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| clean error" in line and "| mlp" in line)
    assert "(4 lost, 4 gained)" in row and "same" in row


def test_rates_that_disagree_with_their_vectors_are_refused(copy_of_reference, capsys):
    data = json.loads((copy_of_reference / "results.json").read_text())
    data["models"]["mlp"]["seeds"]["0"]["clean"]["error"] = 0.10  # the vector still says 1.85%
    (copy_of_reference / "results.json").write_text(json.dumps(data))
    assert main(["compare", str(REFERENCE), str(copy_of_reference)]) == 2
    err = one_error_line(capsys)
    assert "disagree with the per-example vectors" in err and "mlp seed 0" in err


def test_setting_changes_are_listed_and_strict_refuses(copy_of_reference, capsys):
    data = json.loads((copy_of_reference / "results.json").read_text())
    data["models"]["dropout"]["config"]["dropout"] = 0.2
    data["run"]["train"]["epochs"] = 40
    (copy_of_reference / "results.json").write_text(json.dumps(data))
    assert main(["compare", str(REFERENCE), str(copy_of_reference)]) == 0
    out = capsys.readouterr().out
    assert "changed: recipe epochs: 20 -> 40" in out and "changed: model dropout: dropout: 0.1 -> 0.2" in out
    assert main(["compare", str(REFERENCE), str(copy_of_reference), "--strict"]) == 2
    assert "--strict" in one_error_line(capsys)


def test_json_format(copy_of_reference, capsys):
    inject_clean(copy_of_reference, "mlp", lost=15, gained=0)
    assert main(["compare", str(REFERENCE), str(copy_of_reference), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == 1 and doc["counts"]["worse"] >= 1
    worse = [r for r in doc["rows"] if r["verdict"] == "worse"]
    assert worse[0]["model"] == "mlp" and worse[0]["tier"] == "primary"


def test_seed_combination():
    # Fisher's method against a textbook value: two p = 0.05 combine to 0.0175
    assert fisher_combine([0.05, 0.05]) == pytest.approx(0.017479, abs=1e-6)
    # the same 10 flips on each of 3 seeds are stronger evidence than on 1 seed, but not pooled as 30
    one = paired_seeds_p([(10, 0)])
    three = paired_seeds_p([(10, 0)] * 3)
    assert three < one and three > paired_seeds_p([(30, 0)])
    assert paired_seeds_p([(4, 4), (3, 5)]) > 0.5
