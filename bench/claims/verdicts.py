"""The verdicts: one row per claim of Alemi et al. (2017), from stored measurements only.

Each row states the claim, what the paper's protocol measures here, what the strongest evaluation
measures, and a verdict:

* ``reproduced``: the claim holds under the paper's protocol and under the strongest evaluation;
* ``reproduced only under the paper's protocol``: it holds with the paper's attack (CW through the
  sampled forward, FGS) but not once EOT, the mean-mode transfer, restarts and the gradient-free
  attack are added: the paper's number came from attacks failing, which points to gradient masking;
* ``not reproduced``: it does not hold even under the paper's protocol;
* ``not measured``: the run lacks a model or a measurement the claim needs.

Every comparison that ranks two models is McNemar's exact test on the same examples (pooled over the
seeds both models have), Holm-adjusted across the betas of a sweep; "significantly more robust" means
adjusted p < alpha with the VIB model right more often where the two disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..stats import holm, mcnemar
from .measure import vector_key

REPRODUCED = "reproduced"
PAPER_ONLY = "reproduced only under the paper's protocol"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURED = "not measured"
VERDICTS = (REPRODUCED, PAPER_ONLY, NOT_REPRODUCED, NOT_MEASURED)

ZERO_TOL = 0.01  # (a): "0% accuracy" allows up to 1% (clean errors already count as failures)
FOOLED_EASILY = 0.9  # (d): the baseline is fooled on at least 90% of the zeros...
OFTEN_FAILS = 0.3  # ...and for some beta >= LARGE_BETA the adversary fails on at least 30% of them
LARGE_BETA = 1e-3  # "reasonably large beta"
TREND_RHO = 0.5  # (d'): |Spearman rho| of norm against beta, in the claimed direction
PAPER_TABLE1 = {"mlp": 1.38, "dropout": 1.34, "confidence_penalty": 1.36, "label_smoothing": 1.40, "vib_beta1e-3": 1.13}


@dataclass
class ModelData:
    """One model's stored claims measurements, per seed."""

    name: str
    beta: float | None  # VIB beta (0 included); None for deterministic models
    vectors: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # seed -> key -> bool vector
    cells: dict[int, list[dict]] = field(default_factory=dict)  # seed -> attack records
    zeros: dict[int, dict] = field(default_factory=dict)  # seed -> first-zeros record
    test_clean: dict[int, np.ndarray] = field(default_factory=dict)  # seed -> full-test correctness


# ------------------------------------------------------------------------------------ vectors
def _and(vectors: dict[str, np.ndarray], keys: list[str]) -> np.ndarray | None:
    if not keys or any(k not in vectors for k in keys):
        return None
    out = vectors[keys[0]].copy()
    for k in keys[1:]:
        out &= vectors[k]
    return out


def protocol_vector(
    vectors: dict, cells: list[dict], norm: str, eps: float | None, strongest: bool
) -> np.ndarray | None:
    """Per-example robustness under one protocol at one budget (None: no bound, the paper's CW measure).

    The paper's protocol: its attacks (group ``paper``). The strongest evaluation: every attack run,
    an example robust only if it survives all of them; without a bound, a success of a bounded
    attack counts as well.
    """
    groups = ("paper", "strong") if strongest else ("paper",)
    if eps is None:
        keys = [vector_key(c["attack"], None) for c in cells if c["norm"] == norm and c["eps"] is None]
        if strongest:
            keys += [
                vector_key(c["attack"], c["eps"])
                for c in cells
                if c["norm"] == norm and c["eps"] is not None and c["group"] in groups
            ]
        return _and(vectors, keys)
    keys = [
        vector_key(c["attack"], eps)
        for c in cells
        if c["norm"] == norm
        and c["group"] in groups
        and (c["eps"] is None or math.isclose(c["eps"], eps, rel_tol=1e-9))
    ]
    return _and(vectors, keys)


def paired(a: ModelData, b: ModelData, norm: str, eps, strongest: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The two models' robustness vectors, concatenated over the seeds both have (pairs stay aligned)."""
    va, vb = [], []
    for seed in sorted(set(a.vectors) & set(b.vectors)):
        x = protocol_vector(a.vectors[seed], a.cells.get(seed, []), norm, eps, strongest)
        y = protocol_vector(b.vectors[seed], b.cells.get(seed, []), norm, eps, strongest)
        if x is not None and y is not None and len(x) == len(y):
            va.append(x)
            vb.append(y)
    return (np.concatenate(va), np.concatenate(vb)) if va else None


def pooled(m: ModelData, norm: str, eps, strongest: bool) -> np.ndarray | None:
    parts = [protocol_vector(m.vectors[s], m.cells.get(s, []), norm, eps, strongest) for s in sorted(m.vectors)]
    parts = [p for p in parts if p is not None]
    return np.concatenate(parts) if parts else None


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.1f}%"


def _beta(b: float) -> str:
    return "0" if b == 0 else f"{b:.0e}".replace("e-0", "e-")


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def verdict(paper_holds: bool | None, strongest_holds: bool | None) -> str:
    if paper_holds is None:
        return NOT_MEASURED
    if not paper_holds:
        return NOT_REPRODUCED
    return PAPER_ONLY if strongest_holds is False else REPRODUCED


def _row(cid, claim, paper_text, strong_text, paper_holds, strongest_holds, **numbers) -> dict:
    return {
        "id": cid,
        "claim": claim,
        "paper_protocol": paper_text,
        "strongest": strong_text,
        "verdict": verdict(paper_holds, strongest_holds),
        "paper_holds": paper_holds,
        "strongest_holds": strongest_holds,
        **numbers,
    }


# --------------------------------------------------------------------------------------- rows
def table1_row(models: dict[str, ModelData], baseline: str, alpha: float) -> dict:
    claim = "Table 1: VIB (beta = 1e-3) has a lower test error than the deterministic baseline (1.13% vs 1.38%)"
    vib = next((m for m in models.values() if m.beta is not None and math.isclose(m.beta, 1e-3)), None)
    base = models.get(baseline)
    if vib is None or base is None:
        return _row("T1", claim, "needs the baseline and vib_beta1e-3", "-", None, None)
    seeds = sorted(set(vib.test_clean) & set(base.test_clean))
    seeds = [s for s in seeds if len(vib.test_clean[s]) == len(base.test_clean[s])]
    if not seeds:
        return _row("T1", claim, "no clean test vectors", "-", None, None)
    a = np.concatenate([base.test_clean[s] for s in seeds])
    b = np.concatenate([vib.test_clean[s] for s in seeds])
    t = mcnemar(a, b)
    err_base, err_vib = 1 - a.mean(), 1 - b.mean()
    holds = bool(err_vib < err_base and t["p"] < alpha)
    text = (
        f"test error {vib.name} {100 * err_vib:.2f}% vs {base.name} {100 * err_base:.2f}% "
        f"({len(seeds)} seed(s), {len(a) // len(seeds)} images each; McNemar p = {_p(t['p'])})"
    )
    return _row(
        "T1",
        claim,
        text,
        "n/a (clean error: no adversary)",
        holds,
        None,
        paper={"error_vib": err_vib, "error_baseline": err_base, "mcnemar": t, "seeds": seeds},
    )


def claim_a(models, baseline: str, alpha: float) -> dict:
    claim = "(a) The deterministic baseline has 0% accuracy under CW-L2, targeted and untargeted"
    base = models.get(baseline)
    if base is None or not base.vectors:
        return _row("a", claim, "needs the baseline's measurements", "-", None, None)
    per_attack = {}
    for attack in ("cw_paper", "cw_paper_targeted"):
        parts = [m[vector_key(attack, None)] for m in base.vectors.values() if vector_key(attack, None) in m]
        per_attack[attack] = float(np.concatenate(parts).mean()) if parts else None
    if any(v is None for v in per_attack.values()):
        return _row("a", claim, "CW was not run on the baseline", "-", None, None)
    paper = max(per_attack.values())
    strong_v = pooled(base, "L2", None, True)
    strong = float(strong_v.mean()) if strong_v is not None else None
    text = (
        f"{base.name}: {_pct(per_attack['cw_paper'])} untargeted, {_pct(per_attack['cw_paper_targeted'])} "
        f"targeted (unbounded CW, n = {len(strong_v) if strong_v is not None else '?'})"
    )
    return _row(
        "a",
        claim,
        text,
        f"{base.name}: {_pct(strong)} (worst case over every attack)",
        paper <= ZERO_TOL,
        None if strong is None else strong <= ZERO_TOL,
        paper={"accuracy": per_attack},
        strong={"accuracy": strong},
    )


def sweep_models(models, baseline):
    return sorted((m for n, m in models.items() if m.beta is not None and n != baseline), key=lambda m: m.beta)


def compare_sweep(models, baseline, norm, eps, strongest, alpha):
    """Per beta: accuracies, McNemar and Holm-adjusted p against the baseline."""
    base = models[baseline]
    out = []
    for m in sweep_models(models, baseline):
        pair = paired(m, base, norm, eps, strongest)
        if pair is None:
            continue
        vib, ref = pair
        t = mcnemar(ref, vib)  # b: baseline right, VIB wrong; c: the reverse
        out.append(
            {
                "model": m.name,
                "beta": m.beta,
                "acc": float(vib.mean()),
                "acc_baseline": float(ref.mean()),
                "b": t["b"],
                "c": t["c"],
                "n": t["n"],
                "p": t["p"],
            }
        )
    for r, p in zip(out, holm([r["p"] for r in out])):
        r["p_holm"] = p
        r["better"] = bool(p < alpha and r["c"] > r["b"])
    return out


def _sweep_text(rows, what):
    if not rows:
        return "no measurements"
    better = [r for r in rows if r["better"]]
    best = max(rows, key=lambda r: r["acc"])
    betas = ", ".join(_beta(r["beta"]) for r in better) or "none"
    return (
        f"{what}: baseline {_pct(rows[0]['acc_baseline'])}, VIB {_pct(min(r['acc'] for r in rows))}-"
        f"{_pct(best['acc'])} (best beta {_beta(best['beta'])}); significantly more robust at "
        f"{len(better)}/{len(rows)} betas ({betas})"
    )


def claim_b(models, baseline, eps_l2, alpha, broad_min) -> dict:
    claim = "(b) VIB is significantly more robust than the baseline for a reasonably broad range of beta (CW-L2)"
    if baseline not in models or not sweep_models(models, baseline):
        return _row("b", claim, "needs the baseline and a VIB sweep", "-", None, None)
    res = {s: compare_sweep(models, baseline, "L2", eps_l2, s, alpha) for s in (False, True)}
    need = min(broad_min, len(res[False])) if res[False] else broad_min
    holds = {s: (sum(r["better"] for r in res[s]) >= need) if res[s] else None for s in res}
    unb = compare_sweep(models, baseline, "L2", None, False, alpha)
    unb_text = (
        (f"; unbounded CW: baseline {_pct(unb[0]['acc_baseline'])}, VIB up to {_pct(max(r['acc'] for r in unb))}")
        if unb
        else ""
    )
    return _row(
        "b",
        claim,
        _sweep_text(res[False], f"CW inside L2 {eps_l2:g}") + unb_text,
        _sweep_text(res[True], f"worst case inside L2 {eps_l2:g}"),
        holds[False],
        holds[True],
        paper={"per_beta": res[False], "unbounded": unb},
        strong={"per_beta": res[True]},
        needed=need,
    )


def claim_c(models, baseline, eps_l2, alpha) -> dict:
    claim = "(c) Some robustness remains even as beta goes to 0"
    sweep = sweep_models(models, baseline)
    if baseline not in models or not sweep:
        return _row("c", claim, "needs the baseline and a VIB sweep", "-", None, None)
    low = sweep[0]
    out = {}
    for s in (False, True):
        pair = paired(low, models[baseline], "L2", eps_l2, s)
        if pair is None:
            out[s] = None
            continue
        vib, ref = pair
        t = mcnemar(ref, vib)
        out[s] = {
            "model": low.name,
            "beta": low.beta,
            "acc": float(vib.mean()),
            "acc_baseline": float(ref.mean()),
            **t,
            "better": bool(t["p"] < alpha and t["c"] > t["b"]),
        }

    def text(r, what):
        if r is None:
            return "no measurements"
        return (
            f"{what}: beta {_beta(r['beta'])} {_pct(r['acc'])} vs baseline {_pct(r['acc_baseline'])} "
            f"(McNemar p = {_p(r['p'])})"
        )

    return _row(
        "c",
        claim,
        text(out[False], f"CW inside L2 {eps_l2:g}"),
        text(out[True], f"worst case inside L2 {eps_l2:g}"),
        None if out[False] is None else out[False]["better"],
        None if out[True] is None else out[True]["better"],
        paper=out[False],
        strong=out[True],
    )


def _zeros(m: ModelData, which: str) -> dict | None:
    recs = [m.zeros[s][which] for s in sorted(m.zeros) if which in m.zeros[s]]
    if not recs:
        return None
    success = [v for r in recs for v in r["success"]]
    out = {"n": len(success), "fooled": int(sum(success))}
    for k in ("l0", "l2", "linf"):
        vals = [v for r in recs for v in r[k] if v is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _spearman(x, y) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def zeros_summary(models, baseline) -> dict:
    """Per protocol: the baseline's and each beta's fooled count and mean norms; Spearman trends over beta."""
    out = {}
    for which in ("paper", "strongest"):
        base = _zeros(models[baseline], which) if baseline in models else None
        per = [
            {"model": m.name, "beta": m.beta, **z} for m in sweep_models(models, baseline) if (z := _zeros(m, which))
        ]
        pts = [p for p in per if p["fooled"] > 0]
        trend = {k: _spearman([p["beta"] for p in pts], [p[k] for p in pts]) for k in ("l0", "l2", "linf")}
        out[which] = {"baseline": base, "per_beta": per, "spearman": trend}
    return out


def claim_d(models, baseline) -> tuple[dict, dict]:
    claim1 = (
        "(d) First ten zeros, target 1: the deterministic model is fooled easily, while for reasonably large "
        "beta the adversary often fails"
    )
    claim2 = "(d') First ten zeros, target 1: as beta grows, the perturbation's L0 falls while its L2 and L-inf rise"
    if baseline not in models or not sweep_models(models, baseline) or not models[baseline].zeros:
        return (
            _row("d", claim1, "needs the baseline, a VIB sweep and the first-zeros runs", "-", None, None),
            _row("d'", claim2, "needs the baseline, a VIB sweep and the first-zeros runs", "-", None, None),
        )
    z = zeros_summary(models, baseline)

    def often(which):
        s = z[which]
        if s["baseline"] is None or not s["per_beta"]:
            return None, "no measurements"
        base_ok = s["baseline"]["fooled"] >= FOOLED_EASILY * s["baseline"]["n"]
        large = [p for p in s["per_beta"] if p["beta"] >= LARGE_BETA]
        fails = [p for p in large if p["n"] - p["fooled"] >= OFTEN_FAILS * p["n"]]
        text = f"baseline fooled {s['baseline']['fooled']}/{s['baseline']['n']}; adversary fails on " + ", ".join(
            f"{p['n'] - p['fooled']}/{p['n']} (beta {_beta(p['beta'])})" for p in s["per_beta"]
        )
        return bool(base_ok and fails), text

    def trend(which):
        rho = z[which]["spearman"]
        if any(rho[k] is None for k in rho):
            return None, "too few betas with a successful attack for a trend"
        ok = rho["l0"] <= -TREND_RHO and rho["l2"] >= TREND_RHO and rho["linf"] >= TREND_RHO
        return ok, f"Spearman over beta: L0 {rho['l0']:+.2f}, L2 {rho['l2']:+.2f}, L-inf {rho['linf']:+.2f}"

    (p1, t1), (s1, u1) = often("paper"), often("strongest")
    (p2, t2), (s2, u2) = trend("paper"), trend("strongest")
    if p2 is None:
        p2 = False  # the paper's protocol cannot show the trend here: the claim is not reproduced
    return (
        _row("d", claim1, "CW: " + t1, "CW + EOT + mean-mode transfer: " + u1, p1, s1, zeros=z),
        _row("d'", claim2, "CW: " + t2, "smallest perturbation found: " + u2, p2, s2),
    )


def claim_e(models, baseline, eps_linf, alpha, broad_min) -> dict:
    claim = (
        "(e) Under FGS, VIB's accuracy relative to the baseline's exceeds 1 for a broad range of beta (later version)"
    )
    if baseline not in models or not sweep_models(models, baseline):
        return _row("e", claim, "needs the baseline and a VIB sweep", "-", None, None)
    res = {s: {e: compare_sweep(models, baseline, "Linf", e, s, alpha) for e in eps_linf} for s in (False, True)}
    for by_eps in res.values():
        for rows in by_eps.values():
            for r in rows:
                r["ratio"] = (
                    r["acc"] / r["acc_baseline"] if r["acc_baseline"] > 0 else (math.inf if r["acc"] > 0 else None)
                )
    need_eps = math.ceil(len(eps_linf) / 2)

    def judge(s):
        hold = []
        for _e, rows in res[s].items():
            if not rows:
                return None, "no measurements"
            need = min(broad_min, len(rows))
            hold.append(sum(r["better"] for r in rows) >= need)
        return sum(hold) >= need_eps, hold

    def text(s):
        parts = []
        for e, rows in res[s].items():
            better = [r for r in rows if r["better"]]
            ratios = [r["ratio"] for r in rows if r["ratio"] is not None and math.isfinite(r["ratio"])]
            top = f"max ratio {max(ratios):.2f}" if ratios else "ratio undefined"
            parts.append(
                f"eps {e:g}: baseline {_pct(rows[0]['acc_baseline']) if rows else '-'}, {top}, "
                f"better at {len(better)}/{len(rows)} betas"
            )
        return "; ".join(parts)

    (ph, _), (sh, _) = judge(False), judge(True)
    return _row(
        "e",
        claim,
        "FGS: " + text(False),
        "worst case: " + text(True),
        ph,
        sh,
        paper={str(e): r for e, r in res[False].items()},
        strong={str(e): r for e, r in res[True].items()},
    )


def judge_claims(
    models: dict[str, ModelData],
    *,
    baseline: str,
    eps_l2: float,
    eps_linf: list[float],
    alpha: float = 0.05,
    broad_min: int = 3,
) -> list[dict]:
    """Every row, Table 1 and (a)-(d) first."""
    d1, d2 = claim_d(models, baseline)
    return [
        table1_row(models, baseline, alpha),
        claim_a(models, baseline, alpha),
        claim_b(models, baseline, eps_l2, alpha, broad_min),
        claim_c(models, baseline, eps_l2, alpha),
        d1,
        d2,
        claim_e(models, baseline, eps_linf, alpha, broad_min),
    ]
