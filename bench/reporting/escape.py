"""Escaping text that came from a run directory (model names, notes, errors) for each output format.

A run directory is untrusted input: a model name may hold a newline, a pipe, ``<script>`` or a
spreadsheet formula. Every renderer passes such text through the function of its format here
before putting it in a cell, so that the text is shown as written and never changes the document's
structure. Formatting the renderer adds itself (``**bold**``, ``$\\pm$``) is added after escaping.

* :func:`markdown`: a cell of a Markdown (pipe) table. ``|`` would split the cell, a newline would
  end the row (and forge a new one), a backtick would open a code span, ``<``/``>`` would let raw
  HTML (``<script>``) through: each is backslash-escaped (CommonMark escapes any ASCII punctuation),
  newlines and other control characters become a space. Ordinary names are unchanged.
* :func:`latex`: LaTeX's specials ``\\ & % $ # _ { } ~ ^`` (and ``| < >``, which the default font
  encoding mangles, ``±`` and ``ε``), newlines to a space.
* :func:`csv_cell`: the OWASP rule against formula injection: a string cell starting with
  ``= + - @``, a tab or a carriage return gets a leading ``'``. Numbers stay numbers (a negative
  value is not a string, so it is never touched).
* :func:`html_text`: ``html.escape`` (quotes included).
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MARKDOWN_SPECIAL = re.compile(r"([\\|`<>])")
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "ε": r"$\varepsilon$",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(text) -> str:
    """``text`` as a single line: every run of newlines or other control characters becomes one space."""
    return _CONTROL.sub(" ", str(text))


def markdown(text) -> str:
    """``text`` safe inside a Markdown table cell (and inline Markdown): one line, ``\\ | ` < >`` escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def latex(text) -> str:
    """``text`` safe in a LaTeX document (a table cell or running text), on one line."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in one_line(text))


def html_text(text) -> str:
    """``text`` safe as HTML element content or a quoted attribute value."""
    return html.escape(str(text))


def csv_cell(value):
    """A CSV cell that a spreadsheet will not run as a formula; non-strings are returned unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_frame(frame):
    """A copy of a pandas DataFrame with :func:`csv_cell` applied to every string cell."""
    from pandas.api.types import is_numeric_dtype

    out = frame.copy()
    for col in out.columns:
        if not is_numeric_dtype(out[col]):  # object or string columns (numbers in them are left alone)
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def cell(text, fmt: str) -> str:
    """``text`` escaped for a table cell of ``fmt``: github/markdown, latex, html; ``simple`` (a terminal
    table) and anything else get :func:`one_line` so a newline cannot add a row."""
    if fmt in ("github", "markdown", "pipe"):
        return markdown(text)
    if fmt == "latex":
        return latex(text)
    if fmt == "html":
        return html_text(text)
    return one_line(text)
