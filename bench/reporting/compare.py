"""``vib-bench compare``: regression tracking between two runs (a CI gate).

compare BASE NEW
    Model by model, metric by metric, over the seeds both runs finished:

    * clean error and robust accuracy: both runs classify the same test examples, so the test is
      paired: McNemar's exact test on the examples that flipped. With several matched seeds the
      per-seed exact tests are combined with Fisher's method (flips are not pooled across seeds as if
      they were independent). Without per-example vectors (a bare results file) it falls back to a
      two-proportion z-test on the recorded rates and says so.
    * the **primary family** is, per model, the clean error and the leaderboard worst case at each eps
      (and a model that trained in BASE and failed in NEW), and only it gates by default. Its
      multiplicity correction is Tarone's for discrete tests (``correction="tarone"``, the default):
      a row whose exact test cannot reach ``alpha / K`` whatever the outcome (an exact McNemar test on
      ``d`` discordant pairs cannot go below ``2 * 0.5 ** d``; identical vectors cannot go below 1)
      does not share the budget, and Bonferroni applies over the K rows that could (``holm``: Holm
      over every row of the family, the older and much weaker choice). Every other row (single
      attacks, per-protocol worst cases) is secondary: reported with Benjamini-Hochberg q-values,
      gating only with ``--fail-on all``.
    * the gate **fails closed**: a model, a finished seed, the clean row or an attack cell of BASE that
      NEW lacks, or whose per-example vector in NEW is missing or shorter, is a ``missing`` row that
      fails (exit 1) unless ``allow_missing`` reports it as ``skipped``. NEW holding no model at all
      always fails.
    * ``min_effect``: a significant change smaller than this many percentage points does not count.
    * throughput: a relative threshold on the median (``--throughput-threshold``, default 10%),
      only between like machines (same CPU, threads and device name); otherwise "not comparable".

    Exit status: 0 when nothing in the ``--fail-on`` tiers got significantly worse and nothing is
    missing, 1 when something did or is, 2 on bad input (unreadable file, different test sets, a
    per-example file that cannot be read or whose vectors disagree with the rates or counts of
    results.json: bench.integrity).
"""

from __future__ import annotations

import math

import numpy as np

from ..env import machine_key
from ..errors import BenchError
from ..results import CLEAN_KEY, ModelResult, Results, per_example_key
from ..stats import paired_seeds_min_p, paired_seeds_p, two_proportion_test
from .gate import decide

FAMILIES = ("clean", "robust", "throughput")
TABLE_FORMATS = ("github", "simple", "csv", "latex", "html")
THROUGHPUT_METRICS = (("inference", "1"), ("inference", "100"), ("inference", "1000"), ("train", None))


# ------------------------------------------------------------------------------------ compare
def check_same_dataset(base: Results, new: Results) -> None:
    a, b = base.dataset, new.dataset
    if a.get("checksum") and b.get("checksum"):
        same = a["checksum"] == b["checksum"]
    else:
        same = (a.get("name"), a.get("n_test")) == (b.get("name"), b.get("n_test"))
    if not same:
        raise BenchError(
            f"different datasets: {base.path} used {a.get('name')} ({a.get('checksum', 'no checksum')}), "
            f"{new.path} used {b.get('name')} ({b.get('checksum', 'no checksum')}); "
            "compare only runs evaluated on the same test set"
        )


def _row(
    family, model, metric, base, new, *, kind, test="", p=math.nan, verdict="same", note="", tier="secondary"
) -> dict:
    tier = "throughput" if family == "throughput" else tier
    return {
        "family": family,
        "tier": tier,
        "model": model,
        "metric": metric,
        "base": base,
        "new": new,
        "kind": kind,
        "test": test,
        "p": p,
        "min_p": math.nan,
        "p_adj": math.nan,
        "verdict": verdict,
        "note": note,
    }


def _missing(family, model, metric, note, tier="primary") -> dict:
    """A row BASE has and NEW lacks: a failure unless the user allows missing rows (then "skipped")."""
    return _row(family, model, metric, math.nan, math.nan, kind="text", verdict="missing", note=note, tier=tier)


class _Missing(str):
    """Why a paired test cannot run although BASE holds the data (NEW lacks or shortens a vector)."""


def _paired(base: Results, new: Results, model: str, seeds: list[str], key: str):
    """Per-seed discordant counts [(b, c)], n, base_acc, new_acc over matched seeds.

    None when BASE has no vector for a seed (the rates are compared instead); a :class:`_Missing`
    reason when BASE has one and NEW's is absent or shorter (the gate fails closed)."""
    pairs, n, kb, kn = [], 0, 0, 0
    prefix = None
    fallback = False
    for s in seeds:
        vb, vn = base.per_example(model, s).get(key), new.per_example(model, s).get(key)
        if vb is None:
            fallback = True
            continue
        if vn is None:
            return _Missing(f"seed {s}: no per-example vector in new (base has {len(vb)} examples)")
        if len(vn) < len(vb):
            return _Missing(f"seed {s}: new per-example vector is shorter ({len(vn)} vs {len(vb)} examples)")
        m = len(vb)
        if len(vn) != m:
            prefix = m
        vb, vn = np.asarray(vb[:m], bool), np.asarray(vn[:m], bool)
        pairs.append((int(np.sum(vb & ~vn)), int(np.sum(~vb & vn))))
        n += m
        kb += int(vb.sum())
        kn += int(vn.sum())
    if fallback or n == 0:
        return None
    return pairs, n, kb / n, kn / n, prefix


def _proportion_row(family, model, metric, base, new, seeds, key, lower_is_better, fallback, tier="secondary") -> dict:
    """A clean-error / robust-accuracy row: McNemar on the vectors, else a two-proportion test.

    ``fallback`` is ``(base_rate, base_n, new_rate, new_n)`` from the results file, where the rate
    is an accuracy (fraction correct) pooled over the matched seeds.
    """
    pair = _paired(base, new, model, seeds, key)
    min_p = 0.0  # a test on rates is not discrete: always counted by Tarone's adjustment
    if isinstance(pair, _Missing):
        return _missing(family, model, metric, str(pair), tier=tier)
    if pair is not None:
        pairs, n, acc_b, acc_n, prefix = pair
        b, c = sum(x for x, _ in pairs), sum(y for _, y in pairs)
        p = paired_seeds_p(pairs)
        min_p = paired_seeds_min_p(pairs)
        test = (
            f"McNemar exact ({b} lost, {c} gained)"
            if len(pairs) == 1
            else f"McNemar per seed, Fisher over {len(pairs)} seeds ({b} lost, {c} gained)"
        )
        note = f"paired on the first {prefix} examples" if prefix else ""
    else:
        acc_b, nb, acc_n, nn = fallback
        if nb and math.isfinite(acc_b) and not (nn and math.isfinite(acc_n)):  # BASE has the number, NEW not
            return _missing(family, model, metric, "no rate or example count in new", tier=tier)
        if not (nb and nn and math.isfinite(acc_b) and math.isfinite(acc_n)):
            return _row(
                family,
                model,
                metric,
                math.nan,
                math.nan,
                kind="proportion",
                verdict="not comparable",
                note="no example counts recorded",
                tier=tier,
            )
        p = two_proportion_test(acc_b * nb, nb, acc_n * nn, nn)
        test = "two-proportion z (no per-example data)"
        note = ""
    vb, vn = (1 - acc_b, 1 - acc_n) if lower_is_better else (acc_b, acc_n)
    row = _row(
        family,
        model,
        metric,
        vb,
        vn,
        kind="error" if lower_is_better else "accuracy",
        test=test,
        p=p,
        note=note,
        tier=tier,
    )
    row["lower_is_better"] = lower_is_better
    row["min_p"] = min_p
    return row


def _seed_order(s: str):
    return (0, int(s)) if s.isdigit() else (1, s)


def _matched_seeds(mb: ModelResult, mn: ModelResult) -> tuple[list[str], list[str], list[str]]:
    sb = {s.seed_id for s in mb.done_seeds()}
    sn = {s.seed_id for s in mn.done_seeds()}
    return (sorted(sb & sn, key=_seed_order), sorted(sb - sn, key=_seed_order), sorted(sn - sb, key=_seed_order))


def _clean_rows(
    base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult, seeds: list[str]
) -> list[dict]:
    def pooled(m: ModelResult):
        k = n = 0.0
        for s in seeds:
            e = m.seed(s)
            err, cnt = e.clean_metric("error"), e.clean_metric("n")
            if cnt and math.isfinite(cnt) and math.isfinite(err):
                k += (1 - err) * cnt
                n += cnt
        return (k / n if n else math.nan), int(n)

    (ab, nb), (an, nn) = pooled(mb), pooled(mn)
    return [
        _proportion_row(
            "clean", model, "clean error", base, new, seeds, CLEAN_KEY, True, (ab, nb, an, nn), tier="primary"
        )
    ]


def _robust_rows(
    base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult, seeds: list[str]
) -> list[dict]:
    def cells(m: ModelResult):
        per_seed = [{r.key: r for r in m.seed(s).records()} for s in seeds]
        common = set.intersection(*(set(c) for c in per_seed)) if per_seed else set()
        return per_seed, common

    pb, cb = cells(mb)
    pn, cn = cells(mn)
    if not cb or not cn:
        if not (cb or cn):
            return []
        if not cn:
            return [_missing("robust", model, "attacks", f"no attack results in new (seeds {','.join(seeds)})")]
        return [
            _row(
                "robust",
                model,
                "attacks",
                math.nan,
                math.nan,
                kind="text",
                verdict="not comparable",
                note=f"no attack results in base (seeds {','.join(seeds)})",
            )
        ]
    rows = []
    for key in sorted(
        cb | cn, key=lambda k: (k.norm != "Linf", k.attack == "worst_case", str(k.attack), k.eps, str(k.protocol))
    ):
        attack, norm, eps, protocol = key
        metric = f"{attack} {norm} {eps:g} [{protocol}]"
        if (
            key in cb
            and key in cn
            and {bool(c[key].get("cascade")) for c in pb} != {bool(c[key].get("cascade")) for c in pn}
        ):
            rows.append(
                _row(
                    "robust",
                    model,
                    metric,
                    math.nan,
                    math.nan,
                    kind="accuracy",
                    verdict="not comparable",
                    note="standalone in one run, in the cascade (worst case so far) in the other",
                )
            )
            continue
        if key not in cn:
            lead = all(c[key].leaderboard for c in pb)
            rows.append(_missing("robust", model, metric, "only in base", tier="primary" if lead else "secondary"))
            continue
        if key not in cb:
            rows.append(
                _row(
                    "robust",
                    model,
                    metric,
                    math.nan,
                    math.nan,
                    kind="accuracy",
                    verdict="not comparable",
                    note="only in new",
                )
            )
            continue

        def pooled(per_seed):
            k = n = 0.0
            for c in per_seed:
                r = c[key]
                if r.n:
                    k += r.robust_acc * r.n
                    n += r.n
            return (k / n if n else math.nan), int(n)

        (ab, nb), (an, nn) = pooled(pb), pooled(pn)
        lead = all(c[key].leaderboard for c in pb)  # BASE decides whether a row gates, never NEW
        row = _proportion_row(
            "robust",
            model,
            metric,
            base,
            new,
            seeds,
            per_example_key(*key),
            False,
            (ab, nb, an, nn),
            tier="primary" if lead else "secondary",
        )
        cfg_b = [c[key].budget for c in pb]
        cfg_n = [c[key].budget for c in pn]
        if cfg_b != cfg_n:
            row["note"] = "; ".join(x for x in (row["note"], "attack budget differs") if x)
        rows.append(row)
    return rows


def _throughput(m: ModelResult):
    """(machine dict, {metric: median ex/s}) from the seeds that were timed."""
    timed = [s for s in m.seeds() if s.throughput]
    if not timed:
        return None, {}
    out = {}
    for part, bs in THROUGHPUT_METRICS:
        vals = [v for v in (t.throughput_median(part, bs) for t in timed) if math.isfinite(v)]
        if vals:
            label = f"{part} ex/s @{bs or (timed[0].throughput.get(part) or {}).get('batch_size', 100)}"
            out[label] = float(np.median(vals))
    return timed[0].machine, out


def _machine(mach: dict, run: Results) -> tuple:
    return machine_key(mach or run.environment("train"))


def _throughput_rows(
    base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult, threshold: float
) -> list[dict]:
    mach_b, tb = _throughput(mb)
    mach_n, tn = _throughput(mn)
    if not tb or not tn:
        if not (tb or tn):
            return []
        if not tn:
            return [_missing("throughput", model, "throughput", "not timed in new")]
        return [
            _row(
                "throughput",
                model,
                "throughput",
                math.nan,
                math.nan,
                kind="text",
                verdict="not comparable",
                note="not timed in base",
            )
        ]
    rows = []
    same_machine = _machine(mach_b, base) == _machine(mach_n, new)
    for metric in sorted(set(tb) | set(tn)):
        vb, vn = tb.get(metric, math.nan), tn.get(metric, math.nan)
        if metric not in tn:
            rows.append(_missing("throughput", model, metric, "only in base"))
        elif metric not in tb:
            rows.append(
                _row("throughput", model, metric, vb, vn, kind="rate", verdict="not comparable", note="only in new")
            )
        elif not same_machine:
            a, b = _machine(mach_b, base), _machine(mach_n, new)
            diff = [f"{name} {x} vs {y}" for name, x, y in zip(("cpu", "threads", "device"), a, b) if x != y]
            rows.append(
                _row(
                    "throughput",
                    model,
                    metric,
                    vb,
                    vn,
                    kind="rate",
                    test=f"±{threshold:.0%} rule",
                    verdict="not comparable",
                    note="machines differ: " + ", ".join(diff),
                )
            )
        else:
            rel = vn / vb - 1 if vb else math.nan
            verdict = "same"
            if math.isfinite(rel) and abs(rel) > threshold:
                verdict = "better" if rel > 0 else "worse"
            rows.append(
                _row("throughput", model, metric, vb, vn, kind="rate", test=f"±{threshold:.0%} rule", verdict=verdict)
            )
    return rows


def compare_runs(
    base: Results,
    new: Results,
    *,
    alpha: float = 0.05,
    throughput_threshold: float = 0.1,
    correction: str = "tarone",
    min_effect: float = 0.0,
    allow_missing: bool = False,
) -> list[dict]:
    """Every difference between two runs, as rows (natural units); see the module docstring."""
    check_same_dataset(base, new)
    rows: list[dict] = []
    models = base.model_names() + [m for m in new.model_names() if m not in base.model_names()]
    for model in models:
        mb, mn = base.model(model), new.model(model)
        if mn is None:
            rows.append(_missing("clean", model, "model", "only in base"))
            continue
        if mb is None:
            rows.append(
                _row(
                    "clean",
                    model,
                    "model",
                    math.nan,
                    math.nan,
                    kind="text",
                    verdict="not comparable",
                    note="only in new",
                )
            )
            continue
        seeds, only_b, only_n = _matched_seeds(mb, mn)
        failed = [s for s in only_b if mn.seed(s) is not None and mn.seed(s).train.get("state") not in (None, "done")]
        for s in failed:
            t = mn.seed(s).train
            err = " ".join(str(t.get("error") or "").split())[:100]
            rows.append(
                _row(
                    "clean",
                    model,
                    f"training seed {s}",
                    "done",
                    str(t.get("state")),
                    kind="text",
                    test="trained in base",
                    verdict="worse",
                    note=err,
                    tier="primary",
                )
            )
        for s in only_b:
            if s not in failed:
                state = mn.seed(s).train.get("state") if mn.seed(s) is not None else None
                rows.append(
                    _missing(
                        "clean",
                        model,
                        f"seed {s}",
                        "finished in base, " + (f"{state} in new" if state else "absent in new"),
                    )
                )
        if not seeds:
            if not only_b:
                rows.append(
                    _row(
                        "clean",
                        model,
                        "clean error",
                        math.nan,
                        math.nan,
                        kind="text",
                        verdict="not comparable",
                        note="no seed finished in either run",
                    )
                )
            rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))
            continue
        unmatched = [s for s in only_b + only_n if s not in failed]
        new_rows = _clean_rows(base, new, model, mb, mn, seeds) + _robust_rows(base, new, model, mb, mn, seeds)
        if mb.config != mn.config:
            changed = sorted(k for k in set(mb.config) | set(mn.config) if mb.config.get(k) != mn.config.get(k))
            new_rows[0]["note"] = "; ".join(
                x for x in (new_rows[0]["note"], f"config differs: {', '.join(changed)}") if x
            )
        if unmatched:
            for r in new_rows:
                r["note"] = "; ".join(x for x in (r["note"], f"seeds {','.join(seeds)} only") if x)
        rows.extend(new_rows)
        rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))

    if allow_missing:
        for r in rows:
            if r["verdict"] == "missing":
                r["verdict"] = "skipped"
    decide(rows, alpha, correction, min_effect)
    return rows
