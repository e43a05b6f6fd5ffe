"""The one-page HTML report of a run (``RUN_DIR/report.html``), generated from its files only.

Leaderboard, flags explained, environment and every PNG under ``figures/``, embedded as data URIs
so the page is a single file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from . import rundir
from .figures import make_figures
from .io import atomic_write_text
from .leaderboard import build_leaderboard, raised_flags, write_leaderboard
from .leaderboard_render import describe_run, footnotes, render
from .protocol import FLAGS, INFO_FLAGS
from .results import Results

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0 3px; }
"""

_FIGURE_CAPTIONS = {
    "robust_accuracy.png": "Robust accuracy vs eps for every attack, all models overlaid.",
    "beta_sweep.png": "The VIB sweep: clean error, worst-case robust accuracy and rate against beta.",
    "training_curves.png": "Training curves: loss terms and validation metrics per epoch.",
    "info_beta.png": "The information plane of the VIB beta sweep: I(Z;Y) against I(X;Z), bounds and estimates.",
    "reliability.png": "Reliability diagrams: accuracy per confidence bin (a calibrated model follows the diagonal).",
}


def _img(path: Path) -> str:
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{b64}">'


def _env_table(res: Results) -> str:
    envs = res.environments()
    if not envs and res.environment():
        envs = {"run": res.environment()}
    if not envs:
        return "<p>No environment recorded.</p>"
    stages = list(envs)
    keys = ["vib_bench", "python", "platform", "hostname", "cpu", "cpu_count", "threads", "device", "device_name",
            "git", "recorded_at", "matmul_peak_gflops"]
    pkgs = sorted({p for e in envs.values() for p in (e.get("packages") or {})})

    def fmt(v):
        if isinstance(v, dict) and "commit" in v:
            return f"{(v.get('commit') or 'unknown')[:10]}{' (dirty)' if v.get('dirty') else ''}"
        if isinstance(v, float):
            return f"{v:.1f}"
        return "" if v is None else str(v)

    rows = []
    for k in keys:
        vals = [fmt(envs[s].get(k)) for s in stages]
        if any(vals):
            rows.append((k, vals))
    for p in pkgs:
        rows.append((p, [str((envs[s].get("packages") or {}).get(p) or "") for s in stages]))
    head = "".join(f"<th>{html.escape(s)}</th>" for s in stages)
    body = "".join("<tr><td>" + html.escape(k) + "</td>" + "".join(f"<td>{html.escape(v)}</td>" for v in vals)
                   + "</tr>" for k, vals in rows)
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flags_section(res: Results) -> str:
    raised = {}
    for m in res.models():
        for f in raised_flags(m):
            raised.setdefault(f, []).append(m.name)
    warn = {f: ms for f, ms in raised.items() if f not in INFO_FLAGS}
    parts = []
    if warn:
        items = "".join(f"<li><code>{html.escape(FLAGS[f].label if f in FLAGS else f)}</code> "
                        f"({html.escape(', '.join(ms))}): "
                        f"{html.escape(FLAGS[f].text if f in FLAGS else 'a flag raised by a plugin attack.')}</li>"
                        for f, ms in warn.items())
        parts.append(f"<p>Sanity-check flags raised in this run:</p><ul>{items}</ul>")
    else:
        parts.append("<p>No sanity-check flag was raised in this run"
                     + (" (or it has not been attacked yet)." if not any(e.records() for e in res.iter_seeds())
                        else ".") + "</p>")
    info = {f: ms for f, ms in raised.items() if f in INFO_FLAGS}
    if info:
        items = "".join(f"<li><code>{html.escape(FLAGS[f].label)}</code> ({html.escape(', '.join(ms))}): "
                        f"{html.escape(FLAGS[f].text)}</li>" for f, ms in info.items())
        parts.append(f"<p>Information:</p><ul>{items}</ul>")
    every = "".join(f"<li><code>{html.escape(f.label)}</code>: {html.escape(f.text)}</li>" for f in FLAGS.values())
    parts.append(f"<details><summary>Every flag</summary><ul>{every}</ul></details>")
    return "".join(parts)


def report_html(run_dir, figures: list[Path] | None = None) -> str:
    """The report page as a string (figures are embedded; pass ``figures`` to choose them)."""
    res = Results.load(run_dir)
    rd = rundir.run_dir_of(run_dir)
    title = f"vib-bench report: {rd.name}"
    lb = build_leaderboard(res)
    if figures is None:
        fig_dir = rundir.figures_dir(rd)
        figures = sorted(fig_dir.glob("*.png"), key=lambda p: (p.name not in _FIGURE_CAPTIONS, p.name)) \
            if fig_dir.is_dir() else []
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(describe_run(res))}.</p>",
             "<h2>Leaderboard</h2>"]
    if lb.models:
        parts.append(render(lb, "html"))
        notes = [n for n in footnotes(lb) if not n.startswith("`")]  # flag notes get their own section
        parts.append("<ul class=\"note\">" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    else:
        parts.append("<p>No models in this run yet.</p>")
    parts += ["<h2>Flags</h2>", _flags_section(res), "<h2>Figures</h2>"]
    if figures:
        for p in figures:
            cap = _FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " "))
            parts.append(f"<figure>{_img(p)}<figcaption>{html.escape(cap)}</figcaption></figure>")
    else:
        parts.append("<p>No figures.</p>")
    parts += ["<h2>Environment</h2>", _env_table(res),
              "<p class=\"note\">Generated by <code>vib-bench report</code> from "
              f"{html.escape(rundir.results_path(run_dir).name)}; every number comes from that file.</p>",
              "</body></html>\n"]
    return "\n".join(parts)


def write_report(run_dir, out=None) -> Path:
    """Make the figures, refresh ``leaderboard.md`` and write the self-contained ``report.html``."""
    rd = rundir.run_dir_of(run_dir)
    make_figures(run_dir)
    write_leaderboard(run_dir)
    path = Path(out) if out else rd / rundir.REPORT
    atomic_write_text(path, report_html(run_dir))
    return path
