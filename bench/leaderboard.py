"""``vib-bench leaderboard``: one row per model, generated from a results file and never edited by hand.

Every number comes from ``results.json`` (natural units, floats) and is formatted only here. Each
column has a key (for ``--sort-by`` and ``history --metric``), a header, a direction ("lower is
better", "higher is better" or none) and a display scale; the best value of a directed column is
marked (bold, or ``best`` in CSV). Columns without data in a run are left out, so a run that has
only been trained still renders.

Robust accuracy, as the attack stage records it: an example counts as robust when it is classified
correctly both clean and attacked. For a randomised model (VIB, or anything whose outputs vary
between forward passes) the leaderboard takes the worse of its protocols: ``paper`` (gradients
through the model's own sample average) and ``eot`` (gradients averaged over many draws, e.g.
``eot_pgd`` for PGD). ``worst@eps`` is the per-example worst case over every attack run at that eps.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import BenchError
from .info import summary as info_summary
from .protocol import FLAG_BY_LABEL, FLAGS
from .results import AttackRecord, ModelResult, Results, SeedResult, norm_eps
from .rundir import LEADERBOARD, run_dir_of
from .stats import mean_std, trapezoid_auc

FORMATS = ("github", "latex", "html", "csv")
STANDARD_EPS = (0.1, 0.3)          # the L-inf points of the MNIST threat model (Madry et al.)
STANDARD_ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    better: str | None = None       # "min", "max" or None (no best is marked)
    scale: float = 1.0              # display = value * scale
    digits: int = 2
    with_std: bool = False          # show "mean ± std" over seeds
    thousands: bool = False         # integers with separators (throughput, parameters)
    proportion: bool = False        # a fraction of ``n`` examples (binomial noise applies)
    doc: str = ""

    def fmt(self, value: float) -> str:
        if value is None or not math.isfinite(value):
            return ""
        v = value * self.scale
        return f"{v:,.0f}" if self.thousands else f"{v:.{self.digits}f}"


def _robust_columns() -> list[Column]:
    cols = []
    for family, label in (("fgsm", "FGSM"), ("pgd", "PGD"), ("worst", "worst")):
        for eps in STANDARD_EPS:
            what = ("per-example worst case over every attack run" if family == "worst"
                    else f"{label}; randomised models: the worse of {family} and eot_{family} (if run)")
            cols.append(Column(f"{family}@{eps:g}", f"{label} ε={eps:g} %", "max", 100.0, 1, proportion=True,
                               doc=f"robust accuracy (%) at L-inf eps {eps:g}, {what}"))
    return cols


COLUMNS: list[Column] = [
    Column("clean_error", "clean err %", "min", 100.0, 2, with_std=True, proportion=True,
           doc="test error (%), mean ± sample std over seeds"),
    Column("nll", "NLL", "min", 1.0, 3, doc="test negative log-likelihood (nats), mean over seeds"),
    Column("ece", "ECE %", "min", 100.0, 2, doc="expected calibration error (%, 15 equal-width bins), mean over seeds"),
    Column("rate", "rate (nats)", None, 1.0, 1,
           doc="VIB rate: mean KL(p(z|x) || N(0, I)) on the test set, an upper bound on I(X;Z) (nats)"),
    *_robust_columns(),
    Column("ixz", "I(X;Z) nats", None, 1.0, 2,
           doc="`vib-bench info`: VIB: [lower, upper] from the known encoder (the number: lower); deterministic: "
               "inf, no number; otherwise the largest unflagged estimate (nats)"),
    Column("izy", "I(Z;Y) nats", None, 1.0, 3,
           doc="`vib-bench info`: largest I(Z;Y) estimate that raised no flag (each a lower bound; nats)"),
    Column("auc", "AUC %", "max", 100.0, 1, proportion=True,
           doc="area under worst-case accuracy vs L-inf eps (trapezoid over the common grid) / eps range (%)"),
    Column("infer_ex_s", "infer ex/s", "max", thousands=True,
           doc="inference examples/s at batch 100 (median of timing rounds)"),
    Column("train_ex_s", "train ex/s", "max", thousands=True,
           doc="training examples/s at batch 100 (median of timing rounds)"),
    Column("params", "params", None, thousands=True, doc="number of parameters"),
]
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
TEXT_KEYS = ("model", "seeds", "flags", "notes")

# ------------------------------------------------------------------------------------ extraction
def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else math.nan


def robust_accuracy(records: list[AttackRecord], family: str, eps: float, norm: str = "Linf") -> float:
    """One seed's leaderboard robust accuracy for ``family`` (an attack name, or ``worst``) at ``eps``.

    ``pgd`` covers ``pgd`` and ``eot_pgd`` (the worse wins); ``worst`` prefers the attack stage's
    leaderboard worst-case record (per-example, over every attack and protocol) and falls back to
    the minimum over attacks (an upper bound on the per-example worst case) when none is stored.
    """
    eps = norm_eps(eps)
    at = [r for r in records if r.norm == norm and r.eps == eps]
    if family == "worst":
        wc = [r for r in at if r.is_worst_case]
        if wc:
            lead = ([r for r in wc if r.leaderboard] or
                    [r for r in wc if r.protocol in ("all", "standard")] or wc)
            return min(r.robust_acc for r in lead)
        at = [r for r in at if not r.is_worst_case]
    else:
        at = [r for r in at if r.attack in (family, f"eot_{family}")]
    return min((r.robust_acc for r in at), default=math.nan)


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


def seed_values(entry: SeedResult, grid: list[float]) -> dict[str, float]:
    """Every leaderboard metric of one (model, seed), natural units; NaN when absent."""
    recs = entry.records()
    out = {"clean_error": entry.clean_metric("error"), "nll": entry.clean_metric("nll"),
           "ece": entry.clean_metric("ece"), "rate": entry.clean_metric("rate_nats")}
    for family in (*STANDARD_ATTACKS, "worst"):
        for eps in STANDARD_EPS:
            out[f"{family}@{eps:g}"] = robust_accuracy(recs, family, eps) if recs else math.nan
    if recs and len(grid) >= 2:
        acc = [robust_accuracy(recs, "worst", e) for e in grid]
        out["auc"] = trapezoid_auc(grid, acc) if all(math.isfinite(a) for a in acc) else math.nan
    else:
        out["auc"] = math.nan
    out.update(info_summary.seed_info_values(entry))   # ixz, ixz_upper, izy: unflagged numbers only
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

    @property
    def models(self) -> list[str]:
        return list(self.mean.index)

    def best(self, key: str) -> set[str]:
        """Models holding the best displayed value of a directed column (ties all count)."""
        col = COLUMN_BY_KEY[key]
        if col.better is None:
            return set()
        shown = {m: col.fmt(v) for m, v in self.mean[key].items() if math.isfinite(v)}
        if len(shown) < 2:
            return set()
        vals = {m: float(s.replace(",", "")) for m, s in shown.items()}
        target = (min if col.better == "min" else max)(vals.values())
        best = {m for m, v in vals.items() if v == target}
        return set() if len(best) == len(vals) else best  # all tied: nobody is best


def sort_keys() -> list[str]:
    return ["model"] + [c.key for c in COLUMNS]


def build_leaderboard(res: Results, sort_by: str | None = None) -> Leaderboard:
    """The leaderboard of a loaded results file; ``sort_by`` is a column key (best first) or ``model``."""
    explicit = sort_by is not None
    sort_by = sort_by or "clean_error"
    if sort_by not in sort_keys():
        raise BenchError(f"--sort-by {sort_by!r}: unknown column (choose from {', '.join(sort_keys())})")
    grid = common_grid(res)
    means, stds, texts = {}, {}, {}
    for m in res.models():
        name = m.name
        seeds = m.done_seeds()
        per_seed = [seed_values(s, grid) for s in seeds]
        means[name], stds[name] = {}, {}
        for c in COLUMNS:
            means[name][c.key], stds[name][c.key] = mean_std([v[c.key] for v in per_seed])
        total = len(m.seed_ids())
        fails = _failures(m)
        texts[name] = {"seeds": f"{len(seeds)}" if len(seeds) == total else f"{len(seeds)}/{total}",
                       "flags": ", ".join([flag_label(f, flag_norms(m)[f]) for f in raised_flags(m)]
                                          + info_summary.info_flag_labels(m)),
                       "notes": "; ".join(fails)}
    keys = [c.key for c in COLUMNS]
    mean = pd.DataFrame.from_dict(means, orient="index", columns=keys, dtype=float)
    std = pd.DataFrame.from_dict(stds, orient="index", columns=keys, dtype=float)
    text = pd.DataFrame.from_dict(texts, orient="index", columns=["seeds", "flags", "notes"])
    columns = [c for c in COLUMNS if mean[c.key].notna().any()
               or (c.key in info_summary.KEYS and any(info_summary.has_info(m) for m in res.models()))] \
        if len(mean) else []
    if sort_by != "model" and sort_by not in [c.key for c in columns]:
        if explicit and len(mean):
            raise BenchError(f"--sort-by {sort_by}: this run has no {sort_by} data")
        sort_by = "model"  # e.g. every model failed: nothing to rank by
    if len(mean):
        if sort_by == "model":
            order = sorted(mean.index)
        else:
            col = COLUMN_BY_KEY[sort_by]
            # best first, ties broken by clean error, then by name
            frame = pd.DataFrame({"k": mean[sort_by] * (-1 if col.better == "max" else 1),
                                  "tie": mean["clean_error"], "name": mean.index}, index=mean.index)
            order = list(frame.sort_values(["k", "tie", "name"], na_position="last", kind="mergesort").index)
        mean, std, text = mean.loc[order], std.loc[order], text.loc[order]
    return Leaderboard(res, columns, mean, std, text, grid, sort_by)


# ------------------------------------------------------------------------------------ rendering
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "ε": r"$\varepsilon$", "|": r"\textbar{}", "<": r"\textless{}",
                  ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _escape(text: str, fmt: str) -> str:
    if fmt == "latex":
        return latex_escape(text)
    if fmt == "html":
        return html.escape(text)
    return text.replace("|", r"\|")  # a pipe would split a Markdown cell


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
    return text


def _rows(lb: Leaderboard, fmt: str) -> tuple[list[str], list[list[str]], list[str]]:
    show_flags = bool(lb.text["flags"].astype(bool).any()) if len(lb.text) else False
    show_notes = bool(lb.text["notes"].astype(bool).any()) if len(lb.text) else False
    headers = ["model", "seeds"] + [c.header for c in lb.columns] + (["flags"] if show_flags else []) \
        + (["notes"] if show_notes else [])
    align = ["left", "right"] + ["right"] * len(lb.columns) + ["left"] * (show_flags + show_notes)
    best = {c.key: lb.best(c.key) for c in lb.columns}
    rows = []
    for m in lb.models:
        row = [_escape(m, fmt), lb.text.at[m, "seeds"]]
        row += [_cell(lb, m, c, fmt, best[c.key]) for c in lb.columns]
        if show_flags:
            row.append(_escape(lb.text.at[m, "flags"], fmt))
        if show_notes:
            row.append(_escape(lb.text.at[m, "notes"], fmt))
        rows.append(row)
    return [_escape(h, fmt) for h in headers], rows, align


def to_csv(lb: Leaderboard) -> str:
    """Raw numbers in natural units (fractions, not %), a ``_std`` column per mean ± std metric, and
    ``best``: the keys of the columns in which this model holds the best value."""
    cols = {"model": lb.models, "seeds": list(lb.text["seeds"])}
    for c in lb.columns:
        cols[c.key] = list(lb.mean[c.key])
        if c.with_std:
            cols[f"{c.key}_std"] = list(lb.std[c.key])
        if c.key == "ixz":
            cols["ixz_upper"] = [mean_std([info_summary.seed_info_values(s)["ixz_upper"]
                                           for s in lb.results.model(m).done_seeds()])[0] for m in lb.models]
    cols["flags"] = [";".join(f.strip() for f in s.split(",") if f.strip()) for s in lb.text["flags"]]
    cols["notes"] = list(lb.text["notes"])
    best = {c.key: lb.best(c.key) for c in lb.columns}
    cols["best"] = [";".join(k for k in best if m in best[k]) for m in lb.models]
    return pd.DataFrame(cols).to_csv(index=False, float_format="%.8g", lineterminator="\n")


def render(lb: Leaderboard, fmt: str = "github") -> str:
    """The table alone, in ``github`` (Markdown pipe table), ``latex``, ``html`` or ``csv``."""
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise BenchError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        return to_csv(lb)
    headers, rows, align = _rows(lb, fmt)
    table_fmt = {"github": "pipe", "latex": "latex_raw", "html": "unsafehtml"}[fmt]
    return tabulate(rows, headers=headers, tablefmt=table_fmt, colalign=align, disable_numparse=True) + "\n"


def render_leaderboard(res: Results, fmt: str = "github", sort_by: str | None = None) -> str:
    return render(build_leaderboard(res, sort_by), fmt)


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
    parts = [f"{ds.get('name', '?')} test set ({ds.get('n_test', '?')} examples, {ds.get('checksum', 'no checksum')})",
             f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}",
             f"{train.get('epochs', '?')} epochs",
             f"commit {_commit(res.environment('train'))}"]
    if res.suite.get("name"):
        parts.insert(0, f"suite {res.suite['name']}")
    return ", ".join(parts)


def footnotes(lb: Leaderboard, fmt: str = "github") -> list[str]:
    """Plain-text notes that explain the table (attack protocol, throughput machine, flags)."""
    notes = []
    keys = {c.key for c in lb.columns}
    if keys & {f"{f}@{e:g}" for f in (*STANDARD_ATTACKS, "worst") for e in STANDARD_EPS} or "auc" in keys:
        ns = sorted({int(seed_n(e, "robust")) for e in lb.results.iter_seeds() if math.isfinite(seed_n(e, "robust"))})
        n_txt = f"the first {ns[0]} test examples" if len(ns) == 1 else "the attacked test examples"
        notes.append(f"Robust accuracy: % of {n_txt} classified correctly both clean and attacked (L-inf); "
                     "for randomised models the worse of the paper and EOT protocols; "
                     "worst = per-example worst case over every attack run.")
    if "auc" in keys:
        notes.append(f"AUC: worst-case accuracy integrated over L-inf eps "
                     f"{', '.join(f'{e:g}' for e in lb.grid)} (trapezoid), divided by the eps range.")
    if keys & {"infer_ex_s", "train_ex_s"}:
        machines = set()
        for e in lb.results.iter_seeds():
            mach = e.machine
            if mach:
                machines.add(f"{mach.get('device_name', '?')} ({mach.get('device', '?')}, "
                             f"threads={mach.get('threads', '?')}, torch {mach.get('torch', '?')})")
        if machines:
            notes.append("Throughput: median examples/s at batch 100, measured on " + "; ".join(sorted(machines)) + ".")
    if keys & set(info_summary.KEYS):
        notes.append(info_summary.COLUMNS_NOTE)
    directed = [c for c in lb.columns if c.better]
    if directed and len(lb.models) > 1:
        notes.append("Best value per column in bold." if fmt != "csv" else "Best: see the best column.")
    used = []
    for flags in lb.text["flags"]:
        for f in flags.split(", "):
            f = f.removesuffix(" (L2)")
            if f and f not in used:
                used.append(f)
    for f in used:
        if f in FLAG_BY_LABEL:
            notes.append(f"`{f}`: {FLAG_BY_LABEL[f].text}")
    if any(f.startswith(("I(X;Z)", "I(Z;Y)")) for f in used):
        notes.append(info_summary.FLAGS_NOTE)
    return notes


def leaderboard_markdown(res: Results, sort_by: str | None = None) -> str:
    """The ``leaderboard.md`` document: title, run description, table and notes."""
    lb = build_leaderboard(res, sort_by)
    lines = ["# vib-bench leaderboard", "", describe_run(res) + ".", ""]
    if not lb.models:
        lines += ["No models in this run yet.", ""]
    else:
        lines += [render(lb, "github").rstrip("\n"), ""]
        lines += [f"- {n}" for n in footnotes(lb)]
        lines.append("")
    return "\n".join(lines)


def write_leaderboard(run_dir, sort_by: str | None = None) -> Path:
    """(Re)write ``RUN_DIR/leaderboard.md`` atomically from the results file; returns its path."""
    from .io import atomic_write_text

    res = Results.load(run_dir)
    path = run_dir_of(run_dir) / LEADERBOARD
    atomic_write_text(path, leaderboard_markdown(res, sort_by))
    return path


def column_help() -> str:
    width = max(len(c.key) for c in COLUMNS)
    return "\n".join(f"  {c.key:{width}s}  {c.doc}" for c in COLUMNS)
