"""Figures and the self-contained HTML report, on the golden results file plus synthetic training logs."""

import base64
import html.parser
import json
import re

import pytest
from conftest import golden_data, golden_run_dir

from bench.cli import main
from bench.reporting.figures import make_figures
from bench.rundir import read_train_log

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = golden_run_dir(tmp_path_factory.mktemp("report"))
    data = json.loads((d / "results.json").read_text())
    for model, m in data["models"].items():
        for seed in m["seeds"]:
            log = d / "models" / model / f"seed{seed}" / "train_log.jsonl"
            log.parent.mkdir(parents=True)
            lines = [
                json.dumps(
                    {
                        "epoch": e,
                        "lr": 1e-3,
                        "loss": 2.0 / e,
                        "ce": 1.9 / e,
                        **({"kl": 30.0 - e} if "vib" in model else {}),
                        "val_error": 0.5 / e,
                        "val_nll": 1.5 / e,
                        "epoch_time_s": 0.1,
                    }
                )
                for e in range(1, 6)
            ]
            log.write_text("\n".join(lines) + '\n{"epoch": 6, "lo')  # a torn last line is skipped
    return d


@pytest.fixture(scope="module")
def report(run_dir):
    """Run ``vib-bench report`` once (figures are the slow part) and share the result."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["report", str(run_dir)])
    return status, out.getvalue()


def test_make_figures(run_dir, report):
    figures = sorted((run_dir / "figures").glob("*.png"))
    assert [p.name for p in figures] == ["beta_sweep.png", "robust_accuracy.png", "training_curves.png"]
    assert all(p.read_bytes()[:8] == PNG for p in figures)
    assert len(read_train_log(run_dir / "models" / "mlp" / "seed0")) == 5


def test_figures_skip_what_is_missing(tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    data = golden_data()
    data["models"] = {"mlp": data["models"]["mlp"]}
    for e in data["models"]["mlp"]["seeds"].values():
        e.pop("attacks")
    (d / "results.json").write_text(json.dumps(data))
    assert make_figures(d) == []  # no attacks, no beta sweep, no training logs
    assert not (d / "figures").exists()


class _Page(html.parser.HTMLParser):
    VOID = {"img", "meta", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.mismatched, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.mismatched.append(tag)


def test_report_is_one_self_contained_page(run_dir, report):
    status, out = report
    assert status == 0 and out.strip() == f"wrote {run_dir / 'report.html'}"
    page = (run_dir / "report.html").read_text()
    parser = _Page()
    parser.feed(page)
    assert parser.stack == [] and parser.mismatched == []  # well-formed
    assert len(parser.images) == 3
    for src in parser.images:  # embedded, nothing to fetch
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # only in-page links (contents)
    # the leaderboard, the flags explained, the environment
    assert "<b>12.08 ± 0.20</b>" in page and "vib_beta1e-3" in page
    assert "<code>masking?</code> (vib_beta1e-3): A gradient-free attack" in page
    assert "Environment" in page and "Test CPU" in page and "0123456789" in page
    assert (run_dir / "leaderboard.md").exists()


def test_report_reads_top_down(run_dir, report):
    page = (run_dir / "report.html").read_text()
    # title: the folder's name when the run has no suite; the contents link every section
    assert "<title>vib-bench report: run</title>" in page
    for anchor in ("summary", "leaderboard", "key-figures", "flags", "more-figures", "environment"):
        assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page
    order = [page.index(f'id="{a}"') for a in ("summary", "leaderboard", "key-figures", "flags", "more-figures")]
    assert order == sorted(order)
    # key figures in their deliberate order, before the flags; training curves among the others
    assert page.index('alt="robust_accuracy.png"') < page.index('alt="beta_sweep.png"') < page.index('id="flags"')
    assert page.index('id="more-figures"') < page.index('alt="training_curves.png"')
    # the leaderboard scrolls inside its own box
    assert '<div class="scroll"><table>' in page
    # the summary is generated: numbers with intervals, p-values, and what could not be checked
    summary = page[page.index('id="summary"') : page.index('id="leaderboard"')]
    assert "95% CI" in summary and "p = " in summary
    assert "masking? check could not fire (mlp, dropout, vib_beta1e-2)" in summary
    assert "No sanity-check flag was raised" not in page


def test_report_title_warnings_and_folded_grids(tmp_path):
    from bench.reporting.report import report_html

    d = tmp_path / "run"
    d.mkdir()
    data = golden_data()
    data["run"]["suite"] = {"name": "smoke"}
    data["environments"]["info"] = {"git": {"commit": "fedcba9876543210", "dirty": True}}
    (d / "results.json").write_text(json.dumps(data))
    figs = d / "figures"
    figs.mkdir()
    for name in ("adv_mlp_seed0.png", "adv_dropout_seed0.png", "robust_accuracy.png"):
        (figs / name).write_bytes(_tiny_png())
    page = report_html(d)
    assert "<title>vib-bench report: smoke</title>" in page
    prov = page[page.index('id="provenance"') : page.index('class="toc"')]
    assert "different commits" in prov and "0123456" in prov and "fedcba9" in prov
    assert "Info ran on a dirty tree" in prov
    adv = page[page.index('id="adversarial"') : page.index('id="environment"')]
    assert adv.count("<img") == 2 and "<details><summary>2 pictures" in adv  # folded, closed by default
    assert "<details open" not in adv


def _tiny_png() -> bytes:
    import io

    from matplotlib.figure import Figure

    buf = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buf, format="png")
    return buf.getvalue()


def test_report_on_a_missing_run_is_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results file" in err[0]


def test_plot_reliability_draws_one_panel_per_model_with_bins(tmp_path):
    from bench.reporting.figures import plot_reliability
    from bench.results import Results

    data = golden_data()
    assert plot_reliability(Results(data), tmp_path / "none.png") is None  # no reliability bins recorded
    rel = {
        "edges": [i / 4 for i in range(5)],
        "count": [0, 3, 10, 87],
        "confidence": [None, 0.4, 0.6, 0.95],
        "accuracy": [None, 0.33, 0.5, 0.97],
    }
    for m in data["models"].values():
        for e in m["seeds"].values():
            if "clean" in e:
                e["clean"]["reliability"] = rel
    path = plot_reliability(Results(data), tmp_path / "rel.png")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
