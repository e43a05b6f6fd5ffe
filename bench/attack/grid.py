"""A picture of what an attack did: clean images, adversarial images and the perturbation."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import rundir
from ..io import atomic_write_figure
from ..protocol import EVAL_SEED, predict_labels
from .cost import run_attack

GRID_K = 10


def save_adv_grid(
    path: str | Path,
    x: torch.Tensor,
    adv: torch.Tensor,
    y: torch.Tensor,
    pred_clean: torch.Tensor,
    pred_adv: torch.Tensor,
    title: str,
) -> Path:
    """Three rows (clean, adversarial, perturbation) of ``len(x)`` images, predicted labels above each.

    A wrong prediction is printed in red. The perturbation row uses a diverging map scaled to the
    largest absolute change, so a small eps stays visible; a colour bar beside it gives the scale.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    path = Path(path)
    x, adv = x.detach().cpu().float(), adv.detach().cpu().float()
    k = len(x)
    delta = adv - x
    scale = float(delta.abs().max()) or 1.0
    fig = Figure(figsize=(1.15 * k + 1.6, 4.2), dpi=110)
    axes = fig.subplots(3, k, squeeze=False)
    rows = (("clean", x, pred_clean), ("adversarial", adv, pred_adv), ("perturbation", delta, None))
    shown = None
    for r, (label, imgs, preds) in enumerate(rows):
        for i in range(k):
            ax = axes[r][i]
            img = imgs[i].mean(0).numpy()  # (C, H, W) -> (H, W); our data sets have one channel
            if preds is None:
                shown = ax.imshow(img, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
            else:
                ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ok = int(preds[i]) == int(y[i])
                ax.set_title(
                    f"{'pred' if r else 'y=' + str(int(y[i])) + ' pred'} {int(preds[i])}",
                    fontsize=8,
                    color="black" if ok else "red",
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    right = 1 - 1.0 / fig.get_size_inches()[0]  # room for the colour bar
    fig.tight_layout(rect=(0, 0, right, 1))
    if shown is not None:
        low = axes[2][0].get_position()
        cax = fig.add_axes(
            (right + 0.1 / fig.get_size_inches()[0], low.y0, 0.12 / fig.get_size_inches()[0], low.height)
        )
        bar = fig.colorbar(shown, cax=cax)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("adversarial − clean", fontsize=7)
    return atomic_write_figure(fig, path)


def save_grid(
    run_dir: Path, name: str, seed: int, model, records, x, y, *, grid_eps: float, device, overrides_for
) -> Path | None:
    """Re-run the strongest L-inf attack at the eps closest to ``grid_eps`` on the first few examples.

    ``overrides_for(attack_name, randomised)`` gives the budget overrides the stage used.
    """
    from attacks import create_attack, get_spec

    cands = [r for r in records if not r.is_worst_case and not get_spec(r.attack).minimum_norm and r.eps > 0]
    norm = "Linf" if any(r.norm == "Linf" for r in cands) else "L2"
    cands = [r for r in cands if r.norm == norm]
    if not cands:
        return None
    eps = min({r.eps for r in cands}, key=lambda e: (abs(e - grid_eps), e))
    best = min((r for r in cands if r.eps == eps), key=lambda r: r.robust_acc)
    model.to(device)
    randomised = best.protocol in ("paper", "eot")
    atk = create_attack(best.attack, model, eps, **overrides_for(best.attack, randomised))
    k = min(GRID_K, len(x))
    adv, _ = run_attack(model, atk, x[:k], y[:k], batch_size=k, seed=best.get("attack_seed", EVAL_SEED), device=device)
    path = rundir.figure_path(run_dir, f"adv_{name}_seed{seed}.png")
    save_adv_grid(
        path,
        x[:k],
        adv,
        y[:k],
        predict_labels(model, x[:k], device),
        predict_labels(model, adv, device),
        f"{name} seed {seed}: {best.attack} [{best.protocol}], {norm} eps={eps:g} "
        f"(robust {100 * best.robust_acc:.1f}% on {best.n}); red = wrong",
    )
    model.cpu()
    return path
