"""The claims table as text (the command's output), Markdown (``RUN_DIR/claims.md``) and HTML (the report)."""

from __future__ import annotations

import html

from ..reporting import escape
from ..results import Results
from .verdicts import NOT_MEASURED, NOT_REPRODUCED, PAPER_ONLY, REPRODUCED

COLUMNS = (
    ("claim", "Claim (the paper's statement)"),
    ("paper_protocol", "The paper's protocol measures"),
    ("strongest", "The strongest evaluation measures"),
    ("verdict", "Verdict"),
)
_COLORS = {REPRODUCED: "#1a7f37", PAPER_ONLY: "#b35900", NOT_REPRODUCED: "#b00020", NOT_MEASURED: "#666"}


def setup_line(res: Results) -> str:
    s = res.claims.get("setup") or {}
    if not s:
        return ""
    return (
        f"{res.dataset.get('name', '?')}, first {s.get('n_examples')} test images, seeds "
        f"{', '.join(str(x) for x in s.get('seeds', []))}; baseline {s.get('baseline')}; L2 budget "
        f"{s.get('eps_l2'):g}, FGS eps {', '.join(f'{e:g}' for e in s.get('eps_linf', []))}; EOT over "
        f"{s.get('eot_iter')} passes; paired tests: McNemar, alpha {s.get('alpha')}, Holm across betas"
    )


def claims_markdown(res: Results) -> str:
    rows = res.claims.get("rows") or []
    cell = escape.markdown
    lines = [
        f"# Claims of Alemi et al. (2017), checked: {cell(res.label)}",
        "",
        cell(setup_line(res)),
        "",
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append(
            "| " + " | ".join(f"**{cell(r[k])}**" if k == "verdict" else cell(r[k]) for k, _ in COLUMNS) + " |"
        )
    lines += [
        "",
        "Verdicts: *reproduced* (holds under the paper's protocol and the strongest evaluation); "
        "*reproduced only under the paper's protocol* (the paper's attack fails where stronger ones succeed: "
        "a sign of gradient masking); *not reproduced* (does not hold even under the paper's protocol).",
        "",
    ]
    return "\n".join(lines)


def claims_text(res: Results) -> str:
    """A plain listing for the terminal: one block per claim."""
    out = [setup_line(res), ""]
    for r in res.claims.get("rows") or []:
        out += [
            f"{r['claim']}",
            f"    paper's protocol: {r['paper_protocol']}",
            f"    strongest:        {r['strongest']}",
            f"    verdict:          {r['verdict'].upper()}",
            "",
        ]
    return "\n".join(out)


def claims_html(res: Results) -> str:
    """The claims table as an HTML fragment (a ``<section>``), or an empty string when the run has none."""
    rows = res.claims.get("rows") or []
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in COLUMNS)
    body = []
    for r in rows:
        tds = "".join(f"<td>{html.escape(str(r[k]))}</td>" for k, _ in COLUMNS[:-1])
        color = _COLORS.get(r["verdict"], "#222")
        tds += f'<td style="color:{color};font-weight:600">{html.escape(r["verdict"])}</td>'
        body.append(f"<tr>{tds}</tr>")
    return (
        '<section id="claims"><h2>Claims of Alemi et al. (2017)</h2>'
        f'<p class="note">{html.escape(setup_line(res))}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<p class=\"note\">Reproduced only under the paper's protocol: the paper's attack fails where the "
        "strongest evaluation (EOT, mean-mode transfer, restarts, a gradient-free attack) succeeds, which points "
        "to gradient masking.</p></section>"
    )
