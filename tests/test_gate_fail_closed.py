"""``compare`` fails closed (issue 17, items 5, 6 and the damaged-file case of 8), on a copy of the committed
smoke run (results/smoke: digits, 14 models, one seed, 360 test examples, 100 attacked).

Edits go through the project's own per-example reader/writer (bit-packed safetensors) and change the rates in
results.json together with the vectors, so the runs stay coherent unless a test means to break them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_error_line

from bench.cli import main
from bench.rundir import load_per_example, save_per_example
from bench.stats import paired_seeds_min_p, tarone, tarone_k

SMOKE = Path(__file__).resolve().parent.parent / "results" / "smoke"
PER_EXAMPLE = "per_example.safetensors"


@pytest.fixture
def new(tmp_path):
    dst = tmp_path / "new"
    shutil.copytree(SMOKE, dst, ignore=shutil.ignore_patterns("*.png", "*.html"))
    return dst


def edit(run: Path, fn) -> None:
    data = json.loads((run / "results.json").read_text())
    fn(data)
    (run / "results.json").write_text(json.dumps(data))


def lose_clean(run: Path, model: str, lost: int) -> None:
    """Flip ``lost`` correctly classified clean examples of ``model`` (seed 0) to wrong, vector and rate."""
    v = load_per_example(run, model, 0)["clean"].copy()
    v[np.flatnonzero(v)[:lost]] = False
    save_per_example(run, model, 0, "clean", torch.from_numpy(v))
    edit(run, lambda d: d["models"][model]["seeds"]["0"]["clean"].__setitem__("error", float(1 - v.mean())))


def row_of(out: str, *words) -> str:
    return next(line for line in out.splitlines() if all(w in line for w in words))


# ------------------------------------------------------------------------------ the multiplicity correction
def test_the_issue_case_12_lost_0_gained_fails(new, capsys):
    """Issue 17 item 6: 1.94% -> 5.28% clean error on one smoke model, McNemar p = 0.0005, used to pass."""
    lose_clean(new, "mlp", 12)
    assert main(["compare", str(SMOKE), str(new)]) == 1
    out = capsys.readouterr().out
    row = row_of(out, "| clean error", "| mlp")
    assert "(12 lost, 0 gained)" in row and "worse" in row and "1.94%" in row and "5.28%" in row
    assert "Tarone-Bonferroni over K = 1 of" in out
    # Holm over every primary row (the old default) spends its budget on rows that cannot differ: it passes
    assert main(["compare", str(SMOKE), str(new), "--correction", "holm"]) == 0


def test_tarone_counts_only_rows_that_can_reach_significance():
    # an exact two-sided McNemar on d discordant pairs cannot go below 2 * 0.5**d
    assert paired_seeds_min_p([(0, 0)]) == 1.0
    assert paired_seeds_min_p([(3, 2)]) == pytest.approx(2 * 0.5**5)
    assert paired_seeds_min_p([(0, 0), (0, 0)]) == 1.0
    # 100 rows that cannot differ and one with 12 discordant pairs: K = 1, p is not inflated
    mins = [1.0] * 100 + [2 * 0.5**12]
    assert tarone_k(mins, 0.05) == 1
    adjusted, k = tarone([1.0] * 100 + [2 * 0.5**12], mins, 0.05)
    assert k == 1 and adjusted[-1] == pytest.approx(2 * 0.5**12) and adjusted[0] == 1.0
    # many rows that could all be significant: Tarone is Bonferroni over all of them
    assert tarone_k([1e-6] * 20, 0.05) == 20
    # 4 rows with 7 discordant pairs (min p 0.0156): at K = 3, 0.05/3 = 0.0167 still admits all 4, so K = 4
    assert tarone_k([2 * 0.5**7] * 4 + [1.0] * 50, 0.05) == 4
    # a row whose min p exceeds alpha/K gets 1 whatever its p
    adjusted, k = tarone([0.03, 0.001], [0.03, 0.0001], 0.05)
    assert k == 2 and adjusted == [1.0, pytest.approx(0.002)]


# ------------------------------------------------------------------------------ failing closed
def test_a_model_missing_in_new_fails_unless_allowed(new, capsys):
    edit(new, lambda d: d["models"].pop("dropout"))
    assert main(["compare", str(SMOKE), str(new)]) == 1
    out = capsys.readouterr().out
    assert "missing" in row_of(out, "| dropout", "| model") and "FAIL" in out
    assert main(["compare", str(SMOKE), str(new), "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "skipped" in row_of(out, "| dropout", "| model") and "1 skipped" in out


def test_a_seed_missing_in_new_fails(new, capsys):
    edit(new, lambda d: d["models"]["mlp"].__setitem__("seeds", {}))
    assert main(["compare", str(SMOKE), str(new)]) == 1
    assert "absent in new" in row_of(capsys.readouterr().out, "| mlp", "| seed 0")


def test_an_attack_cell_missing_in_new_fails_whatever_its_tier(new, capsys):
    def drop(d):
        recs = d["models"]["mlp"]["seeds"]["0"]["attacks"]
        d["models"]["mlp"]["seeds"]["0"]["attacks"] = [
            r for r in recs if not (r["attack"] == "fgsm" and r["eps"] == 0.1)
        ]

    edit(new, drop)
    assert main(["compare", str(SMOKE), str(new)]) == 1  # fgsm is a secondary row, but an omission fails
    row = row_of(capsys.readouterr().out, "| mlp", "fgsm Linf 0.1")
    assert "missing" in row and "only in base" in row
    assert main(["compare", str(SMOKE), str(new), "--allow-missing"]) == 0


def test_new_without_models_fails_even_when_missing_is_allowed(new, capsys):
    edit(new, lambda d: d.__setitem__("models", {}))
    assert main(["compare", str(SMOKE), str(new), "--allow-missing"]) == 1
    assert "nothing was compared" in capsys.readouterr().out


def test_a_shorter_vector_in_new_fails(new, capsys):
    """NEW attacked fewer examples (vector and counts agree, so the run is coherent): the cell is missing."""
    key = "attack:pgd@0.3"
    short = load_per_example(new, "mlp", 0)[key][:50].copy()
    save_per_example(new, "mlp", 0, key, torch.from_numpy(short))

    def shrink(d):
        for r in d["models"]["mlp"]["seeds"]["0"]["attacks"]:
            if r["attack"] == "pgd" and r["eps"] == 0.3 and r["protocol"] == "standard" and r["norm"] == "Linf":
                r.update(n=50, n_robust=int(short.sum()), robust_acc=float(short.mean()))

    edit(new, shrink)
    assert main(["compare", str(SMOKE), str(new), "--all"]) == 1
    row = row_of(capsys.readouterr().out, "| mlp", "pgd Linf 0.3 [standard]")
    assert "missing" in row and "shorter (50 vs 100 examples)" in row


def test_a_vector_missing_in_new_fails(new, capsys):
    (new / "models" / "mlp" / "seed0" / PER_EXAMPLE).unlink()
    assert main(["compare", str(SMOKE), str(new)]) == 1
    assert "no per-example vector in new" in row_of(capsys.readouterr().out, "| mlp", "| clean error")


# ------------------------------------------------------------------------------ integrity: exit 2
def test_a_vector_whose_length_differs_from_its_count_is_refused(new, capsys):
    v = load_per_example(new, "mlp", 0)["clean"]
    save_per_example(new, "mlp", 0, "clean", torch.from_numpy(v[:300].copy()))  # results.json still says 360
    assert main(["compare", str(SMOKE), str(new)]) == 2
    err = one_error_line(capsys)
    assert "mlp seed 0" in err and "holds 300 examples" in err and "records 360" in err


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_per_example_file_is_refused_not_downgraded(new, damage, capsys):
    path = new / "models" / "dropout" / "seed0" / PER_EXAMPLE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00not safetensors" * 10)
    assert main(["compare", str(SMOKE), str(new)]) == 2
    err = one_error_line(capsys)
    assert "dropout seed 0" in err and "per-example file unreadable" in err
    # a damaged BASE is refused just the same
    assert main(["compare", str(new), str(SMOKE)]) == 2
    one_error_line(capsys)


def test_a_bare_results_file_without_the_rates_base_has_fails(tmp_path, capsys):
    """BASE as a bare results.json (no vectors: the test on rates) and NEW with the rates nulled: the rows
    BASE can test are missing in NEW, not 'not comparable'."""
    base = tmp_path / "base.json"
    shutil.copy(SMOKE / "results.json", base)
    data = json.loads(base.read_text())
    for m in data["models"].values():
        for s in m["seeds"].values():
            s["clean"]["error"] = None
    (tmp_path / "new.json").write_text(json.dumps(data))
    assert main(["compare", str(base), str(tmp_path / "new.json")]) == 1
    assert "no rate or example count in new" in capsys.readouterr().out


def test_new_cannot_move_a_row_out_of_the_gated_tier(new, capsys):
    """A NEW record marked ``leaderboard: false`` must not turn BASE's primary row into an ungated one."""
    from bench.results import Results

    rec = next(
        r
        for r in Results.load(new).model("mlp").seed(0).records()
        if r.is_worst_case and r.eps > 0 and r.get("leaderboard", True)
    )
    v = load_per_example(new, "mlp", 0)[rec.vector_key].copy()
    v[:] = False  # every robust example of the leaderboard's cell lost...
    save_per_example(new, "mlp", 0, rec.vector_key, torch.from_numpy(v))

    def worse(d):
        raw = next(
            r
            for r in d["models"]["mlp"]["seeds"]["0"]["attacks"]
            if r["attack"] == rec.attack and r["eps"] == rec.eps and r.get("protocol") == rec.protocol
        )
        raw.update(robust_acc=0.0, n_robust=0, leaderboard=False)  # ...and the record says "not the leaderboard's"

    edit(new, worse)
    assert main(["compare", str(SMOKE), str(new)]) == 1
