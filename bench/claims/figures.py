"""The claims figures, written into ``RUN_DIR/figures/``:

* ``claims_beta.png``: accuracy against beta under the paper's protocol (CW inside the L2 budget, and
  without a bound) and under the strongest evaluation, the baseline as horizontal lines; FGS accuracy
  relative to the baseline against beta, per eps, for both protocols;
* ``claims_zeros.png``: the paper's Figure 3 layout: the first ten test zeros attacked towards 1, one
  row per model (baseline first, then beta increasing), the paper's CW on the left, the strongest
  attack on the right; a red title marks a failed attack; L0 / L2 / L-inf under each image;
* ``claims_zeros_norms.png``: mean L0, L2 and L-inf of the successful perturbations against beta.
"""

from __future__ import annotations

import math
from pathlib import Path

from .. import rundir
from ..io import atomic_write_figure
from .verdicts import ModelData, compare_sweep, sweep_models, zeros_summary


def _beta_axis(ax, betas):
    ax.set_xticks(range(len(betas)))
    ax.set_xticklabels(["0" if b == 0 else f"{b:.0e}".replace("e-0", "e-") for b in betas], fontsize=7, rotation=45)
    ax.set_xlabel("beta")


def beta_figure(run_dir, data: dict[str, ModelData], opts) -> Path | None:
    from matplotlib.figure import Figure

    sweep = sweep_models(data, opts.baseline)
    if opts.baseline not in data or not sweep:
        return None
    n_linf = len(opts.eps_linf)
    fig = Figure(figsize=(4.2 * (1 + n_linf), 3.6), dpi=100)
    axes = fig.subplots(1, 1 + n_linf, squeeze=False).ravel()
    ax = axes[0]
    for strongest, unbounded, style, label in (
        (False, False, "-o", f"CW (paper), L2 <= {opts.eps_l2:g}"),
        (False, True, ":s", "CW (paper), unbounded"),
        (True, False, "--^", f"strongest, L2 <= {opts.eps_l2:g}"),
    ):
        rows = compare_sweep(data, opts.baseline, "L2", None if unbounded else opts.eps_l2, strongest, opts.alpha)
        if not rows:
            continue
        (line,) = ax.plot(range(len(rows)), [100 * r["acc"] for r in rows], style, ms=4, label=label)
        ax.axhline(100 * rows[0]["acc_baseline"], color=line.get_color(), lw=0.8, ls=style[:-1] or "-", alpha=0.5)
        for i, r in enumerate(rows):
            if r["better"]:
                ax.plot(i, 100 * r["acc"], "*", color=line.get_color(), ms=10, alpha=0.6)
    _beta_axis(ax, [m.beta for m in sweep])
    ax.set_ylabel("accuracy under attack (%)")
    ax.set_title(f"L2 attacks (thin lines: {opts.baseline}; *: McNemar-Holm better)", fontsize=8)
    ax.legend(fontsize=7)
    for ax, eps in zip(axes[1:], opts.eps_linf):
        for strongest, style, label in ((False, "-o", "FGS (paper)"), (True, "--^", "strongest")):
            rows = compare_sweep(data, opts.baseline, "Linf", eps, strongest, opts.alpha)
            ratios = [r["acc"] / r["acc_baseline"] if r["acc_baseline"] > 0 else math.nan for r in rows]
            ax.plot(range(len(rows)), ratios, style, ms=4, label=label)
        ax.axhline(1.0, color="grey", lw=0.8)
        _beta_axis(ax, [m.beta for m in sweep])
        ax.set_ylabel(f"accuracy / {opts.baseline}'s")
        ax.set_title(f"L-inf eps {eps:g}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return atomic_write_figure(fig, rundir.figure_path(run_dir, "claims_beta.png"))


def zeros_figure(run_dir, res, data: dict[str, ModelData], opts) -> Path | None:
    from matplotlib.figure import Figure

    from .store import load_zeros_images

    order = ([data[opts.baseline]] if opts.baseline in data else []) + sweep_models(data, opts.baseline)
    rows = []
    for m in order:
        if not m.zeros:
            continue
        seed = sorted(m.zeros)[0]
        images = load_zeros_images(run_dir, m.name, seed)
        if "paper" in images:
            rows.append((m, m.zeros[seed], images))
    if not rows:
        return None
    n = rows[0][2]["paper"].shape[0]
    fig = Figure(figsize=(0.75 * 2 * n + 1.2, 0.95 * len(rows) + 0.6), dpi=100)
    axes = fig.subplots(len(rows), 2 * n, squeeze=False)
    for i, (m, z, images) in enumerate(rows):
        for j, which in enumerate(("paper", "strongest")):
            for k in range(n):
                ax = axes[i, j * n + k]
                ax.imshow(images[which][k].squeeze(0).numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ok = z[which]["success"][k]
                if ok:
                    ax.set_xlabel(
                        f"{z[which]['l0'][k]:.0f}/{z[which]['l2'][k]:.1f}/{z[which]['linf'][k]:.2f}",
                        fontsize=5,
                        labelpad=1,
                    )
                else:
                    for sp in ax.spines.values():
                        sp.set_color("red")
                        sp.set_linewidth(1.5)
                if k == 0 and j == 0:
                    ax.set_ylabel(m.name.replace("vib_beta", "beta "), fontsize=7)
                if i == 0 and k == 0:
                    ax.set_title("paper's CW" if which == "paper" else "strongest", fontsize=8, loc="left")
    fig.suptitle(
        f"First {n} test zeros attacked towards {opts.zeros_target} (red frame: the attack failed; L0/L2/L-inf below)",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return atomic_write_figure(fig, rundir.figure_path(run_dir, "claims_zeros.png"))


def zeros_norms_figure(run_dir, data, opts) -> Path | None:
    from matplotlib.figure import Figure

    if opts.baseline not in data:
        return None
    z = zeros_summary(data, opts.baseline)
    if not z["paper"]["per_beta"]:
        return None
    fig = Figure(figsize=(12, 3.4), dpi=100)
    axes = fig.subplots(1, 3).ravel()
    for ax, key, label in zip(axes, ("l0", "l2", "linf"), ("L0 (pixels changed)", "L2", "L-inf")):
        for which, style in (("paper", "-o"), ("strongest", "--^")):
            per = z[which]["per_beta"]
            ax.plot(
                range(len(per)),
                [p[key] if p[key] is not None else math.nan for p in per],
                style,
                ms=4,
                label=f"{which} (rho {z[which]['spearman'][key]:+.2f})"
                if z[which]["spearman"][key] is not None
                else which,
            )
        _beta_axis(ax, [p["beta"] for p in z["paper"]["per_beta"]])
        ax.set_title(f"mean {label} of successful perturbations", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return atomic_write_figure(fig, rundir.figure_path(run_dir, "claims_zeros_norms.png"))


def claims_figures(run_dir, res, data, opts) -> list[Path]:
    out = [
        beta_figure(run_dir, data, opts),
        zeros_figure(run_dir, res, data, opts),
        zeros_norms_figure(run_dir, data, opts),
    ]
    return [p for p in out if p is not None]
