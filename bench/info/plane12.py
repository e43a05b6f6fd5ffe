"""The information-plane experiment on its original task (``vib-bench infoplane12``).

Shwartz-Ziv & Tishby (2017) trained a 12-10-7-5-4-3-2 tanh network on a synthetic 12-bit task and saw, in
the plane (I(X;T), I(T;Y)) of every layer T, a fitting phase and then a compression phase in which I(X;T)
falls, which they tied to generalisation. Saxe et al. (ICLR 2018) answered that the fall comes from
saturating tanh units under binning, is absent with ReLU, and is unrelated to generalisation. Here:

* the data set ``ib12`` of ``bench.data`` (all 4,096 patterns, 80/20) and the models ``ib12_tanh`` and
  ``ib12_relu`` of the model registry;
* full-batch (or minibatch) training with Adam (``TrainSettings``) on the 3,277 training patterns, several
  seeds, snapshots of
  every hidden layer on all 4,096 patterns (``bench.train.snapshots.layer_activations``) at log-spaced epochs;
* per layer and snapshot, X uniform over the 4,096 patterns: binning (30 equal-width bins per unit, the
  original estimator, ``bench.info.infoplane``), the KDE upper bound Saxe et al. used and the
  noise-regularised I(X; T + Z) of Goldfeld et al. (2019) (``bench.info.mixture``);
* the verdict (``bench.info.verdict``): per activation and estimator, does I(X;T) of the last layers fall
  after its peak, by how much, across seeds, and does the test error track it.

Writes ``OUT/infoplane12.json`` (settings, every curve, the verdict, timings, environment), ``OUT/report.md``
and ``OUT/figures/infoplane12.png``; no weights and no snapshots.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import BenchError
from .infoplane import binned_information, layer_range
from .mixture import kde_information, noisy_information
from .options import (  # noqa: F401 (the defaults, named here too)
    ACTIVATIONS,
    BINS,
    KDE_VARIANCE,
    NOISY_BETA,
    OUTER_ROWS,
    PLANE12_ESTIMATORS,
    Plane12Options,
    Plane12Training,
)

TrainSettings = Plane12Training  # the name this module has always given it
ESTIMATORS = PLANE12_ESTIMATORS
RESULTS_FILE = "infoplane12.json"
REPORT_FILE = "report.md"
FIGURE_FILE = "infoplane12.png"


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """0 and ``count`` log-spaced epochs in [1, epochs] (duplicates merged), ascending; ``epochs`` always last."""
    pts = np.unique(np.round(np.logspace(0, math.log10(max(1, epochs)), max(1, count))).astype(int))
    return [0] + sorted({int(e) for e in pts if 1 <= e <= epochs} | {int(epochs)})


def check_options(opts: Plane12Options) -> None:
    """Bad input as a ``BenchError`` before any work."""
    bad = [a for a in opts.activations if a not in ACTIVATIONS]
    if not opts.activations or bad:
        raise BenchError(
            f"--activations: choose from {', '.join(ACTIVATIONS)}, got {','.join(opts.activations) or 'nothing'}"
        )
    bad = [e for e in opts.estimators if e not in ESTIMATORS]
    if not opts.estimators or bad:
        raise BenchError(
            f"--estimators: choose from {', '.join(ESTIMATORS)}, got {','.join(opts.estimators) or 'nothing'}"
        )
    if not opts.seeds or len(set(opts.seeds)) != len(opts.seeds):
        raise BenchError("--seeds: give one or more distinct seeds")
    tr = opts.train
    for name, value, low in (
        ("--epochs", tr.epochs, 1),
        ("--batch-size", tr.batch_size, 0),
        ("--snapshots", tr.snapshots, 2),
        ("--bins", opts.bins, 2),
        ("--rows", opts.outer_rows, 2),
    ):
        if value < low:
            raise BenchError(f"{name} must be >= {low}, got {value}")
    for name, value in (("--lr", tr.lr), ("--noise-beta", opts.noise_beta), ("--kde-variance", opts.kde_variance)):
        if not (value > 0 and math.isfinite(value)):
            raise BenchError(f"{name} must be a positive number, got {value}")
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out}: exists and is not a folder")


def _error(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) != y).float().mean())


def train_with_snapshots(activation: str, seed: int, x_all, y_all, n_train: int, tr: TrainSettings) -> list[dict]:
    """Train ``ib12_<activation>`` from ``seed`` on the first ``n_train`` patterns of ``x_all``; at every snapshot
    epoch the hidden activations on all patterns, the train and the test error (the other patterns)."""
    from models import create_model

    from ..train.snapshots import hidden_index, layer_activations

    x_train, y_train = x_all[:n_train], y_all[:n_train]
    torch.manual_seed(seed)
    model = create_model(f"ib12_{activation}")
    opt = torch.optim.Adam(model.parameters(), lr=tr.lr)
    gen = torch.Generator().manual_seed(10_000 + seed)
    keep = set(snapshot_epochs(tr.epochs, tr.snapshots))
    snaps = []

    def snap(epoch: int) -> None:
        acts = layer_activations(model, x_all)
        layers = {k: v for k, v in acts.items() if hidden_index(k) is not None}
        logits = acts["logits"]
        snaps.append(
            {
                "epoch": epoch,
                "layers": layers,
                "train_error": _error(logits[:n_train], y_all[:n_train]),
                "test_error": _error(logits[n_train:], y_all[n_train:]),
            }
        )

    if 0 in keep:
        snap(0)
    n = len(x_train)
    for epoch in range(1, tr.epochs + 1):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(tr.batch_size or n):
            loss, _ = model.loss(x_train[idx], y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch in keep:
            snap(epoch)
    return snaps


def measure(snaps: list[dict], y_all: torch.Tensor, activation: str, opts: Plane12Options, seed: int) -> dict:
    """Per estimator and layer: one point per snapshot, ``{"epoch", "ixt_nats", "ity_nats"}`` (+ ``ixt_se_nats``)."""
    layers = list(snaps[0]["layers"])
    out: dict = {}
    for est in opts.estimators:
        out[est] = {}
        for layer in layers:
            acts = [s["layers"][layer] for s in snaps]
            lo, hi, _ = layer_range(layer, acts, activation) if est == "binning" else (0.0, 0.0, "")
            pts = []
            for s, a in zip(snaps, acts):
                if est == "binning":
                    r = binned_information(a, y_all, opts.bins, lo, hi)
                elif est == "kde":
                    r = kde_information(a, y_all, opts.kde_variance, rows=opts.outer_rows, seed=seed)
                else:
                    r = noisy_information(a, y_all, opts.noise_beta, rows=opts.outer_rows, seed=seed)
                pts.append(
                    {
                        "epoch": s["epoch"],
                        "ixt_nats": r["ixt_nats"],
                        "ity_nats": r["ity_nats"],
                        **({"ixt_se_nats": r["ixt_se_nats"]} if "ixt_se_nats" in r else {}),
                    }
                )
            out[est][layer] = pts
    return out


def run_plane12(opts: Plane12Options, log=print) -> dict:
    """Train, measure and judge; write the results file, the report and the figure. Returns the results."""
    from ..data import load_dataset
    from ..env import environment
    from ..io import atomic_write_json, atomic_write_text
    from .plots import plot_plane12
    from .verdict import format_report, verdicts

    check_options(opts)
    out = Path(opts.out)
    ds = load_dataset("ib12")
    x_train, y_train = ds.split("trainval")
    x_test, y_test = ds.split("test")
    x_all, y_all = torch.cat([x_train, x_test]), torch.cat([y_train, y_test])
    n_train = len(x_train)
    log(
        f"ib12: {len(x_all)} patterns ({n_train} train / {len(x_test)} test), activations "
        f"{', '.join(opts.activations)}, seeds {', '.join(map(str, opts.seeds))}, {opts.train.epochs} epochs "
        f"({'full batch' if not opts.train.batch_size else f'batch {opts.train.batch_size}'}), "
        f"snapshots at {len(snapshot_epochs(opts.train.epochs, opts.train.snapshots))} epochs, "
        f"estimators {', '.join(opts.estimators)}"
    )
    runs, timings = [], {"train_s": 0.0, **{f"{e}_s": 0.0 for e in opts.estimators}}
    total, cpu = time.perf_counter(), time.process_time()
    for activation in opts.activations:
        for seed in opts.seeds:
            t0 = time.perf_counter()
            snaps = train_with_snapshots(activation, seed, x_all, y_all, n_train, opts.train)
            t_train = time.perf_counter() - t0
            timings["train_s"] += t_train
            plane = {}
            for est in opts.estimators:
                t1 = time.perf_counter()
                plane.update(measure(snaps, y_all, activation, _only(opts, est), seed))
                timings[f"{est}_s"] += time.perf_counter() - t1
            errors = [
                {"epoch": s["epoch"], "train_error": s["train_error"], "test_error": s["test_error"]} for s in snaps
            ]
            runs.append(
                {"activation": activation, "seed": seed, "plane": plane, "errors": errors, "train_seconds": t_train}
            )
            log(
                f"  {activation} seed {seed}: trained in {t_train:.1f} s, final test error "
                f"{errors[-1]['test_error']:.3f} (train {errors[-1]['train_error']:.3f})"
            )
    timings["total_s"] = time.perf_counter() - total
    timings["total_cpu_s"] = time.process_time() - cpu  # CPU time of this process: a shared machine inflates wall time
    settings = {
        "task": ds.describe(),
        "rule": ds.meta.get("rule"),
        "model": "12-10-7-5-4-3-2 (ib12_<activation>)",
        "train": asdict(opts.train),
        "optimizer": "Adam",
        "snapshot_epochs": snapshot_epochs(opts.train.epochs, opts.train.snapshots),
        "bins": opts.bins,
        "noise_beta": opts.noise_beta,
        "kde_variance": opts.kde_variance,
        "outer_rows": opts.outer_rows,
        "x": "uniform over all 4,096 patterns",
        "activations": opts.activations,
        "seeds": opts.seeds,
        "estimators": opts.estimators,
    }
    doc = {"settings": settings, "runs": runs, "timings": timings, "environment": environment("cpu")}
    doc["verdict"] = verdicts(runs, opts.estimators, opts.activations)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULTS_FILE, doc)
    fig = plot_plane12(runs, opts.estimators, out / "figures" / FIGURE_FILE)
    atomic_write_text(out / REPORT_FILE, format_report(doc, f"figures/{FIGURE_FILE}" if fig else None))
    log(f"wrote {out / RESULTS_FILE}, {out / REPORT_FILE}" + (f", {fig}" if fig else ""))
    return doc


def _only(opts: Plane12Options, est: str) -> Plane12Options:
    from dataclasses import replace

    return replace(opts, estimators=[est])


__all__ = [
    "ACTIVATIONS",
    "BINS",
    "ESTIMATORS",
    "OUTER_ROWS",
    "Plane12Options",
    "TrainSettings",
    "run_plane12",
    "snapshot_epochs",
    "train_with_snapshots",
]
