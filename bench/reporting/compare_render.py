"""How ``vib-bench compare`` shows its rows: a table in one of ``TABLE_FORMATS``, JSON, the summary line."""

from __future__ import annotations

import math

from ..errors import BenchError
from ..results import Results
from . import escape
from .compare import TABLE_FORMATS
from .gate import TIERS, VERDICTS, check_fail_on, nothing_compared


# ------------------------------------------------------------------------------------ rendering
def _fmt_value(r: dict, v) -> str:
    if isinstance(v, str):
        return v
    if v is None or not math.isfinite(v):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * v:.2f}%"
    if r["kind"] == "rate":
        return f"{v:,.0f}"
    return f"{v:g}"


def _fmt_delta(r: dict) -> str:
    b, n = r["base"], r["new"]
    if isinstance(b, str) or isinstance(n, str) or not (math.isfinite(b) and math.isfinite(n)):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * (n - b):+.2f} pp"
    if r["kind"] == "rate":
        return f"{100 * (n / b - 1):+.1f}%" if b else ""
    return f"{n - b:+g}"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def render_rows(rows: list[dict], fmt: str = "github", show_all: bool = False) -> str:
    """The comparison as a table in one of ``TABLE_FORMATS``: the changes only, or every row (``show_all``)."""
    from tabulate import tabulate

    if fmt not in TABLE_FORMATS:
        raise BenchError(f"--format {fmt!r}: choose from {', '.join(TABLE_FORMATS)}")
    shown = rows if show_all else [r for r in rows if r["verdict"] != "same"]
    headers = ["tier", "model", "metric", "base", "new", "delta", "test / rule", "p", "p adj", "verdict", "note"]
    if fmt == "csv":
        import pandas as pd

        keys = ["tier", "family", "model", "metric", "base", "new", "test", "p", "p_adj", "verdict", "note"]
        return escape.csv_frame(pd.DataFrame([{k: r[k] for k in keys} for r in shown], columns=keys)).to_csv(
            index=False, float_format="%.8g", lineterminator="\n"
        )
    table = [
        [
            escape.cell(c, fmt)
            for c in (
                r["tier"],
                r["model"],
                r["metric"],
                _fmt_value(r, r["base"]),
                _fmt_value(r, r["new"]),
                _fmt_delta(r),
                r["test"],
                _fmt_p(r["p"]),
                _fmt_p(r["p_adj"]),
                r["verdict"],
                r["note"],
            )
        ]
        for r in shown
    ]
    if not table:
        return (
            f"(no differences: all {len(rows)} rows the same; --all lists them)\n" if rows else "(nothing to compare)\n"
        )
    tf = {"github": "pipe", "simple": "simple", "latex": "latex_raw", "html": "unsafehtml"}[fmt]
    align = ["left"] * 3 + ["right"] * 3 + ["left"] + ["right"] * 2 + ["left"] * 2
    return tabulate(table, headers=headers, tablefmt=tf, colalign=align, disable_numparse=True) + "\n"


def to_json(base: Results, new: Results, rows: list[dict], changes: list[str], fail_on, status: int) -> str:
    """Everything ``compare`` found, as one JSON document (NaN written as null)."""
    import json

    from ..io import json_safe

    doc = {
        "base": provenance(base),
        "new": provenance(new),
        "setting_changes": changes,
        "fail_on": sorted(check_fail_on(list(fail_on))),
        "status": status,
        "counts": {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS},
        "rows": rows,
    }
    return json.dumps(json_safe(doc), indent=1) + "\n"


def summary_line(rows: list[dict], fail_on: list[str], status: int) -> str:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    worse = [r for r in rows if r["verdict"] == "worse"]
    tiers = sorted({r["tier"] for r in worse}, key=TIERS.index)
    text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    if worse:
        text += f" (worse in: {', '.join(tiers)})"
    if counts["missing"]:
        text += " (missing in new: a failure; --allow-missing reports them as skipped)"
    if nothing_compared(rows) and fail_on:
        text += " (nothing was compared: the gate cannot pass)"
    return f"{text}; failing on {','.join(fail_on) or 'nothing'}: " + ("FAIL" if status else "ok")


def provenance(run: Results) -> str:
    env = run.environment("train")
    git = env.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    return f"{run.path} (commit {commit}, recorded {env.get('recorded_at', '?')})"
