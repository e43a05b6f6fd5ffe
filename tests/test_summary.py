"""The report's summary: sentences generated from the results, with intervals, paired tests and what the run
could not check (bench.reporting.summary)."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import golden_data

from bench.protocol import FLAGS
from bench.reporting.summary import attack_gaps, provenance, summarize
from bench.results import CLEAN_KEY, FORMAT, SCHEMA, Results, per_example_key
from bench.rundir import save_per_example
from bench.stats import mcnemar_p, wilson_interval

N = 200


def texts(findings, topic):
    return [" ".join((f.text, *f.items)) for f in findings if f.topic == topic]


def make_run(tmp_path, models: dict, attacks=("pgd", "apgd_t", "square"), gaps=None, seeds=(0,)) -> Results:
    """A run of ``models`` {name: {"beta": b, "clean": vec, "worst": {eps: vec}}} with per-example vectors."""
    run = {
        "dataset": {"name": "digits", "n_test": N, "checksum": "sha256:x"},
        "train": {"epochs": 1},
        "models": {m: {} for m in models},
        "seeds": list(seeds),
        "plugins": [],
        "suite": {"name": "unit"},
    }
    env = {"git": {"commit": "a" * 40, "dirty": False}}
    raw = {
        "schema": SCHEMA,
        "format": FORMAT,
        "run": run,
        "environment": env,
        "environments": {"train": env, "attack": env},
        "models": {},
    }
    for name, spec in models.items():
        config = {"beta": spec["beta"]} if "beta" in spec else {}
        entry = {}
        for seed in seeds:
            recs = []
            for eps, vec in spec["worst"].items():
                acc = float(np.mean(vec))
                for a in attacks:
                    recs.append(
                        {
                            "attack": a,
                            "norm": "Linf",
                            "eps": eps,
                            "protocol": "standard",
                            "robust_acc": acc,
                            "n": N,
                            "checks": {},
                        }
                    )
                wc = {
                    "attack": "worst_case",
                    "norm": "Linf",
                    "eps": eps,
                    "protocol": "standard",
                    "robust_acc": acc,
                    "n": N,
                    "leaderboard": True,
                    "checks": {},
                }
                if gaps is not None:
                    wc["attack_set_gaps"] = gaps
                recs.append(wc)
            entry[str(seed)] = {
                "train": {"state": "done"},
                "clean": {"error": 1 - float(np.mean(spec["clean"])), "n": N, "nll": 0.1, "ece": 0.01},
                "attacks": recs,
            }
        raw["models"][name] = {"config": config, "stochastic": False, "seeds": entry}
    d = tmp_path / "run"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(raw))
    for name, spec in models.items():
        for seed in seeds:
            save_per_example(d, name, seed, CLEAN_KEY, torch.tensor(spec["clean"]))
            for eps, vec in spec["worst"].items():
                for key in [
                    per_example_key("worst_case", "Linf", eps, "standard"),
                    *(per_example_key(a, "Linf", eps) for a in attacks),
                ]:
                    save_per_example(d, name, seed, key, torch.tensor(vec))
    return Results.load(d)


def vec(ones: range | list, n: int = N) -> list[bool]:
    v = [False] * n
    for i in ones:
        v[i] = True
    return v


@pytest.fixture
def run(tmp_path):
    # mlp: 150 clean right, robust on the first 60 at 0.1; vib: robust on the first 110 (a superset): 50 gained
    return make_run(
        tmp_path,
        {
            "mlp": {"clean": vec(range(150)), "worst": {0.1: vec(range(60)), 0.3: vec([0, 1])}},
            "vib_beta1e-3": {"beta": 1e-3, "clean": vec(range(148)), "worst": {0.1: vec(range(110)), 0.3: vec([0])}},
            "dropout": {"clean": vec(range(149)), "worst": {0.1: vec(range(100)), 0.3: vec([])}},
        },
    )


def test_most_robust_is_named_with_its_interval_and_a_paired_test(run):
    [text] = texts(summarize(run), "most_robust")
    lo, hi = wilson_interval(110, N)
    p = mcnemar_p(10, 0)  # vib vs dropout: 10 examples only vib keeps, none the reverse
    assert text.startswith(
        "At L-inf eps 0.1 the most robust model is vib_beta1e-3: it keeps 55.0% "
        f"[95% CI {100 * lo:.1f}–{100 * hi:.1f}%, n = 200], significantly more than the runner-up "
        "dropout (50.0%; McNemar exact, p = "
    )
    assert f"p = {p:.2g}" in text


def test_a_tie_is_called_a_tie(tmp_path):
    res = make_run(
        tmp_path,
        {
            "mlp": {"clean": vec(range(150)), "worst": {0.1: vec(range(60))}},
            "dropout": {"clean": vec(range(150)), "worst": {0.1: vec(range(1, 62))}},  # 2 gained, 1 lost
        },
    )
    [text] = texts(summarize(res), "most_robust")
    assert "no model" in text and "significantly" in text and f"p = {mcnemar_p(2, 1):.2g}" in text


def test_nothing_robust_names_the_eps_and_the_best_there(run, tmp_path):
    [text] = texts(summarize(run), "nothing_robust")
    lo, hi = wilson_interval(2, N)
    assert text == (
        f"Nothing is robust at L-inf eps ≥ 0.3: no model keeps more than 1.0% of the attacked examples "
        f"under the worst case (highest: mlp at eps 0.3 with 1.0% [95% CI {100 * lo:.1f}–{100 * hi:.1f}%, "
        "n = 200])."
    )
    robust = make_run(tmp_path / "robust", {"mlp": {"clean": vec(range(150)), "worst": {0.3: vec(range(30))}}})
    [text] = texts(summarize(robust), "nothing_robust")
    assert text.startswith("Even at the largest L-inf eps attacked (0.3) the most robust model, mlp, keeps 15.0%")


def test_every_vib_model_against_the_mlp(run):
    [text] = texts(summarize(run), "vs_baseline")
    assert "vib_beta1e-3 (beta 0.001): clean error 26.00% vs 25.00% (+1.00 points, no significant difference" in text
    assert (
        f"worst-case robust accuracy at eps 0.1 55.0% vs 30.0% (+25.0 points, significantly higher; "
        f"McNemar exact, p = {mcnemar_p(50, 0):.1e})"
    ) in text
    assert "dropout" not in text  # not a VIB model
    assert "not corrected for the 2 comparisons" in text  # the two it made: clean and eps 0.1


def test_without_an_mlp_the_comparison_says_so(tmp_path):
    res = make_run(tmp_path, {"vib_beta1e-3": {"beta": 1e-3, "clean": vec(range(150)), "worst": {0.1: vec([])}}})
    [text] = texts(summarize(res), "vs_baseline")
    assert "No plain mlp" in text


def test_a_complete_attack_set_leaves_nothing_unchecked_but_the_seed(run):
    found = summarize(run)
    assert texts(found, "flags") == ["None of the sanity checks that ran raised a flag."]
    [un] = [f for f in found if f.topic == "unchecked"]
    assert un.items == (
        "One seed per model: intervals and tests cover the sampling of test examples, not the "
        "variation between training runs.",
    )


def test_a_weak_attack_set_is_reported_as_unchecked(tmp_path):
    res = make_run(
        tmp_path, {"mlp": {"clean": vec(range(150)), "worst": {0.1: vec(range(60))}}}, attacks=("fgsm", "pgd")
    )
    found = summarize(res)
    assert texts(found, "flags") == [
        "None of the sanity checks that ran raised a flag (but see below for what could not be checked)."
    ]
    [un] = texts(found, "unchecked")
    assert "No gradient-free attack" in un and "masking? check could not fire (every attacked model)" in un
    assert "No margin or DLR-loss attack" in un
    # what the attack stage stored wins over what the attacks' names suggest
    res = make_run(
        tmp_path / "stored",
        {"mlp": {"clean": vec(range(150)), "worst": {0.1: vec(range(60))}}},
        attacks=("fgsm", "pgd"),
        gaps=["no margin or DLR-loss gradient attack"],
    )
    assert attack_gaps(res) == {"no margin or DLR-loss gradient attack": ["mlp"]}


def test_flags_that_fired_are_explained_from_the_table():
    golden = Results(golden_data())
    found = summarize(golden)
    [fired] = [f for f in found if f.topic == "flags" and f.level == "warning"]
    assert fired.text == "1 sanity-check flag fired:"
    assert fired.items == (f"masking? (vib_beta1e-3): {FLAGS['gradient_free_stronger'].text}",)
    # the golden run predates attack_set_gaps: derived from the attacks that ran (only vib_beta1e-3 had Square)
    assert attack_gaps(golden)["no gradient-free attack, so masked gradients could not be detected"] == [
        "mlp",
        "dropout",
        "vib_beta1e-2",
    ]


def test_an_unattacked_run_says_so():
    data = golden_data()
    for m in data["models"].values():
        for e in m["seeds"].values():
            e.pop("attacks", None)
            e.pop("attack_checks", None)
    found = summarize(Results(data))
    assert [f.topic for f in found] == ["scope", "vs_baseline", "unchecked"]
    assert "No model was attacked" in texts(found, "unchecked")[0]
    assert "Robust accuracy" not in texts(found, "scope")[0]  # nothing was attacked
    n_vib = sum(1 for m in data["models"].values() if m.get("config", {}).get("beta"))
    assert f"not corrected for the {n_vib} comparisons" in texts(found, "vs_baseline")[0]  # clean error only
    # a claims run attacked its models in the claims check only: the summary points there, not to "not measured"
    data["claims"] = {"setup": {}, "rows": [{"id": "a", "verdict": "reproduced"}]}
    [un] = texts(summarize(Results(data)), "unchecked")
    assert "only in the claims table" in un and "No model was attacked" not in un


def test_provenance():
    data = golden_data()
    assert provenance(Results(data)) == []  # one commit, clean tree
    changed = copy.deepcopy(data)
    changed["environments"]["attack"]["git"] = {"commit": "b" * 40, "dirty": True}
    warnings = provenance(Results(changed))
    assert warnings[0] == (
        "The stages ran at different commits (train at 0123456; attack at bbbbbbb): numbers from "
        "different stages may come from different code."
    )
    assert warnings[1].startswith("Attack ran on a dirty tree")
