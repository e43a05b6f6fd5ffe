"""How often does the ``compare`` gate fail when nothing changed? (issue 17, item 6)

Compares a committed run (default results/smoke) with

  (a) an identical copy of itself (deterministic: one comparison says it all), and
  (b) ``--n`` noise-only copies: in every per-example vector (clean and each attack cell) each
      correctly classified example flips to wrong with probability lam / #correct and each wrong one to
      right with probability lam / #wrong, lam = ``--flip`` * n / 2 (capped at half of either group),
      so that lost and gained examples have the same expectation and the marginal accuracy does not
      change. The rates in results.json are rewritten to match the vectors, as a real run would have them.
      The noisy copies live in memory (``InMemoryRun``); the gate is ``compare_runs`` + ``exit_status``,
      as the command runs them.

and prints the fraction of comparisons that fail the default gate (``--fail-on primary``) under each
multiplicity correction (tarone, the default; holm; none), plus the same for the 12-lost regression of the
issue, measured in the same run. The gate's family-wise error rate is meant to stay at or below alpha.

    python benchmarks/gate_false_positives.py [--run results/smoke] [--n 200] [--flip 0.02,0.1] [--seed 0]
                                              [--out benchmarks/results/gate_false_positives.json]

``--out`` also writes the counts as JSON (the committed file is what docs/comparing-runs.md quotes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.reporting.compare import compare_runs  # noqa: E402
from bench.reporting.gate import CORRECTIONS, exit_status  # noqa: E402
from bench.results import CLEAN_KEY, Results  # noqa: E402


def noisy(v: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    """``v`` with symmetric random flips: lost and gained have the same expected count."""
    right, wrong = np.flatnonzero(v), np.flatnonzero(~v)
    lam = min(flip * v.size / 2, right.size / 2, wrong.size / 2)
    out = v.copy()
    if lam <= 0:
        return out
    out[right[rng.random(right.size) < lam / right.size]] = False
    out[wrong[rng.random(wrong.size) < lam / wrong.size]] = True
    return out


class InMemoryRun(Results):
    """A run whose per-example vectors live in memory (the benchmark writes nothing to disk)."""

    def __init__(self, raw: dict, path: Path, vectors: dict):
        super().__init__(raw, path)
        self.vectors = vectors

    def per_example(self, model: str, seed) -> dict:
        return self.vectors.get((model, str(seed)), {})


def all_vectors(run: Results) -> dict:
    return {(m.name, e.seed_id): run.per_example(m.name, e.seed_id) for m in run.models() for e in m.done_seeds()}


def copy_with(run: Results, vectors: dict) -> InMemoryRun:
    """A copy of ``run`` holding ``vectors``, with the rates in results.json rewritten to match them."""
    new = InMemoryRun(json.loads(json.dumps(run.raw)), run.path, vectors)
    for m in new.models():
        for e in m.done_seeds():
            vs = vectors.get((m.name, e.seed_id), {})
            if CLEAN_KEY in vs:
                e.clean["error"] = float(1 - vs[CLEAN_KEY].mean())
            for r in e.records():
                v = vs.get(r.vector_key)
                if v is not None:
                    r["n_robust"], r["robust_acc"] = int(v.sum()), float(v.mean())
    return new


def noisy_copy(run: Results, vectors: dict, flip: float, rng: np.random.Generator) -> InMemoryRun:
    return copy_with(run, {ms: {k: noisy(v, flip, rng) for k, v in vs.items()} for ms, vs in vectors.items()})


def regressed_copy(run: Results, vectors: dict, model: str, lost: int) -> InMemoryRun:
    """The issue's case: ``lost`` correct clean examples of ``model`` (first seed) turned wrong."""
    seed = run.model(model).done_seeds()[0].seed_id
    out = {ms: dict(vs) for ms, vs in vectors.items()}
    v = out[(model, seed)][CLEAN_KEY].copy()
    v[np.flatnonzero(v)[:lost]] = False
    out[(model, seed)][CLEAN_KEY] = v
    return copy_with(run, out)


def gate(base: Results, new: Results) -> dict[str, int]:
    """Exit status of the default gate (--fail-on primary) under each correction."""
    return {c: exit_status(compare_runs(base, new, correction=c), ["primary"]) for c in CORRECTIONS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=str(Path(__file__).resolve().parent.parent / "results" / "smoke"))
    ap.add_argument("--n", type=int, default=200, help="noise-only comparisons (default 200)")
    ap.add_argument(
        "--flip",
        default="0.02,0.1",
        help="expected fractions of examples that flip, comma-separated (default 0.02,0.1)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, metavar="FILE.json", help="also write the counts here")
    args = ap.parse_args(argv)
    flips = [float(f) for f in args.flip.split(",") if f.strip()]
    src = Path(args.run)
    base = Results.load(src)
    rng = np.random.default_rng(args.seed)
    print(
        f"run: {src} ({len(base.model_names())} models, {sum(1 for _ in base.iter_seeds())} model-seeds); "
        "alpha 0.05, --fail-on primary"
    )
    t0 = time.perf_counter()
    vectors = all_vectors(base)
    doc = {
        "command": "python benchmarks/gate_false_positives.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "run": src.name,
        "alpha": 0.05,
        "fail_on": "primary",
        "seed": args.seed,
    }
    same = gate(base, copy_with(base, vectors))
    doc["identical"] = {"comparisons": 1, "fails": same}
    print("identical copy (deterministic, 1 comparison): " + ", ".join(f"{c} fails {s}/1" for c, s in same.items()))
    doc["noise"] = []
    for flip in flips:
        fails = {c: 0 for c in CORRECTIONS}
        for _ in range(args.n):
            for c, s in gate(base, noisy_copy(base, vectors, flip, rng)).items():
                fails[c] += s
        doc["noise"].append(
            {"flip": flip, "comparisons": args.n, "fails": fails, "rate": {c: k / args.n for c, k in fails.items()}}
        )
        print(
            f"noise only (symmetric flips, expected {flip:.0%} of examples, {args.n} comparisons): "
            + ", ".join(f"{c} fails {k}/{args.n} = {k / args.n:.3f}" for c, k in fails.items())
        )
    model = "mlp" if "mlp" in base.model_names() else base.model_names()[0]
    reg = gate(base, regressed_copy(base, vectors, model, 12))
    doc["regression_12_lost"] = {"model": model, "comparisons": 1, "fails": reg}
    print(
        f"regression (12 lost, 0 gained clean examples of {model}): "
        + ", ".join(f"{c} fails {s}/1" for c, s in reg.items())
    )
    if args.out:
        from bench.io import atomic_write_json

        atomic_write_json(args.out, doc)
        print(f"wrote {args.out}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
