"""``vib-bench compare``: regression tracking between two runs (a CI gate).

compare BASE NEW
    Model by model, metric by metric, over the seeds both runs finished:

    * clean error and robust accuracy: both runs classify the same test examples, so the test is
      paired: McNemar's exact test on the examples that flipped. With several matched seeds the
      per-seed exact tests are combined with Fisher's method (flips are not pooled across seeds as if
      they were independent). Without per-example vectors (a bare results file) it falls back to a
      two-proportion z-test on the recorded rates and says so.
    * the **primary family** is, per model, the clean error and the leaderboard worst case at each eps
      (and a model that trained in BASE and failed in NEW). Holm's correction applies over this family
      only, and only it gates by default. Every other row (single attacks, per-protocol worst cases)
      is secondary: reported with Benjamini-Hochberg q-values, gating only with ``--fail-on all``.
    * ``min_effect``: a significant change smaller than this many percentage points does not count.
    * throughput: a relative threshold on the median (``--throughput-threshold``, default 10%),
      only between like machines (same CPU, threads and device name); otherwise "not comparable".

    Exit status: 0 when nothing in the ``--fail-on`` tiers got significantly worse, 1 when something
    did, 2 on bad input (unreadable file, different test sets, rates that disagree with their vectors).
"""

from __future__ import annotations

import math

import numpy as np

from .env import machine_key
from .errors import BenchError
from .results import CLEAN_KEY, ModelResult, Results, per_example_key
from .stats import benjamini_hochberg, holm, paired_seeds_p, two_proportion_test

FAMILIES = ("clean", "robust", "throughput")
TIERS = ("primary", "secondary", "throughput")   # what --fail-on selects (also "all")
VERDICTS = ("worse", "better", "same", "not comparable")
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
        raise BenchError(f"different datasets: {base.path} used {a.get('name')} ({a.get('checksum', 'no checksum')}), "
                         f"{new.path} used {b.get('name')} ({b.get('checksum', 'no checksum')}); "
                         "compare only runs evaluated on the same test set")


def _row(family, model, metric, base, new, *, kind, test="", p=math.nan, verdict="same", note="",
         tier="secondary") -> dict:
    tier = "throughput" if family == "throughput" else tier
    return {"family": family, "tier": tier, "model": model, "metric": metric, "base": base, "new": new, "kind": kind,
            "test": test, "p": p, "p_adj": math.nan, "verdict": verdict, "note": note}


def _paired(base: Results, new: Results, model: str, seeds: list[str], key: str):
    """Per-seed discordant counts [(b, c)], n, base_acc, new_acc over matched seeds; None if a vector is missing."""
    pairs, n, kb, kn = [], 0, 0, 0
    prefix = None
    for s in seeds:
        vb, vn = base.per_example(model, s).get(key), new.per_example(model, s).get(key)
        if vb is None or vn is None:
            return None
        m = min(len(vb), len(vn))
        if len(vb) != len(vn):
            prefix = m
        vb, vn = np.asarray(vb[:m], bool), np.asarray(vn[:m], bool)
        pairs.append((int(np.sum(vb & ~vn)), int(np.sum(~vb & vn))))
        n += m
        kb += int(vb.sum())
        kn += int(vn.sum())
    if n == 0:
        return None
    return pairs, n, kb / n, kn / n, prefix


def _proportion_row(family, model, metric, base, new, seeds, key, lower_is_better, fallback,
                    tier="secondary") -> dict:
    """A clean-error / robust-accuracy row: McNemar on the vectors, else a two-proportion test.

    ``fallback`` is ``(base_rate, base_n, new_rate, new_n)`` from the results file, where the rate
    is an accuracy (fraction correct) pooled over the matched seeds.
    """
    pair = _paired(base, new, model, seeds, key)
    if pair is not None:
        pairs, n, acc_b, acc_n, prefix = pair
        b, c = sum(x for x, _ in pairs), sum(y for _, y in pairs)
        p = paired_seeds_p(pairs)
        test = (f"McNemar exact ({b} lost, {c} gained)" if len(pairs) == 1 else
                f"McNemar per seed, Fisher over {len(pairs)} seeds ({b} lost, {c} gained)")
        note = f"paired on the first {prefix} examples" if prefix else ""
    else:
        acc_b, nb, acc_n, nn = fallback
        if not (nb and nn and math.isfinite(acc_b) and math.isfinite(acc_n)):
            return _row(family, model, metric, math.nan, math.nan, kind="proportion", verdict="not comparable",
                        note="no example counts recorded", tier=tier)
        p = two_proportion_test(acc_b * nb, nb, acc_n * nn, nn)
        test = "two-proportion z (no per-example data)"
        note = ""
    vb, vn = (1 - acc_b, 1 - acc_n) if lower_is_better else (acc_b, acc_n)
    row = _row(family, model, metric, vb, vn, kind="error" if lower_is_better else "accuracy", test=test, p=p,
               note=note, tier=tier)
    row["lower_is_better"] = lower_is_better
    return row


def _seed_order(s: str):
    return (0, int(s)) if s.isdigit() else (1, s)


def _matched_seeds(mb: ModelResult, mn: ModelResult) -> tuple[list[str], list[str], list[str]]:
    sb = {s.seed_id for s in mb.done_seeds()}
    sn = {s.seed_id for s in mn.done_seeds()}
    return (sorted(sb & sn, key=_seed_order), sorted(sb - sn, key=_seed_order), sorted(sn - sb, key=_seed_order))


def _clean_rows(base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult,
                seeds: list[str]) -> list[dict]:
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
    return [_proportion_row("clean", model, "clean error", base, new, seeds, CLEAN_KEY, True, (ab, nb, an, nn),
                            tier="primary")]


def _robust_rows(base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult,
                 seeds: list[str]) -> list[dict]:
    def cells(m: ModelResult):
        per_seed = [{r.key: r for r in m.seed(s).records()} for s in seeds]
        common = set.intersection(*(set(c) for c in per_seed)) if per_seed else set()
        return per_seed, common

    pb, cb = cells(mb)
    pn, cn = cells(mn)
    if not cb or not cn:
        if not (cb or cn):
            return []
        side = "base" if not cb else "new"
        return [_row("robust", model, "attacks", math.nan, math.nan, kind="text", verdict="not comparable",
                     note=f"no attack results in {side} (seeds {','.join(seeds)})")]
    rows = []
    for key in sorted(cb | cn, key=lambda k: (k.norm != "Linf", k.attack == "worst_case", str(k.attack), k.eps,
                                              str(k.protocol))):
        attack, norm, eps, protocol = key
        metric = f"{attack} {norm} {eps:g} [{protocol}]"
        if key in cb and key in cn and {bool(c[key].get("cascade")) for c in pb} != {bool(c[key].get("cascade"))
                                                                                      for c in pn}:
            rows.append(_row("robust", model, metric, math.nan, math.nan, kind="accuracy", verdict="not comparable",
                             note="standalone in one run, in the cascade (worst case so far) in the other"))
            continue
        if key not in cb or key not in cn:
            rows.append(_row("robust", model, metric, math.nan, math.nan, kind="accuracy", verdict="not comparable",
                             note=f"only in {'base' if key in cb else 'new'}"))
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
        lead = all(c[key].leaderboard for c in pb + pn)
        row = _proportion_row("robust", model, metric, base, new, seeds, per_example_key(*key), False,
                              (ab, nb, an, nn), tier="primary" if lead else "secondary")
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


def _throughput_rows(base: Results, new: Results, model: str, mb: ModelResult, mn: ModelResult,
                     threshold: float) -> list[dict]:
    mach_b, tb = _throughput(mb)
    mach_n, tn = _throughput(mn)
    if not tb or not tn:
        if not (tb or tn):
            return []
        return [_row("throughput", model, "throughput", math.nan, math.nan, kind="text", verdict="not comparable",
                     note=f"not timed in {'base' if not tb else 'new'}")]
    rows = []
    same_machine = _machine(mach_b, base) == _machine(mach_n, new)
    for metric in sorted(set(tb) | set(tn)):
        vb, vn = tb.get(metric, math.nan), tn.get(metric, math.nan)
        if metric not in tb or metric not in tn:
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", verdict="not comparable",
                             note=f"only in {'base' if metric in tb else 'new'}"))
        elif not same_machine:
            a, b = _machine(mach_b, base), _machine(mach_n, new)
            diff = [f"{name} {x} vs {y}" for name, x, y in zip(("cpu", "threads", "device"), a, b) if x != y]
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", test=f"±{threshold:.0%} rule",
                             verdict="not comparable", note="machines differ: " + ", ".join(diff)))
        else:
            rel = vn / vb - 1 if vb else math.nan
            verdict = "same"
            if math.isfinite(rel) and abs(rel) > threshold:
                verdict = "better" if rel > 0 else "worse"
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", test=f"±{threshold:.0%} rule",
                             verdict=verdict))
    return rows


def compare_runs(base: Results, new: Results, *, alpha: float = 0.05, throughput_threshold: float = 0.1,
                 correction: str = "holm", min_effect: float = 0.0) -> list[dict]:
    """Every difference between two runs, as rows (natural units); see the module docstring."""
    check_same_dataset(base, new)
    rows: list[dict] = []
    models = base.model_names() + [m for m in new.model_names() if m not in base.model_names()]
    for model in models:
        mb, mn = base.model(model), new.model(model)
        if mb is None or mn is None:
            rows.append(_row("clean", model, "model", math.nan, math.nan, kind="text", verdict="not comparable",
                             note=f"only in {'base' if mn is None else 'new'}"))
            continue
        seeds, only_b, only_n = _matched_seeds(mb, mn)
        failed = [s for s in only_b if mn.seed(s) is not None and mn.seed(s).train.get("state") not in (None, "done")]
        for s in failed:
            t = mn.seed(s).train
            err = " ".join(str(t.get("error") or "").split())[:100]
            rows.append(_row("clean", model, f"training seed {s}", "done", str(t.get("state")), kind="text",
                             test="trained in base", verdict="worse", note=err, tier="primary"))
        if not seeds:
            if not failed:
                rows.append(_row("clean", model, "clean error", math.nan, math.nan, kind="text",
                                 verdict="not comparable", note="no seed finished in both runs"))
            rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))
            continue
        unmatched = [s for s in only_b + only_n if s not in failed]
        new_rows = _clean_rows(base, new, model, mb, mn, seeds) + _robust_rows(base, new, model, mb, mn, seeds)
        if mb.config != mn.config:
            changed = sorted(k for k in set(mb.config) | set(mn.config) if mb.config.get(k) != mn.config.get(k))
            new_rows[0]["note"] = "; ".join(x for x in (new_rows[0]["note"], f"config differs: {', '.join(changed)}") if x)
        if unmatched:
            for r in new_rows:
                r["note"] = "; ".join(x for x in (r["note"], f"seeds {','.join(seeds)} only") if x)
        rows.extend(new_rows)
        rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))

    _decide(rows, alpha, correction, min_effect)
    return rows


def _decide(rows: list[dict], alpha: float, correction: str, min_effect: float) -> None:
    """Adjust p-values per tier (Holm on the primary family, Benjamini-Hochberg on the rest) and give verdicts."""
    for tier, adjust in (("primary", holm), ("secondary", benjamini_hochberg)):
        tested = [r for r in rows if r["tier"] == tier and math.isfinite(r["p"])]
        adjusted = adjust([r["p"] for r in tested]) if correction != "none" else [r["p"] for r in tested]
        for r, pa in zip(tested, adjusted):
            r["p_adj"] = pa
            r["verdict"] = "same"
            if pa < alpha and r["base"] != r["new"]:
                got_worse = (r["new"] > r["base"]) if r.get("lower_is_better") else (r["new"] < r["base"])
                if abs(r["new"] - r["base"]) * 100 < min_effect:
                    r["note"] = "; ".join(x for x in (r["note"], f"significant, below --min-effect {min_effect:g} pp")
                                          if x)
                else:
                    r["verdict"] = "worse" if got_worse else "better"


def check_fail_on(fail_on: list[str]) -> set[str]:
    """``--fail-on`` tiers: any of primary, secondary, throughput, or all (none: never fail)."""
    bad = [f for f in fail_on if f not in (*TIERS, "all")]
    if bad:
        raise BenchError(f"--fail-on {bad[0]!r}: choose from {', '.join((*TIERS, 'all'))} ('' never fails)")
    return set(TIERS) if "all" in fail_on else set(fail_on)


def exit_status(rows: list[dict], fail_on) -> int:
    tiers = check_fail_on(list(fail_on))
    return 1 if any(r["verdict"] == "worse" and r["tier"] in tiers for r in rows) else 0


# ------------------------------------------------------------------------------------ rendering
def _fmt_value(r: dict, v) -> str:
    if isinstance(v, str):
        return v
    if v is None or not math.isfinite(v):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * v:.2f}%"
    if r["kind"] == "rate":
        return f"{v:,.0f}"
    return f"{v:g}"


def _fmt_delta(r: dict) -> str:
    b, n = r["base"], r["new"]
    if isinstance(b, str) or isinstance(n, str) or not (math.isfinite(b) and math.isfinite(n)):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * (n - b):+.2f} pp"
    if r["kind"] == "rate":
        return f"{100 * (n / b - 1):+.1f}%" if b else ""
    return f"{n - b:+g}"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def render_rows(rows: list[dict], fmt: str = "github", show_all: bool = False) -> str:
    """The comparison as a table in one of ``TABLE_FORMATS``: the changes only, or every row (``show_all``)."""
    from tabulate import tabulate

    if fmt not in TABLE_FORMATS:
        raise BenchError(f"--format {fmt!r}: choose from {', '.join(TABLE_FORMATS)}")
    shown = rows if show_all else [r for r in rows if r["verdict"] != "same"]
    headers = ["tier", "model", "metric", "base", "new", "delta", "test / rule", "p", "p adj", "verdict", "note"]
    if fmt == "csv":
        import pandas as pd

        keys = ["tier", "family", "model", "metric", "base", "new", "test", "p", "p_adj", "verdict", "note"]
        return pd.DataFrame([{k: r[k] for k in keys} for r in shown], columns=keys).to_csv(
            index=False, float_format="%.8g", lineterminator="\n")
    table = [[r["tier"], r["model"], r["metric"], _fmt_value(r, r["base"]), _fmt_value(r, r["new"]), _fmt_delta(r),
              r["test"], _fmt_p(r["p"]), _fmt_p(r["p_adj"]), r["verdict"], r["note"]] for r in shown]
    if not table:
        return (f"(no differences: all {len(rows)} rows the same; --all lists them)\n" if rows
                else "(nothing to compare)\n")
    tf = {"github": "pipe", "simple": "simple", "latex": "latex", "html": "html"}[fmt]
    if fmt == "github":
        table = [[c.replace("|", r"\|") for c in row] for row in table]
    align = ["left"] * 3 + ["right"] * 3 + ["left"] + ["right"] * 2 + ["left"] * 2
    return tabulate(table, headers=headers, tablefmt=tf, colalign=align, disable_numparse=True) + "\n"


def to_json(base: Results, new: Results, rows: list[dict], changes: list[str], fail_on, status: int) -> str:
    """Everything ``compare`` found, as one JSON document (NaN written as null)."""
    import json

    from .io import json_safe

    doc = {"base": provenance(base), "new": provenance(new), "setting_changes": changes,
           "fail_on": sorted(check_fail_on(list(fail_on))), "status": status,
           "counts": {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}, "rows": rows}
    return json.dumps(json_safe(doc), indent=1) + "\n"


def summary_line(rows: list[dict], fail_on: list[str], status: int) -> str:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    worse = [r for r in rows if r["verdict"] == "worse"]
    tiers = sorted({r["tier"] for r in worse}, key=TIERS.index)
    text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    if worse:
        text += f" (worse in: {', '.join(tiers)})"
    return f"{text}; failing on {','.join(fail_on) or 'nothing'}: " + ("FAIL" if status else "ok")


def provenance(run: Results) -> str:
    env = run.environment("train")
    git = env.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    return f"{run.path} (commit {commit}, recorded {env.get('recorded_at', '?')})"
