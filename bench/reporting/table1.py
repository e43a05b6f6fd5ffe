"""Table 1 of Alemi et al. (2017) for one run: the clean test error of the baseline MLP, dropout, the
confidence penalty, label smoothing and VIB (beta = 1e-3), as mean +- standard deviation over the run's
seeds, beside the paper's numbers and the difference, with a paired test of VIB against the baseline.

Every number comes from the results file through ``bench.results``' accessors; the paired test is
``bench.ranking.compare_models`` on the clean per-example vectors (McNemar's exact test on one seed,
per-seed exact tests combined over several), the leaderboard's own test. ``write_table1`` writes
``table1.md`` into the run directory; ``table1_html`` is the report's section.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

from .. import rundir
from ..claims.verdicts import PAPER_TABLE1
from ..io import atomic_write_text
from ..results import Results
from ..stats import mean_std
from .ranking import Paired, compare_models

TABLE1 = "table1.md"  # in the run directory
BASELINE, VIB = "mlp", "vib_beta1e-3"
LABELS = {
    "mlp": "Baseline (no regularization)",
    "dropout": "Dropout",
    "confidence_penalty": "Confidence penalty",
    "label_smoothing": "Label smoothing",
    "vib_beta1e-3": "VIB (beta = 1e-3)",
}
PAPER_DATA = "mnist"  # the paper's numbers are MNIST's (permutation-invariant, 10,000 test images)


@dataclass
class Row:
    model: str
    errors: list[float]  # test error in %, one per finished seed, in seed order

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def mean_std(self) -> tuple[float, float]:
        return mean_std(self.errors)

    @property
    def paper(self) -> float:
        return PAPER_TABLE1[self.model]

    @property
    def difference(self) -> float:
        return self.mean_std[0] - self.paper


@dataclass
class Table1:
    dataset: str
    n_test: float  # test examples per seed (NaN when unrecorded)
    rows: list[Row]
    paired: Paired | None  # VIB (a) against the baseline (b) on clean correctness


def table1(res: Results) -> Table1 | None:
    """Table 1 of a run, or None when none of its models has a finished seed with a clean error."""
    rows, n_test = [], math.nan
    for name in PAPER_TABLE1:
        m = res.model(name)
        seeds = [s for s in (m.done_seeds() if m else []) if math.isfinite(s.clean_metric("error"))]
        rows.append(Row(name, [100 * s.clean_metric("error") for s in seeds]))
        if seeds and not math.isfinite(n_test):
            n_test = seeds[0].clean_metric("n")
    if not any(r.n for r in rows):
        return None
    return Table1(str(res.dataset.get("name", "?")), n_test, rows, compare_models(res, VIB, BASELINE, "clean_error"))


def _num(v: float, fmt: str = ".2f") -> str:
    return format(v, fmt) if math.isfinite(v) else "-"


def _cells(r: Row) -> list[str]:
    mean, std = r.mean_std
    if not r.n:
        return [LABELS[r.model], "0", "not in this run", f"{r.paper:.2f}", "-"]
    spread = f" ± {std:.2f}" if math.isfinite(std) else " (one seed)"
    return [LABELS[r.model], str(r.n), f"{mean:.2f}{spread}", f"{r.paper:.2f}", f"{r.difference:+.2f}"]


HEADER = ["Model", "Seeds", "Test error (%), mean ± std", "Paper (%)", "Difference (pp)"]


def paired_line(t: Table1) -> str:
    """The paired test of VIB against the baseline, in one sentence."""
    p = t.paired
    if p is None:
        return f"No paired test: the run lacks a finished {VIB} or {BASELINE} seed."
    if p.test.startswith("two-proportion"):
        counts = ""
    else:
        counts = f"VIB alone is right on {p.a_only} and the baseline alone on {p.b_only} of {p.n} test example-seeds; "
    return f"VIB (beta = 1e-3) against the baseline on the same test examples: {counts}p = {p.p:.3g} ({p.test})."


def notes(t: Table1) -> list[str]:
    out = [
        f"Clean test error on {t.dataset} ({_num(t.n_test, '.0f')} test examples per seed); the standard "
        "deviation is over seeds (ddof = 1). The paper's numbers are Table 1 of Alemi et al. (2017), MNIST, "
        "one number per model.",
        paired_line(t),
    ]
    if t.dataset.lower() != PAPER_DATA:
        out.append(f"This run is on {t.dataset}, not MNIST: the paper's column is not comparable.")
    return out


def table1_markdown(t: Table1) -> str:
    lines = [
        "# Table 1 (Alemi et al. 2017): clean test error",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in t.rows]
    return "\n".join(lines + [""] + [f"* {n}" for n in notes(t)]) + "\n"


def table1_html(res: Results) -> str:
    """The report's Table 1 section ("" when the run has none of its models)."""
    t = table1(res)
    if t is None:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in t.rows)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes(t))
    return (
        f'<section id="table1"><h2>Table 1</h2><div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table></div><ul class="note">{items}</ul></section>'
    )


def write_table1(run_dir) -> Path | None:
    """Write ``table1.md`` into the run directory (atomically); None (nothing written) when the run has
    none of Table 1's models."""
    t = table1(Results.load(run_dir))
    if t is None:
        return None
    path = rundir.run_dir_of(run_dir) / TABLE1
    atomic_write_text(path, table1_markdown(t))
    return path
