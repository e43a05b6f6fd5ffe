"""Does a results file agree with the per-example vectors stored beside it?

Every rate a table shows (clean error, robust accuracy) is recorded twice: as a number in
``results.json`` and as a bit-packed per-example vector. ``compare`` tests the vectors and
``leaderboard`` shows the numbers, so the two must agree, or the gate and the table would disagree
silently. A vector that is absent is fine (the tests fall back to the rates); one that disagrees is not.
"""

from __future__ import annotations

from .results import CLEAN_KEY, Results


def integrity_problems(res: Results, limit: int = 5) -> list[str]:
    """Up to ``limit`` descriptions of rates that disagree with their per-example vectors."""
    problems = []
    for m in res.models():
        for e in m.done_seeds():
            vectors = e.per_example()
            if not vectors:
                continue
            clean = vectors.get(CLEAN_KEY)
            n, err = e.clean_metric("n"), e.clean_metric("error")
            if clean is not None and len(clean) == n and round((1 - err) * n) != int(clean.sum()):
                problems.append(f"{m.name} seed {e.seed_id}: clean error {100 * err:.2f}% in results.json, "
                                f"{100 * (1 - clean.mean()):.2f}% in the per-example vector")
            for r in e.records():
                v = vectors.get(r.vector_key)
                if v is None or len(v) != r.n:
                    continue
                if r.n_robust is not None and int(v.sum()) != int(r.n_robust):
                    problems.append(f"{m.name} seed {e.seed_id}: {r.attack} {r.norm} {r.eps:g} [{r.protocol}] "
                                    f"robust {r.n_robust}/{r.n} in results.json, {int(v.sum())}/{len(v)} in the "
                                    "per-example vector")
            if len(problems) >= limit:
                return problems[:limit]
    return problems
