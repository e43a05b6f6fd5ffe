"""Figures of a run, generated from its files only.

``make_figures(run_dir)`` writes PNGs into ``RUN_DIR/figures/``:

* ``robust_accuracy.png``: robust accuracy vs eps, one panel per (norm, attack), every model overlaid
  (randomised models: the worst-case panel shows the leaderboard number solid and the paper protocol
  dashed, so the effect of EOT is visible);
* ``beta_sweep.png``: clean error, worst-case robust accuracy and rate vs beta for models whose
  config has a ``beta`` (the VIB sweep);
* ``training_curves.png``: loss terms and validation error per epoch from ``train_log.jsonl``;
* ``reliability.png``: a reliability diagram per model.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from . import rundir
from .io import atomic_write_figure
from .leaderboard import STANDARD_EPS, robust_accuracy, seed_values
from .results import Results
from .stats import mean_std

_SKIP_LOG_KEYS = {"epoch", "lr", "examples_per_s"}


def _colors(models: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(models) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


def _legend(fig, colors: dict, models, extra=()) -> None:
    """One legend for the whole figure, below the panels (every model, even those absent from panel 1)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], lw=1.5, marker="o", ms=3) for m in models]
    labels = list(models)
    for label, style in extra:
        handles.append(Line2D([], [], color="grey", lw=1, ls=style))
        labels.append(label)
    ncol = min(len(labels), 6)
    rows = math.ceil(len(labels) / ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, (0.3 * rows + 0.1) / height, 1, 1 - 0.35 / height))


def _grid(n: int, ncols: int = 3):
    from matplotlib.figure import Figure

    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.5), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


# ------------------------------------------------------------------------------------ robustness
def _attack_series(res: Results) -> dict[tuple[str, str], dict[str, dict[str, list[tuple[float, float]]]]]:
    """(norm, attack) -> model -> seed -> [(eps, robust_acc)], with each model's leaderboard protocol."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for m in res.models():
        model = m.name
        for entry in m.done_seeds():
            seed = entry.seed_id
            recs = entry.records()
            cells = defaultdict(set)
            for r in recs:
                cells[(r.norm, r.attack)].add(r.eps)
            for (norm, attack), eps_set in cells.items():
                family = "worst" if attack == "worst_case" else attack
                pts = [(e, robust_accuracy(recs, family, e, norm) if family == "worst" else
                        min(r.robust_acc for r in recs if r.attack == attack and r.norm == norm and r.eps == e))
                       for e in sorted(eps_set)]
                out[(norm, attack)][model][seed] = pts
                if attack == "worst_case":
                    paper = [(r.eps, r.robust_acc) for r in recs
                             if r.is_worst_case and r.norm == norm and r.protocol == "paper"]
                    if paper:
                        out[(norm, "worst_case[paper]")][model][seed] = sorted(paper)
    return out


def _mean_curve(per_seed: dict[str, list[tuple[float, float]]]):
    by_eps = defaultdict(list)
    for pts in per_seed.values():
        for e, a in pts:
            by_eps[e].append(a)
    eps = sorted(by_eps)
    stats = [mean_std(by_eps[e]) for e in eps]
    return eps, [s[0] for s in stats], [s[1] if math.isfinite(s[1]) else 0.0 for s in stats]


def plot_robust_accuracy(res: Results, path: Path) -> Path | None:
    series = _attack_series(res)
    panels = [k for k in series if not k[1].endswith("[paper]")]
    if not panels:
        return None
    order = {"Linf": 0, "L2": 1}
    panels.sort(key=lambda k: (order.get(k[0], 2), k[1] == "worst_case", k[1].removeprefix("eot_"), k[1].startswith("eot_")))
    colors = _colors(res.model_names())
    fig, axes = _grid(len(panels))
    for ax, (norm, attack) in zip(axes, panels):
        for model, per_seed in series[(norm, attack)].items():
            eps, mean, std = _mean_curve(per_seed)
            ax.errorbar(eps, [100 * v for v in mean], yerr=[100 * s for s in std], color=colors[model], marker="o",
                        ms=3, capsize=2, lw=1.5, label=model)
            paper = series.get((norm, "worst_case[paper]"), {}).get(model) if attack == "worst_case" else None
            if paper:
                pe, pm, _ = _mean_curve(paper)
                ax.plot(pe, [100 * v for v in pm], color=colors[model], ls="--", lw=1, alpha=0.8)
        title = "worst case over attacks" if attack == "worst_case" else attack
        ax.set_title(f"{title} ({'L-inf' if norm == 'Linf' else norm})", fontsize=10)
        ax.set_xlabel("eps")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    dashed = any(series.get((norm, "worst_case[paper]")) for norm, _ in panels)
    fig.suptitle("Robust accuracy vs eps (mean ± std over seeds)", fontsize=10)
    shown = [m for m in res.model_names() if any(m in series[k] for k in panels)]
    _legend(fig, colors, shown, [("worst case, paper protocol only (randomised models)", "--")] if dashed else ())
    return atomic_write_figure(fig, path)


# ------------------------------------------------------------------------------------ beta sweep
def plot_beta_sweep(res: Results, path: Path) -> Path | None:
    """Clean error, worst-case robust accuracy and rate vs beta; one line per other-config group."""
    groups: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for m in res.models():
        beta = m.beta
        if beta is None or not m.done_seeds():
            continue
        rest = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in m.config.items() if k != "beta"))
        groups[rest].append((beta, m.name))
    groups = {k: sorted(v) for k, v in groups.items() if len({b for b, _ in v}) >= 2}
    if not groups:
        return None
    # name each group by the settings that differ between groups (e.g. "k=2")
    keys = list(groups)
    varying = sorted({k for g in keys for k, _ in g if len({dict(h).get(k) for h in keys}) > 1})

    def label(g):
        d = dict(g)
        return ", ".join(f"{k}={json.loads(d[k]) if k in d else '-'}" for k in varying) or "VIB"

    metrics = [("clean_error", "clean error (%)", 100.0)]
    have = lambda key: any(math.isfinite(seed_values(s, [])[key])  # noqa: E731
                           for g in groups.values() for _, mod in g for s in res.model(mod).done_seeds())
    robust = [f"worst@{e:g}" for e in STANDARD_EPS if have(f"worst@{e:g}")]
    if robust:
        metrics.append(("robust", "worst-case robust accuracy (%)", 100.0))
    if have("rate"):
        metrics.append(("rate", "rate (nats)", 1.0))
    fig, axes = _grid(len(metrics))
    styles = ["-", "--", ":", "-."]
    for ax, (key, ylabel, scale) in zip(axes, metrics):
        for gi, (g, members) in enumerate(groups.items()):
            keys_here = robust if key == "robust" else [key]
            for ki, k in enumerate(keys_here):
                xs, ys, es = [], [], []
                for beta, model in members:
                    mean, std = mean_std([seed_values(s, [])[k] for s in res.model(model).done_seeds()])
                    if math.isfinite(mean):
                        xs.append(beta)
                        ys.append(mean * scale)
                        es.append(std * scale if math.isfinite(std) else 0.0)
                if xs:
                    lab = label(g) + (f", L-inf eps {k.split('@')[1]}" if key == "robust" else "")
                    ax.errorbar(xs, ys, yerr=es, marker="o", ms=4, capsize=2, ls=styles[ki % len(styles)],
                                color=f"C{gi}", label=lab)
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("VIB sweep over beta (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return atomic_write_figure(fig, path)


# ------------------------------------------------------------------------------------ training curves
def plot_training_curves(res: Results, run_dir: Path, path: Path) -> Path | None:
    logs: dict[str, list[list[dict]]] = {}
    for m in res.models():
        runs = [rundir.read_train_log(rundir.model_dir(run_dir, m.name, s)) for s in m.seed_ids()]
        runs = [r for r in runs if r]
        if runs:
            logs[m.name] = runs
    if not logs:
        return None
    keys = []
    for runs in logs.values():
        for rec in runs[0]:
            for k, v in rec.items():
                if (isinstance(v, (int, float)) and not isinstance(v, bool) and k not in _SKIP_LOG_KEYS
                        and not k.endswith("_s") and k not in keys):
                    keys.append(k)
    first = [k for k in ("loss", "val_error", "val_nll") if k in keys]
    keys = first + sorted(k for k in keys if k not in first)
    if not keys:
        return None
    colors = _colors(res.model_names())
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        scale = 100.0 if key.endswith("error") else 1.0
        for model, runs in logs.items():
            by_epoch = defaultdict(list)
            for r in runs:
                for rec in r:
                    v = rec.get(key)
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                        by_epoch[rec["epoch"]].append(v)
            if by_epoch:
                ep = sorted(by_epoch)
                ax.plot(ep, [scale * sum(by_epoch[e]) / len(by_epoch[e]) for e in ep], color=colors[model],
                        lw=1.5, label=model)
        ax.set_title(key + (" (%)" if scale != 1 else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle("Training curves (mean over seeds)", fontsize=10)
    _legend(fig, colors, [m for m in res.model_names() if m in logs])
    return atomic_write_figure(fig, path)


def make_figures(run_dir) -> list[Path]:
    """Write every figure the run's data allow into ``RUN_DIR/figures/``; returns their paths."""
    res = Results.load(run_dir)
    rd = rundir.run_dir_of(run_dir)
    made = [plot_robust_accuracy(res, rundir.figure_path(rd, "robust_accuracy.png")),
            plot_beta_sweep(res, rundir.figure_path(rd, "beta_sweep.png")),
            plot_training_curves(res, rd, rundir.figure_path(rd, "training_curves.png")),
            plot_reliability(res, rundir.figure_path(rd, "reliability.png"))]
    return [p for p in made if p is not None]


def plot_reliability(res: Results, path: Path) -> Path | None:
    """Reliability diagram per model (first seed): accuracy against confidence."""
    items = []
    for m in res.models():
        for entry in m.seeds():
            rel = entry.clean.get("reliability")
            if rel:
                items.append((m.name, entry.seed_id, rel, entry.clean))
                break
    if not items:
        return None
    fig, axes = _grid(len(items))
    for ax, (name, seed, rel, clean) in zip(axes, items):
        edges = rel["edges"]
        width = edges[1] - edges[0]
        for lo, acc, cnt in zip(edges[:-1], rel["accuracy"], rel["count"]):
            if cnt:
                ax.bar(lo, acc, width=width, align="edge", color="tab:blue", edgecolor="white", alpha=0.8)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name} (seed {seed})\nECE {100 * clean['ece']:.2f}%, NLL {clean['nll']:.3f}", fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
    return atomic_write_figure(fig, path)


