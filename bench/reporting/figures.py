"""Figures of a run, generated from its files only.

``make_figures(run_dir)`` writes PNGs into ``RUN_DIR/figures/``:

* ``robust_accuracy.png``: robust accuracy vs eps, one panel per (norm, attack), the worst case over
  attacks first, every model overlaid: the VIB models (a config with ``beta``) in one sequential colour
  ramp with triangles, the others in distinct colours with circles, each model nudged sideways by a small
  offset so coinciding lines stay visible (randomised models: the worst-case panel shows the leaderboard
  number solid and the paper protocol dashed, so the effect of EOT is visible);
* ``beta_sweep.png``: clean error, worst-case robust accuracy (one line style and marker per eps) and
  rate vs beta for models whose config has a ``beta`` (the VIB sweep);
* ``training_curves.png``: loss terms and validation error per epoch from ``train_log.jsonl``;
* ``reliability.png``: a reliability diagram per model, with the examples per bin beneath it.

Error bars are the standard deviation over seeds; a figure of single-seed results says "1 seed" and
draws none.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from .. import rundir
from ..io import atomic_write_figure
from ..results import Results
from ..stats import mean_std
from .leaderboard import default_eps, robust_accuracy, seed_values

_SKIP_LOG_KEYS = {"epoch", "lr", "examples_per_s"}
_ATTACK_ORDER = ("worst_case", "fgsm", "pgd", "eot_pgd", "apgd_ce", "apgd_t", "cw", "autoattack", "square")


def _families(res: Results, models: list[str]) -> tuple[list[str], list[str]]:
    """(the other models, the VIB models ordered by beta): two families, drawn differently."""
    vib = sorted(
        (m for m in models if res.model(m) is not None and res.model(m).beta is not None),
        key=lambda m: (res.model(m).beta, m),
    )
    return [m for m in models if m not in vib], vib


def _styles(res: Results, models: list[str]) -> dict[str, dict]:
    """Colour and marker per model: distinct colours and circles for the others; one sequential ramp and
    triangles for the VIB family (lighter = larger beta), so ten models stay readable as two groups."""
    from matplotlib import colormaps

    others, vib = _families(res, models)
    # the others avoid the ramp's hues (purple, pink, red, orange) while there are few of them
    tab = colormaps["tab10"]
    qual = (
        [tab(i) for i in (0, 2, 5, 7, 8, 9)]
        if vib and len(others) <= 6
        else [colormaps["tab10" if len(others) <= 10 else "tab20"](i) for i in range(20)]
    )
    ramp = colormaps["plasma"]
    out = {m: {"color": qual[i % len(qual)], "marker": "o"} for i, m in enumerate(others)}
    for i, m in enumerate(vib):
        out[m] = {"color": ramp(0.15 + 0.65 * i / max(len(vib) - 1, 1)), "marker": "^"}
    return out


def _seeds_label(counts) -> str:
    """``1 seed`` or ``mean ± std over 3 seeds`` (``2-3 seeds`` when models differ)."""
    counts = sorted({c for c in counts if c})
    if not counts or counts == [1]:
        return "1 seed"
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"mean ± std over {span} seeds" + ("; 1-seed models without bars" if counts[0] == 1 else "")


def _legend(fig, styles: dict, models, extra=()) -> None:
    """One legend for the whole figure, below the panels (every model, even those absent from panel 1)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=styles[m]["color"], lw=1.5, marker=styles[m]["marker"], ms=4) for m in models]
    labels = list(models)
    for label, style in extra:
        handles.append(Line2D([], [], color="grey", lw=1, ls=style))
        labels.append(label)
    width = fig.get_size_inches()[0]
    ncol = max(1, min(len(labels), int(width / 2.1)))
    rows = math.ceil(len(labels) / ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, (0.3 * rows + 0.1) / height, 1, 1 - 0.35 / height))


def _ncols(*groups: int) -> int:
    """Columns for panels in ``groups`` (each group starts a row): a landscape page (width/height near 1.3,
    panels 4.2 x 3.3 in) with few empty cells; 4 panels -> 2 x 2, 7 -> 3 x 3 with 2 empty."""
    n = sum(groups)
    if n <= 3 and len(groups) == 1:
        return max(n, 1)

    def cost(c: int) -> float:
        rows = sum(math.ceil(g / c) for g in groups)
        return abs(math.log(4.2 * c / (3.3 * rows) / 1.3)) + 0.3 * (rows * c - n)

    return min((4, 3, 2), key=lambda c: (cost(c), -c))


def _grid(*groups: int, ncols: int | None = None):
    """A figure with one panel per item of ``groups`` (counts), each group starting a new row."""
    from matplotlib.figure import Figure

    ncols = ncols or _ncols(*groups)
    nrows = sum(math.ceil(g / ncols) for g in groups)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.5), dpi=100)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    used, row = [], 0
    for g in groups:
        for i in range(g):
            used.append(grid[row + i // ncols][i % ncols])
        row += math.ceil(g / ncols)
    for ax in grid.ravel():
        if not any(ax is u for u in used):
            ax.set_visible(False)
    return fig, used


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
                pts = [
                    (
                        e,
                        robust_accuracy(recs, family, e, norm)
                        if family == "worst"
                        else min(r.robust_acc for r in recs if r.attack == attack and r.norm == norm and r.eps == e),
                    )
                    for e in sorted(eps_set)
                ]
                out[(norm, attack)][model][seed] = pts
                if attack == "worst_case":
                    paper = [
                        (r.eps, r.robust_acc)
                        for r in recs
                        if r.is_worst_case and r.norm == norm and r.protocol == "paper"
                    ]
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


def _offsets(models: list[str], span: float) -> dict[str, float]:
    """A small sideways offset per model (1.2% of the eps range apart) so that coinciding lines stay visible."""
    step = 0.012 * span
    return {m: (i - (len(models) - 1) / 2) * step for i, m in enumerate(models)}


def plot_robust_accuracy(res: Results, path: Path) -> Path | None:
    series = _attack_series(res)
    panels = [k for k in series if not k[1].endswith("[paper]")]
    if not panels:
        return None
    order = {"Linf": 0, "L2": 1}

    def rank(attack: str) -> tuple:
        base = attack.removesuffix("_l2")
        return (_ATTACK_ORDER.index(base) if base in _ATTACK_ORDER else len(_ATTACK_ORDER), base)

    panels.sort(key=lambda k: (order.get(k[0], 2), rank(k[1])))
    shown = [m for m in res.model_names() if any(m in series[k] for k in panels)]
    others, vib = _families(res, shown)
    shown = others + vib
    styles = _styles(res, shown)
    seeds = {m: max(len(ps) for k in panels for mm, ps in series[k].items() if mm == m) for m in shown}
    fig, axes = _grid(*[sum(1 for k in panels if k[0] == norm) for norm in dict.fromkeys(k[0] for k in panels)])
    for ax, (norm, attack) in zip(axes, panels):
        span = max((e for ps in series[(norm, attack)].values() for pts in ps.values() for e, _ in pts), default=1.0)
        offset = _offsets(shown, span or 1.0)
        for model in shown:
            per_seed = series[(norm, attack)].get(model)
            if not per_seed:
                continue
            eps, mean, std = _mean_curve(per_seed)
            x = [e + offset[model] for e in eps]
            st = styles[model]
            ax.errorbar(
                x,
                [100 * v for v in mean],
                yerr=[100 * s for s in std] if len(per_seed) > 1 else None,
                color=st["color"],
                marker=st["marker"],
                ms=4,
                capsize=2,
                lw=1.3,
                alpha=0.9,
                label=model,
            )
            paper = series.get((norm, "worst_case[paper]"), {}).get(model) if attack == "worst_case" else None
            if paper:
                pe, pm, _ = _mean_curve(paper)
                ax.plot(
                    [e + offset[model] for e in pe], [100 * v for v in pm], color=st["color"], ls="--", lw=1, alpha=0.8
                )
        title = "worst case over attacks" if attack == "worst_case" else attack
        ax.set_title(
            f"{title} ({'L-inf' if norm == 'Linf' else norm})",
            fontsize=10,
            fontweight="bold" if attack == "worst_case" else "normal",
        )
        ax.set_xlabel("eps")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    dashed = any(series.get((norm, "worst_case[paper]")) for norm, _ in panels)
    fig.suptitle(
        f"Robust accuracy vs eps ({_seeds_label(seeds.values())}); "
        + ("triangles: VIB models, lighter = larger beta" if vib and others else "each model offset slightly sideways"),
        fontsize=10,
    )
    _legend(fig, styles, shown, [("worst case, paper protocol (randomised)", "--")] if dashed else ())
    return atomic_write_figure(fig, path)


# ------------------------------------------------------------------------------------ beta sweep
def plot_beta_sweep(res: Results, path: Path) -> Path | None:
    """Clean error, worst-case robust accuracy and rate vs beta; one line per other-config group."""
    groups: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for m in res.models():
        beta = m.beta if m.beta is not None else m.vib_beta  # vib_beta: beta = 0 counts too
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

    eps = default_eps(res)
    values = {
        mod: [seed_values(s, [], eps) for s in res.model(mod).done_seeds()] for g in groups.values() for _, mod in g
    }
    have = lambda key: any(math.isfinite(v[key]) for vs in values.values() for v in vs)  # noqa: E731
    metrics = [("clean_error", "clean error (%)", 100.0)]
    robust = [f"worst@{e:g}" for e in eps if have(f"worst@{e:g}")]
    if robust:
        metrics.append(("robust", "worst-case robust accuracy (%)", 100.0))
    if have("rate"):
        metrics.append(("rate", "rate (nats)", 1.0))
    fig, axes = _grid(len(metrics), ncols=len(metrics))
    x_of, ticks = _beta_axis(sorted({b for g in groups.values() for b, _ in g}))
    # one line style, marker and shade per eps, so the eps series stay apart even where they coincide
    line_styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    seeds = [len(vs) for vs in values.values()]
    for ax, (key, ylabel, scale) in zip(axes, metrics):
        for gi, (g, members) in enumerate(groups.items()):
            keys_here = robust if key == "robust" else [key]
            for ki, k in enumerate(keys_here):
                xs, ys, es = [], [], []
                nudge = 10 ** (0.03 * (ki - (len(keys_here) - 1) / 2))  # a small offset on the log axis
                for beta, model in members:
                    mean, std = mean_std([v[k] for v in values[model]])
                    if math.isfinite(mean):
                        xs.append(x_of(beta) * nudge)
                        ys.append(mean * scale)
                        es.append(std * scale if math.isfinite(std) else 0.0)
                if xs:
                    lab = label(g) + (f", L-inf eps {k.split('@')[1]}" if key == "robust" else "")
                    shade = 1.0 - 0.45 * ki / max(len(keys_here) - 1, 1) if key == "robust" else 1.0
                    color = tuple(min(1.0, c * shade + (1 - shade)) for c in _rgb(f"C{gi}"))
                    ax.errorbar(
                        xs,
                        ys,
                        yerr=es if any(es) else None,
                        marker=markers[ki % len(markers)],
                        ms=5,
                        capsize=2,
                        ls=line_styles[ki % len(line_styles)],
                        lw=1.5,
                        color=color,
                        label=lab,
                    )
        ax.set_xscale("log")
        if ticks:
            ax.set_xticks([t for t, _ in ticks], [lab for _, lab in ticks], rotation=45, fontsize=7)
            ax.minorticks_off()
        ax.set_xlabel(
            "beta" + (' (the tick "0": no KL term, off the log scale)' if ticks and ticks[0][1] == "0" else "")
        )
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"VIB sweep over beta ({_seeds_label(seeds)})", fontsize=10)
    fig.tight_layout()
    return atomic_write_figure(fig, path)


def _beta_axis(betas: list[float]):
    """(x position of a beta on the log axis, explicit ticks or []): beta = 0 (a stochastic encoder with no
    KL term) sits two decades left of the smallest positive beta, labelled "0"; with a zero present
    every beta gets its own tick."""
    positive = [b for b in betas if b > 0]
    if 0 not in betas or not positive:
        return (lambda b: b), []
    zero_at = min(positive) / 100.0
    ticks = [(zero_at, "0")] + [(b, _sci(b)) for b in positive]
    return (lambda b: b if b > 0 else zero_at), ticks


def _sci(x: float) -> str:
    """1e-4 -> "1e-4", 2.5e-4 -> "2.5e-4": short labels in one style."""
    mant, exp = f"{x:.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def _rgb(name: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(name)


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
                if (
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and k not in _SKIP_LOG_KEYS
                    and not k.endswith("_s")
                    and k not in keys
                ):
                    keys.append(k)
    first = [k for k in ("loss", "val_error", "val_nll") if k in keys]
    keys = first + sorted(k for k in keys if k not in first)
    if not keys:
        return None
    styles = _styles(res, [m for m in res.model_names() if m in logs])
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
                ax.plot(
                    ep,
                    [scale * sum(by_epoch[e]) / len(by_epoch[e]) for e in ep],
                    color=styles[model]["color"],
                    lw=1.5,
                    label=model,
                )
        ax.set_title(key + (" (%)" if scale != 1 else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    n_seeds = [len(runs) for runs in logs.values()]
    fig.suptitle("Training curves (" + ("1 seed" if max(n_seeds) == 1 else "mean over seeds") + ")", fontsize=10)
    _legend(fig, styles, [m for m in res.model_names() if m in logs])
    return atomic_write_figure(fig, path)


def make_figures(run_dir) -> list[Path]:
    """Write every figure the run's data allow into ``RUN_DIR/figures/``; returns their paths."""
    res = Results.load(run_dir)
    rd = rundir.run_dir_of(run_dir)
    made = [
        plot_robust_accuracy(res, rundir.figure_path(rd, "robust_accuracy.png")),
        plot_beta_sweep(res, rundir.figure_path(rd, "beta_sweep.png")),
        plot_training_curves(res, rd, rundir.figure_path(rd, "training_curves.png")),
        plot_reliability(res, rundir.figure_path(rd, "reliability.png")),
    ]
    return [p for p in made if p is not None]


def plot_reliability(res: Results, path: Path) -> Path | None:
    """Reliability diagram per model (first seed): accuracy against confidence, and beneath it the number of
    examples per bin (log scale), so that a bin of 2 examples does not read like one of 269."""
    from matplotlib.figure import Figure

    items = []
    for m in res.models():
        for entry in m.seeds():
            rel = entry.clean.get("reliability")
            if rel:
                items.append((m.name, entry.seed_id, rel, entry.clean))
                break
    if not items:
        return None
    ncols = _ncols(len(items))
    nrows = math.ceil(len(items) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 4.6 * nrows), dpi=100)
    outer = fig.add_gridspec(nrows, ncols, hspace=0.45, wspace=0.3)
    for i, (name, seed, rel, clean) in enumerate(items):
        inner = outer[i // ncols, i % ncols].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
        ax, axn = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
        edges, counts = rel["edges"], rel["count"]
        width = edges[1] - edges[0]
        for lo, acc, cnt in zip(edges[:-1], rel["accuracy"], counts):
            if cnt:  # a bin of few examples is drawn pale: its accuracy is mostly noise
                ax.bar(
                    lo,
                    acc,
                    width=width,
                    align="edge",
                    color="tab:blue",
                    edgecolor="white",
                    alpha=0.25 + 0.6 * min(1.0, math.log10(cnt) / 2),
                )
                axn.bar(lo, cnt, width=width, align="edge", color="grey", edgecolor="white")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xticklabels([])
        ax.set_title(f"{name} (seed {seed})\nECE {100 * clean['ece']:.2f}%, NLL {clean['nll']:.3f}", fontsize=9)
        ax.set_ylabel("accuracy")
        axn.set_xlim(0, 1)
        axn.set_yscale("log")
        axn.set_ylim(0.8, max(max(counts), 1) * 3)
        axn.set_ylabel("examples", fontsize=8)
        axn.tick_params(labelsize=7)
        axn.set_xlabel("confidence")
    fig.suptitle(
        "Reliability diagrams (one seed per model). Grey: examples per confidence bin (log scale); "
        "pale bars: bins of fewer than 100 examples",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.9 / (4.6 * nrows), bottom=0.5 / (4.6 * nrows))
    return atomic_write_figure(fig, path)
