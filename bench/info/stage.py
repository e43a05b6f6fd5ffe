"""The info stage (``vib-bench info``): I(X;Z) and I(Z;Y) of each representation, bounded and estimated.

For every trained (model, seed), on the first N test examples: the analytic bounds of
``bench.info.bounds``, for a Gaussian encoder the known-encoder interval of ``bench.info.sandwich``,
and the critic estimates of ``bench.info.critics`` (I(Z;Y) only for a deterministic representation,
whose I(X;Z) is infinite); each estimate is checked against the bounds and flagged where it
contradicts them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import BenchError
from .bounds import DETERMINISTIC_NOTE, QUANTITIES, Z_SEED, info_bounds, info_representation, record_flags
from .options import (
    DEFAULT_ESTIMATORS,
    DEFAULT_N_EXAMPLES,
    DEFAULT_RESTARTS,
    DEFAULT_STEPS,  # noqa: F401
    InfoOptions,
    check_positive,
    hint,
)


def is_deterministic(rec: dict) -> bool:
    """Whether an info record measured a deterministic representation (no encoder: I(X;Z) infinite)."""
    return rec.get("representation") not in (None, "z sample")


def quantities(rec: dict) -> tuple[str, ...]:
    """The quantities estimated for a record: both, or I(Z;Y) alone for a deterministic representation."""
    return ("I(Z;Y)",) if is_deterministic(rec) else QUANTITIES


def _has_estimates(rec: dict | None, estimators, n: int, copula: bool = True) -> set:
    """Estimators already done for every estimated quantity in ``rec`` on the same ``n`` examples, with
    the same marginal transform (records from before the transform count as ``copula`` off)."""
    if not rec or rec.get("n") != n:
        return set()
    est = rec.get("estimates") or {}

    def done(e, q):
        r = (est.get(q) or {}).get(e)
        return r is not None and bool((r.get("settings") or {}).get("copula", False)) == bool(copula)

    return {e for e in estimators if all(done(e, q) for q in quantities(rec))}


def _complete(rec: dict | None, estimators, n: int, copula: bool) -> bool:
    """Whether ``--resume`` can skip a record: every estimate there, and the interval for a VIB."""
    if not rec or _has_estimates(rec, estimators, n, copula) != set(estimators):
        return False
    return is_deterministic(rec) or (rec.get("bounds") or {}).get("ixz_lower_nats") is not None


def info_model(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    estimators,
    *,
    steps: int,
    restarts: int,
    batch_size: int | None = None,
    seed: int = 0,
    device="cpu",
    threads: int | None = 1,
    copula: bool = True,
    previous: dict | None = None,
    log=print,
    label: str = "",
) -> dict:
    """The ``info`` record of one model on (x, y); estimators present in ``previous`` are kept."""
    from .estimate import estimate_mi
    from .sandwich import known_encoder_bounds

    t0 = time.perf_counter()
    device = torch.device(device)
    rep = info_representation(model, x, y, device)
    z = rep["z"]
    n = len(z)
    known = None
    if rep["mu"] is not None:
        known = known_encoder_bounds(rep["mu"], rep["log_sigma"], rep["z64"])
        rate = rep["rate"].mean().item()
        cap = f" at its cap log N = {known['log_n_nats']:.3f}" if known["near_cap"] else ""
        log(
            f"  {label}I(X;Z) in [{known['lower_nats']:.3f}, {min(known['upper_nats'], rate):.3f}] nats "
            f"(known encoder: lower {known['lower_nats']:.3f}"
            f"{cap}, leave-one-out "
            f"upper {known['upper_nats']:.3f}; rate {rate:.3f})  {known['seconds']:.1f} s"
        )
    bounds = info_bounds(rep["rate"], rep["ce"], y, known)
    rec = {"n": n, "representation": rep["kind"], "z_dim": int(z.shape[1]), "z_seed": Z_SEED}
    wanted = quantities(rec)
    same = previous is not None and previous.get("representation") == rec["representation"]
    keep = _has_estimates(previous, estimators, n, copula) if same else set()
    estimates = {q: {} for q in QUANTITIES}
    if keep:
        for q in wanted:
            estimates[q] = {e: previous["estimates"][q][e] for e in previous["estimates"][q] if e in keep}
    x_flat = x.reshape(n, -1).float()
    classes = max(int(getattr(model, "num_classes", 0) or 0), int(y.max()) + 1)
    y_onehot = torch.nn.functional.one_hot(y.long(), classes).float()
    pairs = {"I(X;Z)": (x_flat, z), "I(Z;Y)": (z, y_onehot)}
    for est_name in estimators:
        if est_name in keep:
            continue
        for q in wanted:
            a, b = pairs[q]
            with hint("see --batch-size and --n-examples"):
                r = estimate_mi(
                    a,
                    b,
                    est_name,
                    steps=steps,
                    restarts=restarts,
                    batch_size=batch_size,
                    seed=seed,
                    device=device,
                    threads=threads,
                    copula=copula,
                )
            estimates[q][est_name] = r.as_dict()
            log(
                f"  {label}{q:7s} {est_name:8s} {r.nats:7.3f} +- {r.std_nats:.3f} nats "
                f"({r.bits:6.3f} +- {r.std_bits:.3f} bits)  {r.seconds:5.1f} s "
                f"({r.seconds / max(1, restarts):.1f} s per restart)"
            )
    rec.update({"estimates": estimates, "bounds": bounds, "deterministic": is_deterministic(rec)})
    rec["flags"] = record_flags(rec)
    rec["notes"] = [DETERMINISTIC_NOTE] if rec["deterministic"] else []
    rec["seconds"] = time.perf_counter() - t0 + (previous or {}).get("seconds", 0.0) * bool(keep)
    return rec


def check_estimators(names: list[str] | None) -> list[str]:
    """Estimator names, lower-cased and de-duplicated; unknown or empty is an error."""
    from .critics import list_estimators

    names = [e.lower() for e in (names if names is not None else DEFAULT_ESTIMATORS)]
    if not names:
        raise BenchError("--estimators is empty")
    for e in names:
        if e not in list_estimators():
            raise BenchError(f"unknown MI estimator {e!r}; choose from {', '.join(list_estimators())}")
    return list(dict.fromkeys(names))


@dataclass
class InfoOutcome:
    items: list[tuple[str, int, dict]] = field(default_factory=list)  # (model, seed, info record)
    figure: Path | None = None
    seconds: float = 0.0


def run_info(opts: InfoOptions, log=print) -> InfoOutcome:
    """Measure every selected (model, seed) and record it in the run's results file."""
    from .. import protocol
    from ..env import environment
    from ..results import Results, update_results
    from ..rundir import figure_path, require_run_dir
    from ..runs import load_run_dataset, open_run, select_trained
    from ..train.weights import load_trained
    from .plots import plot_info_beta

    run_dir = require_run_dir(opts.run_dir)
    estimators = check_estimators(opts.estimators)
    check_positive(opts.steps, "--steps")
    check_positive(opts.restarts, "--restarts")
    check_positive(opts.batch_size, "--batch-size", 2)
    check_positive(opts.mi_threads, "--mi-threads")
    res = open_run(run_dir)
    pairs = select_trained(run_dir, res, opts.models)
    device = torch.device(opts.device)
    ds = load_run_dataset(res, opts.data_dir)
    x, y = ds.split("test")
    n = min(DEFAULT_N_EXAMPLES, len(x)) if opts.n_examples is None else opts.n_examples
    x, y = protocol.select_examples(x, y, n)
    env = environment(device)
    log(
        f"information of {len(pairs)} model(s) on {n} {ds.name} test examples: "
        f"{', '.join(estimators)}, {opts.steps} steps x {opts.restarts} restarts per estimate, on {device}"
    )
    out = InfoOutcome()
    total = time.perf_counter()
    for name, seed in pairs:
        prev = res.seed(name, seed).info or None
        if opts.resume and _complete(prev, estimators, n, opts.copula):
            log(f"{name} seed {seed}: info already there for {', '.join(estimators)} (--resume), skipped")
            out.items.append((name, seed, {**prev, "flags": record_flags(prev)}))
            continue
        model = load_trained(run_dir, name, seed, device)
        log(f"{name} seed {seed}:")
        rec = info_model(
            model,
            x,
            y,
            estimators,
            steps=opts.steps,
            restarts=opts.restarts,
            batch_size=opts.batch_size,
            seed=opts.seed,
            device=device,
            threads=opts.mi_threads,
            copula=opts.copula,
            previous=prev if opts.resume else None,
            log=log,
        )
        for f in rec["flags"]:
            log(f"  FLAG {f['flag']}: {f['message']}")

        def put(r: Results, name=name, seed=seed, rec=rec):
            r.seed(name, seed, create=True).set_info(rec)
            r.set_environment("info", env)

        res = update_results(run_dir, put)
        out.items.append((name, seed, rec))
    out.seconds = time.perf_counter() - total
    if opts.plot:
        out.figure = plot_info_beta(res, figure_path(run_dir, "info_beta.png"))
    return out


__all__ = [
    "DEFAULT_ESTIMATORS",
    "DEFAULT_N_EXAMPLES",
    "DEFAULT_RESTARTS",
    "DEFAULT_STEPS",
    "DETERMINISTIC_NOTE",
    "InfoOptions",
    "InfoOutcome",
    "QUANTITIES",
    "Z_SEED",
    "info_bounds",
    "info_model",
    "is_deterministic",
    "quantities",
    "run_info",
]
