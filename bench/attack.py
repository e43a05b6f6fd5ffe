"""``vib-bench attack``: robust accuracy of a run's trained models, with the sanity checks that make it credible.

Protocol (see docs/attacks.md):

* The first ``--n-examples`` test examples, fixed. Every model is attacked in eval mode with frozen
  parameters; both are restored afterwards.
* A prediction is always the model's own (a stochastic model averages its samples), made with a fixed
  noise seed (``EVAL_SEED``) and fixed batches (``EVAL_BATCH``), so eps = 0 reproduces clean accuracy
  exactly. An example is *robust* when it is classified correctly both clean and attacked.
* Deterministic models: protocol ``standard``. Randomised models (declared ``stochastic`` or found
  randomised by repeated forward passes): ``paper`` (gradients through the S-sample average that
  ``forward`` already is) and ``eot`` (attacks that average gradients over many forward draws).
* Per (norm, eps): a ``worst_case`` record per protocol (robust only if every attack failed); for a
  randomised model one more over both protocols, ``protocol = "all"``: the leaderboard number.

Every record carries its attack's full configuration, timing, throughput and sanity-check flags.
"""

from __future__ import annotations

import datetime as _dt
import functools
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import torch

from .errors import BenchError
from .stats import wilson_interval

DEFAULT_EPS_LINF = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
DEFAULT_EPS_L2 = (0.5, 1.0, 1.5, 2.0, 3.0)
DEFAULT_ATTACKS = ("fgsm", "pgd", "eot_pgd")  # eot_pgd only runs on randomised models
EVAL_SEED = 0        # the noise seed of every prediction (the one clean evaluation uses)
EVAL_BATCH = 1000    # fixed so that a stochastic model's predictions do not depend on --batch-size
CHECK_N = 500        # examples used by the model-level checks
BALL_TOL = 1e-6      # slack for "inside the eps ball"
ACC_TOL = 0.01       # accuracy may rise with eps / PGD may trail FGSM by this much (or 2 examples) before a flag
MASKING_TOL = 0.03   # a gradient-free attack beating every gradient attack by this much flags masking
ZERO_GRAD_MAX = 0.01  # fraction of examples with an exactly-zero input gradient before a flag
LARGE_EPS = 0.5      # L-inf budget at which any unmasked model should fall to ~0
LARGE_EPS_MAX_ACC = 0.05
GRID_K = 10

# Flags: True means "raised" (something looks wrong). Letters mark them in the printed table.
FLAG_LETTERS = {
    "outside_eps_ball": "B", "outside_unit_box": "U", "eps0_differs_from_clean": "Z",
    "accuracy_rises_with_eps": "R", "weaker_than_fgsm": "F", "gradient_free_stronger": "G",
    "eot_not_run": "E",
}
MODEL_FLAGS = ("zero_gradients", "large_eps_not_zero", "returns_probabilities", "undeclared_randomness")


# ------------------------------------------------------------------------------------------ statistics
def _acc_fields(robust: torch.Tensor) -> dict:
    n, k = int(robust.numel()), int(robust.sum())
    lo, hi = wilson_interval(k, n)
    return {"robust_acc": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n, "n_robust": k}


def eps_key(eps: float) -> str:
    return f"{float(eps):g}"


def per_example_key(attack: str, norm: str, eps: float, protocol: str | None = None) -> str:
    """``attack:pgd@0.3``; worst cases: ``attack:worst_case@0.3`` (L-inf leaderboard),
    ``attack:worst_case_l2@1``, and per protocol ``attack:worst_case[paper]@0.3``."""
    name = attack
    if attack == "worst_case":
        name += "_l2" if norm == "L2" else ""
        if protocol not in (None, "standard", "all"):
            name += f"[{protocol}]"
    return f"attack:{name}@{eps_key(eps)}"


# ------------------------------------------------------------------------------------ cost accounting
@functools.lru_cache(maxsize=4)
def matmul_peak_flops(device: str = "cpu") -> float:
    """The fp32 matmul rate this process reaches (FLOP/s), measured once per process (bench.flops)."""
    from .flops import matmul_peak_gflops

    return matmul_peak_gflops(device) * 1e9


class CostMeter:
    """Counts what an attack costs while active: example-gradients, forward rows and Linear FLOPs.

    FLOPs come from the model's ``nn.Linear`` layers only (2 per multiply-add): a forward counts every
    row it processed (for a stochastic model that includes each sample through the layers after the
    noise); a backward through a layer counts the same again (input gradients only: parameters are
    frozen during attacks, so no weight gradients are computed).
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.forward_rows = 0
        self.grad_rows = 0
        self.flops = 0.0
        self._handles = []

    def __enter__(self):
        self._handles.append(self.model.register_forward_hook(self._on_model))
        for m in self.model.modules():
            if isinstance(m, torch.nn.Linear):
                self._handles.append(m.register_forward_hook(self._on_linear))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _on_model(self, module, inputs, out):
        rows = int(out.shape[0])
        self.forward_rows += rows
        if out.requires_grad:
            out.register_hook(lambda g, rows=rows: self._add_grad(rows))

    def _add_grad(self, rows):
        self.grad_rows += rows

    def _on_linear(self, module, inputs, out):
        rows = inputs[0].numel() // module.in_features
        flops = 2.0 * rows * module.in_features * module.out_features
        self.flops += flops
        if out.requires_grad:
            out.register_hook(lambda g, flops=flops: self._add_flops(flops))

    def _add_flops(self, flops):
        self.flops += flops


# --------------------------------------------------------------------------------------- predictions
def predict_correct(model, x: torch.Tensor, y: torch.Tensor, device) -> torch.Tensor:
    """Per-example correctness of the model's own prediction, with the fixed evaluation noise."""
    from .evaluate import predict_log_probs, seeded

    with seeded(EVAL_SEED, device):
        logp = predict_log_probs(model, x, EVAL_BATCH, device)
    return (logp.argmax(1).cpu() == y.cpu())


def _predict_labels(model, x, device) -> torch.Tensor:
    from .evaluate import predict_log_probs, seeded

    with seeded(EVAL_SEED, device):
        return predict_log_probs(model, x, EVAL_BATCH, device).argmax(1).cpu()


def _cell_seed(model_seed: int, attack: str, norm: str, eps, protocol: str) -> int:
    return (zlib.crc32(f"{attack}|{norm}|{eps_key(eps) if eps is not None else '-'}|{protocol}".encode())
            + 1_000_003 * int(model_seed)) % (2 ** 31)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_attack(model, attack, x, y, *, batch_size: int, seed: int, device, progress=False, desc=""):
    """Attack every example in batches; returns (adversarial inputs on CPU, cost dict)."""
    from .evaluate import seeded

    from tqdm.auto import tqdm

    adv = []
    meter = CostMeter(model)
    _sync(device)
    t0 = time.perf_counter()
    with meter, seeded(seed, device):
        starts = range(0, len(x), batch_size)
        for i in tqdm(starts, desc=desc, leave=False, disable=not progress, file=sys.stderr):
            adv.append(attack(x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)).cpu())
    _sync(device)
    wall = time.perf_counter() - t0
    return torch.cat(adv), cost_fields(meter, wall, device)


def cost_fields(meter: CostMeter, wall: float, device) -> dict:
    peak = matmul_peak_flops(str(torch.device(device)))
    rate = meter.flops / wall if wall > 0 else float("nan")
    return {"wall_time_s": wall, "grad_evals": meter.grad_rows, "forward_evals": meter.forward_rows,
            "grad_evals_per_s": meter.grad_rows / wall if wall > 0 else float("nan"),
            "gflop": meter.flops / 1e9, "gflop_per_s": rate / 1e9, "peak_fraction": rate / peak}


def perturbation_fields(x, adv) -> tuple[dict, torch.Tensor, torch.Tensor]:
    d = (adv - x).flatten(1).double()
    linf, l2 = d.abs().amax(1), d.norm(dim=1)
    fields = {"linf_mean": float(linf.mean()), "linf_max": float(linf.max()),
              "l2_mean": float(l2.mean()), "l2_max": float(l2.max())}
    return fields, linf, l2


# ------------------------------------------------------------------------------------ model checks
def model_checks(model, x, y, device) -> dict:
    """AutoAttack-style checks of the model itself: randomness, logits, zero gradients, large eps."""
    import torch.nn.functional as F

    from attacks import attack_mode, create_attack

    from .evaluate import seeded

    n = min(CHECK_N, len(x))
    xb, yb = x[:n].to(device), y[:n].to(device)
    declared = bool(getattr(model, "stochastic", False))
    with attack_mode(model), seeded(EVAL_SEED + 1, device):
        with torch.no_grad():
            a, b = model(xb), model(xb)
        diff = float((a - b).abs().max())
        randomised = diff > 1e-6
        rows = a.float()
        probs = bool((rows >= 0).all() and (rows <= 1).all() and ((rows.sum(1) - 1).abs() < 1e-3).all())
        grads = []
        with torch.enable_grad():
            for _ in range(2 if randomised else 1):
                xg = xb.clone().requires_grad_(True)
                loss = F.cross_entropy(model(xg), yb, reduction="sum")
                grads.append(torch.autograd.grad(loss, xg)[0].flatten(1))
    zero_frac = float((grads[0].abs().amax(1) == 0).double().mean())
    cosine = float(F.cosine_similarity(grads[0], grads[1], dim=1).mean()) if len(grads) > 1 else None

    # At eps = 0.5 (L-inf) every image can be pushed to mid-grey: an honest attack wins almost always.
    atk = create_attack("pgd", model, LARGE_EPS, alpha=0.05)
    adv, _ = run_attack(model, atk, x[:n], y[:n], batch_size=EVAL_BATCH, seed=EVAL_SEED + 2, device=device)
    robust = predict_correct(model, x[:n], y[:n], device) & predict_correct(model, adv, y[:n], device)
    large = {"attack": "pgd", "eps": LARGE_EPS, "budget": atk.config()["budget"], "n": n,
             "robust_acc": float(robust.double().mean())}
    return {
        "n": n, "declared_stochastic": declared, "randomised": bool(randomised or declared),
        "output_max_abs_diff": diff, "undeclared_randomness": bool(randomised and not declared),
        "returns_probabilities": probs,
        "zero_grad_fraction": zero_frac, "zero_gradients": zero_frac > ZERO_GRAD_MAX,
        "grad_cosine_between_draws": cosine,
        "large_eps": large, "large_eps_not_zero": large["robust_acc"] > LARGE_EPS_MAX_ACC,
    }


# ------------------------------------------------------------------------------------------- cells
def _protocol(attack, randomised: bool) -> str:
    if not randomised:
        return "standard"
    return "eot" if attack.eot else "paper"


def _record(name, norm, eps, protocol, robust, clean_acc, adv_acc, pert, config, cost, seed, batch_size) -> dict:
    return {"attack": name, "norm": norm, "eps": float(eps), "protocol": protocol, **_acc_fields(robust),
            "clean_acc": clean_acc, "adv_acc": adv_acc, "perturbation": pert, "checks": {}, "config": config,
            **cost, "attack_seed": seed, "eval_seed": EVAL_SEED, "batch_size": batch_size,
            "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _cell_checks(rec, norm, eps, adv, linf, l2, n_clean_correct) -> None:
    c = rec["checks"]
    c["outside_eps_ball"] = bool((linf if norm == "Linf" else l2).max() > eps + BALL_TOL)
    c["outside_unit_box"] = bool(adv.min() < 0.0 or adv.max() > 1.0)
    if eps == 0:
        c["eps0_differs_from_clean"] = rec["n_robust"] != n_clean_correct


def _tol(n: int) -> float:
    return max(ACC_TOL, 2.0 / max(n, 1))


def post_checks(records: list[dict], model_flags: dict) -> None:
    """Checks across records: monotone in eps, iterative >= FGSM, gradient-free vs gradient attacks."""
    from attacks import get_spec

    def spec(name):
        try:
            return get_spec(name)
        except BenchError:  # an attack from a plugin that is not loaded now
            return None

    series = defaultdict(list)
    for r in records:
        series[(r["attack"], r["norm"], r["protocol"])].append(r)
    for seq in series.values():
        best = None
        for r in sorted(seq, key=lambda r: r["eps"]):
            r["checks"]["accuracy_rises_with_eps"] = best is not None and r["robust_acc"] > best + _tol(r["n"])
            best = r["robust_acc"] if best is None else min(best, r["robust_acc"])
    at = defaultdict(list)
    for r in records:
        at[(r["norm"], r["eps"])].append(r)
    for (norm, eps), group in at.items():
        fgsm = [r for r in group if r["attack"] == "fgsm"]
        grad = [r for r in group if r["attack"] != "worst_case" and spec(r["attack"]) is not None
                and not spec(r["attack"]).gradient_free]
        free = [r for r in group if r["attack"] != "worst_case" and spec(r["attack"]) is not None
                and spec(r["attack"]).gradient_free]
        for r in group:
            s = spec(r["attack"]) if r["attack"] != "worst_case" else None
            if fgsm and s is not None and s.iterative and not s.gradient_free and not s.minimum_norm:
                r["checks"]["weaker_than_fgsm"] = r["robust_acc"] > min(f["robust_acc"] for f in fgsm) + _tol(r["n"])
        masked = bool(free and grad and min(f["robust_acc"] for f in free)
                      < min(g["robust_acc"] for g in grad) - max(MASKING_TOL, 2.0 / group[0]["n"]))
        for r in group:
            if r in free or r["attack"] == "worst_case":
                r["checks"]["gradient_free_stronger"] = masked
    for r in records:
        for f in MODEL_FLAGS:
            r["checks"][f] = bool(model_flags.get(f, False))


def raised(checks: dict) -> list[str]:
    return [k for k, v in checks.items() if v is True]


def worst_case_records(records: list[dict], vectors: dict, norm: str, eps: float, randomised: bool,
                       clean_acc: float) -> list[tuple[dict, torch.Tensor]]:
    """Per-example worst case over every attack at (norm, eps): per protocol, and over all protocols."""
    cells = [r for r in records if r["norm"] == norm and r["eps"] == eps and r["attack"] != "worst_case"]
    out = []
    if not cells:
        return out

    def combine(rs, protocol, leaderboard):
        robust = None
        for r in rs:
            key = per_example_key(r["attack"], norm, eps)
            if key not in vectors:
                raise BenchError(f"per-example results {key!r} are missing; rerun with --fresh")
            v = vectors[key]
            robust = v.clone() if robust is None else robust & v
        rec = {"attack": "worst_case", "norm": norm, "eps": float(eps), "protocol": protocol,
               **_acc_fields(robust), "clean_acc": clean_acc, "leaderboard": leaderboard,
               "attacks": [f"{r['attack']}[{r['protocol']}]" for r in rs],
               "wall_time_s": sum(r.get("wall_time_s", 0.0) for r in rs if not r.get("shared_run")),
               "checks": {}}
        if eps == 0:
            rec["checks"]["eps0_differs_from_clean"] = rec["robust_acc"] != clean_acc
        out.append((rec, robust))
        return rec

    protocols = sorted({r["protocol"] for r in cells})
    if not randomised:
        combine(cells, "standard", True)
        return out
    per = {p: combine([r for r in cells if r["protocol"] == p], p, False) for p in protocols}
    rec = combine(cells, "all", True)
    for p in ("paper", "eot"):
        rec[f"{p}_robust_acc"] = per[p]["robust_acc"] if p in per else None
    rec["worse_protocol"] = min(per, key=lambda p: per[p]["robust_acc"])
    rec["checks"]["eot_not_run"] = "eot" not in per
    return out


# ------------------------------------------------------------------------------------------ driver
def _attack_overrides(name: str, opts, randomised: bool) -> dict:
    from attacks import get_spec

    ov = dict(opts.attack_set.get(name, {}))
    if name == "eot_pgd" and opts.eot_iter is not None:
        ov.setdefault("eot_iter", opts.eot_iter)
    if "version" in get_spec(name).budget and ov.get("version", "auto") == "auto":
        ov["version"] = "rand" if randomised else "standard"
    return ov


def attack_model(run_dir: Path, name: str, seed: int, x, y, opts, log=print) -> dict:
    """Run every missing cell for one (model, seed); returns the seed entry's attack fields."""
    from attacks import create_attack, get_spec

    from .results import load_per_example, load_results, save_per_example, seed_entry, update_results
    from .runs import load_trained

    device = opts.device
    model = load_trained(run_dir, name, seed, device)
    n = len(x)
    clean = predict_correct(model, x, y, device)
    clean_acc = float(clean.double().mean())
    setup = {"n_examples": n, "eval_seed": EVAL_SEED, "eval_batch": EVAL_BATCH, "clean_acc": clean_acc,
             "split": "test", "first_n": True}

    entry = seed_entry(load_results(run_dir), name, seed)
    records = [] if opts.fresh else list(entry.get("attacks", []))
    if records and not opts.resume:
        raise BenchError(f"{run_dir}: {name} seed {seed} already has attack results; pass --resume to keep them "
                         "and add what is missing, or --fresh to recompute them")
    old_setup = entry.get("attack_setup")
    if records and old_setup and old_setup.get("n_examples") != n:
        raise BenchError(f"--resume: {name} seed {seed} was attacked on {old_setup.get('n_examples')} examples, "
                         f"not {n}; pass the same --n-examples, or --fresh")

    checks = model_checks(model, x, y, device)
    randomised = checks["randomised"]
    mflags = [f for f in MODEL_FLAGS if checks.get(f)]
    log(f"{name} seed {seed}: clean accuracy {100 * clean_acc:.2f}% on {n} test examples; "
        f"{'randomised' if randomised else 'deterministic'}"
        f"{' (undeclared!)' if checks['undeclared_randomness'] else ''}; "
        f"zero gradients {100 * checks['zero_grad_fraction']:.1f}%; "
        f"PGD at L-inf {LARGE_EPS:g}: {100 * checks['large_eps']['robust_acc']:.1f}%"
        + (f"; FLAGS: {', '.join(mflags)}" if mflags else ""))

    vectors = {k: torch.from_numpy(v) for k, v in load_per_example(run_dir, name, seed).items()} if records else {}

    def save():
        def fn(data):
            e = seed_entry(data, name, seed)
            e["attacks"] = records
            e["attack_checks"] = checks
            e["attack_setup"] = setup
        update_results(run_dir, fn)

    def find(attack, norm, eps, protocol):
        for r in records:
            if (r["attack"], r["norm"], r["eps"], r["protocol"]) == (attack, norm, float(eps), protocol):
                return r
        return None

    def put(rec, robust):
        old = find(rec["attack"], rec["norm"], rec["eps"], rec["protocol"])
        if old is not None:
            records.remove(old)
        records.append(rec)
        key = per_example_key(rec["attack"], rec["norm"], rec["eps"], rec["protocol"])
        vectors[key] = robust
        save_per_example(run_dir, name, seed, key, robust)

    for attack_name in opts.attacks:
        s = get_spec(attack_name)
        if s.randomised_only and not randomised:
            log(f"  {attack_name}: skipped (the model is deterministic: EOT would repeat {attack_name.replace('eot_', '')})")

    cw_cache = {}
    for norm, eps_list in (("Linf", opts.eps_linf), ("L2", opts.eps_l2)):
        names = [a for a in opts.attacks if get_spec(a).norm == norm
                 and not (get_spec(a).randomised_only and not randomised)]
        if not names:
            continue
        for eps in eps_list:
            for attack_name in names:
                s = get_spec(attack_name)
                if eps == 0 and s.costly:  # it could only return x; the cheap attacks carry the eps-0 check
                    continue
                atk = create_attack(attack_name, model, None if s.minimum_norm else eps,
                                    **_attack_overrides(attack_name, opts, randomised))
                protocol = _protocol(atk, randomised)
                config = atk.config()
                if s.minimum_norm:
                    config["counted_within_eps"] = float(eps)
                done = find(attack_name, norm, eps, protocol)
                if done is not None and done.get("config", {}).get("budget") == config["budget"] \
                        and per_example_key(attack_name, norm, eps) in vectors:
                    continue
                cseed = _cell_seed(seed, attack_name, norm, None if s.minimum_norm else eps, protocol)
                desc = f"{name} {attack_name} {norm} {eps:g}"
                if s.minimum_norm:
                    if attack_name not in cw_cache:
                        adv, cost = run_attack(model, atk, x, y, batch_size=opts.batch_size, seed=cseed,
                                               device=device, progress=opts.progress, desc=desc)
                        wrong = ~predict_correct(model, adv, y, device)
                        _, _, l2_all = perturbation_fields(x, adv)
                        cw_cache[attack_name] = (adv, wrong, l2_all, cost)
                        first = True
                    else:
                        first = False
                    adv_all, wrong, l2_all, cost = cw_cache[attack_name]
                    success = wrong & clean & (l2_all <= eps + BALL_TOL)
                    used = torch.where(success.view(-1, 1, 1, 1), adv_all, x)
                    robust = clean & ~success
                    adv_acc = float((~(wrong & (l2_all <= eps + BALL_TOL))).double().mean())
                    pert, linf, l2 = perturbation_fields(x, used)
                    rec = _record(attack_name, norm, eps, protocol, robust, clean_acc, adv_acc, pert, config, cost,
                                  cseed, opts.batch_size)
                    ok = wrong & clean
                    rec["shared_run"] = not first
                    rec["min_norm"] = {"success_rate_unbounded": float(ok.double().mean()),
                                       "l2_median_of_successes": float(l2_all[ok].median()) if ok.any() else None,
                                       "l2_mean_of_successes": float(l2_all[ok].double().mean()) if ok.any() else None}
                    _cell_checks(rec, norm, eps, used, linf, l2, int(clean.sum()))
                else:
                    adv, cost = run_attack(model, atk, x, y, batch_size=opts.batch_size, seed=cseed, device=device,
                                           progress=opts.progress, desc=desc)
                    adv_ok = predict_correct(model, adv, y, device)
                    robust = clean & adv_ok
                    pert, linf, l2 = perturbation_fields(x, adv)
                    rec = _record(attack_name, norm, eps, protocol, robust, clean_acc, float(adv_ok.double().mean()),
                                  pert, config, cost, cseed, opts.batch_size)
                    _cell_checks(rec, norm, eps, adv, linf, l2, int(clean.sum()))
                put(rec, robust)
                cell_flags = raised(rec["checks"])
                log(f"  {attack_name:10s} {norm:4s} eps={eps:<5g} [{protocol}] robust {100 * rec['robust_acc']:6.2f}% "
                    f"[{100 * rec['ci_low']:.1f}, {100 * rec['ci_high']:.1f}]  "
                    + ("(same CW run as above) " if rec.get("shared_run") else _speed(rec) + " ")
                    + (f"FLAGS: {', '.join(cell_flags)}" if cell_flags else ""))
                post_checks(records, checks)
                save()
            # the worst case over every attack recorded at this eps, including earlier invocations'
            for rec, robust in worst_case_records(records, vectors, norm, eps, randomised, clean_acc):
                put(rec, robust)
            post_checks(records, checks)
            save()

    # Randomised model: did averaging over the randomness matter?
    if randomised:
        lead = [r for r in records if r["attack"] == "worst_case" and r["protocol"] == "all"
                and r.get("paper_robust_acc") is not None and r.get("eot_robust_acc") is not None]
        checks["eot_needed"] = any(r["eot_robust_acc"] < r["paper_robust_acc"] - _tol(r["n"]) for r in lead) \
            if lead else None
        save()
    model.cpu()
    return {"records": records, "checks": checks, "setup": setup, "model": model}


# ------------------------------------------------------------------------------------------ output
def _speed(rec: dict) -> str:
    wall = rec["wall_time_s"]
    if rec["grad_evals"]:
        rate = f"{rec['grad_evals'] / wall:,.0f} grad evals/s"
    else:  # gradient-free
        rate = f"{rec['forward_evals'] / wall:,.0f} forward evals/s"
    return f"{wall:.1f} s, {rate}, {rec['gflop'] / wall:.1f} GFLOP/s = {100 * rec['peak_fraction']:.0f}% of peak"


def speed_summary(records: list[dict]) -> list[str]:
    """Per attack, over its cells: evaluations per second and the fraction of the matmul peak."""
    agg: dict[str, dict] = {}
    for r in records:
        if r["attack"] == "worst_case" or r.get("shared_run") or not r.get("wall_time_s"):
            continue
        a = agg.setdefault(r["attack"], {"wall_time_s": 0.0, "grad_evals": 0, "forward_evals": 0, "gflop": 0.0,
                                         "peak": 0.0})
        for k in ("wall_time_s", "grad_evals", "forward_evals", "gflop"):
            a[k] += r[k]
        a["peak"] = r["gflop_per_s"] / r["peak_fraction"] if r.get("peak_fraction") else a["peak"]
    lines = []
    for name, a in agg.items():
        a["peak_fraction"] = (a["gflop"] / a["wall_time_s"]) / a["peak"] if a["peak"] else float("nan")
        lines.append(f"  {name:10s} {_speed(a)}")
    return lines


def render_table(records: list[dict], norm: str) -> str | None:
    from tabulate import tabulate

    rs = [r for r in records if r["norm"] == norm]
    if not rs:
        return None
    eps = sorted({r["eps"] for r in rs})
    rows = {}
    for r in rs:
        label = f"{r['attack']} [{r['protocol']}]" + (" *" if r.get("leaderboard") else "")
        rows.setdefault(label, {})[r["eps"]] = r
    order = sorted(rows, key=lambda k: (k.startswith("worst_case"), k))
    table = []
    for label in order:
        line = [label]
        for e in eps:
            r = rows[label].get(e)
            if r is None:
                line.append("")
                continue
            letters = "".join(FLAG_LETTERS[f] for f in raised(r["checks"]) if f in FLAG_LETTERS)
            line.append(f"{100 * r['robust_acc']:.1f}" + (f" {letters}" if letters else ""))
        table.append(line)
    return tabulate(table, headers=[f"{norm} eps"] + [eps_key(e) for e in eps], tablefmt="simple",
                    disable_numparse=True)


def print_summary(name: str, seed: int, result: dict, log=print) -> None:
    recs, checks = result["records"], result["checks"]
    log(f"\n{name} seed {seed}: robust accuracy (%) on {result['setup']['n_examples']} test examples, "
        f"clean {100 * result['setup']['clean_acc']:.2f}%  (* = leaderboard: worst case over every attack"
        f"{' and both protocols' if checks['randomised'] else ''})")
    for norm in ("Linf", "L2"):
        t = render_table(recs, norm)
        if t:
            log(t)
    mflags = [f for f in MODEL_FLAGS if checks.get(f)]
    extra = ""
    if checks.get("randomised"):
        cos = checks.get("grad_cosine_between_draws")
        extra = (f"; gradient cosine between two draws {cos:.3f}" if cos is not None else "") + \
            (f"; EOT needed: {'yes' if checks['eot_needed'] else 'no'}" if checks.get("eot_needed") is not None else "")
    log(f"model checks: {'randomised' if checks['randomised'] else 'deterministic'}{extra}; "
        f"model flags: {', '.join(mflags) if mflags else 'none'}")
    log("cell flags: " + ", ".join(f"{v}={k}" for k, v in FLAG_LETTERS.items()))
    speed = speed_summary(recs)
    if speed:
        log("speed (all cells of each attack; peak = this process's measured fp32 matmul rate):")
        for line in speed:
            log(line)


def save_grid(run_dir: Path, name: str, seed: int, model, records, x, y, opts, log=print) -> Path | None:
    """Re-run the strongest L-inf attack at the eps closest to --grid-eps on the first few examples."""
    from attacks import create_attack, get_spec

    from .adv_grid import save_adv_grid

    cands = [r for r in records if r["attack"] != "worst_case" and not get_spec(r["attack"]).minimum_norm
             and r["eps"] > 0]
    norm = "Linf" if any(r["norm"] == "Linf" for r in cands) else "L2"
    cands = [r for r in cands if r["norm"] == norm]
    if not cands:
        return None
    eps = min({r["eps"] for r in cands}, key=lambda e: (abs(e - opts.grid_eps), e))
    best = min((r for r in cands if r["eps"] == eps), key=lambda r: r["robust_acc"])
    device = opts.device
    model.to(device)
    randomised = best["protocol"] in ("paper", "eot")
    atk = create_attack(best["attack"], model, eps, **_attack_overrides(best["attack"], opts, randomised))
    k = min(GRID_K, len(x))
    adv, _ = run_attack(model, atk, x[:k], y[:k], batch_size=k, seed=best.get("attack_seed", EVAL_SEED), device=device)
    path = Path(run_dir) / "figures" / f"adv_{name}_seed{seed}.png"
    save_adv_grid(path, x[:k], adv, y[:k], _predict_labels(model, x[:k], device), _predict_labels(model, adv, device),
                  f"{name} seed {seed}: {best['attack']} [{best['protocol']}], {norm} eps={eps:g} "
                  f"(robust {100 * best['robust_acc']:.1f}% on {best['n']}); red = wrong")
    model.cpu()
    log(f"  picture: {path}")
    return path


def _parse_attack_set(items) -> dict:
    from .cli import parse_value

    out: dict[str, dict] = defaultdict(dict)
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise BenchError(f"--attack-set expects ATTACK.KEY=VALUE, got {item!r}")
        lhs, value = item.split("=", 1)
        attack, key = lhs.split(".", 1)
        out[attack.strip()][key.strip().replace("-", "_")] = parse_value(value.strip())
    return dict(out)


def _check_budget_value(attack: str, key: str, value, default) -> None:
    """A budget override must have the type of the registry's default; numbers must be >= 0."""
    where = f"--attack-set {attack}.{key}={value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise BenchError(f"{where}: expected true or false")
    elif isinstance(default, int):
        least = 1 if key in ("steps", "n_queries", "eot_iter", "square_queries", "n_restarts") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BenchError(f"{where}: expected an integer >= {least}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise BenchError(f"{where}: expected a number >= 0")
    elif isinstance(default, str) and not isinstance(value, str):
        raise BenchError(f"{where}: expected a string")


def attack_run(run_dir, *, attacks=None, eps=None, eps_l2=None, n_examples=None, batch_size: int = 1000,
               eot_iter=None, attack_set=None, grid_eps: float = 0.2, grid: bool = True, models=None,
               device="cpu", data_dir=None, resume: bool = False, fresh: bool = False, progress=None,
               plugin_paths=(), log=print) -> int:
    """Attack every trained model of a run (the ``attack`` command and the ``run`` suite stage).

    ``attacks`` are names or wildcards (default: fgsm, pgd, eot_pgd); ``eps`` / ``eps_l2`` the L-inf
    and L2 grids (defaults above); ``models`` patterns; ``attack_set`` maps an attack to budget overrides.
    """
    from attacks import check_eps, get_spec, list_attacks

    from .env import environment
    from .results import update_results
    from .runs import load_run_dataset, open_run, require_run_dir, trained_models

    run_dir = require_run_dir(run_dir)
    if resume and fresh:
        raise BenchError("--resume and --fresh contradict each other; pick one")
    attacks = list_attacks(list(attacks)) if attacks else list(DEFAULT_ATTACKS)
    if not attacks:
        raise BenchError("--attacks is empty")
    eps_linf = sorted({check_eps("Linf", e, "--eps") for e in (eps if eps is not None else DEFAULT_EPS_LINF)})
    eps_l2 = sorted({check_eps("L2", e, "--eps-l2") for e in (eps_l2 if eps_l2 is not None else DEFAULT_EPS_L2)})
    batch_size = 1000 if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise BenchError(f"--batch-size must be >= 1, got {batch_size}")
    if eot_iter is not None and eot_iter < 1:
        raise BenchError(f"--eot-iter must be >= 1, got {eot_iter}")
    if not 0 <= grid_eps:
        raise BenchError(f"--grid-eps must be >= 0, got {grid_eps}")
    attack_set = dict(attack_set or {})
    for a, ov in attack_set.items():
        spec = get_spec(a)
        bad = sorted(set(ov) - set(spec.budget))
        if bad:
            raise BenchError(f"--attack-set {a}.{bad[0]}: attack {a} has no such setting "
                             f"(settings: {', '.join(spec.budget) or 'none'})")
        for key, value in ov.items():
            _check_budget_value(a, key, value, spec.budget[key])
    norms_run = {get_spec(a).norm for a in attacks}
    if not any(eps_linf if norm == "Linf" else eps_l2 for norm in norms_run):
        raise BenchError(f"nothing to run: no eps for the {' and '.join(sorted(norms_run))} attacks selected "
                         "(see --eps and --eps-l2)")

    data = open_run(run_dir)
    pairs = trained_models(run_dir, data, models)
    if not pairs:
        what = f" matching {','.join(models)!r}" if models else ""
        raise BenchError(f"{run_dir}: no trained models{what} (train some with `vib-bench train`)")
    device = torch.device(device)
    ds = load_run_dataset(data, data_dir)
    x, y = ds.split("test")
    n = len(x) if n_examples is None else int(n_examples)
    if not 1 <= n <= len(x):
        raise BenchError(f"--n-examples must be between 1 and {len(x)} (the size of the test split), got {n}")
    x, y = x[:n].contiguous(), y[:n].contiguous()
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise BenchError(f"dataset {ds.name}: pixels are outside [0, 1]; attacks assume [0, 1] images")
    # refuse before any work rather than after the first model
    if not (resume or fresh):
        for m, s in pairs:
            e = data["models"].get(m, {}).get("seeds", {}).get(str(s), {})
            if e.get("attacks"):
                raise BenchError(f"{run_dir}: {m} seed {s} already has attack results; pass --resume to keep them "
                                 "and add what is missing, or --fresh to recompute them")
    peak = matmul_peak_flops(str(device))
    env = {**environment(device), "matmul_peak_gflops": peak / 1e9}

    def set_env(d):
        d.setdefault("environments", {})["attack"] = env
        d["environment"] = env  # the environment of the stage that last wrote
        # attack plugins are recorded like model plugins, so later --resume finds them
        d["run"]["plugins"] = sorted(set(d["run"].get("plugins", [])) | {str(Path(q).resolve()) for q in plugin_paths})
    update_results(run_dir, set_env)
    progress = progress if progress is not None else sys.stderr.isatty()
    opts = SimpleNamespace(device=device, attacks=attacks, eps_linf=eps_linf, eps_l2=eps_l2, batch_size=batch_size,
                           resume=resume, fresh=fresh, progress=progress, eot_iter=eot_iter,
                           attack_set=attack_set, grid_eps=grid_eps)
    log(f"attacking {len(pairs)} model(s) on {n} {ds.name} test examples with {', '.join(attacks)} on {device} "
        f"(fp32 matmul peak measured: {peak / 1e9:.1f} GFLOP/s)")
    for m, s in pairs:
        result = attack_model(run_dir, m, s, x, y, opts, log=log)
        if grid:
            save_grid(run_dir, m, s, result["model"], result["records"], x, y, opts, log=log)
        print_summary(m, s, result, log=log)
    return 0


def cmd_attack(args) -> int:
    from . import plugins
    from .cli import parse_list, set_threads
    from .env import resolve_device

    set_threads(args.threads)
    plugins.load_plugins(args.plugin)
    plugins.load_entry_points()
    return attack_run(
        args.run_dir, attacks=parse_list(args.attacks, what="attack") if args.attacks else None,
        eps=parse_list(args.eps, float, "eps"), eps_l2=parse_list(args.eps_l2, float, "eps"),
        n_examples=args.n_examples, batch_size=args.batch_size, eot_iter=args.eot_iter,
        attack_set=_parse_attack_set(args.attack_set), grid_eps=args.grid_eps, grid=not args.no_grid,
        models=parse_list(args.models, what="model pattern") if args.models else None,
        device=resolve_device(args.device), data_dir=args.data_dir, resume=args.resume, fresh=args.fresh,
        progress=args.progress, plugin_paths=args.plugin)


def register(sub) -> None:
    from .cli import add_data, add_device, add_plugins, add_progress

    p = sub.add_parser("attack", help="robust accuracy of a run's models under adversarial attacks, with sanity checks")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `vib-bench train`")
    p.add_argument("--models", default=None, help="comma-separated names or wildcards (default: every trained model)")
    p.add_argument("--attacks", default=None,
                   help=f"comma-separated attacks or wildcards (default: {','.join(DEFAULT_ATTACKS)}; "
                        "eot_pgd runs on randomised models only); see `vib-bench list attacks`")
    p.add_argument("--eps", default=None, metavar="LIST",
                   help="L-inf budgets for L-inf attacks, in [0, 1] (default: "
                        + ",".join(eps_key(e) for e in DEFAULT_EPS_LINF) + ")")
    p.add_argument("--eps-l2", default=None, metavar="LIST",
                   help="L2 budgets for L2 attacks (default: " + ",".join(eps_key(e) for e in DEFAULT_EPS_L2) + ")")
    p.add_argument("--n-examples", type=int, default=None, metavar="N",
                   help="attack the first N test examples (default: the whole test split)")
    p.add_argument("--batch-size", type=int, default=1000, help="examples per attack batch (default: 1000)")
    p.add_argument("--eot-iter", type=int, default=None, metavar="K",
                   help="forward draws averaged per EOT-PGD step (default: the registry's, 10)")
    p.add_argument("--attack-set", action="append", default=[], metavar="ATTACK.KEY=VALUE",
                   help="override one attack's budget, e.g. --attack-set pgd.steps=100 (repeatable)")
    p.add_argument("--grid-eps", type=float, default=0.2,
                   help="eps of the picture of adversarial examples (closest one run; default: 0.2)")
    p.add_argument("--no-grid", action="store_true", help="skip the picture")
    p.add_argument("--resume", action="store_true",
                   help="keep finished (model, seed, attack, eps, protocol) cells and run only the missing ones")
    p.add_argument("--fresh", action="store_true",
                   help="discard this command's earlier results for the selected models and recompute them")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_attack)
