"""Figures of the information diagnostics: the VIB beta sweep in the information plane, and the
information plane during training."""

from __future__ import annotations

import math
from pathlib import Path

from ..io import atomic_write_figure
from ..results import Results
from .bounds import SPREAD, ixz_interval
from .options import BOUNDS_KEY, PLANE_ESTIMATORS


def _save_fig(fig, path: Path) -> Path:
    return atomic_write_figure(fig, path, dpi=110)


MARKERS = {"mine": "s", "jsd": "^", "infonce": "D"}
COLORS = {"mine": "tab:orange", "jsd": "tab:green", "infonce": "tab:purple"}


def _beta_points(res: Results) -> list[dict]:
    """One point per (VIB model, seed) with info: beta, the series (other settings, e.g. k), the record."""
    pts = []
    for m in res.models():
        beta = m.beta
        if beta is None:
            continue
        series = f"k={m.config['k']}" if "k" in m.config else m.name
        for entry in m.seeds():
            if entry.info:
                pts.append(
                    {
                        "model": m.name,
                        "seed": entry.seed_id,
                        "beta": beta,
                        "series": series,
                        "bounds": entry.info_bounds,
                        "flags": entry.info_flags,
                        "rec": entry.info,
                    }
                )
    return sorted(pts, key=lambda p: (p["series"], p["beta"], p["seed"]))


def _mean_by_beta(pts: list[dict], key) -> tuple[list[float], list[float]]:
    """(betas, mean over seeds of key(point)) for the points where key gives a number."""
    acc: dict[float, list[float]] = {}
    for p in pts:
        v = key(p)
        if v is not None and math.isfinite(v):
            acc.setdefault(p["beta"], []).append(v)
    betas = sorted(acc)
    return betas, [sum(acc[b]) / len(acc[b]) for b in betas]


def _estimates(ax, pts: list[dict], quantity: str, floor: float | None, seen: set) -> bool:
    """Unflagged estimates with +- SPREAD sd bars; flagged ones as grey crosses (clipped at ``floor``)."""
    any_flagged = False
    for p in pts:
        flagged = {f.get("estimator") for f in p["flags"] if f.get("quantity") == quantity}
        for name, e in ((p["rec"].get("estimates") or {}).get(quantity) or {}).items():
            v, sd = e.get("nats"), e.get("std_nats") or 0.0
            if v is None:
                continue
            if name in flagged:
                any_flagged = True
                low = floor is not None and v <= floor
                ax.plot(p["beta"], floor if low else v, "v" if low else "x", color="0.45", ms=6, mew=1.2, zorder=4)
                continue
            label = None if name in seen else f"{name} (no flag, ±{SPREAD:g} sd)"
            seen.add(name)
            ax.errorbar(
                p["beta"],
                v,
                yerr=SPREAD * sd,
                fmt=MARKERS.get(name, "o"),
                color=COLORS.get(name, "grey"),
                ms=5,
                capsize=2,
                lw=0.8,
                zorder=5,
                label=label,
            )
    return any_flagged


def plot_info_beta(res: Results, path: Path) -> Path | None:
    """The VIB trade-off across beta: I(X;Z) and I(Z;Y) against beta (their bounds as bands, the unflagged
    estimates as points, the flagged ones as grey crosses), and the information plane of the bounds."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    pts = _beta_points(res)
    if not pts:
        return None
    betas = sorted({p["beta"] for p in pts})
    color = {bt: colormaps["viridis"](i / max(1, len(betas) - 1) * 0.9) for i, bt in enumerate(betas)}
    fig = Figure(figsize=(15.5, 4.9))
    ax_x, ax_y, ax_p = (fig.add_subplot(1, 3, i + 1) for i in range(3))
    b = lambda key: lambda p: p["bounds"].get(key)  # noqa: E731
    series = list(dict.fromkeys(p["series"] for p in pts))
    styles = ["-", "--", "-.", ":"]
    all_x: list[float] = []
    for si, sname in enumerate(series):
        sp = [p for p in pts if p["series"] == sname]
        ls = styles[si % len(styles)]
        tag = f" ({sname})" if len(series) > 1 else ""
        bl, lo = _mean_by_beta(sp, b("ixz_lower_nats"))
        bu, up = _mean_by_beta(sp, lambda p: (ixz_interval(p["bounds"]) or (None, None, None))[1])
        if bl and bl == bu:
            ax_x.fill_between(
                bl, lo, up, color="tab:blue", alpha=0.25, lw=0, label=f"I(X;Z) in [known-encoder lower, upper]{tag}"
            )
            ax_x.plot(bl, lo, ls, color="tab:blue", lw=1)
            ax_x.plot(bu, up, ls, color="tab:blue", lw=1)
            all_x += lo + up
        br, rate = _mean_by_beta(sp, b("rate_nats"))
        if br:
            ax_x.plot(br, rate, ls, color="black", lw=1.2, marker="o", ms=4, label=f"rate (upper bound){tag}")
            all_x += rate
        by, izy_lo = _mean_by_beta(sp, b("izy_lower_nats"))
        bh, h_y = _mean_by_beta(sp, b("h_y_nats"))
        if by and by == bh:
            ax_y.fill_between(
                by, izy_lo, h_y, color="tab:blue", alpha=0.25, lw=0, label=f"I(Z;Y) in [H(Y) - CE, H(Y)]{tag}"
            )
            ax_y.plot(by, izy_lo, ls, color="tab:blue", lw=1, marker="o", ms=4)
        # the information plane of the bounds: an I(X;Z) interval at the height of H(Y) - CE, per beta
        for p in sp:
            iv, yl = ixz_interval(p["bounds"]), p["bounds"].get("izy_lower_nats")
            if yl is None:
                continue
            rate_p = p["bounds"].get("rate_nats")
            lo_p, up_p = (iv[0], iv[1]) if iv else (None, rate_p)
            if up_p is None:
                continue
            if lo_p is not None:
                # thinner bars for larger beta, drawn on top: bars at the same height stay visible
                width = 8.0 - 5.0 * betas.index(p["beta"]) / max(1, len(betas) - 1)
                ax_p.plot(
                    [lo_p, up_p],
                    [yl, yl],
                    ls,
                    color=color[p["beta"]],
                    lw=width,
                    alpha=0.85,
                    solid_capstyle="butt",
                    zorder=2 + betas.index(p["beta"]),
                )
            ax_p.plot(up_p, yl, "o", color=color[p["beta"]], ms=5)
    log_n = next((p["bounds"]["log_n_nats"] for p in pts if p["bounds"].get("log_n_nats")), None)
    if log_n:
        ax_x.axhline(log_n, ls=":", color="grey", lw=1, label=f"log N = {log_n:.2f} (cap of the lower bound)")
    pos = [v for v in all_x if v > 0]
    floor = min(pos) / 3 if pos else 0.1
    flagged_x = _estimates(ax_x, pts, "I(X;Z)", floor, set())
    flagged_y = _estimates(ax_y, pts, "I(Z;Y)", None, set())
    h = next((p["bounds"].get("h_y_nats") for p in pts if p["bounds"].get("h_y_nats")), None)
    for ax in (ax_y, ax_p):
        if h is not None:
            ax.axhline(h, ls="--", color="grey", lw=1, label=f"H(Y) = {h:.3f}")
    for ax in (ax_x, ax_y):
        ax.set_xscale("log")
        ax.set_xlabel("β")
        ax.grid(alpha=0.3, which="both")
    if pos:
        ax_x.set_yscale("log")
        ax_x.set_ylim(floor * 0.8, max(pos) * 1.6)
    ax_x.set_ylabel("I(X;Z) [nats]")
    ax_y.set_ylabel("I(Z;Y) [nats]")
    ax_x.set_title("I(X;Z) against β", fontsize=9)
    ax_y.set_title("I(Z;Y) against β", fontsize=9)
    extra = (
        [
            Line2D([], [], ls="", marker="x", color="0.45", label="flagged estimate (value not shown as one)"),
            Line2D([], [], ls="", marker="v", color="0.45", label="flagged, below the axis (e.g. negative)"),
        ]
        if flagged_x or flagged_y
        else []
    )
    for ax in (ax_x, ax_y):
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=handles + extra, fontsize=7, loc="best")
    ax_p.legend(
        handles=[Line2D([], [], color=color[bt], lw=3, label=f"β = {bt:g}") for bt in betas],
        fontsize=7,
        loc="lower right",
    )
    _log_nats_axis(ax_p)
    ax_p.set_xlabel("I(X;Z) [nats]: bar = [known-encoder lower, upper], dot = upper")
    ax_p.set_ylabel("H(Y) - CE <= I(Z;Y) [nats]")
    ax_p.set_title("the trade-off: information plane of the bounds", fontsize=9)
    ax_p.grid(alpha=0.3, which="both")
    n = pts[0]["rec"].get("n")
    n_seeds = len({p["seed"] for p in pts})
    fig.suptitle(
        f"VIB across β on {n} test examples ({n_seeds} seed{'s' if n_seeds != 1 else ''}; one point per "
        "model and seed)",
        fontsize=10,
    )
    fig.tight_layout()
    return _save_fig(fig, path)


def _plane_order(plane: dict) -> list[str]:
    """Panels: binning by bin count, then mine, then the known-encoder bounds, then anything else."""

    def key(k: str):
        if k.startswith("binning"):
            return (0, int(k.split("@")[1]) if "@" in k else 0)
        return (
            (1 + (list(PLANE_ESTIMATORS) + [BOUNDS_KEY]).index(k), 0)
            if k in (*PLANE_ESTIMATORS, BOUNDS_KEY)
            else (9, 0)
        )

    return sorted(plane, key=key)


def _log_nats_axis(ax) -> None:
    """A log x axis of nats labelled 1, 2, 5, 10, 20, 50, ... (no crowded "2x10^1" minor labels); over less
    than a factor of 4 matplotlib's own labels, which label the minor ticks there."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    xs = [x for line in ax.get_lines() for x in line.get_xdata() if x > 0]
    if not xs or max(xs) < 4 * min(xs):
        return
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _bounds_panel(ax, plane: dict, st: dict, cmap, norm, handles):
    """The VIB z panel: (rate, H(Y) - CE) per epoch; the known-encoder interval at each snapshot epoch
    (bars coloured by epoch) and for the final weights (red); returns the epoch scatter or None."""
    from matplotlib.lines import Line2D

    sc = None
    for label, pts in plane.items():
        if not pts:
            continue
        if "interval" in label:
            final = "final" in label
            for p in pts:
                if p.get("ity_nats") is None:  # no decoder: no H(Y) - CE to draw the bar at
                    continue
                ax.plot(
                    [p["ixt_nats"], p["ixt_upper_nats"]],
                    [p["ity_nats"]] * 2,
                    "-",
                    lw=4 if final else 3,
                    color="tab:red" if final else cmap(norm(p["epoch"])),
                    alpha=0.7 if final else 0.85,
                    solid_capstyle="butt",
                    zorder=3 if final else 2,
                )
            what = (
                f"epoch {pts[-1]['epoch']} ({st.get('weights') or 'final weights'})"
                if final
                else f"each snapshot ({st.get('snapshot_weights') or 'live weights'})"
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    color="tab:red" if final else "0.45",
                    lw=4,
                    alpha=0.7,
                    label=f"I(X;Z) in [lower, upper], {what}",
                )
            )
        else:
            xs, ys = [p["ixt_nats"] for p in pts], [p["ity_nats"] for p in pts]
            ax.plot(xs, ys, "-", color="0.6", lw=0.8, zorder=1)
            sc = ax.scatter(
                xs,
                ys,
                c=[p["epoch"] for p in pts],
                cmap=cmap,
                norm=norm,
                marker="o",
                s=34,
                edgecolors="k",
                linewidths=0.4,
                zorder=2,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="o",
                    color="0.5",
                    markeredgecolor="k",
                    label="(rate, H(Y) - CE) per epoch, training log",
                )
            )
    if st.get("log_n_nats"):
        ax.axvline(st["log_n_nats"], ls=":", color="grey", lw=1)
        handles.append(Line2D([], [], ls=":", color="grey", label=f"log n = {st['log_n_nats']:.2f} (lower's cap)"))
    _log_nats_axis(ax)
    ax.set_title(f"VIB z: bounds (n = {st.get('n')})", fontsize=9)
    return sc


def plot_infoplane(name: str, seed, plane: dict, setup: dict, path: Path, h_y: float | None = None) -> Path:
    """One panel per estimator (and bin count), one trajectory per layer, points coloured by epoch; for a
    VIB a panel of bounds on its stochastic z."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ests = [e for e in _plane_order(plane) if plane[e]]
    cols = min(3, len(ests))
    rows = math.ceil(len(ests) / cols)
    fig = Figure(figsize=(5.2 * cols + 1.2, 4.4 * rows + 0.5))
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(len(ests))]
    all_epochs = [p["epoch"] for e in ests for pts in plane[e].values() for p in pts]
    norm = Normalize(min(all_epochs), max(all_epochs) if max(all_epochs) > min(all_epochs) else min(all_epochs) + 1)
    cmap = colormaps["viridis"]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    sc = None
    for ax, est in zip(axes, ests):
        handles = []
        st = setup.get(est, {})
        binning = est.startswith("binning")
        if est == BOUNDS_KEY:
            sc = _bounds_panel(ax, plane[est], st, cmap, norm, handles) or sc
        else:
            for i, (layer, pts) in enumerate(plane[est].items()):
                mk = markers[i % len(markers)]
                xs = [p["ixt_nats"] for p in pts]
                ys = [p["ity_nats"] for p in pts]
                ax.plot(xs, ys, "-", color="0.6", lw=0.8, zorder=1)
                sc = ax.scatter(
                    xs,
                    ys,
                    c=[p["epoch"] for p in pts],
                    cmap=cmap,
                    norm=norm,
                    marker=mk,
                    s=34,
                    edgecolors="k",
                    linewidths=0.4,
                    zorder=2,
                )
                handles.append(Line2D([], [], ls="", marker=mk, color="0.5", markeredgecolor="k", label=layer))
            if binning and st.get("ceiling_nats"):
                ax.axvline(st["ceiling_nats"], ls=":", color="grey", lw=1)
                handles.append(Line2D([], [], ls=":", color="grey", label=f"log n = {st['ceiling_nats']:.2f}"))
            detail = (
                f"{st.get('bins')} bins"
                if binning
                else f"{st.get('steps')} steps x {st.get('restarts')} restart(s), batch {st.get('batch_size')}"
            )
            ax.set_title(f"{est.split('@')[0]} ({detail}, n = {st.get('n')})", fontsize=9)
        if h_y is not None:
            ax.axhline(h_y, ls="--", color="grey", lw=1)
            handles.append(Line2D([], [], ls="--", color="grey", label=f"H(Y) = {h_y:.2f}"))
        ax.set_xlabel("I(X;T) [nats]" if est != BOUNDS_KEY else "I(X;Z) [nats]")
        ax.set_ylabel("I(T;Y) [nats]" if est != BOUNDS_KEY else "I(Z;Y) [nats]")
        ax.grid(alpha=0.3)
        if binning and st.get("ceiling_nats"):
            xs_all = [p["ixt_nats"] for pts in plane[est].values() for p in pts]
            if xs_all and min(xs_all) >= 0.98 * st["ceiling_nats"]:
                ax.text(
                    0.03,
                    0.03,
                    "every layer saturated at log n: each example has its own\nbinned vector; "
                    "try fewer --bins or narrower layers",
                    transform=ax.transAxes,
                    fontsize=7,
                    va="bottom",
                )
        ax.legend(handles=handles, fontsize=7, loc="best")
    note = (
        ("binned I(X;T) of a deterministic layer is a property of the binning: the layer's true I(X;T) is infinite")
        if any(e.startswith("binning") for e in ests)
        else ""
    )
    fig.suptitle(f"Information plane during training: {name} seed {seed}" + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if sc is not None:
        cax = fig.add_axes((0.93, 0.15, 0.015, 0.7))
        fig.colorbar(sc, cax=cax, label="epoch")
    return _save_fig(fig, path)


def plot_plane12(runs: list[dict], estimators, path: Path) -> Path | None:
    """The 12-bit experiment (``bench.info.plane12``): one panel per (activation, estimator), one trajectory
    per hidden layer (the mean over seeds at each snapshot epoch), points coloured by log epoch."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    acts = list(dict.fromkeys(r["activation"] for r in runs))
    if not runs or not estimators:
        return None
    fig = Figure(figsize=(4.6 * len(estimators) + 1.0, 3.9 * len(acts) + 0.6))
    cmap, markers = colormaps["viridis"], ["o", "s", "^", "D", "v", "P", "X"]
    epochs = [e["epoch"] for e in runs[0]["errors"]]
    norm = LogNorm(max(1, min(e for e in epochs if e > 0) if any(epochs) else 1), max(2, max(epochs)))
    sc = None
    for i, act in enumerate(acts):
        mine = [r for r in runs if r["activation"] == act]
        for j, est in enumerate(estimators):
            ax = fig.add_subplot(len(acts), len(estimators), i * len(estimators) + j + 1)
            handles = []
            layers = sorted(mine[0]["plane"][est], key=lambda n: int(n.removeprefix("hidden")))
            for k, layer in enumerate(layers):
                curves = [r["plane"][est][layer] for r in mine]
                xs = [sum(c[t]["ixt_nats"] for c in curves) / len(curves) for t in range(len(curves[0]))]
                ys = [sum(c[t]["ity_nats"] for c in curves) / len(curves) for t in range(len(curves[0]))]
                ep = [max(1, p["epoch"]) for p in curves[0]]
                ax.plot(xs, ys, "-", color="0.6", lw=0.8, zorder=1)
                sc = ax.scatter(
                    xs,
                    ys,
                    c=ep,
                    cmap=cmap,
                    norm=norm,
                    marker=markers[k % len(markers)],
                    s=26,
                    edgecolors="k",
                    linewidths=0.3,
                    zorder=2,
                )
                handles.append(
                    Line2D(
                        [], [], ls="", marker=markers[k % len(markers)], color="0.5", markeredgecolor="k", label=layer
                    )
                )
            ax.axvline(math.log(4096), ls=":", color="grey", lw=1)
            ax.set_title(f"{act}: {est} (mean of {len(mine)} seeds)", fontsize=9)
            ax.set_xlabel("I(X;T) [nats]")
            ax.set_ylabel("I(T;Y) [nats]")
            ax.grid(alpha=0.3)
            ax.legend(handles=handles, fontsize=6, loc="lower right")
    fig.suptitle("12-bit task: information plane per layer (dotted: log 4096)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if sc is not None:
        fig.colorbar(sc, cax=fig.add_axes((0.945, 0.15, 0.012, 0.7)), label="epoch (0 drawn at 1)")
    return _save_fig(fig, path)
