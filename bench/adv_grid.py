"""A picture of what an attack did: clean images, adversarial images and the perturbation."""

from __future__ import annotations

from pathlib import Path

import torch

from .io import atomic_write_figure


def save_adv_grid(path: str | Path, x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, pred_clean: torch.Tensor,
                  pred_adv: torch.Tensor, title: str) -> Path:
    """Three rows (clean, adversarial, perturbation) of ``len(x)`` images, predicted labels above each.

    A wrong prediction is printed in red. The perturbation row uses a diverging map scaled to the
    largest absolute change, so a small eps stays visible.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    path = Path(path)
    x, adv = x.detach().cpu().float(), adv.detach().cpu().float()
    k = len(x)
    delta = adv - x
    scale = float(delta.abs().max()) or 1.0
    fig = Figure(figsize=(1.15 * k + 0.9, 4.2), dpi=110)
    axes = fig.subplots(3, k, squeeze=False)
    rows = (("clean", x, pred_clean), ("adversarial", adv, pred_adv), (f"perturbation (±{scale:.2g})", delta, None))
    for r, (label, imgs, preds) in enumerate(rows):
        for i in range(k):
            ax = axes[r][i]
            img = imgs[i].mean(0).numpy()  # (C, H, W) -> (H, W); our data sets have one channel
            if preds is None:
                ax.imshow(img, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
            else:
                ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ok = int(preds[i]) == int(y[i])
                ax.set_title(f"{'pred' if r else 'y=' + str(int(y[i])) + ' pred'} {int(preds[i])}",
                             fontsize=8, color="black" if ok else "red")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return atomic_write_figure(fig, path)
