"""The attack stage's text output: per model, a table of robust accuracy by attack and eps."""

from __future__ import annotations

from ..protocol import CELL_LETTERS, MODEL_FLAGS
from ..results import AttackRecord, eps_label


def speed_text(rec: dict) -> str:
    """Wall time, evaluation rate and fraction of the matmul peak of one cell (or an aggregate)."""
    wall = rec["wall_time_s"]
    if not wall:
        return "nothing left to attack"
    if rec["grad_evals"]:
        rate = f"{rec['grad_evals'] / wall:,.0f} grad evals/s"
    else:  # gradient-free
        rate = f"{rec['forward_evals'] / wall:,.0f} forward evals/s"
    return f"{wall:.1f} s, {rate}, {rec['gflop'] / wall:.1f} GFLOP/s = {100 * rec['peak_fraction']:.0f}% of peak"


def speed_summary(records: list[AttackRecord]) -> list[str]:
    """Per attack, over its cells: evaluations per second and the fraction of the matmul peak."""
    agg: dict[str, dict] = {}
    for r in records:
        if r.is_worst_case or r.get("shared_run") or not r.get("wall_time_s"):
            continue
        a = agg.setdefault(
            r.attack, {"wall_time_s": 0.0, "grad_evals": 0, "forward_evals": 0, "gflop": 0.0, "peak": 0.0}
        )
        for k in ("wall_time_s", "grad_evals", "forward_evals", "gflop"):
            a[k] += r[k]
        a["peak"] = r["gflop_per_s"] / r["peak_fraction"] if r.get("peak_fraction") else a["peak"]
    lines = []
    for name, a in agg.items():
        a["peak_fraction"] = (a["gflop"] / a["wall_time_s"]) / a["peak"] if a["peak"] else float("nan")
        lines.append(f"  {name:10s} {speed_text(a)}")
    return lines


def cell_flag_letters(rec: AttackRecord) -> str:
    return "".join(CELL_LETTERS[f] for f in rec.raised() if f in CELL_LETTERS)


def render_table(records: list[AttackRecord], norm: str) -> str | None:
    from tabulate import tabulate

    rs = [r for r in records if r.norm == norm]
    if not rs:
        return None
    eps = sorted({r.eps for r in rs})
    rows: dict[str, dict] = {}
    for r in rs:
        label = f"{r.attack} [{r.protocol}]" + (" *" if r.leaderboard else "")
        rows.setdefault(label, {})[r.eps] = r
    order = sorted(rows, key=lambda k: (k.startswith("worst_case"), k))
    table = []
    for label in order:
        line = [label]
        for e in eps:
            r = rows[label].get(e)
            if r is None:
                line.append("")
                continue
            letters = cell_flag_letters(r)
            line.append(f"{100 * r.robust_acc:.1f}" + (f" {letters}" if letters else ""))
        table.append(line)
    return tabulate(
        table, headers=[f"{norm} eps"] + [eps_label(e) for e in eps], tablefmt="simple", disable_numparse=True
    )


def indicator_lines(records: list[AttackRecord]) -> list[str]:
    """The indicators of attack failure as a table per norm (``bench.attack.indicators.table_rows``)."""
    from tabulate import tabulate

    from .indicators import table_rows

    lines = []
    for norm in ("Linf", "L2"):
        headers, rows = table_rows(records, norm)
        if rows:
            lines.append(
                "indicators of attack failure (max over eps, % of attacked examples; ! fired, a->b after mitigation):"
            )
            lines.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return lines


def summary_lines(name: str, seed: int, records: list[AttackRecord], checks: dict, setup: dict) -> list[str]:
    """The printed summary of one attacked (model, seed)."""
    lines = [
        f"\n{name} seed {seed}: robust accuracy (%) on {setup['n_examples']} test examples, "
        f"clean {100 * setup['clean_acc']:.2f}%  (* = leaderboard: worst case over every attack"
        f"{' and both protocols' if checks['randomised'] else ''})"
    ]
    for norm in ("Linf", "L2"):
        t = render_table(records, norm)
        if t:
            lines.append(t)
    mflags = [f for f in MODEL_FLAGS if checks.get(f)]
    extra = ""
    if checks.get("randomised"):
        cos = checks.get("grad_cosine_between_draws")
        extra = (f"; gradient cosine between two draws {cos:.3f}" if cos is not None else "") + (
            f"; EOT needed: {'yes' if checks['eot_needed'] else 'no'}" if checks.get("eot_needed") is not None else ""
        )
    lines.append(
        f"model checks: {'randomised' if checks['randomised'] else 'deterministic'}{extra}; "
        f"model flags: {', '.join(mflags) if mflags else 'none'}"
    )
    lines.append("cell flags: " + ", ".join(f"{v}={k}" for k, v in CELL_LETTERS.items()))
    lines += indicator_lines(records)
    speed = speed_summary(records)
    if speed:
        lines.append("speed (all cells of each attack; peak = this process's measured fp32 matmul rate):")
        lines += speed
    return lines
