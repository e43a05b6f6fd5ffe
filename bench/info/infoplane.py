"""The information plane during training (``vib-bench infoplane``; Shwartz-Ziv & Tishby 2017).

From the activation snapshots ``vib-bench train --snapshot-every E`` stores: per layer and snapshot
epoch, (I(X;T), I(T;Y)) by binning at one or more bin counts (each unit into equal-width bins; X
uniform over the snapshot examples, so I(X;T) = H(T) and I(T;Y) = H(T) + H(Y) - H(T,Y); records
``binning@B``) or by MINE with a small budget. A binned deterministic layer's I(X;T) is a property of
the binning (the layer's true I(X;T) is infinite), which is why several bin counts are worth comparing.

For a Gaussian encoder (VIB) the stochastic z also gets bounds (record ``known-encoder``): per epoch
(rate, H(Y) - CE) from the training log (means over that epoch's batches); per snapshot epoch the
known-encoder interval of ``bench.info.sandwich`` on the snapshot examples, with H(Y) - CE of the
decoder on the same z sample (snapshots store mu and log sigma of p(z|x); older runs' snapshots do
not, and get no per-epoch interval); and the same interval for the final (EMA) weights when they
are in the run directory.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..errors import BenchError
from ..train.snapshots import hidden_index
from .bounds import entropy_of_counts
from .options import (
    BOUNDS_KEY,
    PLANE_ESTIMATORS,
    InfoplaneOptions,
    check_positive,
    hint,
)


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


def plane_keys(estimators: list[str], bins) -> list[str]:
    """Record keys: ``binning@B`` per bin count, ``mine``."""
    bins = [bins] if isinstance(bins, int) else list(bins)
    return [k for e in estimators for k in ([f"binning@{b}" for b in bins] if e == "binning" else [e])]


def infoplane_model(
    snaps: dict[int, dict],
    layers: list[str],
    estimators: list[str],
    *,
    bins,
    activation: str | None,
    x: torch.Tensor | None = None,
    mine_opts: dict | None = None,
    log=print,
) -> tuple[dict, dict]:
    """(result, setup): result[key][layer] = [{"epoch", "ixt_nats", "ity_nats"}, ...], key ``binning@B``
    per bin count in ``bins`` (an int or a list) or ``mine``."""
    from .estimate import estimate_mi

    epochs = sorted(snaps)
    labels = snaps[epochs[0]]["labels"].long()
    result, setup = {}, {}
    for est in plane_keys(estimators, bins):
        t0 = time.perf_counter()
        result[est] = {}
        if est.startswith("binning@"):
            n_bins = int(est.split("@")[1])
            ranges = {}
            for layer in layers:
                acts = [snaps[e][layer] for e in epochs]
                lo, hi, how = layer_range(layer, acts, activation)
                ranges[layer] = {"lo": lo, "hi": hi, "rule": how}
                pts = []
                for e, a in zip(epochs, acts):
                    r = binned_information(a, labels, n_bins, lo, hi)
                    pts.append(
                        {"epoch": e, "ixt_nats": r["ixt_nats"], "ity_nats": r["ity_nats"], "distinct": r["distinct"]}
                    )
                result[est][layer] = pts
            setup[est] = {"bins": n_bins, "n": len(labels), "ranges": ranges, "ceiling_nats": math.log(len(labels))}
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
                    pts.append(
                        {
                            "epoch": e,
                            "ixt_nats": rx.nats,
                            "ity_nats": ry.nats,
                            "ixt_std_nats": rx.std_nats,
                            "ity_std_nats": ry.std_nats,
                        }
                    )
                result[est][layer] = pts
            setup[est] = {"n": len(labels), **{k: (str(v) if k == "device" else v) for k, v in opts.items()}}
        setup[est]["seconds"] = time.perf_counter() - t0
        log(f"  {est}: {len(layers)} layer(s) x {len(epochs)} epochs in {setup[est]['seconds']:.1f} s")
    return result, setup


SNAPSHOT_INTERVALS = "z: known-encoder interval (snapshots)"
FINAL_INTERVAL = "z: known-encoder interval (final weights)"
TRAIN_LOG_POINTS = "z: rate, H(Y)-CE (training log)"


def _interval_point(epoch: int, rate: torch.Tensor, ce: torch.Tensor | None, y: torch.Tensor, known: dict) -> dict:
    from .bounds import info_bounds, ixz_interval

    b = info_bounds(rate, ce, y, known)
    lo, up, up_name = ixz_interval(b)
    return {
        "epoch": int(epoch),
        "ixt_nats": lo,
        "ixt_upper_nats": up,
        "upper_bound": up_name,
        "ity_nats": b["izy_lower_nats"],
        "rate_nats": b["rate_nats"],
        "loo_upper_nats": b["ixz_upper_nats"],
    }


def snapshot_intervals(snaps: dict[int, dict]) -> list[dict]:
    """The known-encoder interval of z at every snapshot epoch that stored p(z|x) (``bench.train.snapshots``):
    z = mu + sigma * eps with the eps of ``info_representation`` (seed ``Z_SEED``), in float64."""
    from .bounds import z_noise, z_sample64
    from .sandwich import known_encoder_bounds

    out = []
    for epoch in sorted(snaps):
        s = snaps[epoch]
        if "z_log_sigma" not in s:
            continue
        mu, log_sigma = s["z_mu"], s["z_log_sigma"]  # in the encoder's own dtype, as eps must be drawn
        known = known_encoder_bounds(mu, log_sigma, z_sample64(mu, log_sigma, z_noise(mu.shape, mu.dtype)))
        out.append(
            _interval_point(
                epoch, s["z_rate"].double(), s["z_ce"].double() if "z_ce" in s else None, s["labels"], known
            )
        )
    return out


def z_bounds_record(
    snaps: dict[int, dict], train_log: list[dict], model=None, examples=None, device="cpu"
) -> tuple[dict, dict] | None:
    """The ``known-encoder`` record of a Gaussian encoder, or None for other models (or snapshots
    without p(z|x) and no weights).

    Per epoch (rate, H(Y) - CE) from ``train_log`` (means over that epoch's training batches); the
    known-encoder interval [lower, min(leave-one-out, rate)] at every snapshot epoch that stored p(z|x)
    (live weights); and, when ``model`` (the final EMA weights) is given, the same interval for it on
    ``examples()`` (the snapshot sample), at the last snapshot's epoch.
    """
    from .bounds import info_representation, label_entropy
    from .sandwich import NEAR_CAP, known_encoder_bounds

    t0 = time.perf_counter()
    epochs = sorted(snaps)
    labels = snaps[epochs[0]]["labels"]
    intervals = snapshot_intervals(snaps)
    final = None
    if model is not None and callable(getattr(model, "encode", None)):
        x, y = examples()
        rep = info_representation(model, x, y, device)
        final = _interval_point(
            epochs[-1], rep["rate"], rep["ce"], y, known_encoder_bounds(rep["mu"], rep["log_sigma"], rep["z64"])
        )
    if not intervals and final is None:
        return None
    h_y, n = label_entropy(labels), len(labels)
    result = {
        TRAIN_LOG_POINTS: [
            {"epoch": int(r["epoch"]), "ixt_nats": float(r["kl"]), "ity_nats": h_y - float(r["ce"])}
            for r in train_log
            if isinstance(r.get("kl"), (int, float)) and isinstance(r.get("ce"), (int, float))
        ]
    }
    if intervals:
        result[SNAPSHOT_INTERVALS] = intervals
    if final is not None:
        result[FINAL_INTERVAL] = [final]
    last = final or intervals[-1]
    setup = {
        "n": n,
        "log_n_nats": math.log(n),
        "lower_at_cap": bool(last["ixt_nats"] >= NEAR_CAP * math.log(n)),
        "h_y_nats": h_y,
        "weights": "final (EMA) weights" if final is not None else None,
        "snapshot_weights": "live weights" if intervals else None,
        "seconds": time.perf_counter() - t0,
    }
    return result, setup


def check_plane_estimators(names: list[str]) -> list[str]:
    names = [e.lower() for e in (names or [])]
    if not names:
        raise BenchError("--estimator is empty")
    for e in names:
        if e not in PLANE_ESTIMATORS:
            raise BenchError(f"unknown information-plane estimator {e!r}; choose from {', '.join(PLANE_ESTIMATORS)}")
    return list(dict.fromkeys(names))


def run_infoplane(opts: InfoplaneOptions, log=print) -> list[Path]:
    """The information plane of every selected (model, seed) with snapshots; returns the figures written."""
    from ..env import environment
    from ..results import Results, update_results
    from ..rundir import figure_path, has_weights, model_dir, read_train_log, require_run_dir
    from ..runs import load_run_dataset, open_run, select_trained
    from ..train.snapshots import default_layers, layers_of, list_snapshots, load_snapshots
    from ..train.weights import load_trained
    from .bounds import label_entropy
    from .plots import plot_infoplane

    run_dir = require_run_dir(opts.run_dir)
    estimators = check_plane_estimators(opts.estimators)
    bins = [opts.bins] if isinstance(opts.bins, int) else list(opts.bins or [])
    if not bins or min(bins) < 2:
        raise BenchError(f"--bins must be one or more integers >= 2, got {opts.bins}")
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
        raise BenchError(
            f"{run_dir}: no activation snapshots for {names} (train with --snapshot-every EPOCHS to record them)"
        )
    device = torch.device(opts.device)
    data: dict = {}

    def snapshot_examples(n: int, labels: torch.Tensor, what: str):
        """The first n examples of the run's training split: the snapshot sample (checked by its labels)."""
        if "x" not in data:
            tr = res.train_config
            data["x"], data["y"] = load_run_dataset(res, opts.data_dir).split(tr.get("train_split", "train"))
        x, y = data["x"][:n], data["y"][:n]
        if len(x) != n or not torch.equal(y, labels.long()):
            raise BenchError(
                f"{what}: the snapshot examples are not the first {n} of the run's training split "
                "(was the data set changed?)"
            )
        return x, y

    mine_opts = {
        "steps": opts.steps,
        "restarts": opts.restarts,
        "batch_size": opts.batch_size,
        "seed": opts.seed,
        "device": device,
        "threads": opts.mi_threads,
        "copula": opts.copula,
    }
    env = environment(device)
    if missing:
        log(f"no snapshots (skipped): {', '.join(missing)}")
    written = []
    for name, seed, paths in with_snaps:
        snaps = load_snapshots(paths)
        first = snaps[paths[0][0]]
        avail = layers_of(first)
        layers = opts.layers or default_layers(first)
        bad = [layer for layer in layers if layer not in avail]
        if bad:
            raise BenchError(f"{name} seed {seed}: no layer {bad[0]!r} in the snapshots (layers: {', '.join(avail)})")
        n_snap = len(first["labels"])
        x = snapshot_examples(n_snap, first["labels"], f"{name} seed {seed}")[0] if "mine" in estimators else None
        activation = res.model(name).config.get("activation")
        log(
            f"{name} seed {seed}: {len(paths)} snapshots (epochs {paths[0][0]}..{paths[-1][0]}), "
            f"layers {', '.join(layers)}, n = {n_snap}"
        )
        plane, setup = infoplane_model(
            snaps, layers, estimators, bins=bins, activation=activation, x=x, mine_opts=mine_opts, log=log
        )
        for key in plane:
            for layer, pts in plane[key].items():
                a, b = pts[0], pts[-1]
                peak = max(pts, key=lambda p: p["ixt_nats"])
                log(
                    f"  {key:11s} {layer:14s} epoch {a['epoch']:>3}: ({a['ixt_nats']:.3f}, {a['ity_nats']:.3f})"
                    f"  peak I(X;T) {peak['ixt_nats']:.3f} at epoch {peak['epoch']}"
                    f"  -> epoch {b['epoch']:>3}: ({b['ixt_nats']:.3f}, {b['ity_nats']:.3f}) nats"
                )
        model = load_trained(run_dir, name, seed, device) if has_weights(run_dir, name, seed) else None
        kb = z_bounds_record(
            snaps,
            read_train_log(model_dir(run_dir, name, seed)),
            model,
            lambda: snapshot_examples(n_snap, first["labels"], f"{name} seed {seed}"),
            device,
        )
        if kb is not None:
            plane[BOUNDS_KEY], setup[BOUNDS_KEY] = kb
            for label in (SNAPSHOT_INTERVALS, FINAL_INTERVAL):
                for f in kb[0].get(label, [])[-1:]:
                    log(
                        f"  {BOUNDS_KEY}: z at epoch {f['epoch']} ({label.split('(')[1].rstrip(')')}): I(X;Z) in "
                        f"[{f['ixt_nats']:.3f}, {f['ixt_upper_nats']:.3f}] nats ({f['upper_bound']}; "
                        f"log n = {kb[1]['log_n_nats']:.3f}), H(Y) - CE = "
                        + ("n/a (no decoder)" if f["ity_nats"] is None else f"{f['ity_nats']:.3f}")
                    )

        def put(r: Results, name=name, seed=seed, plane=plane, setup=setup):
            r.seed(name, seed, create=True).update_infoplane(plane, setup)
            r.set_environment("infoplane", env)

        res = update_results(run_dir, put)
        entry = res.seed(name, seed)
        path = plot_infoplane(
            name,
            seed,
            entry.infoplane,
            entry.infoplane_setup,
            figure_path(run_dir, f"infoplane_{name}_seed{seed}.png"),
            h_y=label_entropy(first["labels"]),
        )
        log(f"  wrote {path}")
        written.append(path)
    return written
