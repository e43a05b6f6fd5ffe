"""``vib-bench history``: one metric across many runs, with step changes found by a change-point fit.

Runs are ordered by recorded time (or as given). Per model, the series of values is fitted with a
penalised piecewise-constant function (:mod:`bench.reporting.changepoint`: the fewest flat segments that explain
the values within their noise, a penalty of ``noise_factor ** 2`` per segment, the noise being each
run's standard error with the binomial error of the test set as a floor); a step is where a new
segment starts, and its size is the change between the two segments' levels, not between two runs.
Throughput steps use a relative threshold between consecutive runs, and only between like machines.

Runs must share one test set (a history across data sets is refused); a run with nothing to show
(no models, none matching, or no value of the metric) is named, not dropped silently; a robust
metric at an eps that no run attacked is refused with the eps values available.
"""

from __future__ import annotations

import math
from pathlib import Path

import registry

from ..env import machine_key
from ..errors import BenchError
from ..results import Results, norm_eps
from ..stats import binomial_se, mean_std
from . import escape
from .changepoint import fit_steps
from .leaderboard import STANDARD_EPS, column, common_grid, format_name, linf_grid, robust_key, seed_n, seed_values

TABLE_FORMATS = ("github", "simple", "csv", "latex", "html", "json")


def _recorded_at(run: Results) -> str | None:
    return run.environment("train").get("recorded_at")


def check_runs(runs: list[Results], metric: str) -> None:
    """Refuse (BenchError) runs on different test sets, and a robust metric at an eps no run attacked."""

    def dataset(run: Results):
        d = run.dataset
        return d.get("checksum") or (d.get("name"), d.get("n_test"))

    first = runs[0]
    for run in runs[1:]:
        if dataset(run) != dataset(first):
            raise BenchError(
                f"these runs use different test sets: {first.label} {first.dataset.get('name')} "
                f"({first.dataset.get('checksum', 'no checksum')}), {run.label} "
                f"{run.dataset.get('name')} ({run.dataset.get('checksum', 'no checksum')}); a history "
                "follows one test set: give runs of one data set"
            )
    rk = robust_key(metric)
    if rk:
        available = sorted({e for run in runs for s in run.iter_seeds() for e in linf_grid(s)})
        if norm_eps(rk[1]) not in {norm_eps(e) for e in available}:
            raise BenchError(
                f"--metric {metric}: no run was attacked at L-inf eps {rk[1]:g}; eps values "
                f"available: {', '.join(f'{e:g}' for e in available) or 'none (no attacks)'}"
            )


def history_frame(
    runs: list[Results],
    metric: str,
    patterns: list[str] | None = None,
    *,
    noise_factor: float = 3.0,
    throughput_threshold: float = 0.1,
) -> list[dict]:
    """One row per (run, model): value (mean over seeds), std, noise (standard error), the fitted level and
    step flags (see the module docstring)."""
    col = check_metric(metric)
    rk = robust_key(metric)
    eps = [rk[1]] if rk else STANDARD_EPS
    rows = []
    for i, run in enumerate(runs):
        grid = common_grid(run)
        for m in run.models():
            model = m.name
            if patterns and not registry.matches(model, patterns):
                continue
            seeds = m.done_seeds()
            vals = [seed_values(s, grid, eps)[metric] for s in seeds]
            mean, std = mean_std(vals)
            k = sum(math.isfinite(v) for v in vals)
            se = std / math.sqrt(k) if k >= 2 else math.nan
            if col.proportion and math.isfinite(mean):
                ns = [seed_n(s, metric) for s in seeds]
                ns = [n for n in ns if math.isfinite(n)]
                # the binomial error of the test set is a floor: two seeds can agree by chance
                b = binomial_se(mean, int(min(ns))) if ns else math.nan
                se = b if not math.isfinite(se) else max(se, b) if math.isfinite(b) else se
            mach = next((s.machine for s in seeds if s.machine), None)
            rows.append(
                {
                    "run": run.label,
                    "index": i,
                    "recorded_at": _recorded_at(run),
                    "commit": ((run.environment("train").get("git") or {}).get("commit") or "")[:7],
                    "model": model,
                    "value": mean,
                    "std": std,
                    "seeds": k,
                    "noise": se,
                    "machine": machine_key(mach or run.environment("train")),
                    "step": False,
                    "delta": math.nan,
                }
            )
    for model in dict.fromkeys(r["model"] for r in rows):
        series = [r for r in rows if r["model"] == model and math.isfinite(r["value"])]
        if metric in ("infer_ex_s", "train_ex_s"):
            for prev, cur in zip(series, series[1:]):
                cur["delta"] = cur["value"] - prev["value"]
                if prev["machine"] != cur["machine"]:
                    cur["note"] = "machine changed"
                elif prev["value"] and abs(cur["value"] / prev["value"] - 1) > throughput_threshold:
                    cur["step"] = True
        else:
            fit = fit_steps([r["value"] for r in series], [r["noise"] for r in series], noise_factor)
            for j, r in enumerate(series):
                r["level"] = fit.levels[j]
                if j:
                    r["step"] = j in fit.change_points
                    r["delta"] = fit.levels[j] - fit.levels[j - 1] if r["step"] else 0.0
    return rows


def empty_runs(runs: list[Results], rows: list[dict]) -> list[str]:
    """Labels of the runs that contribute no value to the history (so the command can name them)."""
    shown = {r["index"] for r in rows if math.isfinite(r["value"])}
    return [run.label for i, run in enumerate(runs) if i not in shown]


def order_runs(runs: list[Results], order: str) -> list[Results]:
    if order == "given":
        return runs
    keyed = [(_recorded_at(r) is None, _recorded_at(r) or "", i, r) for i, r in enumerate(runs)]
    return [r for *_, r in sorted(keyed, key=lambda t: t[:3])]


def check_metric(metric: str):
    """The leaderboard column of a metric key (robust accuracy at any L-inf eps: ``pgd@0.2``)."""
    try:
        return column(metric)
    except BenchError as e:
        raise BenchError(f"--metric {metric!r}: {e}") from None


def render_history(rows: list[dict], metric: str, fmt: str = "github") -> str:
    from tabulate import tabulate

    col = column(metric)
    fmt = format_name(fmt, TABLE_FORMATS)
    models = list(dict.fromkeys(r["model"] for r in rows))
    runs = list(dict.fromkeys((r["index"], r["run"], r["commit"], r["recorded_at"]) for r in rows))
    if fmt == "json":
        return history_json(rows, metric)
    if fmt == "csv":
        import pandas as pd

        frame = pd.DataFrame(
            [
                {k: r[k] for k in ("run", "commit", "recorded_at", "model", "value", "std", "seeds", "noise", "step")}
                for r in rows
            ]
        )
        return escape.csv_frame(frame).to_csv(index=False, float_format="%.8g", lineterminator="\n")
    table = []
    for idx, label, commit, when in runs:
        line = [escape.cell(label, fmt), escape.cell(commit, fmt), escape.cell((when or "")[:19], fmt)]
        for m in models:
            r = next((r for r in rows if r["index"] == idx and r["model"] == m), None)
            if r is None:
                line.append("-")  # the model is not in this run
                continue
            if not math.isfinite(r["value"]):
                line.append("n/a")  # in the run, without a value of this metric
                continue
            cell = col.fmt(r["value"]) + (f" ± {col.fmt(r['std'])}" if r["seeds"] > 1 else "")
            if r["step"]:
                cell += f" STEP {r['delta'] * col.scale:+.{0 if col.thousands else col.digits}f}"
            elif r.get("note"):
                cell += f" ({r['note']})"
            line.append(escape.cell(cell, fmt))
        table.append(line)
    tf = {"github": "pipe", "simple": "simple", "latex": "latex_raw", "html": "unsafehtml"}.get(fmt, "pipe")
    headers = [escape.cell(h, fmt) for h in ["run", "commit", "recorded (UTC)"] + models]
    return tabulate(table, headers=headers, tablefmt=tf, disable_numparse=True) + "\n"


def history_json(rows: list[dict], metric: str) -> str:
    """The history as JSON: the metric, then one record per (run, model) in natural units (NaN: null)."""
    import json

    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    keys = ("run", "commit", "recorded_at", "model", "value", "std", "seeds", "noise", "level", "step", "delta", "note")
    col = column(metric)
    doc = {
        "metric": metric,
        "doc": col.doc,
        "better": col.better,
        "rows": [{k: clean(r.get(k)) for k in keys if k in r} for r in rows],
    }
    return json.dumps(doc, indent=1) + "\n"


def plot_history(rows: list[dict], metric: str, path) -> Path:
    """Metric vs run, one line per model (error bars: std over seeds), steps circled in red."""
    from matplotlib.figure import Figure

    from ..io import atomic_write_figure

    col = column(metric)
    runs = list(dict.fromkeys((r["index"], r["run"]) for r in rows))
    pos = {idx: i for i, (idx, _) in enumerate(runs)}
    fig = Figure(figsize=(max(5.0, 0.9 * len(runs) + 3), 3.8), dpi=110)
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in rows):
        s = [r for r in rows if r["model"] == model and math.isfinite(r["value"])]
        if not s:
            continue
        x = [pos[r["index"]] for r in s]
        y = [r["value"] * col.scale for r in s]
        e = [(r["std"] if r["seeds"] > 1 else 0.0) * col.scale for r in s]
        ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=3, label=model)
        steps = [(xi, yi) for xi, yi, r in zip(x, y, s) if r["step"]]
        if steps:
            ax.scatter(*zip(*steps), s=140, facecolors="none", edgecolors="red", linewidths=1.8, zorder=5)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([label for _, label in runs], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(col.header)
    ax.set_title(f"{metric} across runs (red circle: step larger than the noise)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return atomic_write_figure(fig, path)
