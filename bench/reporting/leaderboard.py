"""``vib-bench leaderboard``: one row per model, generated from a results file and never edited by hand.

Every number comes from ``results.json`` (natural units, floats) and is formatted only here. Each
column has a key (for ``--sort-by`` and ``history --metric``), a header, a direction ("lower is
better", "higher is better" or none) and a display scale; the best value of a directed column is
marked (bold, or ``best`` in CSV). Columns without data in a run are left out, so a run that has
only been trained still renders.

The robust-accuracy columns (``fgsm@eps``, ``pgd@eps``, ``worst@eps``) exist for any L-inf eps the run
attacked; by default a leaderboard shows up to three nonzero eps of the run's own grid
(:func:`default_eps`), and ``eps=`` chooses them. Rendering (Markdown, LaTeX, HTML, CSV, JSON) and
``leaderboard.md`` live in ``bench.reporting.leaderboard_render``.

Robust accuracy, as the attack stage records it: an example counts as robust when it is classified
correctly both clean and attacked. For a randomised model (VIB, or anything whose outputs vary
between forward passes) the leaderboard takes the worse of its protocols: ``paper`` (gradients
through the model's own sample average) and ``eot`` (gradients averaged over many draws, e.g.
``eot_pgd`` for PGD). ``worst@eps`` is the per-example worst case over every attack run at that eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..attack import indicators as attack_indicators
from ..errors import BenchError
from ..info import summary as info_summary
from ..protocol import FLAGS
from ..results import ModelResult, Results, SeedResult, norm_eps
from ..stats import mean_std, trapezoid_auc
from .ranking import Best, best_models, robust_accuracy

FORMATS = ("github", "latex", "html", "csv", "json")
FORMAT_ALIASES = {"markdown": "github"}
STANDARD_EPS = (0.1, 0.3)  # the L-inf points of the MNIST threat model (Madry et al.)
STANDARD_ATTACKS = ("fgsm", "pgd")
MAX_DEFAULT_EPS = 3  # robust columns per family when the eps are not chosen
ROBUST_FAMILIES = (("fgsm", "FGSM"), ("pgd", "PGD"), ("worst", "worst"))


def format_name(fmt: str, choices=FORMATS) -> str:
    """A format name with its aliases resolved (``markdown`` is ``github``); unknown names are an error."""
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in choices:
        raise BenchError(f"--format {fmt!r}: choose from {', '.join((*choices, *FORMAT_ALIASES))}")
    return fmt


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    better: str | None = None  # "min", "max" or None (no best is marked)
    scale: float = 1.0  # display = value * scale
    digits: int = 2
    with_std: bool = False  # show "mean ± std" over seeds
    thousands: bool = False  # integers with separators (throughput, parameters)
    proportion: bool = False  # a fraction of ``n`` examples (binomial noise applies)
    paired: bool = False  # per-example vectors exist: "best" needs a paired test (bench.reporting.ranking)
    per_seed: bool = True  # measured per seed (throughput is measured once per model)
    doc: str = ""

    def fmt(self, value: float) -> str:
        if value is None or not math.isfinite(value):
            return ""
        v = value * self.scale
        return f"{v:,.0f}" if self.thousands else f"{v:.{self.digits}f}"


def _robust_columns(eps_list=STANDARD_EPS) -> list[Column]:
    cols = []
    for family, label in ROBUST_FAMILIES:
        for eps in eps_list:
            what = (
                "per-example worst case over every attack run"
                if family == "worst"
                else f"{label}; randomised models: the worse of {family} and eot_{family} (if run)"
            )
            cols.append(
                Column(
                    f"{family}@{eps:g}",
                    f"{label} ε={eps:g} %",
                    "max",
                    100.0,
                    1,
                    proportion=True,
                    paired=True,
                    doc=f"robust accuracy (%) at L-inf eps {eps:g}, {what}",
                )
            )
    return cols


COLUMNS: list[Column] = [
    Column(
        "clean_error",
        "clean err %",
        "min",
        100.0,
        2,
        with_std=True,
        proportion=True,
        paired=True,
        doc="test error (%), mean ± sample std over seeds",
    ),
    Column("nll", "NLL", "min", 1.0, 3, doc="test negative log-likelihood (nats), mean over seeds"),
    Column("ece", "ECE %", "min", 100.0, 2, doc="expected calibration error (%, 15 equal-width bins), mean over seeds"),
    Column(
        "rate",
        "rate (nats)",
        None,
        1.0,
        1,
        doc="VIB rate: mean KL(p(z|x) || N(0, I)) on the test set, an upper bound on I(X;Z) (nats)",
    ),
    *_robust_columns(),
    Column(
        "ixz",
        "I(X;Z) nats",
        None,
        1.0,
        2,
        doc="`vib-bench info`: VIB: [lower, upper] from the known encoder (the number: lower); deterministic: "
        "inf, no number; otherwise the largest unflagged estimate (nats)",
    ),
    Column(
        "izy",
        "I(Z;Y) nats",
        None,
        1.0,
        3,
        doc="`vib-bench info`: [H(Y) - CE of the model's own decoder, min(H(Y), rate, leave-one-out)], a provable "
        "interval for every model (the number: lower; nats)",
    ),
    Column(
        "izy_critic",
        "I(Z;Y) critic nats",
        None,
        1.0,
        3,
        doc="`vib-bench info`: largest I(Z;Y) critic estimate that raised no flag (a diagnostic; nats)",
    ),
    Column(
        "auc",
        "AUC %",
        "max",
        100.0,
        1,
        proportion=True,
        doc="area under worst-case accuracy vs L-inf eps (trapezoid over the common grid) / eps range (%)",
    ),
    Column(
        "infer_ex_s",
        "infer ex/s",
        "max",
        thousands=True,
        per_seed=False,
        doc="inference examples/s at batch 100 (median of timing rounds)",
    ),
    Column(
        "train_ex_s",
        "train ex/s",
        "max",
        thousands=True,
        per_seed=False,
        doc="training examples/s at batch 100 (median of timing rounds)",
    ),
    Column("params", "params", None, thousands=True, per_seed=False, doc="number of parameters"),
]
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
TEXT_KEYS = ("model", "seeds", "flags", "notes", "attack_failure")
_FAMILIES = {f for f, _ in ROBUST_FAMILIES}


def robust_key(key: str) -> tuple[str, float] | None:
    """``pgd@0.2`` -> (``pgd``, 0.2); None for a key that is not a robust-accuracy column."""
    family, _, eps = key.partition("@")
    if family not in _FAMILIES or not eps:
        return None
    try:
        value = float(eps)
    except ValueError:
        return None
    return (family, value) if math.isfinite(value) and value >= 0 else None


def column(key: str) -> Column:
    """The column of a key: a fixed one (``clean_error``, ``auc``...) or robust accuracy at any eps."""
    if key in COLUMN_BY_KEY:
        return COLUMN_BY_KEY[key]
    rk = robust_key(key)
    if rk is None:
        raise BenchError(
            f"unknown column {key!r} (choose from {', '.join(sort_keys())}; "
            "robust accuracy at any L-inf eps: fgsm@EPS, pgd@EPS, worst@EPS)"
        )
    return _robust_columns([rk[1]])[[f for f, _ in ROBUST_FAMILIES].index(rk[0])]


def columns_for(eps) -> list[Column]:
    """The leaderboard's columns with robust accuracy at the L-inf ``eps`` (in place of the standard pair)."""
    robust = [c for c in COLUMNS if robust_key(c.key)]
    at = COLUMNS.index(robust[0])
    rest = [c for c in COLUMNS if not robust_key(c.key)]
    return rest[:at] + _robust_columns(sorted({norm_eps(e) for e in eps})) + rest[at:]


def default_eps(res: Results) -> list[float]:
    """The default eps of the robust columns: :func:`pick_eps` of the run's nonzero L-inf grid (the eps
    every attacked seed has, else any attacked eps); the standard pair when nothing was attacked."""
    grids = [linf_grid(e) for e in res.iter_seeds() if e.records()]
    grid = (set.intersection(*grids) or set.union(*grids)) if grids else set()
    return pick_eps(grid) or list(STANDARD_EPS)


def pick_eps(grid, most: int = MAX_DEFAULT_EPS) -> list[float]:
    """Up to ``most`` nonzero values of ``grid``: all when few; else the standard ones (0.1, 0.3) it has (or
    its ends), filled with the values farthest from those already chosen (the smaller on a tie)."""
    grid = sorted({norm_eps(e) for e in grid if e > 0})
    if len(grid) <= most:
        return grid
    chosen = [e for e in STANDARD_EPS if norm_eps(e) in grid][:most] or [grid[0], grid[-1]][:most]
    while len(chosen) < most:
        chosen.append(max((e for e in grid if e not in chosen), key=lambda e: (min(abs(e - c) for c in chosen), -e)))
    return sorted(chosen)


def choose_eps(res: Results, eps=None, sort_by: str | None = None) -> list[float]:
    """The eps of the robust columns: ``eps`` (checked against the run's grid) or :func:`default_eps`,
    plus the eps of a ``sort_by`` robust key, so that the table shows the column it is sorted by."""
    grid = {e for s in res.iter_seeds() for e in linf_grid(s)}

    def check(e: float, flag: str) -> float:
        if not e >= 0:
            raise BenchError(f"{flag}: an eps must be >= 0, got {e:g}")
        if grid and norm_eps(e) not in grid:
            raise BenchError(
                f"{flag}: this run attacked no L-inf eps {e:g} (its grid: {', '.join(f'{g:g}' for g in sorted(grid))})"
            )
        return norm_eps(e)

    if eps is None:
        chosen = default_eps(res)
    else:
        chosen = sorted({check(e, f"--eps {e:g}") for e in eps})
        if not chosen:
            raise BenchError("--eps is empty: give comma-separated L-inf eps, e.g. 0.1,0.3")
    rk = robust_key(sort_by) if sort_by else None
    if rk and norm_eps(rk[1]) not in chosen:
        chosen = sorted({*chosen, check(rk[1], f"--sort-by {sort_by}")})
    return chosen


# ------------------------------------------------------------------------------------ extraction
def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else math.nan


def linf_grid(entry: SeedResult) -> set[float]:
    """The L-inf eps values at which a seed has a worst-case number."""
    return {r.eps for r in entry.records() if r.norm == "Linf"}


def common_grid(res: Results) -> list[float]:
    """L-inf eps values present for every attacked (model, seed): the AUC grid, comparable across rows."""
    grids = [linf_grid(e) for e in res.iter_seeds() if e.records()]
    if not grids:
        return []
    return sorted(set.intersection(*grids))


def flag_norms(model: ModelResult) -> dict[str, set[str]]:
    """Raised flag -> the norms of the attack records that raised it (empty set: a model-level flag)."""
    seen: dict[str, set[str]] = {}
    if model.stochastic:
        seen["randomised"] = set()
    for e in model.seeds():
        for k, v in e.attack_checks.items():
            if (v is True or (isinstance(v, str) and v.strip())) and k != "declared_stochastic":
                seen.setdefault(k, set())
        for r in e.records():
            for k in r.raised():
                seen.setdefault(k, set()).add(r.norm)
    return seen


def raised_flags(model: ModelResult) -> list[str]:
    """Names of the sanity-check flags raised for any seed of a model (display order of ``FLAGS``)."""
    seen = flag_norms(model)
    return [f for f in FLAGS if f in seen] + sorted(set(seen) - set(FLAGS))


def flag_label(name: str, norms: set[str] | None = None) -> str:
    """Short label; qualified with the norm when only L2 cells raised it (the table's columns are L-inf)."""
    label = FLAGS[name].label if name in FLAGS else name
    return f"{label} (L2)" if norms == {"L2"} else label


def seed_values(entry: SeedResult, grid: list[float], eps=STANDARD_EPS) -> dict[str, float]:
    """Every leaderboard metric of one (model, seed), natural units, robust accuracy at each L-inf ``eps``;
    NaN when absent."""
    recs = entry.records()
    out = {
        "clean_error": entry.clean_metric("error"),
        "nll": entry.clean_metric("nll"),
        "ece": entry.clean_metric("ece"),
        "rate": entry.clean_metric("rate_nats"),
    }
    for family in (*STANDARD_ATTACKS, "worst"):
        for e in eps:
            out[f"{family}@{e:g}"] = robust_accuracy(recs, family, e) if recs else math.nan
    if recs and len(grid) >= 2:
        acc = [robust_accuracy(recs, "worst", e) for e in grid]
        out["auc"] = trapezoid_auc(grid, acc) if all(math.isfinite(a) for a in acc) else math.nan
    else:
        out["auc"] = math.nan
    out.update(info_summary.seed_info_values(entry))  # ixz, izy (+ _upper), izy_critic: bounds, unflagged estimates
    out["infer_ex_s"] = entry.throughput_median("inference", "100")
    out["train_ex_s"] = entry.throughput_median("train")
    out["params"] = _num(entry.throughput.get("params"))
    return out


def seed_n(entry: SeedResult, key: str) -> float:
    """Examples behind a proportion metric of one seed (for binomial noise); NaN when unknown."""
    if key == "clean_error":
        return entry.clean_metric("n")
    ns = [_num(r.n) for r in entry.records() if r.norm == "Linf"]
    ns = [n for n in ns if math.isfinite(n)]
    return min(ns) if ns else math.nan


def _failures(model: ModelResult) -> list[str]:
    """Why seeds are missing from a row: a training error, an unfinished state, or no evaluation."""
    out = []
    for e in model.seeds():
        if e.is_done:
            continue
        t = e.train
        s = e.seed_id
        if t.get("error"):
            out.append(f"seed {s} {e.state}: {' '.join(str(t['error']).split())[:100]}")
        elif e.state != "done":
            out.append(f"seed {s}: {e.state}")
        else:
            out.append(f"seed {s}: not evaluated")
    return out


def _imported(model: ModelResult) -> list[str]:
    """A note for seeds whose weights were imported (``vib-bench import``): they have no training log."""
    seeds = [s.seed_id for s in model.seeds() if s.imported]
    return [f"imported weights (seed {', '.join(seeds)}; no training log)"] if seeds else []


# ------------------------------------------------------------------------------------ the table
@dataclass
class Leaderboard:
    """The numbers behind a leaderboard: ``mean``/``std`` (models x metric keys, natural units),
    ``text`` (models x seeds/flags/notes) and the columns that have data, in display order."""

    results: Results
    columns: list[Column]
    mean: pd.DataFrame
    std: pd.DataFrame
    text: pd.DataFrame
    grid: list[float]
    sort_by: str
    count: pd.DataFrame | None = None  # seeds behind each cell
    eps: list[float] = field(default_factory=lambda: list(STANDARD_EPS))  # L-inf eps of the robust columns
    _best: dict = field(default_factory=dict, repr=False)

    def seeds_note(self, model: str, key: str) -> str:
        """`` (1 seed)`` when this cell rests on fewer seeds than the row's best-covered cell."""
        if self.count is None or not column(key).per_seed:
            return ""
        row = [int(k) for c, k in self.count.loc[model].items() if k == k and column(c).per_seed]
        k = self.count.at[model, key]
        if not row or k != k or int(k) == max(row) or int(k) == 0:
            return ""
        return f" ({int(k)} seed{'s' if int(k) != 1 else ''})"

    @property
    def models(self) -> list[str]:
        return list(self.mean.index)

    def best(self, key: str) -> set[str]:
        """Models marked best in a column: the best alone when a paired test separates it from the runner-up,
        else every model tied with it (none when all are tied, or when the column has no paired test)."""
        return self.ranking(key).models

    def ranking(self, key: str):
        """The :class:`bench.reporting.ranking.Best` of a column (cached)."""
        if key not in self._best:
            col = column(key)
            if col.better is None or not col.paired:
                self._best[key] = Best(set(), False)
            else:
                values = {m: float(v) for m, v in self.mean[key].items()}
                self._best[key] = best_models(self.results, key, values, col.better)
        return self._best[key]


def sort_keys(eps=STANDARD_EPS) -> list[str]:
    return ["model"] + [c.key for c in columns_for(eps)]


def build_leaderboard(res: Results, sort_by: str | None = None, eps=None) -> Leaderboard:
    """The leaderboard of a loaded results file; ``sort_by`` is a column key (best first) or ``model``;
    ``eps`` the L-inf eps of the robust columns (default: :func:`default_eps`)."""
    explicit = sort_by is not None
    sort_by = sort_by or "clean_error"
    if sort_by != "model":
        try:
            column(sort_by)
        except BenchError:
            raise BenchError(
                f"--sort-by {sort_by!r}: unknown column (choose from {', '.join(sort_keys())}, "
                "or fgsm@EPS, pgd@EPS, worst@EPS at any L-inf eps of the run)"
            ) from None
    eps = choose_eps(res, eps, sort_by)
    all_columns = columns_for(eps)
    grid = common_grid(res)
    means, stds, texts, counts = {}, {}, {}, {}
    for m in res.models():
        name = m.name
        seeds = m.done_seeds()
        per_seed = [seed_values(s, grid, eps) for s in seeds]
        means[name], stds[name], counts[name] = {}, {}, {}
        for c in all_columns:
            vals = [v[c.key] for v in per_seed]
            means[name][c.key], stds[name][c.key] = mean_std(vals)
            counts[name][c.key] = sum(math.isfinite(v) for v in vals)
        total = len(m.seed_ids())
        fails = _failures(m)
        texts[name] = {
            "seeds": f"{len(seeds)}" if len(seeds) == total else f"{len(seeds)}/{total}",
            "flags": ", ".join(
                [flag_label(f, flag_norms(m)[f]) for f in raised_flags(m)] + info_summary.info_flag_labels(m)
            ),
            "notes": "; ".join(fails + _imported(m)),
            "attack_failure": attack_indicators.model_text(seeds),
        }
    keys = [c.key for c in all_columns]
    mean = pd.DataFrame.from_dict(means, orient="index", columns=keys, dtype=float)
    std = pd.DataFrame.from_dict(stds, orient="index", columns=keys, dtype=float)
    count = pd.DataFrame.from_dict(counts, orient="index", columns=keys, dtype=float)
    text = pd.DataFrame.from_dict(texts, orient="index", columns=["seeds", "flags", "notes", "attack_failure"])
    columns = (
        [
            c
            for c in all_columns
            if mean[c.key].notna().any()
            or (c.key in info_summary.KEYS and any(info_summary.has_info(m) for m in res.models()))
        ]
        if len(mean)
        else []
    )
    if sort_by != "model" and sort_by not in [c.key for c in columns]:
        if explicit and len(mean):
            raise BenchError(f"--sort-by {sort_by}: this run has no {sort_by} data")
        sort_by = "model"  # e.g. every model failed: nothing to rank by
    if len(mean):
        if sort_by == "model":
            order = sorted(mean.index)
        else:
            col = column(sort_by)
            # best first, ties broken by clean error, then by name
            frame = pd.DataFrame(
                {
                    "k": mean[sort_by] * (-1 if col.better == "max" else 1),
                    "tie": mean["clean_error"],
                    "name": mean.index,
                },
                index=mean.index,
            )
            order = list(frame.sort_values(["k", "tie", "name"], na_position="last", kind="mergesort").index)
        mean, std, text, count = mean.loc[order], std.loc[order], text.loc[order], count.loc[order]
    return Leaderboard(res, columns, mean, std, text, grid, sort_by, count, eps)


def column_help() -> str:
    width = max(len(c.key) for c in COLUMNS)
    return (
        "\n".join(f"  {c.key:{width}s}  {c.doc}" for c in COLUMNS)
        + "\n  (fgsm@EPS, pgd@EPS and worst@EPS exist for every L-inf eps the run attacked)"
    )
