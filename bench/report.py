"""Figures and the one-page HTML report of a run, generated from its files only.

``make_figures(run_dir)`` writes PNGs into ``RUN_DIR/figures/``:

* ``robust_accuracy.png``: robust accuracy vs eps, one panel per (norm, attack), every model overlaid
  (randomised models: the worst-case panel shows the leaderboard number solid and the paper protocol
  dashed, so the effect of EOT is visible);
* ``beta_sweep.png``: clean error, worst-case robust accuracy and rate vs beta for models whose
  config has a ``beta`` (the VIB sweep);
* ``training_curves.png``: loss terms and validation error per epoch from ``train_log.jsonl``.

``write_report(run_dir)`` writes ``RUN_DIR/report.html``: leaderboard, flags explained, environment
and every PNG under ``figures/``, embedded as data URIs so the page is a single file.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import defaultdict
from pathlib import Path

from .errors import BenchError
from .io import atomic_write_figure, atomic_write_text
from .leaderboard import (FLAGS, INFO_FLAGS, STANDARD_EPS, _records, _seed_sort, build_leaderboard, describe_run,
                          done_seeds, footnotes, raised_flags, render, robust_accuracy, seed_values, write_leaderboard)
from .results import load_results, results_path
from .stats import mean_std

FIGURES_DIR = "figures"
REPORT_NAME = "report.html"
_SKIP_LOG_KEYS = {"epoch", "lr", "examples_per_s"}


def _run_dir(run_dir) -> Path:
    return results_path(run_dir).parent


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
def _attack_series(data: dict) -> dict[tuple[str, str], dict[str, dict[str, list[tuple[float, float]]]]]:
    """(norm, attack) -> model -> seed -> [(eps, robust_acc)], with each model's leaderboard protocol."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for model, m in data["models"].items():
        for seed in done_seeds(m):
            recs = _records(m["seeds"][seed])
            cells = defaultdict(set)
            for r in recs:
                cells[(r.get("norm", "Linf"), r.get("attack"))].add(round(float(r["eps"]), 9))
            for (norm, attack), eps_set in cells.items():
                family = "worst" if attack == "worst_case" else attack
                pts = [(e, robust_accuracy(recs, family, e, norm) if family == "worst" else
                        min(float(r["robust_acc"]) for r in recs if r.get("attack") == attack
                            and r.get("norm", "Linf") == norm and round(float(r["eps"]), 9) == e))
                       for e in sorted(eps_set)]
                out[(norm, attack)][model][seed] = pts
                if attack == "worst_case":
                    paper = [(round(float(r["eps"]), 9), float(r["robust_acc"])) for r in recs
                             if r.get("attack") == "worst_case" and r.get("norm", "Linf") == norm
                             and r.get("protocol") == "paper"]
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


def plot_robust_accuracy(data: dict, path: Path) -> Path | None:
    series = _attack_series(data)
    panels = [k for k in series if not k[1].endswith("[paper]")]
    if not panels:
        return None
    order = {"Linf": 0, "L2": 1}
    panels.sort(key=lambda k: (order.get(k[0], 2), k[1] == "worst_case", k[1].removeprefix("eot_"), k[1].startswith("eot_")))
    colors = _colors(list(data["models"]))
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
    shown = [m for m in data["models"] if any(m in series[k] for k in panels)]
    _legend(fig, colors, shown, [("worst case, paper protocol only (randomised models)", "--")] if dashed else ())
    return atomic_write_figure(fig, path)


# ------------------------------------------------------------------------------------ beta sweep
def _beta(m: dict) -> float | None:
    b = (m.get("config") or {}).get("beta")
    return float(b) if isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 else None


def plot_beta_sweep(data: dict, path: Path) -> Path | None:
    """Clean error, worst-case robust accuracy and rate vs beta; one line per other-config group."""
    groups: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for model, m in data["models"].items():
        beta = _beta(m)
        if beta is None or not done_seeds(m):
            continue
        rest = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in (m.get("config") or {}).items()
                            if k != "beta"))
        groups[rest].append((beta, model))
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
    have = lambda key: any(math.isfinite(seed_values(data["models"][mod]["seeds"][s], [])[key])  # noqa: E731
                           for g in groups.values() for _, mod in g for s in done_seeds(data["models"][mod]))
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
                    m = data["models"][model]
                    mean, std = mean_std([seed_values(m["seeds"][s], [])[k] for s in done_seeds(m)])
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
def read_train_log(path: Path) -> list[dict]:
    """The epoch records of a ``train_log.jsonl`` (unparseable lines, e.g. a torn last line, are skipped)."""
    out = []
    try:
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("epoch"), (int, float)):
                out.append(rec)
    except OSError:
        return []
    return out


def plot_training_curves(data: dict, run_dir: Path, path: Path) -> Path | None:
    logs: dict[str, list[list[dict]]] = {}
    for model, m in data["models"].items():
        seeds = sorted(m.get("seeds") or {}, key=_seed_sort)
        runs = [read_train_log(run_dir / "models" / model / f"seed{s}" / "train_log.jsonl") for s in seeds]
        runs = [r for r in runs if r]
        if runs:
            logs[model] = runs
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
    colors = _colors(list(data["models"]))
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
    _legend(fig, colors, [m for m in data["models"] if m in logs])
    return atomic_write_figure(fig, path)


def make_figures(run_dir) -> list[Path]:
    """Write every figure the run's data allow into ``RUN_DIR/figures/``; returns their paths."""
    data = load_results(run_dir)
    rd = _run_dir(run_dir)
    fig_dir = rd / FIGURES_DIR
    made = [plot_robust_accuracy(data, fig_dir / "robust_accuracy.png"),
            plot_beta_sweep(data, fig_dir / "beta_sweep.png"),
            plot_training_curves(data, rd, fig_dir / "training_curves.png"),
            plot_reliability(data, fig_dir / "reliability.png")]
    return [p for p in made if p is not None]


def plot_reliability(data: dict, path: Path) -> Path | None:
    """Reliability diagram per model (first seed): accuracy against confidence."""
    items = []
    for name, m in data["models"].items():
        for seed in sorted(m.get("seeds", {}), key=int):
            rel = (m["seeds"][seed].get("clean") or {}).get("reliability")
            if rel:
                items.append((name, seed, rel, m["seeds"][seed]["clean"]))
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


# ------------------------------------------------------------------------------------ HTML report
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0 3px; }
"""

_FIGURE_CAPTIONS = {
    "robust_accuracy.png": "Robust accuracy vs eps for every attack, all models overlaid.",
    "beta_sweep.png": "The VIB sweep: clean error, worst-case robust accuracy and rate against beta.",
    "training_curves.png": "Training curves: loss terms and validation metrics per epoch.",
    "info_beta.png": "The information plane of the VIB beta sweep: I(Z;Y) against I(X;Z), bounds and estimates.",
    "reliability.png": "Reliability diagrams: accuracy per confidence bin (a calibrated model follows the diagonal).",
}


def _img(path: Path) -> str:
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{b64}">'


def _env_table(data: dict) -> str:
    envs = dict(data.get("environments") or {})
    if not envs and data.get("environment"):
        envs = {"run": data["environment"]}
    if not envs:
        return "<p>No environment recorded.</p>"
    stages = list(envs)
    keys = ["vib_bench", "python", "platform", "hostname", "cpu", "cpu_count", "threads", "device", "device_name",
            "git", "recorded_at", "matmul_peak_gflops"]
    pkgs = sorted({p for e in envs.values() for p in (e.get("packages") or {})})

    def fmt(v):
        if isinstance(v, dict) and "commit" in v:
            return f"{(v.get('commit') or 'unknown')[:10]}{' (dirty)' if v.get('dirty') else ''}"
        if isinstance(v, float):
            return f"{v:.1f}"
        return "" if v is None else str(v)

    rows = []
    for k in keys:
        vals = [fmt(envs[s].get(k)) for s in stages]
        if any(vals):
            rows.append((k, vals))
    for p in pkgs:
        rows.append((p, [str((envs[s].get("packages") or {}).get(p) or "") for s in stages]))
    head = "".join(f"<th>{html.escape(s)}</th>" for s in stages)
    body = "".join("<tr><td>" + html.escape(k) + "</td>" + "".join(f"<td>{html.escape(v)}</td>" for v in vals)
                   + "</tr>" for k, vals in rows)
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flags_section(data: dict) -> str:
    raised = {}
    for model, m in data["models"].items():
        for f in raised_flags(m):
            raised.setdefault(f, []).append(model)
    warn = {f: ms for f, ms in raised.items() if f not in INFO_FLAGS}
    parts = []
    if warn:
        items = "".join(f"<li><code>{html.escape(FLAGS[f][0] if f in FLAGS else f)}</code> "
                        f"({html.escape(', '.join(ms))}): {html.escape(FLAGS[f][1] if f in FLAGS else 'see docs/attacks.md.')}</li>"
                        for f, ms in warn.items())
        parts.append(f"<p>Sanity-check flags raised in this run:</p><ul>{items}</ul>")
    else:
        parts.append("<p>No sanity-check flag was raised in this run"
                     + (" (or it has not been attacked yet)." if not any(_records(e) for m in data["models"].values()
                                                                       for e in (m.get("seeds") or {}).values())
                        else ".") + "</p>")
    info = {f: ms for f, ms in raised.items() if f in INFO_FLAGS}
    if info:
        items = "".join(f"<li><code>{html.escape(FLAGS[f][0])}</code> ({html.escape(', '.join(ms))}): "
                        f"{html.escape(FLAGS[f][1])}</li>" for f, ms in info.items())
        parts.append(f"<p>Information:</p><ul>{items}</ul>")
    every = "".join(f"<li><code>{html.escape(label)}</code>: {html.escape(text)}</li>" for label, text in FLAGS.values())
    parts.append(f"<details><summary>Every flag</summary><ul>{every}</ul></details>")
    return "".join(parts)


def report_html(run_dir, figures: list[Path] | None = None) -> str:
    """The report page as a string (figures are embedded; pass ``figures`` to choose them)."""
    data = load_results(run_dir)
    rd = _run_dir(run_dir)
    title = f"vib-bench report: {rd.name}"
    lb = build_leaderboard(data)
    if figures is None:
        fig_dir = rd / FIGURES_DIR
        figures = sorted(fig_dir.glob("*.png"), key=lambda p: (p.name not in _FIGURE_CAPTIONS, p.name)) \
            if fig_dir.is_dir() else []
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(describe_run(data))}.</p>",
             "<h2>Leaderboard</h2>"]
    if lb.models:
        parts.append(render(lb, "html"))
        notes = [n for n in footnotes(lb) if not n.startswith("`")]  # flag notes get their own section
        parts.append("<ul class=\"note\">" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    else:
        parts.append("<p>No models in this run yet.</p>")
    parts += ["<h2>Flags</h2>", _flags_section(data), "<h2>Figures</h2>"]
    if figures:
        for p in figures:
            cap = _FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " "))
            parts.append(f"<figure>{_img(p)}<figcaption>{html.escape(cap)}</figcaption></figure>")
    else:
        parts.append("<p>No figures.</p>")
    parts += ["<h2>Environment</h2>", _env_table(data),
              "<p class=\"note\">Generated by <code>vib-bench report</code> from "
              f"{html.escape(results_path(run_dir).name)}; every number comes from that file.</p>",
              "</body></html>\n"]
    return "\n".join(parts)


def write_report(run_dir, out=None) -> Path:
    """Make the figures, refresh ``leaderboard.md`` and write the self-contained ``report.html``."""
    rd = _run_dir(run_dir)
    make_figures(run_dir)
    write_leaderboard(run_dir)
    path = Path(out) if out else rd / REPORT_NAME
    atomic_write_text(path, report_html(run_dir))
    return path


def cmd_report(args) -> int:
    try:
        path = write_report(args.run_dir, args.out)
    except OSError as e:
        raise BenchError(f"{args.run_dir}: cannot write the report ({e.strerror or e})") from None
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="figures and a self-contained HTML report of a run (RUN_DIR/report.html)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the page (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)
