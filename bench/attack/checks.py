"""The sanity checks that make a robustness number credible (Carlini et al. 2019; AutoAttack's checks).

Model checks look at the model itself (randomness, logits, zero gradients, a large eps); cell checks
at one attack record (inside the eps-ball and [0, 1], eps = 0 reproduces clean accuracy); cross
checks compare records (accuracy falls with eps, iterative beats FGSM, gradient-free does not beat
every gradient attack). Flags are named in ``bench.protocol.FLAGS``.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from ..protocol import EVAL_BATCH, EVAL_SEED, MODEL_FLAGS, keyed_noise, predict_correct, seeded
from ..results import AttackRecord
from .cost import run_attack

CHECK_N = 500  # examples used by the model-level checks
BALL_TOL = 1e-6  # slack for "inside the eps ball"
ACC_TOL = 0.01  # accuracy may rise with eps / PGD may trail FGSM by this much (or 2 examples) before a flag
MASKING_TOL = 0.03  # a gradient-free attack beating every gradient attack by this much flags masking
ZERO_GRAD_MAX = 0.01  # fraction of examples with an exactly-zero input gradient before a flag
VANISHING_NORM = 1e-8  # an input-gradient norm below this (or a float32 loss of exactly 0) has vanished
VANISHING_MAX = 0.10  # fraction of correctly classified examples with a vanished gradient before a flag
LARGE_EPS = 0.5  # L-inf budget at which any unmasked model should fall to ~0
LARGE_EPS_MAX_ACC = 0.05


def model_checks(model, x, y, device) -> dict:
    """AutoAttack-style checks of the model itself: randomness, logits, zero gradients, large eps."""
    import torch.nn.functional as F

    from attacks import attack_mode, create_attack

    n = min(CHECK_N, len(x))
    xb, yb = x[:n].to(device), y[:n].to(device)
    declared = bool(getattr(model, "stochastic", False))
    with attack_mode(model), seeded(EVAL_SEED + 1, device), keyed_noise(model, EVAL_SEED + 1):
        with torch.no_grad():
            a, b = model(xb), model(xb)
        diff = float((a - b).abs().max())
        randomised = diff > 1e-6
        rows = a.float()
        probs = bool((rows >= 0).all() and (rows <= 1).all() and ((rows.sum(1) - 1).abs() < 1e-3).all())
        grads, losses, right = [], None, None
        with torch.enable_grad():
            for _ in range(2 if randomised else 1):
                xg = xb.clone().requires_grad_(True)
                out = model(xg)
                per_example = F.cross_entropy(out.float(), yb, reduction="none")
                grads.append(torch.autograd.grad(per_example.sum(), xg)[0].flatten(1))
                if losses is None:
                    losses, right = per_example.detach(), out.detach().argmax(1) == yb
    zero_frac = float((grads[0].abs().amax(1) == 0).double().mean())
    # Each example's loss depends on its own input only, so the rows of the summed gradient are the
    # per-example gradients: a row that vanished means cross-entropy attacks cannot move that example.
    vanished = (losses == 0) | (grads[0].norm(dim=1) < VANISHING_NORM)
    vanishing_frac = float(vanished[right].double().mean()) if bool(right.any()) else 0.0
    cosine = float(F.cosine_similarity(grads[0], grads[1], dim=1).mean()) if len(grads) > 1 else None

    # At eps = 0.5 (L-inf) every image can be pushed to mid-grey: an honest attack wins almost always.
    atk = create_attack("pgd", model, LARGE_EPS, alpha=0.05)
    adv, _ = run_attack(model, atk, x[:n], y[:n], batch_size=EVAL_BATCH, seed=EVAL_SEED + 2, device=device)
    robust = predict_correct(model, x[:n], y[:n], device) & predict_correct(model, adv, y[:n], device)
    large = {
        "attack": "pgd",
        "eps": LARGE_EPS,
        "budget": atk.config()["budget"],
        "n": n,
        "robust_acc": float(robust.double().mean()),
    }
    return {
        "n": n,
        "declared_stochastic": declared,
        "randomised": bool(randomised or declared),
        "output_max_abs_diff": diff,
        "undeclared_randomness": bool(randomised and not declared),
        "returns_probabilities": probs,
        "zero_grad_fraction": zero_frac,
        "zero_gradients": zero_frac > ZERO_GRAD_MAX,
        "vanishing_grad_fraction": vanishing_frac,
        "vanishing_gradients": vanishing_frac > VANISHING_MAX,
        "grad_cosine_between_draws": cosine,
        "large_eps": large,
        "large_eps_not_zero": large["robust_acc"] > LARGE_EPS_MAX_ACC,
    }


def cell_checks(rec: AttackRecord, norm, eps, adv, linf, l2, n_clean_correct) -> None:
    """Checks of one record: the adversarial inputs stay in the eps-ball and in [0, 1]; eps 0 = clean."""
    c = rec.checks
    c["outside_eps_ball"] = bool((linf if norm == "Linf" else l2).max() > eps + BALL_TOL)
    c["outside_unit_box"] = bool(adv.min() < 0.0 or adv.max() > 1.0)
    if eps == 0:
        c["eps0_differs_from_clean"] = rec["n_robust"] != n_clean_correct


def tolerance(n: int) -> float:
    """How far two accuracies on ``n`` examples may differ by noise before a check fires."""
    return max(ACC_TOL, 2.0 / max(n, 1))


def post_checks(records: list[AttackRecord], model_flags: dict) -> None:
    """Checks across records: monotone in eps, iterative >= FGSM, gradient-free vs gradient attacks."""
    from attacks import AttackError, get_spec

    def spec(name):
        try:
            return get_spec(name)
        except AttackError:  # an attack from a plugin that is not loaded now
            return None

    series = defaultdict(list)
    for r in records:
        series[(r.attack, r.norm, r.protocol)].append(r)
    for seq in series.values():
        best = None
        for r in sorted(seq, key=lambda r: r.eps):
            r.checks["accuracy_rises_with_eps"] = best is not None and r.robust_acc > best + tolerance(r.n)
            best = r.robust_acc if best is None else min(best, r.robust_acc)
    at = defaultdict(list)
    for r in records:
        at[(r.norm, r.eps)].append(r)
    for group in at.values():
        fgsm = [r for r in group if r.attack == "fgsm"]
        alone = [
            r
            for r in group
            if not r.is_worst_case
            and not r.get("cascade")
            and spec(r.attack) is not None
            and not r.get("mitigation_for")
        ]  # a transfer/EOT cell added by bench.attack.group_indicators
        grad = [r for r in alone if not spec(r.attack).gradient_free]
        free = [r for r in alone if spec(r.attack).gradient_free]
        for r in alone:
            s = spec(r.attack)
            if fgsm and s.iterative and not s.gradient_free and not s.minimum_norm:
                r.checks["weaker_than_fgsm"] = r.robust_acc > min(f.robust_acc for f in fgsm) + tolerance(r.n)
        tol = max(MASKING_TOL, 2.0 / group[0].n)
        masked = bool(free and grad and min(f.robust_acc for f in free) < min(g.robust_acc for g in grad) - tol)
        for r in group:
            if r.get("cascade") and spec(r.attack) is not None and spec(r.attack).gradient_free:
                # in the cascade it ran last, on what every gradient attack failed on: its extra successes
                r.checks["gradient_free_stronger"] = r.robust_acc < r["robust_acc_before"] - tol
                masked = masked or r.checks["gradient_free_stronger"]
        for r in group:
            if r in free or r.is_worst_case:
                r.checks["gradient_free_stronger"] = masked
    for r in records:
        for f in MODEL_FLAGS:
            r.checks[f] = bool(model_flags.get(f, False))
