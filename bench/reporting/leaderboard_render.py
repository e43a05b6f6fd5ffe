"""Rendering a leaderboard: Markdown (``github``), LaTeX, HTML, CSV and JSON, the notes under the table, and
the ``leaderboard.md`` document. The numbers come from :func:`bench.reporting.leaderboard.build_leaderboard`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..info import summary as info_summary
from ..io import atomic_write_text
from ..protocol import FLAG_BY_LABEL
from ..results import Results
from ..rundir import LEADERBOARD, run_dir_of
from ..stats import mean_std
from . import escape
from .leaderboard import Column, Leaderboard, build_leaderboard, format_name, robust_key, seed_n

ATTACK_FAILURE_NOTE = (
    "Attack failure: the indicators of attack failure (Pintor et al. 2022) that fired on any of the "
    "model's attack cells, with the number of cells; `!` marks one on which a leaderboard number "
    "still rests after its mitigation (every attack of that worst case shows it); none: no "
    "indicator fired. See the report's indicator table."
)


def _escape(text: str, fmt: str) -> str:
    return escape.cell(text, fmt)


def _bold(text: str, fmt: str) -> str:
    return {"latex": r"\textbf{%s}", "html": "<b>%s</b>", "github": "**%s**"}[fmt] % text


def _cell(lb: Leaderboard, model: str, col: Column, fmt: str, best: set[str]) -> str:
    if col.key in info_summary.KEYS:  # an interval, "inf (deterministic)" or an unflagged estimate
        return _escape(info_summary.info_cell(lb.results.model(model), col.key), fmt)
    v = lb.mean.at[model, col.key]
    text = col.fmt(v)
    if text and col.with_std and math.isfinite(lb.std.at[model, col.key]):
        pm = {"latex": r" $\pm$ ", "html": " ± ", "github": " ± "}[fmt]
        text += pm + col.fmt(lb.std.at[model, col.key])
    if text and model in best:
        text = _bold(text, fmt)
    return text + lb.seeds_note(model, col.key) if text else text


def _rows(lb: Leaderboard, fmt: str) -> tuple[list[str], list[list[str]], list[str]]:
    show_flags = bool(lb.text["flags"].astype(bool).any()) if len(lb.text) else False
    show_notes = bool(lb.text["notes"].astype(bool).any()) if len(lb.text) else False
    show_fail = _show_attack_failure(lb)
    headers = (
        ["model", "seeds"]
        + [c.header for c in lb.columns]
        + (["flags"] if show_flags else [])
        + (["attack failure"] if show_fail else [])
        + (["notes"] if show_notes else [])
    )
    align = ["left", "right"] + ["right"] * len(lb.columns) + ["left"] * (show_flags + show_fail + show_notes)
    best = {c.key: lb.best(c.key) for c in lb.columns}
    rows = []
    for m in lb.models:
        row = [_escape(m, fmt), lb.text.at[m, "seeds"]]
        row += [_cell(lb, m, c, fmt, best[c.key]) for c in lb.columns]
        if show_flags:
            row.append(_escape(lb.text.at[m, "flags"], fmt))
        if show_fail:
            row.append(_escape(lb.text.at[m, "attack_failure"], fmt))
        if show_notes:
            row.append(_escape(lb.text.at[m, "notes"], fmt))
        rows.append(row)
    return [_escape(h, fmt) for h in headers], rows, align


def _show_attack_failure(lb: Leaderboard) -> bool:
    """Whether any model has indicators of attack failure measured (runs from before they existed: no)."""
    return "attack_failure" in lb.text and bool(lb.text["attack_failure"].astype(bool).any()) if len(lb.text) else False


def to_csv(lb: Leaderboard) -> str:
    """Raw numbers in natural units (fractions, not %), a ``_std`` column per mean ± std metric, and
    ``best``: the keys of the columns in which this model holds the best value."""
    cols = {"model": lb.models, "seeds": list(lb.text["seeds"])}
    for c in lb.columns:
        cols[c.key] = list(lb.mean[c.key])
        if c.with_std:
            cols[f"{c.key}_std"] = list(lb.std[c.key])
        if c.key in info_summary.UPPER:  # the upper end of an interval column (ixz_upper, izy_upper)
            cols[info_summary.UPPER[c.key]] = [
                mean_std(
                    [
                        info_summary.seed_info_values(s)[info_summary.UPPER[c.key]]
                        for s in lb.results.model(m).done_seeds()
                    ]
                )[0]
                for m in lb.models
            ]
    cols["flags"] = [";".join(f.strip() for f in s.split(",") if f.strip()) for s in lb.text["flags"]]
    cols["notes"] = list(lb.text["notes"])
    if _show_attack_failure(lb):
        cols["attack_failure"] = list(lb.text["attack_failure"])
    best = {c.key: lb.best(c.key) for c in lb.columns}
    cols["best"] = [";".join(k for k in best if m in best[k]) for m in lb.models]
    return escape.csv_frame(pd.DataFrame(cols)).to_csv(index=False, float_format="%.8g", lineterminator="\n")


def _finite(v):
    return float(v) if v is not None and math.isfinite(v) else None


def to_json(lb: Leaderboard) -> str:
    """Every number in natural units (NaN: null), the columns with their meaning, and the notes."""
    best = {c.key: lb.best(c.key) for c in lb.columns}
    rows = []
    for m in lb.models:
        rows.append(
            {
                "model": m,
                "seeds": lb.text.at[m, "seeds"],
                "values": {c.key: _finite(lb.mean.at[m, c.key]) for c in lb.columns},
                "std": {c.key: _finite(lb.std.at[m, c.key]) for c in lb.columns if c.with_std},
                "flags": [f.strip() for f in lb.text.at[m, "flags"].split(",") if f.strip()],
                "notes": lb.text.at[m, "notes"],
                "best": [k for k in best if m in best[k]],
                **({"attack_failure": lb.text.at[m, "attack_failure"]} if _show_attack_failure(lb) else {}),
            }
        )
        ends = {
            k: info_summary.interval_ends(lb.results.model(m), k)
            for k in info_summary.UPPER
            if k in {c.key for c in lb.columns}
        }
        if ends:  # both ends of the I(X;Z) and I(Z;Y) intervals (null where a model has none)
            rows[-1]["intervals"] = {k: {"lower": _finite(lo), "upper": _finite(up)} for k, (lo, up) in ends.items()}
    doc = {
        "run": describe_run(lb.results),
        "sort_by": lb.sort_by,
        "eps": lb.eps,
        "columns": [{"key": c.key, "header": c.header, "better": c.better, "doc": c.doc} for c in lb.columns],
        "rows": rows,
        "notes": footnotes(lb, "json"),
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def render(lb: Leaderboard, fmt: str = "github") -> str:
    """The table alone, in ``github`` (Markdown pipe table; alias ``markdown``), ``latex``, ``html``,
    ``csv`` or ``json`` (the last two: raw numbers in natural units)."""
    from tabulate import tabulate

    fmt = format_name(fmt)
    if fmt == "csv":
        return to_csv(lb)
    if fmt == "json":
        return to_json(lb)
    headers, rows, align = _rows(lb, fmt)
    table_fmt = {"github": "pipe", "latex": "latex_raw", "html": "unsafehtml"}[fmt]
    return tabulate(rows, headers=headers, tablefmt=table_fmt, colalign=align, disable_numparse=True) + "\n"


def render_leaderboard(res: Results, fmt: str = "github", sort_by: str | None = None, eps=None) -> str:
    return render(build_leaderboard(res, sort_by, eps), fmt)


def _commit(env: dict) -> str:
    git = env.get("git") or {}
    if not git.get("commit"):
        return "unknown commit"
    return git["commit"][:10] + (" (dirty tree)" if git.get("dirty") else "")


def describe_run(res: Results) -> str:
    """One line: data set, seeds, recipe and code version of a run."""
    ds = res.dataset
    train = res.train_config
    seeds = res.seeds
    parts = [
        f"{ds.get('name', '?')} test set ({ds.get('n_test', '?')} examples, {ds.get('checksum', 'no checksum')})",
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}",
        f"{train.get('epochs', '?')} epochs" if train else "no training recipe (imported weights)",
        f"commit {_commit(res.environment('train'))}",
    ]
    if res.suite.get("name"):
        parts.insert(0, f"suite {res.suite['name']}")
    return ", ".join(parts)


def footnotes(lb: Leaderboard, fmt: str = "github") -> list[str]:
    """Plain-text notes that explain the table (attack protocol, throughput machine, flags)."""
    notes = []
    keys = {c.key for c in lb.columns}
    if any(robust_key(k) for k in keys) or "auc" in keys:
        ns = sorted({int(seed_n(e, "robust")) for e in lb.results.iter_seeds() if math.isfinite(seed_n(e, "robust"))})
        n_txt = f"the first {ns[0]} test examples" if len(ns) == 1 else "the attacked test examples"
        notes.append(
            f"Robust accuracy: % of {n_txt} classified correctly both clean and attacked (L-inf); "
            "for randomised models the worse of the paper and EOT protocols; "
            "worst = per-example worst case over every attack run."
        )
    if "auc" in keys:
        notes.append(
            f"AUC: worst-case accuracy integrated over L-inf eps "
            f"{', '.join(f'{e:g}' for e in lb.grid)} (trapezoid), divided by the eps range."
        )
    if keys & {"infer_ex_s", "train_ex_s"}:
        machines = set()
        for e in lb.results.iter_seeds():
            mach = e.machine
            if mach:
                machines.add(
                    f"{mach.get('device_name', '?')} ({mach.get('device', '?')}, "
                    f"threads={mach.get('threads', '?')}, torch {mach.get('torch', '?')})"
                )
        if machines:
            notes.append("Throughput: median examples/s at batch 100, measured on " + "; ".join(sorted(machines)) + ".")
    if keys & set(info_summary.KEYS):
        notes.append(info_summary.COLUMNS_NOTE)
    paired = [c for c in lb.columns if c.better and c.paired]
    if paired and len(lb.models) > 1:
        where = "in bold" if fmt not in ("csv", "json") else "in the best column"
        notes.append(
            f"Best ({where}): only where a paired test on the same examples (McNemar, p < 0.05) separates "
            "the best value from the runner-up; otherwise every value not significantly different from the "
            "best is marked. Columns without per-example data mark nothing."
        )
        ties = []
        for c in paired:
            b = lb.ranking(c.key)
            if b.models and not b.significant:
                names = ", ".join(escape.markdown(m) if fmt == "github" else m for m in sorted(b.models))
                ties.append(
                    f"{c.header} ({names}; best vs runner-up p = {b.p:.2g})"
                    if b.p is not None
                    else f"{c.header} ({names})"
                )
            elif not b.models and b.runner_up is not None:
                ties.append(f"{c.header} (all models)")
        if ties:
            notes.append("Tied, no significant best: " + "; ".join(ties) + ".")
    used = []
    for flags in lb.text["flags"]:
        for f in flags.split(", "):
            f = f.removesuffix(" (L2)")
            if f and f not in used:
                used.append(f)
    for f in used:
        if f in FLAG_BY_LABEL:
            notes.append(f"`{f}`: {FLAG_BY_LABEL[f].text}")
    if _show_attack_failure(lb):
        notes.append(ATTACK_FAILURE_NOTE)
    if any(f.startswith(("I(X;Z)", "I(Z;Y)")) for f in used):
        notes.append(info_summary.FLAGS_NOTE)
    return notes


def leaderboard_markdown(res: Results, sort_by: str | None = None, eps=None) -> str:
    """The ``leaderboard.md`` document: title, run description, table and notes."""
    lb = build_leaderboard(res, sort_by, eps)
    lines = ["# vib-bench leaderboard", "", escape.markdown(describe_run(res)) + ".", ""]
    if not lb.models:
        lines += ["No models in this run yet.", ""]
    else:
        lines += [render(lb, "github").rstrip("\n"), ""]
        lines += [f"- {n}" for n in footnotes(lb)]
        lines.append("")
    return "\n".join(lines)


def write_leaderboard(run_dir, sort_by: str | None = None, eps=None) -> Path:
    """(Re)write ``RUN_DIR/leaderboard.md`` atomically from the results file; returns its path."""
    res = Results.load(run_dir)
    path = run_dir_of(run_dir) / LEADERBOARD
    atomic_write_text(path, leaderboard_markdown(res, sort_by, eps))
    return path
