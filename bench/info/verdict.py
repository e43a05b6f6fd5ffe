"""The verdict of the 12-bit information-plane experiment (``bench.info.plane12``), and its report.

Per activation, estimator and one of the last hidden layers, per seed: the peak of I(X;T) over the snapshot
epochs and its value at the last epoch. The layer *compresses* in a seed when I(X;T) falls after its peak by
more than ``max(MIN_DROP_NATS, MIN_DROP_FRACTION * peak)`` and by more than ``SE_FACTOR`` standard errors of
the estimate (kde and noisy sample their outer mean). Whether the test error tracks it: Spearman's rank
correlation between I(X;T) and the test error over the snapshots from the peak on (positive: the error falls
as I(X;T) falls, what "compression drives generalisation" predicts), where there are at least
``MIN_POINTS`` of them.
"""

from __future__ import annotations

import math
import statistics

LAST_LAYERS = 2  # the last two hidden layers (4 and 3 units)
MIN_DROP_NATS = 0.05
MIN_DROP_FRACTION = 0.05
SE_FACTOR = 3.0
MIN_POINTS = 4
ESTIMATOR_NAMES = {"binning": "binning (30 bins)", "kde": "KDE upper bound", "noisy": "noise-regularised"}


def _spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < MIN_POINTS or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    rho = spearmanr(a, b).statistic
    return float(rho) if math.isfinite(rho) else None


def seed_verdict(points: list[dict], errors: list[dict]) -> dict:
    """One seed's curve of one layer: peak, final, drop, whether it compresses, and the rank correlation."""
    v = [p["ixt_nats"] for p in points]
    se = [p.get("ixt_se_nats") or 0.0 for p in points]
    err = {e["epoch"]: e["test_error"] for e in errors}
    k = max(range(len(v)), key=v.__getitem__)
    drop = v[k] - v[-1]
    noise = SE_FACTOR * math.hypot(se[k], se[-1])
    compresses = drop > max(MIN_DROP_NATS, MIN_DROP_FRACTION * v[k], noise)
    after = points[k:]
    rho = _spearman([p["ixt_nats"] for p in after], [err[p["epoch"]] for p in after])
    return {
        "peak_epoch": points[k]["epoch"],
        "peak_nats": v[k],
        "final_nats": v[-1],
        "drop_nats": drop,
        "drop_fraction": drop / v[k] if v[k] > 0 else 0.0,
        "compresses": bool(compresses),
        "rho_after_peak": rho,
        "test_error_at_peak": err[points[k]["epoch"]],
        "final_test_error": err[points[-1]["epoch"]],
    }


def _hidden_layers(plane: dict) -> list[str]:
    return sorted(plane, key=lambda name: int(name.removeprefix("hidden")))


def verdicts(runs: list[dict], estimators, activations) -> list[dict]:
    """One row per (activation, estimator, last layer) over the seeds (``runs`` of ``plane12``)."""
    rows = []
    for act in activations:
        mine = [r for r in runs if r["activation"] == act]
        if not mine:
            continue
        for est in estimators:
            layers = _hidden_layers(mine[0]["plane"][est])[-LAST_LAYERS:]
            for layer in layers:
                per = [seed_verdict(r["plane"][est][layer], r["errors"]) for r in mine]
                drops = [p["drop_nats"] for p in per]
                rhos = [p["rho_after_peak"] for p in per if p["rho_after_peak"] is not None]
                n_c = sum(p["compresses"] for p in per)
                rows.append(
                    {
                        "activation": act,
                        "estimator": est,
                        "layer": layer,
                        "seeds": len(per),
                        "compresses": n_c,
                        "verdict": "falls" if n_c == len(per) else "no fall" if n_c == 0 else "mixed",
                        "drop_nats_mean": statistics.fmean(drops),
                        "drop_nats_std": statistics.stdev(drops) if len(drops) > 1 else 0.0,
                        "drop_fraction_mean": statistics.fmean(p["drop_fraction"] for p in per),
                        "peak_epoch_median": statistics.median(p["peak_epoch"] for p in per),
                        "rho_median": statistics.median(rhos) if rhos else None,
                        "rho_min": min(rhos) if rhos else None,
                        "rho_max": max(rhos) if rhos else None,
                        "final_test_error_mean": statistics.fmean(p["final_test_error"] for p in per),
                        "per_seed": per,
                    }
                )
    return rows


def _num(v, fmt="{:.2f}") -> str:
    return "" if v is None else fmt.format(v)


def verdict_table(rows: list[dict]) -> str:
    from tabulate import tabulate

    body = []
    for r in rows:
        rho = "" if r["rho_median"] is None else (f"{r['rho_median']:+.2f} [{r['rho_min']:+.2f}, {r['rho_max']:+.2f}]")
        body.append(
            [
                r["activation"],
                ESTIMATOR_NAMES.get(r["estimator"], r["estimator"]),
                r["layer"],
                f"{r['verdict']} ({r['compresses']}/{r['seeds']})",
                f"{r['drop_nats_mean']:.3f} ± {r['drop_nats_std']:.3f}",
                f"{100 * r['drop_fraction_mean']:.1f}",
                f"{r['peak_epoch_median']:g}",
                rho,
                f"{100 * r['final_test_error_mean']:.1f}",
            ]
        )
    headers = [
        "activation",
        "estimator",
        "layer",
        "I(X;T) falls after its peak (seeds)",
        "drop (nats)",
        "drop (% of peak)",
        "peak epoch (median)",
        "Spearman(I(X;T), test error) after the peak: median [min, max]",
        "final test error %",
    ]
    return tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True)


def summary_lines(rows: list[dict], runs: list[dict]) -> list[str]:
    """Per activation, computed from the verdict rows: in how many (estimator, last layer, seed) cases I(X;T)
    falls, and the final test error over seeds."""
    out = []
    for act in dict.fromkeys(r["activation"] for r in rows):
        mine = [r for r in rows if r["activation"] == act]
        n = sum(r["seeds"] for r in mine)
        k = sum(r["compresses"] for r in mine)
        errs = [100 * r["errors"][-1]["test_error"] for r in runs if r["activation"] == act]
        out.append(
            f"- {act}: I(X;T) of the last {LAST_LAYERS} layers falls after its peak in {k} of {n} "
            f"(estimator, layer, seed) cases; final test error {statistics.fmean(errs):.2f}% "
            f"(seeds: {', '.join(f'{e:.2f}' for e in errs)})."
        )
    return out


def format_report(doc: dict, figure: str | None) -> str:
    """The Markdown report of a ``plane12`` results document."""
    st, tm = doc["settings"], doc["timings"]
    tr = st["train"]
    lines = [
        "# The information plane on the 12-bit task",
        "",
        f"Task: {st['task']['n_train'] + st['task']['n_val']} training and {st['task']['n_test']} test patterns "
        f"of the 4,096 12-bit inputs; label rule {st['rule']} (a documented equivalent of the original rule). "
        f"Network {st['model']}, {st['optimizer']} lr {tr['lr']:g}, "
        f"{'full batch' if not tr['batch_size'] else 'batch ' + str(tr['batch_size'])}, {tr['epochs']} "
        f"epochs; seeds {', '.join(map(str, st['seeds']))}; snapshots at epochs "
        f"{', '.join(map(str, st['snapshot_epochs']))}. X is {st['x']}; I(X;T) <= log 4096 = "
        f"{math.log(4096):.3f} nats.",
        "",
        f"Estimators: binning ({st['bins']} equal-width bins per unit over the layer's range: tanh [-1, 1], ReLU "
        f"[0, max over epochs]); the KDE upper bound of Saxe et al. (noise variance {st['kde_variance']:g}); the "
        f"noise-regularised I(X; T + Z), Z ~ N(0, {st['noise_beta']:g}^2 I) (Goldfeld et al. 2019), by Monte "
        f"Carlo; kde and noisy average over {st['outer_rows']} random patterns (inner sums over all 4,096).",
        "",
        "## Verdict",
        "",
        f"A layer compresses in a seed when I(X;T) falls after its peak by more than max({MIN_DROP_NATS} nats, "
        f"{MIN_DROP_FRACTION:.0%} of the peak) and {SE_FACTOR:g} standard errors. The rank correlation is over "
        f"the snapshots from the peak on (positive: the test error falls as I(X;T) falls).",
        "",
        verdict_table(doc["verdict"]),
        "",
        *summary_lines(doc["verdict"], doc["runs"]),
        "",
        "The rank correlation runs over training time: after the peak both I(X;T) and the test error tend to "
        "fall with the epochs, so a positive value within one activation says they move together, not that "
        "one drives the other; the comparison across activations (a network that generalises without any "
        "fall) is the test of that claim.",
        "",
    ]
    if figure:
        lines += [f"![information plane]({figure})", ""]
    lines += [
        "## Timings",
        "",
        "Wall-clock seconds, one thread: training "
        + f"{tm['train_s']:.0f} s; "
        + "; ".join(f"{k[:-2]} {v:.0f} s" for k, v in tm.items() if k not in ("train_s", "total_s", "total_cpu_s"))
        + f"; total {tm['total_s']:.0f} s"
        + (
            f", of which {tm['total_cpu_s']:.0f} s of CPU time (the rest: waiting for a shared CPU)."
            if "total_cpu_s" in tm
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


__all__ = ["LAST_LAYERS", "format_report", "seed_verdict", "summary_lines", "verdict_table", "verdicts"]
