"""Figures that read: single-seed titles, grids without empty halves, distinguishable lines, reliability
panels whose titles clear the row above, bin counts, and a colour bar on the adversarial grid."""

import json
from pathlib import Path

import pytest
import torch
from conftest import golden_data
from matplotlib.container import ErrorbarContainer

import bench.attack.grid as grid_module
import bench.reporting.figures as figures
from bench.results import Results


@pytest.fixture
def drawn(monkeypatch):
    """Capture the matplotlib figures instead of only writing PNGs."""
    figs = []

    def keep(fig, path, **kw):
        figs.append(fig)
        return Path(path)

    monkeypatch.setattr(figures, "atomic_write_figure", keep)
    monkeypatch.setattr(grid_module, "atomic_write_figure", keep)
    return figs


def golden(seeds=None) -> Results:
    data = golden_data()
    if seeds is not None:
        for m in data["models"].values():
            m["seeds"] = {s: e for s, e in m["seeds"].items() if s in seeds}
    return Results(data)


def visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def series(ax) -> dict:
    """label -> the data line of each errorbar series drawn on ``ax``."""
    return {c.get_label(): c.lines[0] for c in ax.containers if isinstance(c, ErrorbarContainer)}


def test_single_seed_says_so_and_draws_no_bars(drawn, tmp_path):
    figures.plot_robust_accuracy(golden({"0"}), tmp_path / "r.png")
    figures.plot_beta_sweep(golden({"0"}), tmp_path / "b.png")
    for fig in drawn:
        title = fig._suptitle.get_text()
        assert "1 seed" in title and "±" not in title
        bars = [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert bars and not any(c.has_yerr for c in bars)


def test_several_seeds_keep_their_bars(drawn, tmp_path):
    figures.plot_robust_accuracy(golden(), tmp_path / "r.png")
    [fig] = drawn
    assert "mean ± std over 1-2 seeds" in fig._suptitle.get_text()  # dropout lost a seed
    assert any(c.has_yerr for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer))


@pytest.mark.parametrize(
    "groups, ncols", [((1,), 1), ((3,), 3), ((4,), 2), ((5,), 3), ((7,), 3), ((10,), 4), ((6, 4), 4), ((4, 2), 2)]
)
def test_grid_columns(groups, ncols):
    assert figures._ncols(*groups) == ncols


def test_robust_accuracy_layout_markers_and_offsets(drawn, tmp_path):
    figures.plot_robust_accuracy(golden(), tmp_path / "r.png")
    [fig] = drawn
    panels = [ax for ax in visible(fig) if ax.get_title()]
    titles = [ax.get_title() for ax in panels]
    # the worst case leads each norm; L2 starts its own row; few empty cells
    assert titles[0] == "worst case over attacks (L-inf)" and titles[5] == "worst case over attacks (L2)"
    assert len(fig.axes) - len(panels) <= 2
    assert panels[5].get_position().y0 < panels[4].get_position().y0 - 0.05
    worst = panels[0]
    lines = series(worst)
    assert lines["mlp"].get_marker() == "o" and lines["vib_beta1e-3"].get_marker() == "^"  # two families
    xs = {name: tuple(ln.get_xdata()) for name, ln in lines.items()}
    assert len(set(xs.values())) == len(xs)  # every model nudged apart
    spread = max(x[0] for x in xs.values()) - min(x[0] for x in xs.values())
    assert 0 < spread < 0.05 * 0.3  # small against the eps range


def test_beta_sweep_eps_series_differ(drawn, tmp_path):
    figures.plot_beta_sweep(golden(), tmp_path / "b.png")
    [fig] = drawn
    robust = next(ax for ax in fig.axes if "robust" in ax.get_ylabel())
    lines = list(series(robust).values())
    assert len(lines) == 3  # eps 0.1, 0.2, 0.3 of the grid
    assert len({ln.get_linestyle() for ln in lines}) == 3 and len({ln.get_marker() for ln in lines}) == 3


def test_beta_sweep_draws_beta_zero_at_a_labelled_tick(drawn, tmp_path):
    data = golden_data()
    vib = [n for n, m in data["models"].items() if m.get("config", {}).get("beta") is not None]
    zero = json.loads(json.dumps(data["models"][vib[0]]))
    zero["config"]["beta"] = 0.0
    data["models"]["vib_beta0"] = zero
    figures.plot_beta_sweep(Results(data), tmp_path / "b.png")
    [fig] = drawn
    smallest = min(m["config"]["beta"] for n, m in data["models"].items() if n in vib)
    for ax in visible(fig):
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[0] == "0" and ax.get_xticks()[0] == pytest.approx(smallest / 100)
        xs = [x for ln in series(ax).values() for x in ln.get_xdata()]
        assert min(xs) < smallest / 10  # the beta = 0 point is drawn


def test_reliability_titles_clear_the_row_above_and_counts_show(drawn, tmp_path):
    data = golden_data()
    counts = [0, 0, 2, 5, 20, 40, 269, 24]
    rel = {"edges": [i / 8 for i in range(9)], "count": counts, "accuracy": [None, None, 1.0, 0.6, 0.5, 0.7, 0.9, 1.0]}
    models = {}
    for i in range(6):  # two rows of three panels
        m = json.loads(json.dumps(data["models"]["mlp"]))
        m["seeds"]["0"]["clean"]["reliability"] = rel
        models[f"m{i}"] = m
    data["models"] = models
    figures.plot_reliability(Results(data), tmp_path / "rel.png")
    [fig] = drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    main = [ax for ax in fig.axes if ax.get_ylabel() == "accuracy"]
    strip = [ax for ax in fig.axes if ax.get_ylabel() == "examples"]
    assert len(main) == len(strip) == 6
    for above, below in zip(strip[:3], main[3:]):
        label_bottom = above.xaxis.label.get_window_extent(renderer).y0
        ticks_bottom = min(t.get_window_extent(renderer).y0 for t in above.get_xticklabels() if t.get_text())
        assert below.title.get_window_extent(renderer).y1 < min(label_bottom, ticks_bottom)
    heights = sorted(round(p.get_height()) for p in strip[0].patches)
    assert heights == sorted(c for c in counts if c)  # one count bar per non-empty bin
    alphas = {round(p.get_height(), 2): p.get_alpha() for p in main[0].patches}
    assert alphas[1.0] < alphas[0.9]  # 2 examples drawn paler than 269


def test_adversarial_grid_has_a_colour_bar(drawn, tmp_path):
    x = torch.rand(4, 1, 8, 8)
    adv = (x + 0.05).clamp(0, 1)
    y = torch.arange(4)
    grid_module.save_adv_grid(tmp_path / "g.png", x, adv, y, y, y, "t")
    [fig] = drawn
    assert len(fig.axes) == 3 * 4 + 1
    bar = fig.axes[-1]
    assert bar.get_ylabel() == "adversarial − clean"
    lo, hi = bar.get_ylim()
    assert hi == pytest.approx(0.05, rel=1e-4) and lo == pytest.approx(-0.05, rel=1e-4)
