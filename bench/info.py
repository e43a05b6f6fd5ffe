"""``vib-bench info`` and ``vib-bench infoplane``: information diagnostics of a run's models.

info RUN_DIR
    For every trained (model, seed), on the first N test examples: the measured representation
    (VIB: one sample z = mu + sigma * eps with a fixed seed, the stochastic representation the
    decoder sees; other models: ``model.representation(x)``, their last hidden layer, which is a
    deterministic function of x), and neural estimates of I(X;Z) (X = the flattened image) and
    I(Z;Y) (Y one-hot) with the estimators of :mod:`bench.mi`. Beside them, the analytic bounds:

    * rate = mean_x KL(p(z|x) || N(0, I)) >= I(X;Z)          (VIB only; the variational marginal)
    * H(Y) - CE(q(y|z)) <= I(Z;Y)                              (any decoder q: the model's own head)
    * I(Z;Y) <= H(Y)                                            (the empirical label entropy)
    * I(Z;Y) <= I(X;Z)  (Y -> X -> Z is a Markov chain), so H(Y) - CE also bounds I(X;Z) from below
      and the rate bounds I(Z;Y) from above.

    An estimate whose two-standard-deviation interval lies wholly outside a bound (widened by two
    standard errors of the bound itself, which is a sample mean too) is flagged: above an upper
    bound means the estimator over-shoots here; below a lower bound means it is loose.

    I(X;T) of a deterministic continuous map T = f(X) is infinite (for continuous X, or log of the
    number of distinct inputs for an empirical X): for the MLPs the I(X;Z) estimate measures the
    estimator's resolution and ceiling, not the model.

infoplane RUN_DIR
    The information plane during training (Shwartz-Ziv & Tishby 2017) from the activation snapshots
    ``vib-bench train --snapshot-every E`` stores: per layer and snapshot epoch, (I(X;T), I(T;Y))
    by binning (each unit into equal-width bins; X uniform over the snapshot examples, so
    I(X;T) = H(T) and I(T;Y) = H(T) + H(Y) - H(T,Y)) or by MINE with a small budget.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from pathlib import Path

import torch

from .errors import BenchError

LN2 = math.log(2.0)
DEFAULT_ESTIMATORS = ("mine", "jsd", "infonce")
DEFAULT_N_EXAMPLES = 10_000
DEFAULT_STEPS = 1000       # per restart; ~25-40 s per I(X;Z) estimate on 10,000 MNIST examples, 1 thread
DEFAULT_RESTARTS = 3
Z_SEED = 0                 # the noise of the one z sample per example (VIB)
SPREAD = 2.0               # flag when the estimate +- SPREAD * std lies wholly outside a bound
UNSTABLE_STD = (0.5, 0.25)  # flag restarts whose std exceeds max(0.5 nats, 25% of |mean|)
QUANTITIES = ("I(X;Z)", "I(Z;Y)")
DETERMINISTIC_NOTE = ("deterministic representation: I(X;T) of a deterministic continuous map is infinite in "
                      "theory, so the I(X;Z) estimate reflects the estimator's resolution and ceiling, not a "
                      "property of the model")

PLANE_ESTIMATORS = ("binning", "mine")
PLANE_BINS = 30
PLANE_MINE_STEPS = 300
PLANE_MINE_RESTARTS = 1
PLANE_MINE_BATCH = 64


# ============================================================================ entropies and binning
def entropy_of_counts(counts: torch.Tensor) -> float:
    """Shannon entropy (nats) of the empirical distribution given by integer counts."""
    c = counts[counts > 0].double()
    if c.numel() == 0:
        return 0.0
    p = c / c.sum()
    return max(0.0, float(-(p * p.log()).sum()))


def label_entropy(y: torch.Tensor) -> float:
    """H(Y) in nats of the empirical label distribution."""
    return entropy_of_counts(torch.bincount(y.long().flatten()))


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


# ============================================================================ info: representations
def _encoder(model):
    enc = getattr(model, "encode", None)
    return enc if callable(enc) else None


def _decoder(model):
    for attr in ("decoder", "head"):
        mod = getattr(model, attr, None)
        if callable(mod):
            return mod
    return None


@torch.no_grad()
def info_representation(model, x: torch.Tensor, y: torch.Tensor, device="cpu", batch_size: int = 1000,
                        seed: int = Z_SEED) -> dict:
    """The measured representation of ``x`` and the per-example terms of the analytic bounds.

    Returns ``z`` (N, k) on the CPU, ``kind`` ("z sample" or "last hidden"), ``rate`` (N,) KL to the
    prior or None, ``ce`` (N,) cross-entropy of the model's own decoder/head on ``z`` or None.
    For a Gaussian encoder z = mu + sigma * eps with eps drawn on the CPU from ``seed`` (so every
    device gives the same z).
    """
    from models.vib import gaussian_kl

    from .evaluate import eval_mode

    device = torch.device(device)
    enc, dec = _encoder(model), _decoder(model)
    zs, rates, ces = [], [], []
    with eval_mode(model):
        if enc is not None:  # one draw of eps for all N at once: the same z whatever the batch size
            stats = [enc(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
            mu, sigma, log_sigma = (torch.cat(parts) for parts in zip(*stats))
            eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(int(seed)), dtype=mu.dtype)
            z_all = mu + sigma * eps.to(device)
            rates.append(gaussian_kl(mu, sigma, log_sigma).double().cpu())
        for i in range(0, len(x), batch_size):
            if enc is not None:
                z = z_all[i:i + batch_size]
            else:
                z = model.representation(x[i:i + batch_size].to(device))
            z = z.reshape(len(z), -1)
            if dec is not None:
                yb = y[i:i + batch_size].to(device)
                try:
                    logits = dec(z).float()
                except (RuntimeError, TypeError):  # a plugin's head that does not read this layer: no bound
                    dec, ces = None, []
                else:
                    ces.append(torch.nn.functional.cross_entropy(logits, yb, reduction="none").double().cpu())
            zs.append(z.float().cpu())
    if enc is not None:
        kind = "z sample"
    else:
        kind = "last hidden" if getattr(model, "head", None) is not None else "representation"
    return {"z": torch.cat(zs), "kind": kind, "rate": torch.cat(rates) if rates else None,
            "ce": torch.cat(ces) if ces else None}


def _mean_se(v: torch.Tensor | None):
    if v is None or v.numel() == 0:
        return None, None
    se = float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else 0.0
    return float(v.mean()), se


def info_bounds(rate: torch.Tensor | None, ce: torch.Tensor | None, y: torch.Tensor) -> dict:
    """The analytic bounds, in nats, with the standard errors of the sample means they are."""
    h_y = label_entropy(y)
    rate_m, rate_se = _mean_se(rate)
    ce_m, ce_se = _mean_se(ce)
    return {"rate_nats": rate_m, "rate_se_nats": rate_se,
            "izy_lower_nats": None if ce_m is None else h_y - ce_m, "izy_lower_se_nats": ce_se,
            "ce_nats": ce_m, "h_y_nats": h_y}


def bound_intervals(bounds: dict) -> dict:
    """Per quantity: (lower, lower_se, lower_name), (upper, upper_se, upper_name); None when absent."""
    rate, rate_se = bounds.get("rate_nats"), bounds.get("rate_se_nats") or 0.0
    low, low_se = bounds.get("izy_lower_nats"), bounds.get("izy_lower_se_nats") or 0.0
    h_y = bounds.get("h_y_nats")
    lower = (low, low_se, "H(Y)-CE") if low is not None and low > 0 else (0.0, 0.0, "MI >= 0")
    out = {"I(X;Z)": {"lower": lower, "upper": None if rate is None else (rate, rate_se, "rate")}}
    upper_y = None
    if h_y is not None:
        upper_y = (h_y, 0.0, "H(Y)")
    if rate is not None and (upper_y is None or rate < upper_y[0]):
        upper_y = (rate, rate_se, "rate")
    out["I(Z;Y)"] = {"lower": lower, "upper": upper_y}
    return out


def check_estimate(quantity: str, est: dict, bounds: dict) -> list[dict]:
    """Flags for one estimate (an ``MIEstimate.as_dict()``) against the bounds of its quantity."""
    flags = []
    e, s = est.get("nats"), est.get("std_nats") or 0.0
    name = est.get("estimator")
    if e is None:
        return flags
    iv = bound_intervals(bounds)[quantity]
    if iv["upper"] is not None:
        u, u_se, uname = iv["upper"]
        if e - SPREAD * s > u + SPREAD * u_se:
            flags.append({"flag": "above_upper_bound", "quantity": quantity, "estimator": name,
                          "estimate_nats": e, "std_nats": s, "bound": uname, "bound_nats": u,
                          "message": f"{quantity} {name} = {e:.3f} +- {s:.3f} nats is above the upper bound "
                                     f"{uname} = {u:.3f}: the estimator over-shoots here (its value is not a "
                                     "valid lower bound on this sample)"})
    if iv["lower"] is not None:
        lo, lo_se, lname = iv["lower"]
        if e + SPREAD * s < lo - SPREAD * lo_se:
            flags.append({"flag": "below_lower_bound", "quantity": quantity, "estimator": name,
                          "estimate_nats": e, "std_nats": s, "bound": lname, "bound_nats": lo,
                          "message": f"{quantity} {name} = {e:.3f} +- {s:.3f} nats is below the lower bound "
                                     f"{lname} = {lo:.3f}: the estimator is loose here (it under-estimates)"})
    if s > max(UNSTABLE_STD[0], UNSTABLE_STD[1] * abs(e)):
        vals = ", ".join(f"{v:.2f}" for v in est.get("values_nats") or [])
        flags.append({"flag": "unstable", "quantity": quantity, "estimator": name, "estimate_nats": e,
                      "std_nats": s, "bound": None, "bound_nats": None,
                      "message": f"{quantity} {name}: the restarts disagree ({vals} nats): the critic over-fitted "
                                 "or diverged on the held-out part; do not read the mean as a number"})
    if est.get("near_ceiling"):
        flags.append({"flag": "near_ceiling", "quantity": quantity, "estimator": name, "estimate_nats": e,
                      "std_nats": s, "bound": "log(batch size)", "bound_nats": est.get("ceiling_nats"),
                      "message": f"{quantity} {name}: {est.get('notice') or 'near its ceiling'}"})
    return flags


def record_flags(rec: dict) -> list[dict]:
    flags = []
    for q in QUANTITIES:
        for est in (rec.get("estimates") or {}).get(q, {}).values():
            flags += check_estimate(q, est, rec["bounds"])
    return flags


@contextlib.contextmanager
def _hint(text: str):
    """Add which flag to change to bench.mi's 'too few samples' error."""
    try:
        yield
    except BenchError as e:
        if "too few samples" in str(e):
            raise BenchError(f"{str(e).rstrip('.')} ({text})") from None
        raise


def _has_estimates(rec: dict | None, estimators, n: int) -> set:
    """Estimators already done for both quantities in ``rec`` on the same ``n`` examples."""
    if not rec or rec.get("n") != n:
        return set()
    est = rec.get("estimates") or {}
    return {e for e in estimators if all(e in (est.get(q) or {}) for q in QUANTITIES)}


def info_model(model, x: torch.Tensor, y: torch.Tensor, estimators, *, steps: int, restarts: int,
               batch_size: int | None = None, seed: int = 0, device="cpu", threads: int | None = 1,
               previous: dict | None = None, log=print, label: str = "") -> dict:
    """The ``info`` record of one model on (x, y); estimators present in ``previous`` are kept."""
    from .mi import estimate_mi

    t0 = time.perf_counter()
    device = torch.device(device)
    rep = info_representation(model, x, y, device)
    z = rep["z"]
    n = len(z)
    bounds = info_bounds(rep["rate"], rep["ce"], y)
    keep = _has_estimates(previous, estimators, n)
    estimates = {q: {} for q in QUANTITIES}
    if keep:
        for q in QUANTITIES:
            estimates[q] = {e: previous["estimates"][q][e] for e in previous["estimates"][q] if e in keep}
    x_flat = x.reshape(n, -1).float()
    classes = max(int(getattr(model, "num_classes", 0) or 0), int(y.max()) + 1)
    y_onehot = torch.nn.functional.one_hot(y.long(), classes).float()
    pairs = {"I(X;Z)": (x_flat, z), "I(Z;Y)": (z, y_onehot)}
    for est_name in estimators:
        if est_name in keep:
            continue
        for q in QUANTITIES:
            a, b = pairs[q]
            with _hint("see --batch-size and --n-examples"):
                r = estimate_mi(a, b, est_name, steps=steps, restarts=restarts, batch_size=batch_size,
                                seed=seed, device=device, threads=threads)
            estimates[q][est_name] = r.as_dict()
            log(f"  {label}{q:7s} {est_name:8s} {r.nats:7.3f} +- {r.std_nats:.3f} nats "
                f"({r.bits:6.3f} +- {r.std_bits:.3f} bits)  {r.seconds:5.1f} s "
                f"({r.seconds / max(1, restarts):.1f} s per restart)")
    rec = {"n": n, "representation": rep["kind"], "z_dim": int(z.shape[1]), "z_seed": Z_SEED,
           "estimates": estimates, "bounds": bounds}
    rec["flags"] = record_flags(rec)
    rec["notes"] = [] if rep["kind"] == "z sample" else [DETERMINISTIC_NOTE]
    rec["seconds"] = time.perf_counter() - t0 + (previous or {}).get("seconds", 0.0) * bool(keep)
    return rec


# ============================================================================ info: table and plot
def info_table_rows(name: str, seed, rec: dict) -> list[list[str]]:
    rows = []
    iv = bound_intervals(rec["bounds"])
    for q in QUANTITIES:
        lo, up = iv[q]["lower"], iv[q]["upper"]
        lower = f"{lo[0]:.3f} ({lo[2]})" if lo[0] > 0 else "0"
        upper = f"{up[0]:.3f} ({up[2]})" if up else "inf" if q == "I(X;Z)" else ""
        for est_name, e in (rec["estimates"].get(q) or {}).items():
            flag = ", ".join(f["flag"] for f in rec.get("flags", [])
                             if f["quantity"] == q and f["estimator"] == est_name)
            rows.append([name, str(seed), q, est_name, f"{e['nats']:.3f} +- {e['std_nats']:.3f}",
                         f"{e['bits']:.3f} +- {e['std_bits']:.3f}", lower, upper, f"{e['seconds']:.1f}", flag])
    return rows


INFO_HEADERS = ["model", "seed", "quantity", "estimator", "estimate (nats)", "estimate (bits)",
                "lower bound (nats)", "upper bound (nats)", "time (s)", "flags"]


def format_info_table(rows) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=INFO_HEADERS, tablefmt="github", disable_numparse=True)


def format_bounds_table(items) -> str:
    """One row per (model, seed): the analytic bounds in nats and bits."""
    from tabulate import tabulate

    rows = []
    for name, seed, rec in items:
        b = rec["bounds"]
        cells = [name, str(seed), rec["representation"], str(rec["n"])]
        for key in ("rate_nats", "izy_lower_nats", "h_y_nats"):
            v = b.get(key)
            cells.append("" if v is None else f"{v:.3f} / {v / LN2:.3f}")
        rows.append(cells)
    return tabulate(rows, headers=["model", "seed", "representation", "n", "rate >= I(X;Z) (nats / bits)",
                                   "H(Y)-CE <= I(Z;Y)", "H(Y) >= I(Z;Y)"],
                    tablefmt="github", disable_numparse=True)


def _save_fig(fig, path: Path) -> Path:
    from .io import atomic_write_figure

    return atomic_write_figure(fig, path, dpi=110)


def _beta_points(data: dict) -> list[dict]:
    pts = []
    for name, m in data["models"].items():
        beta = (m.get("config") or {}).get("beta")
        if beta is None:
            continue
        for seed, entry in sorted(m.get("seeds", {}).items(), key=lambda kv: int(kv[0])):
            rec = entry.get("info")
            if rec:
                pts.append({"model": name, "seed": seed, "beta": float(beta), "rec": rec})
    return sorted(pts, key=lambda p: (p["beta"], int(p["seed"])))


def plot_info_beta(data: dict, path: Path) -> Path | None:
    """I(Z;Y) against I(X;Z) across the run's VIB models (one point per model and seed)."""
    from matplotlib.figure import Figure

    pts = _beta_points(data)
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


# ============================================================================ info: command
def _check_estimators(text: str | None) -> list[str]:
    from .cli import parse_list
    from .mi import list_estimators

    names = [e.lower() for e in (parse_list(text, what="estimator") if text is not None else DEFAULT_ESTIMATORS)]
    if not names:
        raise BenchError("--estimators is empty")
    for e in names:
        if e not in list_estimators():
            raise BenchError(f"unknown MI estimator {e!r}; choose from {', '.join(list_estimators())}")
    return list(dict.fromkeys(names))


def _positive(value, flag, low=1):
    if value is not None and value < low:
        raise BenchError(f"{flag} must be >= {low}, got {value}")


def _select_pairs(run_dir: Path, data: dict, models: str | None):
    from .cli import parse_list
    from .runs import trained_models

    patterns = parse_list(models, what="model pattern") if models else None
    pairs = trained_models(run_dir, data, patterns)
    if not pairs:
        what = f" matching {models!r}" if models else ""
        raise BenchError(f"{run_dir}: no trained models{what} (train some with `vib-bench train`)")
    return pairs


def _set_env(stage: str, env: dict):
    def fn(d):
        d.setdefault("environments", {})[stage] = env
        d["environment"] = env
    return fn


def cmd_info(args) -> int:
    from .cli import set_threads
    from .env import environment, resolve_device
    from .results import seed_entry, update_results
    from .runs import load_run_dataset, load_trained, open_run, require_run_dir

    set_threads(args.threads)
    run_dir = require_run_dir(args.run_dir)
    estimators = _check_estimators(args.estimators)
    _positive(args.steps, "--steps")
    _positive(args.restarts, "--restarts")
    _positive(args.batch_size, "--batch-size", 2)
    _positive(args.mi_threads, "--mi-threads")
    data = open_run(run_dir)
    pairs = _select_pairs(run_dir, data, args.models)
    device = resolve_device(args.device)
    ds = load_run_dataset(data, args.data_dir)
    x, y = ds.split("test")
    n = min(DEFAULT_N_EXAMPLES, len(x)) if args.n_examples is None else args.n_examples
    if not 1 <= n <= len(x):
        raise BenchError(f"--n-examples must be between 1 and {len(x)} (the size of the test split), got {n}")
    x, y = x[:n].contiguous(), y[:n].contiguous()
    env = environment(device)
    print(f"information of {len(pairs)} model(s) on {n} {ds.name} test examples: "
          f"{', '.join(estimators)}, {args.steps} steps x {args.restarts} restarts per estimate, on {device}")
    items = []
    total = time.perf_counter()
    for name, seed in pairs:
        prev = (data["models"].get(name, {}).get("seeds", {}).get(str(seed), {}) or {}).get("info")
        if args.resume and prev and _has_estimates(prev, estimators, n) == set(estimators):
            print(f"{name} seed {seed}: info already there for {', '.join(estimators)} (--resume), skipped")
            items.append((name, seed, {**prev, "flags": record_flags(prev)}))
            continue
        model = load_trained(run_dir, name, seed, device)
        print(f"{name} seed {seed}:")
        rec = info_model(model, x, y, estimators, steps=args.steps, restarts=args.restarts,
                         batch_size=args.batch_size, seed=args.seed, device=device, threads=args.mi_threads,
                         previous=prev if args.resume else None)
        for f in rec["flags"]:
            print(f"  FLAG {f['flag']}: {f['message']}")

        def put(d, name=name, seed=seed, rec=rec):
            seed_entry(d, name, seed)["info"] = rec
            _set_env("info", env)(d)
        data = update_results(run_dir, put)
        items.append((name, seed, rec))
    rows = [r for name, seed, rec in items for r in info_table_rows(name, seed, rec)]
    print()
    print(format_bounds_table(items))
    print()
    print(format_info_table(rows))
    if any(rec.get("notes") for _, _, rec in items):
        det = sorted({name for name, _, rec in items if rec.get("notes")})
        print(f"\nnote ({', '.join(det)}): {DETERMINISTIC_NOTE}.")
    times = [e["seconds"] for _, _, rec in items for q in QUANTITIES for e in rec["estimates"].get(q, {}).values()]
    if times:
        print(f"time per estimate: median {sorted(times)[len(times) // 2]:.1f} s, max {max(times):.1f} s "
              f"({len(times)} estimates); total {time.perf_counter() - total:.0f} s")
    if not args.no_plot:
        path = plot_info_beta(data, run_dir / "figures" / "info_beta.png")
        if path:
            print(f"wrote {path}")
    return 0


# ============================================================================ infoplane
SNAPSHOT_RE = re.compile(r"epoch(\d+)\.safetensors$")


def list_snapshots(mdir: Path) -> list[tuple[int, Path]]:
    from .train import SNAPSHOTS

    folder = Path(mdir) / SNAPSHOTS
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = SNAPSHOT_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def load_snapshots(paths) -> dict[int, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    out = {}
    for epoch, p in paths:
        try:
            out[epoch] = load_file(str(p))
        except Exception as e:  # noqa: BLE001 - a damaged file is a user-level problem
            raise BenchError(f"{p}: unreadable snapshot ({type(e).__name__})") from None
    return out


def _hidden_key(name: str):
    m = re.fullmatch(r"hidden(\d+)", name)
    return int(m.group(1)) if m else None


def default_layers(snap: dict[str, torch.Tensor]) -> list[str]:
    """The hidden layers in order, and the representation when it is not the last hidden layer."""
    hidden = sorted((k for k in snap if _hidden_key(k) is not None), key=_hidden_key)
    layers = list(hidden)
    rep = snap.get("representation")
    if rep is not None and not (hidden and snap[hidden[-1]].shape == rep.shape and torch.equal(snap[hidden[-1]], rep)):
        layers.append("representation")
    return layers


def layer_range(name: str, acts: list[torch.Tensor], activation: str | None) -> tuple[float, float, str]:
    """The binning range of a layer over all epochs: tanh [-1, 1]; ReLU [0, max]; otherwise [min, max]."""
    lo = min(float(a.min()) for a in acts)
    hi = max(float(a.max()) for a in acts)
    if _hidden_key(name) is not None:
        if activation == "tanh":
            return -1.0, 1.0, "tanh: [-1, 1]"
        if lo >= 0:
            return 0.0, hi, "ReLU: [0, max]"
    return lo, hi, "[min, max]"


def _check_plane_estimators(text: str) -> list[str]:
    from .cli import parse_list

    names = [e.lower() for e in (parse_list(text, what="estimator") or [])]
    if not names:
        raise BenchError("--estimator is empty")
    for e in names:
        if e not in PLANE_ESTIMATORS:
            raise BenchError(f"unknown information-plane estimator {e!r}; choose from {', '.join(PLANE_ESTIMATORS)}")
    return list(dict.fromkeys(names))


def infoplane_model(snaps: dict[int, dict], layers: list[str], estimators: list[str], *, bins: int,
                    activation: str | None, x: torch.Tensor | None = None, mine_opts: dict | None = None,
                    log=print) -> tuple[dict, dict]:
    """(result, setup): result[estimator][layer] = [{"epoch", "ixt_nats", "ity_nats"}, ...]."""
    from .mi import estimate_mi

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
                    with _hint("see --batch-size here and --snapshot-n of train"):
                        rx = estimate_mi(x_flat, t, "mine", **opts)
                        ry = estimate_mi(t, y_onehot, "mine", **opts)
                    pts.append({"epoch": e, "ixt_nats": rx.nats, "ity_nats": ry.nats,
                                "ixt_std_nats": rx.std_nats, "ity_std_nats": ry.std_nats})
                result[est][layer] = pts
            setup[est] = {"n": len(labels), **{k: (str(v) if k == "device" else v) for k, v in opts.items()}}
        setup[est]["seconds"] = time.perf_counter() - t0
        log(f"  {est}: {len(layers)} layer(s) x {len(epochs)} epochs in {setup[est]['seconds']:.1f} s")
    return result, setup


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


def cmd_infoplane(args) -> int:
    from .cli import parse_list, set_threads
    from .env import environment, resolve_device
    from .results import model_dir, seed_entry, update_results
    from .runs import load_run_dataset, open_run, require_run_dir

    set_threads(args.threads)
    run_dir = require_run_dir(args.run_dir)
    estimators = _check_plane_estimators(args.estimator)
    if args.bins < 2:
        raise BenchError(f"--bins must be >= 2, got {args.bins}")
    _positive(args.steps, "--steps")
    _positive(args.restarts, "--restarts")
    _positive(args.batch_size, "--batch-size", 2)
    want_layers = parse_list(args.layers, what="layer") if args.layers else None
    if args.layers is not None and not want_layers:
        raise BenchError("--layers is empty")
    data = open_run(run_dir)
    pairs = _select_pairs(run_dir, data, args.models)
    with_snaps = [(m, s, list_snapshots(model_dir(run_dir, m, s))) for m, s in pairs]
    missing = [f"{m} seed {s}" for m, s, snaps in with_snaps if not snaps]
    with_snaps = [t for t in with_snaps if t[2]]
    if not with_snaps:
        names = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise BenchError(f"{run_dir}: no activation snapshots for {names} "
                         "(train with --snapshot-every EPOCHS to record them)")
    device = resolve_device(args.device)
    x = None
    if "mine" in estimators:
        ds = load_run_dataset(data, args.data_dir)
        tr = data["run"]["train"]
        x_all, y_all = ds.split(tr.get("train_split", "train"))
        x, y_snap = x_all[: int(tr.get("snapshot_n", 2000))], y_all[: int(tr.get("snapshot_n", 2000))]
    mine_opts = {"steps": args.steps, "restarts": args.restarts, "batch_size": args.batch_size,
                 "seed": args.seed, "device": device, "threads": args.mi_threads}
    env = environment(device)
    if missing:
        print(f"no snapshots (skipped): {', '.join(missing)}")
    for name, seed, paths in with_snaps:
        snaps = load_snapshots(paths)
        first = snaps[paths[0][0]]
        avail = [k for k in first if k != "labels"]
        layers = want_layers or default_layers(first)
        bad = [l for l in layers if l not in avail]
        if bad:
            raise BenchError(f"{name} seed {seed}: no layer {bad[0]!r} in the snapshots (layers: {', '.join(avail)})")
        if x is not None:
            if len(x) != len(first["labels"]) or not torch.equal(y_snap[: len(first['labels'])], first["labels"].long()):
                raise BenchError(f"{name} seed {seed}: the snapshot examples are not the first "
                                 f"{len(first['labels'])} of the run's training split (was the data set changed?)")
        activation = (data["models"].get(name, {}).get("config") or {}).get("activation")
        print(f"{name} seed {seed}: {len(paths)} snapshots (epochs {paths[0][0]}..{paths[-1][0]}), "
              f"layers {', '.join(layers)}, n = {len(first['labels'])}")
        plane, setup = infoplane_model(snaps, layers, estimators, bins=args.bins, activation=activation, x=x,
                                       mine_opts=mine_opts)
        for est in estimators:
            for layer, pts in plane[est].items():
                a, b = pts[0], pts[-1]
                print(f"  {est:7s} {layer:14s} epoch {a['epoch']:>3}: ({a['ixt_nats']:.3f}, {a['ity_nats']:.3f})"
                      f" -> epoch {b['epoch']:>3}: ({b['ixt_nats']:.3f}, {b['ity_nats']:.3f}) nats")

        def put(d, name=name, seed=seed, plane=plane, setup=setup):
            e = seed_entry(d, name, seed)
            e.setdefault("infoplane", {}).update(plane)
            e.setdefault("infoplane_setup", {}).update(setup)
            _set_env("infoplane", env)(d)
        data = update_results(run_dir, put)
        entry = seed_entry(data, name, seed)
        h_y = label_entropy(first["labels"])
        path = plot_infoplane(name, seed, entry["infoplane"], entry.get("infoplane_setup", {}),
                              run_dir / "figures" / f"infoplane_{name}_seed{seed}.png", h_y=h_y)
        print(f"  wrote {path}")
    return 0


# ============================================================================ CLI
def register(sub) -> None:
    from .cli import add_data, add_device

    p = sub.add_parser("info", help="estimate I(X;Z) and I(Z;Y) of each model's representation, beside "
                                    "the analytic bounds")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `vib-bench train`")
    p.add_argument("--models", default=None, help="comma-separated names or wildcards (default: every trained model)")
    p.add_argument("--estimators", default=None,
                   help=f"comma-separated MI estimators (default: {','.join(DEFAULT_ESTIMATORS)}); "
                        "see `vib-bench list estimators`")
    p.add_argument("--n-examples", type=int, default=None, metavar="N",
                   help=f"use the first N test examples (default: {DEFAULT_N_EXAMPLES:,} or the whole test split)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"critic steps per restart (default {DEFAULT_STEPS})")
    p.add_argument("--restarts", type=int, default=DEFAULT_RESTARTS,
                   help=f"restarts per estimate; the spread is their std (default {DEFAULT_RESTARTS})")
    p.add_argument("--batch-size", type=int, default=None,
                   help="critic batch size (default: the estimator's, 256 or 128 for infonce; small test "
                        "splits such as digits need e.g. 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the MI estimates (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="skip (model, seed)s that already have info for the requested estimators on the same N; "
                        "compute only the missing estimators of the others")
    p.add_argument("--no-plot", action="store_true", help="do not write figures/info_beta.png")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--mi-threads", type=int, default=1,
                   help="torch threads inside each MI estimate (default 1: small critics gain little from more)")
    add_data(p)
    add_device(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("infoplane", help="the information plane during training, from activation snapshots")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory trained with --snapshot-every")
    p.add_argument("--models", default=None, help="comma-separated names or wildcards (default: every trained model)")
    p.add_argument("--estimator", default="binning",
                   help="binning, mine, or both comma-separated (default: binning)")
    p.add_argument("--bins", type=int, default=PLANE_BINS, help=f"bins per unit for binning (default {PLANE_BINS})")
    p.add_argument("--layers", default=None,
                   help="comma-separated snapshot layers (hidden1, hidden2, ..., representation, logits; "
                        "default: every hidden layer, plus the representation when it is not the last hidden)")
    p.add_argument("--steps", type=int, default=PLANE_MINE_STEPS,
                   help=f"mine: critic steps per estimate (default {PLANE_MINE_STEPS})")
    p.add_argument("--restarts", type=int, default=PLANE_MINE_RESTARTS,
                   help=f"mine: restarts per estimate (default {PLANE_MINE_RESTARTS})")
    p.add_argument("--batch-size", type=int, default=PLANE_MINE_BATCH,
                   help=f"mine: critic batch size (default {PLANE_MINE_BATCH})")
    p.add_argument("--seed", type=int, default=0, help="mine: seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--mi-threads", type=int, default=1, help="mine: torch threads inside each estimate (default 1)")
    add_data(p)
    add_device(p)
    p.set_defaults(func=cmd_infoplane)
