"""Escaping in every renderer (issue 17, item 4): hostile text from a run directory is shown as written and
never changes a document's structure. The runs here are built in memory (``Results(raw)``), because loading
refuses such names from disk; the renderers must be safe on their own."""

import copy
import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import golden_data

from bench.claims import claims_markdown
from bench.reporting import escape
from bench.reporting.compare import compare_runs
from bench.reporting.compare_render import render_rows
from bench.reporting.history import history_frame, render_history
from bench.reporting.leaderboard_render import leaderboard_markdown, render_leaderboard
from bench.results import Results

FORGED = "evil\n| forged | row |"
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://attacker.example","x")'
LATEX = r"a_b & c % d $ e # f { g } ~ h ^ i \ j"
HOSTILE = [FORGED, SCRIPT, FORMULA, LATEX, "tick`code`"]


# ------------------------------------------------------------------------------ the helpers
def test_markdown_cells():
    assert escape.markdown("vib_beta1e-3") == "vib_beta1e-3"  # ordinary names are unchanged
    assert escape.markdown("a|b") == r"a\|b"
    assert "\n" not in escape.markdown(FORGED) and r"\| forged \|" in escape.markdown(FORGED)
    assert escape.markdown(SCRIPT) == r"\<script\>alert(1)\</script\>"
    assert escape.markdown("tick`code`") == r"tick\`code\`"
    assert escape.markdown("a\r\nb\tc") == "a b c"


def test_latex_specials():
    out = escape.latex(LATEX)
    for raw, escaped in (
        ("_", r"\_"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
        ("\\", r"\textbackslash{}"),
    ):
        assert escaped in out, raw
    assert escape.latex("x\ny") == "x y"


@pytest.mark.parametrize("value", ["=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_prefixes_get_a_quote(value):
    assert escape.csv_cell(value) == "'" + value


def test_csv_keeps_numbers_and_ordinary_strings():
    assert escape.csv_cell(-0.5) == -0.5 and escape.csv_cell(-3) == -3
    assert escape.csv_cell("mlp") == "mlp" and escape.csv_cell("1/2") == "1/2"
    frame = escape.csv_frame(pd.DataFrame({"model": [FORMULA, "mlp"], "delta": [-0.25, 0.1]}))
    assert frame["model"].tolist() == ["'" + FORMULA, "mlp"] and frame["delta"].tolist() == [-0.25, 0.1]


def test_html():
    assert escape.html_text(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"


# ------------------------------------------------------------------------------ the renderers
RUN = Path("/nonexistent-vib-bench-run/hostile/results.json")  # a label; nothing is read from or written there


def golden_with_names(names: list[str]) -> Results:
    """The golden results, in memory, with its first models renamed."""
    data = golden_data()
    models = list(data["models"])
    for old, new in zip(models, names):
        data["models"][new] = data["models"].pop(old)
        data["run"]["models"][new] = data["run"]["models"].pop(old)
    return Results(data, RUN)


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_leaderboard_markdown_a_newline_adds_no_row_and_no_raw_html():
    res = golden_with_names([FORGED, SCRIPT, "tick`code`"])
    md = render_leaderboard(res, "github")
    assert len(_table_lines(md)) == 2 + len(res.model_names())  # header, rule, one line per model
    assert "<script>" not in md and r"\<script\>" in md
    assert "forged" in md and "\n| forged" not in md
    doc = leaderboard_markdown(res)
    assert "<script>" not in doc


def test_leaderboard_csv_latex_html():
    res = golden_with_names([FORMULA, LATEX, SCRIPT])
    frame = pd.read_csv(io.StringIO(render_leaderboard(res, "csv")))
    assert frame["model"].tolist()[0] == "'" + FORMULA
    assert pd.api.types.is_float_dtype(frame["clean_error"])  # numbers stay numbers
    tex = render_leaderboard(res, "latex")
    assert r"a\_b \& c \% d \$ e \# f \{ g \}" in tex
    html = render_leaderboard(res, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_leaderboard_ordinary_names_render_as_before():
    # the golden files are checked byte for byte in test_leaderboard.py; here: escaping is a no-op for them
    res = Results(golden_data())
    assert all(escape.markdown(m) == m and escape.csv_cell(m) == m for m in res.model_names())


def test_compare_table_escapes_names_in_every_format():
    a = golden_with_names([FORGED, FORMULA, SCRIPT])
    b = Results(copy.deepcopy(a.raw), RUN)
    rows = compare_runs(a, b)
    md = render_rows(rows, "github", show_all=True)
    assert len(_table_lines(md)) == 2 + len(rows)
    assert "<script>" not in md
    frame = pd.read_csv(io.StringIO(render_rows(rows, "csv", show_all=True)))
    assert "'" + FORMULA in set(frame["model"]) and FORMULA not in set(frame["model"])
    assert "<script>" not in render_rows(rows, "html", show_all=True)
    assert r"\textless{}script\textgreater{}" in render_rows(rows, "latex", show_all=True)


def test_history_table_escapes_names():
    res = golden_with_names([FORGED, SCRIPT])
    rows = history_frame([res], "clean_error")
    md = render_history(rows, "clean_error", "github")
    assert len(_table_lines(md)) == 3 and "<script>" not in md
    assert "\n'=" not in render_history(rows, "clean_error", "csv")
    res = golden_with_names([FORMULA])
    frame = pd.read_csv(io.StringIO(render_history(history_frame([res], "clean_error"), "clean_error", "csv")))
    assert "'" + FORMULA in set(frame["model"])


def test_claims_markdown_escapes_cells():
    data = golden_data()
    data["claims"] = {
        "setup": {},
        "rows": [{"claim": FORGED, "paper_protocol": SCRIPT, "strongest": "x|y", "verdict": "reproduced"}],
    }
    md = claims_markdown(Results(data, RUN))
    assert len(_table_lines(md)) == 3 and "<script>" not in md and r"x\|y" in md and "**reproduced**" in md
