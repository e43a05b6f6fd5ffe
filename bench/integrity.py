"""Does a results file agree with the per-example vectors stored beside it?

Every rate a table shows (clean error, robust accuracy) is recorded twice: as a number in
``results.json`` and as a bit-packed per-example vector. ``compare`` tests the vectors and
``leaderboard`` shows the numbers, so the two must agree, or the gate and the table would disagree
silently. A vector that is absent is fine (the tests fall back to the rates, or the gate reports
the cell as missing); one that disagrees is not: a vector whose length differs from the recorded
count, whose count of correct examples differs from the recorded rate, or a per-example file that
cannot be read at all (truncated, not safetensors) is a problem, and ``compare`` refuses the run
(exit 2) rather than quietly downgrading the paired test to a test on rates.
"""

from __future__ import annotations

from .results import CLEAN_KEY, Results
from .rundir import load_per_example


def _vectors(res: Results, model: str, seed: str) -> tuple[dict, str | None]:
    """The stored vectors of one model-seed and, when the file cannot be read, why."""
    if not res.path:
        return {}, None
    try:
        return load_per_example(res.run_dir, model, int(seed)), None
    except Exception as e:  # noqa: BLE001 - any failure to read the file is reported, with its reason
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        return {}, f"per-example file unreadable ({type(e).__name__}: {reason})"


def integrity_problems(res: Results, limit: int = 5) -> list[str]:
    """Up to ``limit`` descriptions of damaged per-example files and of vectors that disagree with the rates."""
    problems = []
    for m in res.models():
        for e in m.done_seeds():
            where = f"{m.name} seed {e.seed_id}"
            vectors, damage = _vectors(res, m.name, e.seed_id)
            if damage:
                problems.append(f"{where}: {damage}")
            if not vectors:
                continue
            clean = vectors.get(CLEAN_KEY)
            n, err = e.clean_metric("n"), e.clean_metric("error")
            if clean is not None and n == n and len(clean) != n:
                problems.append(
                    f"{where}: the clean per-example vector holds {len(clean)} examples, results.json records {n:g}"
                )
            elif clean is not None and len(clean) == n and round((1 - err) * n) != int(clean.sum()):
                problems.append(
                    f"{where}: clean error {100 * err:.2f}% in results.json, "
                    f"{100 * (1 - clean.mean()):.2f}% in the per-example vector"
                )
            for r in e.records():
                v = vectors.get(r.vector_key)
                if v is None:
                    continue
                cell = f"{r.attack} {r.norm} {r.eps:g} [{r.protocol}]"
                if r.n is not None and len(v) != r.n:
                    problems.append(
                        f"{where}: {cell} per-example vector holds {len(v)} examples, results.json records {r.n}"
                    )
                elif r.n_robust is not None and int(v.sum()) != int(r.n_robust):
                    problems.append(
                        f"{where}: {cell} robust {r.n_robust}/{r.n} in results.json, "
                        f"{int(v.sum())}/{len(v)} in the per-example vector"
                    )
            if len(problems) >= limit:
                return problems[:limit]
    return problems
