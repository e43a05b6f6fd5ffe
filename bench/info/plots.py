"""Figures of the information diagnostics: the VIB beta sweep in the information plane, and the
information plane during training."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write_figure
from ..results import Results
from .bounds import SPREAD, record_flags
from .infoplane import PLANE_ESTIMATORS


def _save_fig(fig, path: Path) -> Path:
    return atomic_write_figure(fig, path, dpi=110)


def _beta_points(res: Results) -> list[dict]:
    pts = []
    for m in res.models():
        beta = m.config.get("beta")
        if beta is None:
            continue
        for entry in m.seeds():
            if entry.info:
                pts.append({"model": m.name, "seed": entry.seed_id, "beta": float(beta), "rec": entry.info})
    return sorted(pts, key=lambda p: (p["beta"], int(p["seed"])))


def plot_info_beta(res: Results, path: Path) -> Path | None:
    """I(Z;Y) against I(X;Z) across the run's VIB models (one point per model and seed)."""
    from matplotlib.figure import Figure

    pts = _beta_points(res)
    if not pts:
        return None
    fig = Figure(figsize=(7.5, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    markers = {"mine": "s", "jsd": "^", "infonce": "D"}
    colors = {"mine": "tab:orange", "jsd": "tab:green", "infonce": "tab:purple"}
    xs = []
    bx = [p["rec"]["bounds"].get("rate_nats") for p in pts]
    by = [p["rec"]["bounds"].get("izy_lower_nats") for p in pts]
    ok = [(a, b, p) for a, b, p in zip(bx, by, pts) if a is not None and b is not None]
    if ok:
        ax.plot([a for a, _, _ in ok], [b for _, b, _ in ok], "-o", color="tab:blue", lw=1.2, ms=6,
                label="bounds: (rate, H(Y)-CE)", zorder=3)
        for a, b, p in ok:
            ax.annotate(f"β={p['beta']:g}", (a, b), textcoords="offset points", xytext=(5, -12), fontsize=8,
                        color="tab:blue")
        xs += [a for a, _, _ in ok]
    seen, lines, any_shaky = set(), {}, False
    for p in pts:
        est = p["rec"]["estimates"]
        for e_name in est.get("I(X;Z)", {}):
            if e_name not in est.get("I(Z;Y)", {}):
                continue
            ex, ey = est["I(X;Z)"][e_name], est["I(Z;Y)"][e_name]
            shaky = any(f["flag"] == "unstable" and f["estimator"] == e_name
                        for f in record_flags(p["rec"]))
            col = colors.get(e_name, "grey")
            ax.errorbar(ex["nats"], ey["nats"], xerr=SPREAD * ex["std_nats"], yerr=SPREAD * ey["std_nats"],
                        fmt=markers.get(e_name, "o"), color=col, mfc="white" if shaky else col, ms=5, capsize=2,
                        lw=0.8, zorder=4)
            if e_name not in seen:
                ax.errorbar([], [], xerr=[], yerr=[], fmt=markers.get(e_name, "o"), color=col, ms=5, capsize=2,
                            lw=0.8, label=f"estimate: {e_name} (±{SPREAD:g} sd)")
            any_shaky = any_shaky or shaky
            seen.add(e_name)
            if not shaky:
                lines.setdefault(e_name, []).append((ex["nats"], ey["nats"]))
            ax.annotate(f"{p['beta']:g}", (ex["nats"], ey["nats"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=colors.get(e_name, "grey"))
            xs.append(ex["nats"])
    for e_name, xy in lines.items():
        if len(xy) > 1:
            ax.plot([a for a, _ in xy], [b for _, b in xy], ":", color=colors.get(e_name, "grey"), lw=0.8)
    h_y = pts[0]["rec"]["bounds"].get("h_y_nats")
    if h_y is not None:
        ax.axhline(h_y, ls="--", color="grey", lw=1, label=f"H(Y) = {h_y:.3f} nats")
    pos = [v for v in xs if v and v > 0]
    if pos and max(pos) / min(pos) > 20:  # rates span decades; symlog also shows estimates <= 0
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(min(min(xs) * 1.2, -0.2) if min(xs) < 0 else 0, max(pos) * 2.0)  # room for the labels
    if any_shaky:
        ax.text(0.01, 0.01, "hollow: restarts disagree (flag 'unstable')", transform=ax.transAxes, fontsize=7,
                va="bottom")
    ax.set_xlabel("I(X;Z) [nats]  (bound: rate, an upper bound)")
    ax.set_ylabel("I(Z;Y) [nats]  (bound: H(Y) - CE, a lower bound)")
    n = pts[0]["rec"]["n"]
    ax.set_title(f"VIB across beta: information plane of the representation z (n = {n} test examples)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save_fig(fig, path)



def plot_infoplane(name: str, seed, plane: dict, setup: dict, path: Path, h_y: float | None = None) -> Path:
    """One panel per estimator, one trajectory per layer, points coloured by epoch."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ests = [e for e in PLANE_ESTIMATORS if e in plane] + [e for e in plane if e not in PLANE_ESTIMATORS]
    fig = Figure(figsize=(5.6 * len(ests) + 1.2, 4.8))
    axes = [fig.add_subplot(1, len(ests), i + 1) for i in range(len(ests))]
    all_epochs = [p["epoch"] for e in ests for pts in plane[e].values() for p in pts]
    norm = Normalize(min(all_epochs), max(all_epochs) if max(all_epochs) > min(all_epochs) else min(all_epochs) + 1)
    cmap = colormaps["viridis"]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    sc = None
    for ax, est in zip(axes, ests):
        handles = []
        for i, (layer, pts) in enumerate(plane[est].items()):
            mk = markers[i % len(markers)]
            xs = [p["ixt_nats"] for p in pts]
            ys = [p["ity_nats"] for p in pts]
            ax.plot(xs, ys, "-", color="0.6", lw=0.8, zorder=1)
            sc = ax.scatter(xs, ys, c=[p["epoch"] for p in pts], cmap=cmap, norm=norm, marker=mk, s=34,
                            edgecolors="k", linewidths=0.4, zorder=2)
            handles.append(Line2D([], [], ls="", marker=mk, color="0.5", markeredgecolor="k", label=layer))
        st = setup.get(est, {})
        if est == "binning" and st.get("ceiling_nats"):
            ax.axvline(st["ceiling_nats"], ls=":", color="grey", lw=1)
            handles.append(Line2D([], [], ls=":", color="grey", label=f"log n = {st['ceiling_nats']:.2f}"))
        if h_y is not None:
            ax.axhline(h_y, ls="--", color="grey", lw=1)
            handles.append(Line2D([], [], ls="--", color="grey", label=f"H(Y) = {h_y:.2f}"))
        detail = (f"{st.get('bins')} bins" if est == "binning"
                  else f"{st.get('steps')} steps x {st.get('restarts')} restart(s), batch {st.get('batch_size')}")
        ax.set_title(f"{est} ({detail}, n = {st.get('n')})", fontsize=9)
        ax.set_xlabel("I(X;T) [nats]")
        ax.set_ylabel("I(T;Y) [nats]")
        ax.grid(alpha=0.3)
        if est == "binning" and st.get("ceiling_nats"):
            xs_all = [p["ixt_nats"] for pts in plane[est].values() for p in pts]
            if xs_all and min(xs_all) >= 0.98 * st["ceiling_nats"]:
                ax.text(0.03, 0.03, "every layer saturated at log n: each example has its own\nbinned vector; "
                        "try fewer --bins or narrower layers", transform=ax.transAxes, fontsize=7, va="bottom")
        ax.legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"Information plane during training: {name} seed {seed}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if sc is not None:
        cax = fig.add_axes((0.93, 0.15, 0.015, 0.7))
        fig.colorbar(sc, cax=cax, label="epoch")
    return _save_fig(fig, path)


