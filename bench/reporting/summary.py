"""The headline of a run, as sentences generated from its results: never written by hand.

:func:`summarize` returns :class:`Finding` s, in reading order:

* ``scope``: what was measured (models, seeds, data, attacked examples, eps grid);
* ``nothing_robust``: from which L-inf eps on no model keeps more than a few % under the worst case;
* ``most_robust``: per eps of interest, the most robust model and whether a paired test (McNemar on the
  same examples, :mod:`bench.reporting.ranking`) separates it from the runner-up;
* ``vs_baseline``: every VIB model (a config with ``beta``) against the plain ``mlp``, paired;
* ``flags``: the sanity-check flags that fired, and what they mean (:data:`bench.protocol.FLAGS`);
* ``unchecked``: what the run could not check (an attack set without a gradient-free or a margin-loss
  attack, models never attacked, a single seed).

Every rate comes with its 95% Wilson interval (:func:`bench.stats.wilson_interval`) over the attacked
examples, pooled over seeds; every comparison with its p-value and test. :func:`provenance` lists the
warnings about the code the stages ran (different commits, dirty trees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..protocol import FLAGS, INFO_FLAGS, attack_set_gaps
from ..results import ModelResult, Results, norm_eps
from ..stats import wilson_interval
from .leaderboard import Leaderboard, build_leaderboard, flag_norms, linf_grid, raised_flags, robust_accuracy, seed_n
from .ranking import ALPHA, compare_models

NOTHING_ROBUST = 0.05  # a worst-case robust accuracy below this counts as "nothing is robust"
BASELINE = "mlp"  # the unregularised model every VIB model is compared with


@dataclass(frozen=True)
class Finding:
    """One sentence of the summary; ``items`` are its sub-points (one per model, flag or gap)."""

    topic: str
    text: str
    level: str = "info"  # "info" or "warning"
    items: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------ numbers
def pct(p: float, digits: int = 1) -> str:
    return f"{100 * p:.{digits}f}%"


def p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p unknown"
    return f"p = {p:.2g}" if p >= 1e-3 else f"p = {p:.1e}"


def worst_counts(model: ModelResult, eps: float) -> tuple[float, int, int] | None:
    """Worst-case robust accuracy of a model at L-inf ``eps``: (mean over seeds, robust examples, examples),
    the counts pooled over its finished seeds; None when it was not attacked there."""
    accs, k, n = [], 0, 0
    for s in model.done_seeds():
        recs = s.records()
        acc = robust_accuracy(recs, "worst", eps) if recs else math.nan
        if not math.isfinite(acc):
            continue
        ns = seed_n(s, "worst")
        ns = int(ns) if math.isfinite(ns) else 0
        accs.append(acc)
        k += round(acc * ns)
        n += ns
    if not accs:
        return None
    return sum(accs) / len(accs), k, n


def with_ci(acc: float, k: int, n: int) -> str:
    """``13.7% [95% CI 11.7–15.9%, n = 1,000]``; the interval pools the seeds' examples."""
    if n <= 0:
        return pct(acc)
    lo, hi = wilson_interval(k, n)
    return f"{pct(acc)} [95% CI {100 * lo:.1f}–{100 * hi:.1f}%, n = {n:,}]"


def attacked_grid(res: Results) -> list[float]:
    """Every nonzero L-inf eps at which some model has a number."""
    return sorted({e for s in res.iter_seeds() if s.is_done for e in linf_grid(s) if e > 0})


# ------------------------------------------------------------------------------------------ findings
def _scope(res: Results) -> Finding:
    models = [m for m in res.models() if m.done_seeds()]
    seeds = sorted({len(m.done_seeds()) for m in models})
    ds = res.dataset
    seed_txt = f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]} seeds"
    text = (
        f"{len(models)} model{'s' if len(models) != 1 else ''} x {seed_txt} on {ds.get('name', '?')} "
        f"({ds.get('n_test', '?'):,} test examples)"
        if isinstance(ds.get("n_test"), int)
        else f"{len(models)} models x {seed_txt} on {ds.get('name', '?')}"
    )
    ns = sorted(
        {
            int(seed_n(s, "worst"))
            for s in res.iter_seeds()
            if s.is_done and s.records() and math.isfinite(seed_n(s, "worst"))
        }
    )
    grid = sorted({e for s in res.iter_seeds() if s.is_done for e in linf_grid(s)})
    if ns and grid:
        text += f"; attacked on the first {ns[0]:,} test examples" if len(ns) == 1 else "; attacked"
        text += f" at L-inf eps {', '.join(f'{e:g}' for e in grid)}"
        text += ". Robust accuracy is the worst case over every attack run (per example)"
    text += "."
    imported = [m.name for m in models if any(s.imported for s in m.seeds())]
    items = (f"Imported weights (no training log): {', '.join(imported)}.",) if imported else ()
    return Finding("scope", text, items=items)


def _nothing_robust(res: Results, grid: list[float]) -> tuple[Finding | None, float | None]:
    """The sentence about where nothing is robust, and the eps from which that holds (None: nowhere)."""
    best = {}
    for e in grid:
        vals = [(c, m.name) for m in res.models() if (c := worst_counts(m, e)) is not None]
        if vals:
            best[e] = max(vals, key=lambda t: t[0][0])
    if not best:
        return None, None
    eps_sorted = sorted(best)
    start = None
    for i, e in enumerate(eps_sorted):
        if all(best[f][0][0] < NOTHING_ROBUST for f in eps_sorted[i:]):
            start = e
            break
    if start is None:
        e = eps_sorted[-1]
        (acc, k, n), name = best[e]
        return Finding(
            "nothing_robust",
            f"Even at the largest L-inf eps attacked ({e:g}) the most robust model, "
            f"{name}, keeps {with_ci(acc, k, n)}.",
        ), None
    top_e = max((f for f in eps_sorted if f >= start), key=lambda f: best[f][0][0])
    (acc, k, n), name = best[top_e]
    where = "at every L-inf eps attacked" if start == eps_sorted[0] else f"at L-inf eps ≥ {start:g}"
    return Finding(
        "nothing_robust",
        f"Nothing is robust {where}: no model keeps more than {pct(acc)} of the "
        f"attacked examples under the worst case (highest: {name} at eps {top_e:g} with "
        f"{with_ci(acc, k, n)}).",
        "warning",
    ), start


def _most_robust(res: Results, lb: Leaderboard, eps_list: list[float], alpha: float) -> list[Finding]:
    out = []
    for e in eps_list:
        key = f"worst@{e:g}"
        if key not in lb.mean.columns or not lb.mean[key].notna().any():
            continue
        values = lb.mean[key].dropna().sort_values(ascending=False)
        top = values.index[0]
        c = worst_counts(res.model(top), e)
        lead = f"{top} keeps {with_ci(*c)}" if c else f"{top} keeps {pct(values.iloc[0])}"
        if len(values) < 2:
            out.append(Finding("most_robust", f"At L-inf eps {e:g} only one model was attacked: {lead}."))
            continue
        ranking = lb.ranking(key)
        runner = ranking.runner_up or values.index[1]
        paired = compare_models(res, top, runner, key)
        test = f"{paired.test}, {p_text(paired.p)}" if paired else "no test possible"
        rv = pct(values[runner])
        if ranking.significant:
            text = (
                f"At L-inf eps {e:g} the most robust model is {top}: "
                f"it keeps {with_ci(*c) if c else pct(values[top])}, "
                f"significantly more than the runner-up {runner} ({rv}; {test})."
            )
        elif ranking.models:
            others = sorted(ranking.models - {top})
            text = (
                f"At L-inf eps {e:g} no model is significantly the most robust: {lead}, but the runner-up "
                f"{runner} ({rv}) is not significantly lower ({test}); not separable from the leader: "
                f"{', '.join(others)}."
            )
        else:
            text = (
                f"At L-inf eps {e:g} no model differs significantly from the others: {lead}; runner-up "
                f"{runner} {rv} ({test})."
            )
        out.append(Finding("most_robust", text))
    return out


def _direction(diff: float, p: float | None, alpha: float, up: str, down: str) -> str:
    if p is None or not math.isfinite(p) or p >= alpha or diff == 0:
        return "no significant difference"
    return f"significantly {up if diff > 0 else down}"


def _vs_baseline(res: Results, lb: Leaderboard, eps_list: list[float], alpha: float) -> Finding | None:
    vibs = [m for m in res.models() if m.beta is not None and m.done_seeds() and m.name in lb.mean.index]
    if not vibs:
        return None
    base = res.model(BASELINE)
    if base is None or not base.done_seeds():
        return Finding(
            "vs_baseline",
            f"No plain {BASELINE} finished in this run: the VIB models cannot be compared "
            "with the unregularised baseline.",
            "warning",
        )
    items, n_tests = [], 0
    for m in vibs:
        parts = []
        metrics = [("clean_error", "clean error", 2)]
        metrics += [(f"worst@{e:g}", f"worst-case robust accuracy at eps {e:g}", 1) for e in eps_list]
        for key, label, digits in metrics:
            if key not in lb.mean.columns:
                continue
            a, b = lb.mean.at[m.name, key], lb.mean.at[BASELINE, key]
            if not (math.isfinite(a) and math.isfinite(b)):
                continue
            paired = compare_models(res, m.name, BASELINE, key)
            p = paired.p if paired else None
            n_tests += p is not None
            test = f"{paired.test}, {p_text(p)}" if paired else "no test possible"
            parts.append(
                f"{label} {pct(a, digits)} vs {pct(b, digits)} ({100 * (a - b):+.{digits}f} points, "
                f"{_direction(a - b, p, alpha, 'higher', 'lower')}; {test})"
            )
        if parts:
            items.append(f"{m.name} (beta {m.beta:g}): " + "; ".join(parts) + ".")
    if not items:
        return None
    return Finding(
        "vs_baseline",
        f"Each VIB model against the plain {BASELINE} (the same test examples; "
        f"significant: p < {alpha:g}, not corrected for the "
        f"{n_tests} comparisons):",
        items=tuple(items),
    )


def attack_gaps(res: Results) -> dict[str, list[str]]:
    """What each attacked model's worst case lacks (``bench.protocol.attack_set_gaps``) -> the models.

    Read from the leaderboard worst-case records (``attack_set_gaps``); runs that predate that field get
    it derived from the attacks that ran."""
    gaps: dict[str, list[str]] = {}
    for m in res.models():
        found = set()
        for s in m.done_seeds():
            recs = [r for r in s.records() if r.norm == "Linf"]
            lead = [r for r in recs if r.is_worst_case and r.leaderboard and r.eps > 0]
            stored = [r for r in lead if "attack_set_gaps" in r]
            if stored:
                found |= {g for r in stored for g in r["attack_set_gaps"]}
            elif recs:
                found |= set(attack_set_gaps(sorted({r.attack for r in recs if not r.is_worst_case}), m.stochastic))
        for g in sorted(found):
            gaps.setdefault(g, []).append(m.name)
    return gaps


def _gap_sentence(gap: str) -> str:
    if "gradient-free" in gap:
        return (
            "No gradient-free attack (Square, or AutoAttack on a deterministic model) was run: gradient "
            "masking could not be detected, so the masking? check could not fire"
        )
    if "margin" in gap:
        return (
            "No margin or DLR-loss attack (APGD-T, CW, AutoAttack) was run: cross-entropy attacks saturate on "
            "confident models, so the robust accuracies may be overstated"
        )
    return gap[:1].upper() + gap[1:]


def _flags(res: Results, gaps: dict[str, list[str]]) -> list[Finding]:
    raised: dict[str, list[str]] = {}
    for m in res.models():
        for f in raised_flags(m):
            if f == "weak_attack_set" and gaps:
                continue  # said below, with what the set lacks
            raised.setdefault(f, []).append(m.name + (" (L2)" if flag_norms(m).get(f) == {"L2"} else ""))
    attacked = any(s.records() for s in res.iter_seeds())
    warn = {f: ms for f, ms in raised.items() if f not in INFO_FLAGS}
    info = {f: ms for f, ms in raised.items() if f in INFO_FLAGS and f != "randomised"}
    out = []
    if warn:
        items = tuple(
            f"{FLAGS[f].label if f in FLAGS else f} ({', '.join(ms)}): "
            f"{FLAGS[f].text if f in FLAGS else 'a check of a plugin attack.'}"
            for f, ms in warn.items()
        )
        out.append(
            Finding("flags", f"{len(warn)} sanity-check flag{'s' if len(warn) != 1 else ''} fired:", "warning", items)
        )
    elif attacked:
        could_not = " (but see below for what could not be checked)" if gaps else ""
        out.append(Finding("flags", f"None of the sanity checks that ran raised a flag{could_not}."))
    if info:
        items = tuple(f"{FLAGS[f].label} ({', '.join(ms)}): {FLAGS[f].text}" for f, ms in info.items())
        out.append(Finding("flags", "For information:", items=items))
    return out


def _attack_failure(res: Results) -> Finding | None:
    """One sentence: whether any leaderboard number rests on a failed attack (bench.attack.indicators)."""
    from ..attack import indicators as ind

    per_model = {m.name: [r for s in m.done_seeds() for r in s.records()] for m in res.models()}
    if not any(r.indicators for recs in per_model.values() for r in recs):
        return None
    failed = {
        name: sorted(
            {
                f"{ind.INDICATORS[n].label} ({r.norm} eps {r.eps:g})"
                for r in ind.failed_worst_cases(recs)
                for n in r.fired_indicators(after=True)
            }
        )
        for name, recs in per_model.items()
    }
    failed = {k: v for k, v in failed.items() if v}
    fired = sum(sum(ind.fired_cells(recs).values()) for recs in per_model.values())
    changed = sum(ind.changed_numbers(recs) for recs in per_model.values())
    if failed:
        return Finding(
            "attack_failure",
            f"{sum(len(v) for v in failed.values())} leaderboard number(s) rest on a "
            "failed attack: every attack of the worst case shows an indicator of "
            "attack failure even after its mitigation:",
            "warning",
            tuple(f"{k}: {', '.join(v)}." for k, v in failed.items()),
        )
    return Finding(
        "attack_failure",
        "No leaderboard number rests on a failed attack: the six indicators of attack "
        f"failure were measured on every cell; {fired} indicator(s) fired on single "
        f"attacks and {changed} number(s) were changed by their mitigations (see the "
        "indicator table).",
    )


def _unchecked(res: Results, gaps: dict[str, list[str]]) -> Finding | None:
    attacked = {m.name for m in res.models() if any(s.records() for s in m.done_seeds())}
    done = [m.name for m in res.models() if m.done_seeds()]
    items = []
    if done and not attacked and res.claims.get("rows"):
        items.append(
            "The attack stage did not run: robustness appears only in the claims table, under the paper's "
            "protocol and the strongest one on its own examples; there is no leaderboard robustness "
            "(run `vib-bench attack RUN_DIR`)."
        )
    elif done and not attacked:
        items.append("No model was attacked: robustness was not measured (run `vib-bench attack RUN_DIR`).")
    elif set(done) - attacked:
        items.append(f"Not attacked: {', '.join(sorted(set(done) - attacked))}.")
    for gap, models in gaps.items():
        who = "every attacked model" if set(models) >= attacked else ", ".join(models)
        items.append(f"{_gap_sentence(gap)} ({who}).")
    seeds = {len(res.model(n).done_seeds()) for n in done}
    if seeds == {1}:
        items.append(
            "One seed per model: intervals and tests cover the sampling of test examples, not the "
            "variation between training runs."
        )
    if not items:
        return None
    return Finding(
        "unchecked", "What this run could not check:", "warning" if attacked and gaps else "info", tuple(items)
    )


def summarize(res: Results, eps=None, alpha: float = ALPHA) -> list[Finding]:
    """The summary of a run, in reading order (see the module docstring)."""
    lb = build_leaderboard(res, eps=eps)
    if not lb.models:
        return [Finding("scope", "No models in this run yet.")]
    out = [_scope(res)]
    nothing, start = _nothing_robust(res, attacked_grid(res))
    interest = [e for e in lb.eps if start is None or norm_eps(e) < start]
    if nothing:
        out.append(nothing)
    out += _most_robust(res, lb, interest, alpha)
    vs = _vs_baseline(res, lb, interest, alpha)
    if vs:
        out.append(vs)
    gaps = attack_gaps(res)
    out += _flags(res, gaps)
    failure = _attack_failure(res)
    if failure:
        out.append(failure)
    un = _unchecked(res, gaps)
    if un:
        out.append(un)
    return out


# ------------------------------------------------------------------------------------------ provenance
def _commit(env: dict) -> str | None:
    return (env.get("git") or {}).get("commit") or None


def provenance(res: Results) -> list[str]:
    """Warnings about the code behind the numbers: stages at different commits, stages on a dirty tree."""
    envs = res.environments() or ({"run": res.environment()} if res.environment() else {})
    out = []
    commits: dict[str, list[str]] = {}
    for stage, env in envs.items():
        c = _commit(env)
        if c:
            commits.setdefault(c, []).append(stage)
    if len(commits) > 1:
        parts = [f"{' and '.join(stages)} at {c[:7]}" for c, stages in commits.items()]
        out.append(
            f"The stages ran at different commits ({'; '.join(parts)}): numbers from different stages may "
            "come from different code."
        )
    dirty = [s for s, env in envs.items() if (env.get("git") or {}).get("dirty")]
    if dirty:
        who = " and ".join(dirty)
        out.append(
            f"{who[:1].upper() + who[1:]} ran on a dirty tree (uncommitted changes): the recorded commit "
            "does not identify the code that produced these numbers."
        )
    unknown = [s for s, env in envs.items() if not _commit(env)]
    if unknown and envs:
        out.append(f"No commit recorded for {' and '.join(unknown)} (not run from a git checkout).")
    return out
