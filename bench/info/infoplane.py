"""The information plane during training (``vib-bench infoplane``; Shwartz-Ziv & Tishby 2017).

From the activation snapshots ``vib-bench train --snapshot-every E`` stores: per layer and snapshot
epoch, (I(X;T), I(T;Y)) by binning (each unit into equal-width bins; X uniform over the snapshot
examples, so I(X;T) = H(T) and I(T;Y) = H(T) + H(Y) - H(T,Y)) or by MINE with a small budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import BenchError
from ..snapshots import hidden_index
from .bounds import entropy_of_counts
from .stage import hint

PLANE_ESTIMATORS = ("binning", "mine")
PLANE_BINS = 30
PLANE_MINE_STEPS = 300
PLANE_MINE_RESTARTS = 1
PLANE_MINE_BATCH = 64


def discretize(t: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Bin index in ``0 .. bins-1`` of every entry: ``bins`` equal-width bins over ``[lo, hi]``."""
    if bins < 1:
        raise BenchError(f"--bins must be >= 1, got {bins}")
    t = t.float()
    if not hi > lo:  # a constant layer: one bin
        return torch.zeros(t.shape, dtype=torch.long)
    idx = torch.floor((t - lo) * (bins / (hi - lo))).long()
    return idx.clamp_(0, bins - 1)


def binned_information(t: torch.Tensor, y: torch.Tensor, bins: int, lo: float, hi: float) -> dict:
    """(I(X;T), I(T;Y)) in nats of a binned layer, X uniform over the N samples.

    ``t`` is (N, units) activations, ``y`` (N,) integer labels. Each distinct binned row is one
    value of T; T is a function of X, so I(X;T) = H(T) <= log N, and I(T;Y) = H(T) + H(Y) - H(T,Y).
    Fully vectorised: one ``torch.unique(dim=0)`` and three ``bincount``s.
    """
    t = t.reshape(len(t), -1)
    y = y.long().flatten()
    if len(t) != len(y):
        raise BenchError(f"activations and labels differ in length ({len(t)} vs {len(y)})")
    codes = discretize(t, lo, hi, bins)
    _, t_id = torch.unique(codes, dim=0, return_inverse=True)
    n_classes = int(y.max()) + 1 if len(y) else 1
    h_t = entropy_of_counts(torch.bincount(t_id))
    h_y = entropy_of_counts(torch.bincount(y))
    h_ty = entropy_of_counts(torch.bincount(t_id * n_classes + y))
    ity = min(max(0.0, h_t + h_y - h_ty), h_t, h_y)  # clip rounding noise to the exact bounds
    return {"ixt_nats": h_t, "ity_nats": ity, "distinct": int(t_id.max()) + 1 if len(t_id) else 0}



def layer_range(name: str, acts: list[torch.Tensor], activation: str | None) -> tuple[float, float, str]:
    """The binning range of a layer over all epochs: tanh [-1, 1]; ReLU [0, max]; otherwise [min, max]."""
    lo = min(float(a.min()) for a in acts)
    hi = max(float(a.max()) for a in acts)
    if hidden_index(name) is not None:
        if activation == "tanh":
            return -1.0, 1.0, "tanh: [-1, 1]"
        if lo >= 0:
            return 0.0, hi, "ReLU: [0, max]"
    return lo, hi, "[min, max]"



def infoplane_model(snaps: dict[int, dict], layers: list[str], estimators: list[str], *, bins: int,
                    activation: str | None, x: torch.Tensor | None = None, mine_opts: dict | None = None,
                    log=print) -> tuple[dict, dict]:
    """(result, setup): result[estimator][layer] = [{"epoch", "ixt_nats", "ity_nats"}, ...]."""
    from .estimate import estimate_mi

    epochs = sorted(snaps)
    labels = snaps[epochs[0]]["labels"].long()
    result, setup = {}, {}
    for est in estimators:
        t0 = time.perf_counter()
        result[est] = {}
        if est == "binning":
            ranges = {}
            for layer in layers:
                acts = [snaps[e][layer] for e in epochs]
                lo, hi, how = layer_range(layer, acts, activation)
                ranges[layer] = {"lo": lo, "hi": hi, "rule": how}
                pts = []
                for e, a in zip(epochs, acts):
                    r = binned_information(a, labels, bins, lo, hi)
                    pts.append({"epoch": e, "ixt_nats": r["ixt_nats"], "ity_nats": r["ity_nats"],
                                "distinct": r["distinct"]})
                result[est][layer] = pts
            setup[est] = {"bins": bins, "n": len(labels), "ranges": ranges, "ceiling_nats": math.log(len(labels))}
        else:
            opts = dict(mine_opts or {})
            x_flat = x.reshape(len(x), -1).float()
            y_onehot = torch.nn.functional.one_hot(labels, int(labels.max()) + 1).float()
            for layer in layers:
                pts = []
                for e in epochs:
                    t = snaps[e][layer].reshape(len(labels), -1).float()
                    with hint("see --batch-size here and --snapshot-n of train"):
                        rx = estimate_mi(x_flat, t, "mine", **opts)
                        ry = estimate_mi(t, y_onehot, "mine", **opts)
                    pts.append({"epoch": e, "ixt_nats": rx.nats, "ity_nats": ry.nats,
                                "ixt_std_nats": rx.std_nats, "ity_std_nats": ry.std_nats})
                result[est][layer] = pts
            setup[est] = {"n": len(labels), **{k: (str(v) if k == "device" else v) for k, v in opts.items()}}
        setup[est]["seconds"] = time.perf_counter() - t0
        log(f"  {est}: {len(layers)} layer(s) x {len(epochs)} epochs in {setup[est]['seconds']:.1f} s")
    return result, setup




def check_plane_estimators(names: list[str]) -> list[str]:
    names = [e.lower() for e in (names or [])]
    if not names:
        raise BenchError("--estimator is empty")
    for e in names:
        if e not in PLANE_ESTIMATORS:
            raise BenchError(f"unknown information-plane estimator {e!r}; choose from {', '.join(PLANE_ESTIMATORS)}")
    return list(dict.fromkeys(names))


@dataclass
class InfoplaneOptions:
    run_dir: Path
    models: list[str] | None = None
    estimators: list[str] = field(default_factory=lambda: ["binning"])
    bins: int = PLANE_BINS
    layers: list[str] | None = None
    steps: int = PLANE_MINE_STEPS
    restarts: int = PLANE_MINE_RESTARTS
    batch_size: int = PLANE_MINE_BATCH
    seed: int = 0
    mi_threads: int = 1
    data_dir: str | None = None
    device: torch.device | str = "cpu"


def run_infoplane(opts: InfoplaneOptions, log=print) -> list[Path]:
    """The information plane of every selected (model, seed) with snapshots; returns the figures written."""
    from ..env import environment
    from ..results import Results, update_results
    from ..rundir import figure_path, model_dir, require_run_dir
    from ..runs import load_run_dataset, open_run, select_trained
    from ..snapshots import default_layers, list_snapshots, load_snapshots
    from .bounds import label_entropy
    from .plots import plot_infoplane
    from .stage import check_positive

    run_dir = require_run_dir(opts.run_dir)
    estimators = check_plane_estimators(opts.estimators)
    if opts.bins < 2:
        raise BenchError(f"--bins must be >= 2, got {opts.bins}")
    check_positive(opts.steps, "--steps")
    check_positive(opts.restarts, "--restarts")
    check_positive(opts.batch_size, "--batch-size", 2)
    if opts.layers is not None and not opts.layers:
        raise BenchError("--layers is empty")
    res = open_run(run_dir)
    pairs = select_trained(run_dir, res, opts.models)
    with_snaps = [(m, s, list_snapshots(model_dir(run_dir, m, s))) for m, s in pairs]
    missing = [f"{m} seed {s}" for m, s, snaps in with_snaps if not snaps]
    with_snaps = [t for t in with_snaps if t[2]]
    if not with_snaps:
        names = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise BenchError(f"{run_dir}: no activation snapshots for {names} "
                         "(train with --snapshot-every EPOCHS to record them)")
    device = torch.device(opts.device)
    x = None
    if "mine" in estimators:
        ds = load_run_dataset(res, opts.data_dir)
        tr = res.train_config
        x_all, y_all = ds.split(tr.get("train_split", "train"))
        x, y_snap = x_all[: int(tr.get("snapshot_n", 2000))], y_all[: int(tr.get("snapshot_n", 2000))]
    mine_opts = {"steps": opts.steps, "restarts": opts.restarts, "batch_size": opts.batch_size,
                 "seed": opts.seed, "device": device, "threads": opts.mi_threads}
    env = environment(device)
    if missing:
        log(f"no snapshots (skipped): {', '.join(missing)}")
    written = []
    for name, seed, paths in with_snaps:
        snaps = load_snapshots(paths)
        first = snaps[paths[0][0]]
        avail = [k for k in first if k != "labels"]
        layers = opts.layers or default_layers(first)
        bad = [layer for layer in layers if layer not in avail]
        if bad:
            raise BenchError(f"{name} seed {seed}: no layer {bad[0]!r} in the snapshots (layers: {', '.join(avail)})")
        if x is not None:
            if len(x) != len(first["labels"]) or not torch.equal(y_snap[: len(first['labels'])], first["labels"].long()):
                raise BenchError(f"{name} seed {seed}: the snapshot examples are not the first "
                                 f"{len(first['labels'])} of the run's training split (was the data set changed?)")
        activation = res.model(name).config.get("activation")
        log(f"{name} seed {seed}: {len(paths)} snapshots (epochs {paths[0][0]}..{paths[-1][0]}), "
            f"layers {', '.join(layers)}, n = {len(first['labels'])}")
        plane, setup = infoplane_model(snaps, layers, estimators, bins=opts.bins, activation=activation, x=x,
                                       mine_opts=mine_opts, log=log)
        for est in estimators:
            for layer, pts in plane[est].items():
                a, b = pts[0], pts[-1]
                log(f"  {est:7s} {layer:14s} epoch {a['epoch']:>3}: ({a['ixt_nats']:.3f}, {a['ity_nats']:.3f})"
                    f" -> epoch {b['epoch']:>3}: ({b['ixt_nats']:.3f}, {b['ity_nats']:.3f}) nats")

        def put(r: Results, name=name, seed=seed, plane=plane, setup=setup):
            r.seed(name, seed, create=True).update_infoplane(plane, setup)
            r.set_environment("infoplane", env)
        res = update_results(run_dir, put)
        entry = res.seed(name, seed)
        path = plot_infoplane(name, seed, entry.infoplane, entry.infoplane_setup,
                              figure_path(run_dir, f"infoplane_{name}_seed{seed}.png"),
                              h_y=label_entropy(first["labels"]))
        log(f"  wrote {path}")
        written.append(path)
    return written
