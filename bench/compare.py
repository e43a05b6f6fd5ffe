"""``vib-bench compare`` and ``vib-bench history``: regression tracking between runs.

compare BASE NEW
    Model by model, metric by metric, over the seeds both runs finished:

    * clean error and robust accuracy: both runs classify the same test examples, so the test is
      paired. McNemar's exact test counts the examples that flipped (right in one run, wrong in the
      other), pooled over the matched seeds. Without per-example vectors (a bare results file) it
      falls back to a two-proportion z-test on the recorded rates and says so. P-values are
      Holm-adjusted over the whole table by default, so a table of fifty cells does not fail CI by
      chance; a difference is significant when the adjusted p-value is below ``--alpha``.
    * throughput: a relative threshold on the median (``--throughput-threshold``, default 10%),
      only between like machines (same CPU, threads and device name); otherwise "not comparable".
    * a model that trained in BASE and fails in NEW is a clean-family regression.

    Exit status: 0 when nothing in the ``--fail-on`` families got significantly worse, 1 when
    something did, 2 on bad input (unreadable file, different test sets).

history RESULTS...
    One metric across many runs (ordered by recorded time, or as given), as a table and a plot, with
    step changes flagged the asv way: a jump between consecutive runs larger than their noise.
"""

from __future__ import annotations

import fnmatch
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BenchError
from .leaderboard import (COLUMN_BY_KEY, _records, _same_eps, _seed_sort, common_grid, done_seeds, seed_n,
                          seed_values)
from .results import load_per_example, load_results, results_path
from .stats import binomial_se, detect_steps, holm, mcnemar_p, mean_std, step_tolerances, two_proportion_test

FAMILIES = ("clean", "robust", "throughput")
VERDICTS = ("worse", "better", "same", "not comparable")
TABLE_FORMATS = ("github", "simple", "csv", "latex", "html")
THROUGHPUT_METRICS = (("inference", "1"), ("inference", "100"), ("inference", "1000"), ("train", None))


@dataclass
class Run:
    """A loaded results file and where its per-example vectors live."""

    path: Path
    data: dict
    _cache: dict = field(default_factory=dict)

    @classmethod
    def load(cls, where) -> "Run":
        return cls(results_path(where), load_results(where))

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def label(self) -> str:
        return self.run_dir.name if self.path.name == "results.json" else self.path.stem

    def env(self, stage: str = "train") -> dict:
        return (self.data.get("environments") or {}).get(stage) or self.data.get("environment") or {}

    def per_example(self, model: str, seed: str) -> dict:
        key = (model, seed)
        if key not in self._cache:
            try:
                self._cache[key] = load_per_example(self.run_dir, model, int(seed))
            except Exception:  # noqa: BLE001 - a damaged vector file only costs us the paired test
                self._cache[key] = {}
        return self._cache[key]


# ------------------------------------------------------------------------------------ compare
def check_same_dataset(base: Run, new: Run) -> None:
    a = (base.data.get("run") or {}).get("dataset") or {}
    b = (new.data.get("run") or {}).get("dataset") or {}
    if a.get("checksum") and b.get("checksum"):
        same = a["checksum"] == b["checksum"]
    else:
        same = (a.get("name"), a.get("n_test")) == (b.get("name"), b.get("n_test"))
    if not same:
        raise BenchError(f"different datasets: {base.path} used {a.get('name')} ({a.get('checksum', 'no checksum')}), "
                         f"{new.path} used {b.get('name')} ({b.get('checksum', 'no checksum')}); "
                         "compare only runs evaluated on the same test set")


def _row(family, model, metric, base, new, *, kind, test="", p=math.nan, verdict="same", note="") -> dict:
    return {"family": family, "model": model, "metric": metric, "base": base, "new": new, "kind": kind,
            "test": test, "p": p, "p_adj": math.nan, "verdict": verdict, "note": note}


def _paired(base: Run, new: Run, model: str, seeds: list[str], key: str):
    """Pooled (b, c, n, base_acc, new_acc) over matched seeds, or None if any vector is missing."""
    b = c = n = kb = kn = 0
    prefix = None
    for s in seeds:
        vb, vn = base.per_example(model, s).get(key), new.per_example(model, s).get(key)
        if vb is None or vn is None:
            return None
        m = min(len(vb), len(vn))
        if len(vb) != len(vn):
            prefix = m
        vb, vn = np.asarray(vb[:m], bool), np.asarray(vn[:m], bool)
        b += int(np.sum(vb & ~vn))
        c += int(np.sum(~vb & vn))
        n += m
        kb += int(vb.sum())
        kn += int(vn.sum())
    if n == 0:
        return None
    return b, c, n, kb / n, kn / n, prefix


def _proportion_row(family, model, metric, base, new, seeds, key, lower_is_better, fallback) -> dict:
    """A clean-error / robust-accuracy row: McNemar on the vectors, else a two-proportion test.

    ``fallback`` is ``(base_rate, base_n, new_rate, new_n)`` from the results file, where the rate
    is an accuracy (fraction correct) pooled over the matched seeds.
    """
    pair = _paired(base, new, model, seeds, key)
    if pair is not None:
        b, c, n, acc_b, acc_n, prefix = pair
        p = mcnemar_p(b, c)
        test = f"McNemar exact ({b} lost, {c} gained)"
        note = f"paired on the first {prefix} examples" if prefix else ""
    else:
        acc_b, nb, acc_n, nn = fallback
        if not (nb and nn and math.isfinite(acc_b) and math.isfinite(acc_n)):
            return _row(family, model, metric, math.nan, math.nan, kind="proportion", verdict="not comparable",
                        note="no example counts recorded")
        p = two_proportion_test(acc_b * nb, nb, acc_n * nn, nn)
        test = "two-proportion z (no per-example data)"
        note = ""
    vb, vn = (1 - acc_b, 1 - acc_n) if lower_is_better else (acc_b, acc_n)
    row = _row(family, model, metric, vb, vn, kind="error" if lower_is_better else "accuracy", test=test, p=p,
               note=note)
    row["lower_is_better"] = lower_is_better
    return row


def _matched_seeds(mb: dict, mn: dict) -> tuple[list[str], list[str], list[str]]:
    sb, sn = set(done_seeds(mb)), set(done_seeds(mn))
    return sorted(sb & sn, key=_seed_sort), sorted(sb - sn, key=_seed_sort), sorted(sn - sb, key=_seed_sort)


def _clean_rows(base: Run, new: Run, model: str, mb: dict, mn: dict, seeds: list[str]) -> list[dict]:
    def pooled(m):
        k = n = 0.0
        for s in seeds:
            c = m["seeds"][s].get("clean") or {}
            if c.get("n") and isinstance(c.get("error"), (int, float)):
                k += (1 - c["error"]) * c["n"]
                n += c["n"]
        return (k / n if n else math.nan), int(n)

    (ab, nb), (an, nn) = pooled(mb), pooled(mn)
    return [_proportion_row("clean", model, "clean error", base, new, seeds, "clean", True, (ab, nb, an, nn))]


def _cell_key(r: dict) -> tuple:
    return (r.get("attack"), r.get("norm", "Linf"), round(float(r.get("eps", math.nan)), 9), r.get("protocol"))


def _per_example_key(attack, norm, eps, protocol) -> str:
    from .attack import per_example_key

    return per_example_key(attack, norm, eps, protocol)


def _robust_rows(base: Run, new: Run, model: str, mb: dict, mn: dict, seeds: list[str]) -> list[dict]:
    def cells(m):
        per_seed = [{_cell_key(r): r for r in _records(m["seeds"][s])} for s in seeds]
        common = set.intersection(*(set(c) for c in per_seed)) if per_seed else set()
        return per_seed, common

    pb, cb = cells(mb)
    pn, cn = cells(mn)
    if not cb or not cn:
        if not (cb or cn):
            return []
        side = "base" if not cb else "new"
        return [_row("robust", model, "attacks", math.nan, math.nan, kind="text", verdict="not comparable",
                     note=f"no attack results in {side} (seeds {','.join(seeds)})")]
    rows = []
    for key in sorted(cb | cn, key=lambda k: (k[1] != "Linf", k[0] == "worst_case", str(k[0]), k[2], str(k[3]))):
        attack, norm, eps, protocol = key
        metric = f"{attack} {norm} {eps:g} [{protocol}]"
        if key not in cb or key not in cn:
            rows.append(_row("robust", model, metric, math.nan, math.nan, kind="accuracy", verdict="not comparable",
                             note=f"only in {'base' if key in cb else 'new'}"))
            continue

        def pooled(per_seed):
            k = n = 0.0
            for c in per_seed:
                r = c[key]
                if r.get("n"):
                    k += float(r["robust_acc"]) * r["n"]
                    n += r["n"]
            return (k / n if n else math.nan), int(n)

        (ab, nb), (an, nn) = pooled(pb), pooled(pn)
        row = _proportion_row("robust", model, metric, base, new, seeds, _per_example_key(*key), False,
                              (ab, nb, an, nn))
        cfg_b = [(c[key].get("config") or {}).get("budget") for c in pb]
        cfg_n = [(c[key].get("config") or {}).get("budget") for c in pn]
        if cfg_b != cfg_n:
            row["note"] = "; ".join(x for x in (row["note"], "attack budget differs") if x)
        rows.append(row)
    return rows


def _throughput(m: dict, seeds: list[str]):
    """(machine dict, {metric: median ex/s}) from the seeds that were timed."""
    timed = [(m.get("seeds") or {})[s].get("throughput") for s in seeds]
    timed = [t for t in timed if t]
    if not timed:
        return None, {}
    out = {}
    for part, bs in THROUGHPUT_METRICS:
        vals = []
        for t in timed:
            st = (t.get(part) or {}).get(bs) if bs else t.get(part)
            if st and isinstance(st.get("median"), (int, float)):
                vals.append(float(st["median"]))
        if vals:
            label = f"{part} ex/s @{bs or (timed[0].get(part) or {}).get('batch_size', 100)}"
            out[label] = float(np.median(vals))
    return timed[0].get("machine") or {}, out


def _machine(mach: dict, run: Run) -> tuple:
    env = mach or run.env("train")
    return (env.get("cpu"), env.get("threads"), env.get("device_name"))


def _throughput_rows(base: Run, new: Run, model: str, mb: dict, mn: dict, threshold: float) -> list[dict]:
    seeds_b = sorted(mb.get("seeds") or {}, key=_seed_sort)
    seeds_n = sorted(mn.get("seeds") or {}, key=_seed_sort)
    mach_b, tb = _throughput(mb, seeds_b)
    mach_n, tn = _throughput(mn, seeds_n)
    if not tb or not tn:
        if not (tb or tn):
            return []
        return [_row("throughput", model, "throughput", math.nan, math.nan, kind="text", verdict="not comparable",
                     note=f"not timed in {'base' if not tb else 'new'}")]
    rows = []
    same_machine = _machine(mach_b, base) == _machine(mach_n, new)
    for metric in sorted(set(tb) | set(tn)):
        vb, vn = tb.get(metric, math.nan), tn.get(metric, math.nan)
        if metric not in tb or metric not in tn:
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", verdict="not comparable",
                             note=f"only in {'base' if metric in tb else 'new'}"))
        elif not same_machine:
            a, b = _machine(mach_b, base), _machine(mach_n, new)
            diff = [f"{name} {x} vs {y}" for name, x, y in zip(("cpu", "threads", "device"), a, b) if x != y]
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", test=f"±{threshold:.0%} rule",
                             verdict="not comparable", note="machines differ: " + ", ".join(diff)))
        else:
            rel = vn / vb - 1 if vb else math.nan
            verdict = "same"
            if math.isfinite(rel) and abs(rel) > threshold:
                verdict = "better" if rel > 0 else "worse"
            rows.append(_row("throughput", model, metric, vb, vn, kind="rate", test=f"±{threshold:.0%} rule",
                             verdict=verdict))
    return rows


def compare_runs(base: Run, new: Run, *, alpha: float = 0.05, throughput_threshold: float = 0.1,
                 correction: str = "holm") -> list[dict]:
    """Every difference between two runs, as rows (natural units); see the module docstring."""
    check_same_dataset(base, new)
    rows: list[dict] = []
    models = list(base.data["models"]) + [m for m in new.data["models"] if m not in base.data["models"]]
    for model in models:
        mb, mn = base.data["models"].get(model), new.data["models"].get(model)
        if mb is None or mn is None:
            rows.append(_row("clean", model, "model", math.nan, math.nan, kind="text", verdict="not comparable",
                             note=f"only in {'base' if mn is None else 'new'}"))
            continue
        seeds, only_b, only_n = _matched_seeds(mb, mn)
        failed = [s for s in only_b if (mn.get("seeds") or {}).get(s, {}).get("train", {}).get("state") not in (None, "done")]
        for s in failed:
            t = mn["seeds"][s]["train"]
            err = " ".join(str(t.get("error") or "").split())[:100]
            rows.append(_row("clean", model, f"training seed {s}", "done", str(t.get("state")), kind="text",
                             test="trained in base", verdict="worse", note=err))
        if not seeds:
            if not failed:
                rows.append(_row("clean", model, "clean error", math.nan, math.nan, kind="text",
                                 verdict="not comparable", note="no seed finished in both runs"))
            rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))
            continue
        unmatched = [s for s in only_b + only_n if s not in failed]
        new_rows = _clean_rows(base, new, model, mb, mn, seeds) + _robust_rows(base, new, model, mb, mn, seeds)
        if (mb.get("config") or {}) != (mn.get("config") or {}):
            changed = sorted(k for k in set(mb.get("config") or {}) | set(mn.get("config") or {})
                             if (mb.get("config") or {}).get(k) != (mn.get("config") or {}).get(k))
            new_rows[0]["note"] = "; ".join(x for x in (new_rows[0]["note"], f"config differs: {', '.join(changed)}") if x)
        if unmatched:
            for r in new_rows:
                r["note"] = "; ".join(x for x in (r["note"], f"seeds {','.join(seeds)} only") if x)
        rows.extend(new_rows)
        rows.extend(_throughput_rows(base, new, model, mb, mn, throughput_threshold))

    tested = [r for r in rows if math.isfinite(r["p"])]
    adjusted = holm([r["p"] for r in tested]) if correction == "holm" else [r["p"] for r in tested]
    for r, pa in zip(tested, adjusted):
        r["p_adj"] = pa
        if pa < alpha and r["base"] != r["new"]:
            got_worse = (r["new"] > r["base"]) if r.get("lower_is_better") else (r["new"] < r["base"])
            r["verdict"] = "worse" if got_worse else "better"
        else:
            r["verdict"] = "same"
    return rows


def exit_status(rows: list[dict], fail_on: list[str]) -> int:
    return 1 if any(r["verdict"] == "worse" and r["family"] in fail_on for r in rows) else 0


# ------------------------------------------------------------------------------------ rendering
def _fmt_value(r: dict, v) -> str:
    if isinstance(v, str):
        return v
    if v is None or not math.isfinite(v):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * v:.2f}%"
    if r["kind"] == "rate":
        return f"{v:,.0f}"
    return f"{v:g}"


def _fmt_delta(r: dict) -> str:
    b, n = r["base"], r["new"]
    if isinstance(b, str) or isinstance(n, str) or not (math.isfinite(b) and math.isfinite(n)):
        return ""
    if r["kind"] in ("error", "accuracy"):
        return f"{100 * (n - b):+.2f} pp"
    if r["kind"] == "rate":
        return f"{100 * (n / b - 1):+.1f}%" if b else ""
    return f"{n - b:+g}"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def render_rows(rows: list[dict], fmt: str = "github", hide_same: bool = False) -> str:
    from tabulate import tabulate

    if fmt not in TABLE_FORMATS:
        raise BenchError(f"--format {fmt!r}: choose from {', '.join(TABLE_FORMATS)}")
    shown = [r for r in rows if not (hide_same and r["verdict"] == "same")]
    headers = ["family", "model", "metric", "base", "new", "delta", "test / rule", "p", "p adj", "verdict", "note"]
    if fmt == "csv":
        import pandas as pd

        frame = pd.DataFrame([{"family": r["family"], "model": r["model"], "metric": r["metric"],
                               "base": r["base"], "new": r["new"], "test": r["test"], "p": r["p"], "p_adj": r["p_adj"],
                               "verdict": r["verdict"], "note": r["note"]} for r in shown],
                             columns=["family", "model", "metric", "base", "new", "test", "p", "p_adj", "verdict", "note"])
        return frame.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    table = [[r["family"], r["model"], r["metric"], _fmt_value(r, r["base"]), _fmt_value(r, r["new"]), _fmt_delta(r),
              r["test"], _fmt_p(r["p"]), _fmt_p(r["p_adj"]), r["verdict"], r["note"]] for r in shown]
    if not table:
        return "(no differences to show)\n" if hide_same and rows else "(nothing to compare)\n"
    tf = {"github": "pipe", "simple": "simple", "latex": "latex", "html": "html"}[fmt]
    if fmt == "github":
        table = [[c.replace("|", r"\|") for c in row] for row in table]
    align = ["left"] * 3 + ["right"] * 3 + ["left"] + ["right"] * 2 + ["left"] * 2
    return tabulate(table, headers=headers, tablefmt=tf, colalign=align, disable_numparse=True) + "\n"


def summary_line(rows: list[dict], fail_on: list[str], status: int) -> str:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    worse = [r for r in rows if r["verdict"] == "worse"]
    fams = sorted({r["family"] for r in worse}, key=FAMILIES.index)
    text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    if worse:
        text += f" (worse in: {', '.join(fams)})"
    return f"{text}; failing on {','.join(fail_on) or 'nothing'}: " + ("FAIL" if status else "ok")


def _provenance(run: Run) -> str:
    env = run.env("train")
    git = env.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    return f"{run.path} (commit {commit}, recorded {env.get('recorded_at', '?')})"


def cmd_compare(args) -> int:
    from .cli import parse_list

    fail_on = parse_list(args.fail_on, what="metric family") or []
    bad = [f for f in fail_on if f not in FAMILIES]
    if bad:
        raise BenchError(f"--fail-on {bad[0]!r}: choose from {', '.join(FAMILIES)}")
    if not 0 < args.alpha < 1:
        raise BenchError(f"--alpha must be in (0, 1), got {args.alpha}")
    if not args.throughput_threshold > 0:
        raise BenchError(f"--throughput-threshold must be > 0, got {args.throughput_threshold}")
    base, new = Run.load(args.base), Run.load(args.new)
    rows = compare_runs(base, new, alpha=args.alpha, throughput_threshold=args.throughput_threshold,
                        correction=args.correction)
    status = exit_status(rows, fail_on)
    table = render_rows(rows, args.format, args.hide_same)
    line = summary_line(rows, fail_on, status)
    # text formats tell the whole story on stdout; file formats keep stdout to the table alone
    info = sys.stdout if args.format in ("github", "simple") else sys.stderr
    print(f"base: {_provenance(base)}", file=info)
    print(f"new:  {_provenance(new)}", file=info)
    print(f"alpha {args.alpha:g}, p-values {'Holm-adjusted' if args.correction == 'holm' else 'unadjusted'}, "
          f"throughput threshold {args.throughput_threshold:.0%}", file=info)
    info.flush()
    sys.stdout.write(table)
    sys.stdout.flush()
    print(line, file=info)
    return status


# ------------------------------------------------------------------------------------ history
def _recorded_at(run: Run) -> str | None:
    return run.env("train").get("recorded_at")


def history_frame(runs: list[Run], metric: str, patterns: list[str] | None = None, *,
                  noise_factor: float = 3.0, throughput_threshold: float = 0.1) -> list[dict]:
    """One row per (run, model): value (mean over seeds), std, noise (standard error) and step flags."""
    if metric not in COLUMN_BY_KEY:
        raise BenchError(f"--metric {metric!r}: choose from {', '.join(COLUMN_BY_KEY)}")
    col = COLUMN_BY_KEY[metric]
    rows = []
    for i, run in enumerate(runs):
        grid = common_grid(run.data)
        for model, m in run.data["models"].items():
            if patterns and not any(fnmatch.fnmatchcase(model, p) for p in patterns):
                continue
            seeds = done_seeds(m)
            vals = [seed_values(m["seeds"][s], grid)[metric] for s in seeds]
            mean, std = mean_std(vals)
            k = sum(math.isfinite(v) for v in vals)
            se = std / math.sqrt(k) if k >= 2 else math.nan
            if col.proportion and math.isfinite(mean):
                ns = [seed_n(m["seeds"][s], metric) for s in seeds]
                ns = [n for n in ns if math.isfinite(n)]
                # the binomial error of the test set is a floor: two seeds can agree by chance
                b = binomial_se(mean, int(min(ns))) if ns else math.nan
                se = b if not math.isfinite(se) else max(se, b) if math.isfinite(b) else se
            mach = next(((m["seeds"][s].get("throughput") or {}).get("machine") for s in seeds
                         if (m["seeds"][s].get("throughput") or {}).get("machine")), None)
            rows.append({"run": run.label, "index": i, "recorded_at": _recorded_at(run),
                         "commit": ((run.env("train").get("git") or {}).get("commit") or "")[:7],
                         "model": model, "value": mean, "std": std, "seeds": k, "noise": se,
                         "machine": _machine(mach or {}, run), "step": False, "delta": math.nan})
    for model in dict.fromkeys(r["model"] for r in rows):
        series = [r for r in rows if r["model"] == model and math.isfinite(r["value"])]
        if metric in ("infer_ex_s", "train_ex_s"):
            for prev, cur in zip(series, series[1:]):
                cur["delta"] = cur["value"] - prev["value"]
                if prev["machine"] != cur["machine"]:
                    cur["note"] = "machine changed"
                elif prev["value"] and abs(cur["value"] / prev["value"] - 1) > throughput_threshold:
                    cur["step"] = True
        else:
            flags = detect_steps([r["value"] for r in series], [r["noise"] for r in series], noise_factor)
            tols = step_tolerances([r["noise"] for r in series], noise_factor)
            for j, (r, f, t) in enumerate(zip(series, flags, tols)):
                r["step"], r["tolerance"] = f, t
                if j:
                    r["delta"] = r["value"] - series[j - 1]["value"]
    return rows


def order_runs(runs: list[Run], order: str) -> list[Run]:
    if order == "given":
        return runs
    keyed = [(_recorded_at(r) is None, _recorded_at(r) or "", i, r) for i, r in enumerate(runs)]
    return [r for *_, r in sorted(keyed, key=lambda t: t[:3])]


def render_history(rows: list[dict], metric: str, fmt: str = "github") -> str:
    from tabulate import tabulate

    col = COLUMN_BY_KEY[metric]
    models = list(dict.fromkeys(r["model"] for r in rows))
    runs = list(dict.fromkeys((r["index"], r["run"], r["commit"], r["recorded_at"]) for r in rows))
    if fmt == "csv":
        import pandas as pd

        frame = pd.DataFrame([{k: r[k] for k in ("run", "commit", "recorded_at", "model", "value", "std", "seeds",
                                                  "noise", "step")} for r in rows])
        return frame.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    table = []
    for idx, label, commit, when in runs:
        line = [label, commit, (when or "")[:19]]
        for m in models:
            r = next((r for r in rows if r["index"] == idx and r["model"] == m), None)
            if r is None or not math.isfinite(r["value"]):
                line.append("")
                continue
            cell = col.fmt(r["value"]) + (f" ± {col.fmt(r['std'])}" if r["seeds"] > 1 else "")
            if r["step"]:
                cell += f" STEP {r['delta'] * col.scale:+.{0 if col.thousands else col.digits}f}"
            elif r.get("note"):
                cell += f" ({r['note']})"
            line.append(cell)
        table.append(line)
    tf = {"github": "pipe", "simple": "simple", "latex": "latex", "html": "html"}.get(fmt, "pipe")
    return tabulate(table, headers=["run", "commit", "recorded (UTC)"] + models, tablefmt=tf,
                    disable_numparse=True) + "\n"


def plot_history(rows: list[dict], metric: str, path) -> Path:
    """Metric vs run, one line per model (error bars: std over seeds), steps circled in red."""
    from matplotlib.figure import Figure

    from .io import atomic_write_figure

    col = COLUMN_BY_KEY[metric]
    runs = list(dict.fromkeys((r["index"], r["run"]) for r in rows))
    pos = {idx: i for i, (idx, _) in enumerate(runs)}
    fig = Figure(figsize=(max(5.0, 0.9 * len(runs) + 3), 3.8), dpi=110)
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in rows):
        s = [r for r in rows if r["model"] == model and math.isfinite(r["value"])]
        if not s:
            continue
        x = [pos[r["index"]] for r in s]
        y = [r["value"] * col.scale for r in s]
        e = [(r["std"] if r["seeds"] > 1 else 0.0) * col.scale for r in s]
        ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=3, label=model)
        steps = [(xi, yi) for xi, yi, r in zip(x, y, s) if r["step"]]
        if steps:
            ax.scatter(*zip(*steps), s=140, facecolors="none", edgecolors="red", linewidths=1.8, zorder=5)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([label for _, label in runs], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(col.header)
    ax.set_title(f"{metric} across runs (red circle: step larger than the noise)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return atomic_write_figure(fig, path)


def cmd_history(args) -> int:
    from .cli import parse_list

    runs = order_runs([Run.load(p) for p in args.results], args.order)
    patterns = parse_list(args.model, what="model pattern") if args.model else None
    if not args.noise_factor > 0:
        raise BenchError(f"--noise-factor must be > 0, got {args.noise_factor}")
    rows = history_frame(runs, args.metric, patterns, noise_factor=args.noise_factor,
                         throughput_threshold=args.throughput_threshold)
    if not rows:
        raise BenchError(f"no model matches {args.model!r} in these runs" if args.model else "these runs hold no models")
    sys.stdout.write(render_history(rows, args.metric, args.format))
    steps = [r for r in rows if r["step"]]
    col = COLUMN_BY_KEY[args.metric]
    if args.format != "csv":
        for r in steps:
            if math.isfinite(r.get("tolerance", math.nan)):
                print(f"step: {r['model']} {args.metric} changed by {r['delta'] * col.scale:+.{col.digits}f} at "
                      f"{r['run']} (noise allows ±{r['tolerance'] * col.scale:.{col.digits}f}: "
                      f"{args.noise_factor:g} standard errors of the two runs)")
            else:
                print(f"step: {r['model']} {args.metric} changed by more than {args.throughput_threshold:.0%} "
                      f"at {r['run']}")
        if not steps:
            print("no step larger than the noise")
    if args.plot:
        print(f"plot: {plot_history(rows, args.metric, args.plot)}")
    return 0


# ------------------------------------------------------------------------------------ CLI
def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs metric by metric; exit 1 if something got worse (CI gate)")
    p.add_argument("base", metavar="BASE", help="the reference run directory or results file")
    p.add_argument("new", metavar="NEW", help="the run to check")
    p.add_argument("--fail-on", default="clean,robust", metavar="FAMILIES",
                   help="metric families whose significant worsening fails (exit 1): any of clean,robust,throughput "
                        "(default clean,robust; '' to never fail)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--correction", choices=["holm", "none"], default="holm",
                   help="multiple-testing correction over the table's p-values (default holm)")
    p.add_argument("--throughput-threshold", type=float, default=0.1, metavar="FRACTION",
                   help="relative change of median throughput that counts (default 0.1 = 10%%)")
    p.add_argument("--format", choices=TABLE_FORMATS, default="github")
    p.add_argument("--hide-same", action="store_true", help="list only rows whose verdict is not 'same'")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("history", help="one metric across many runs, with step changes flagged (asv-style)")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="run directories or results files")
    p.add_argument("--metric", default="clean_error",
                   help="a leaderboard column key (default clean_error; e.g. pgd@0.3, worst@0.3, auc, train_ex_s)")
    p.add_argument("--model", default=None, metavar="PATTERN", help="comma-separated names or wildcards (default all)")
    p.add_argument("--order", choices=["time", "given"], default="time",
                   help="order runs by their recorded training time (default) or as given")
    p.add_argument("--noise-factor", type=float, default=3.0,
                   help="a step is a change larger than this many standard errors of the two runs (default 3)")
    p.add_argument("--throughput-threshold", type=float, default=0.1, metavar="FRACTION",
                   help="for throughput metrics: the relative change that counts as a step (default 0.1)")
    p.add_argument("--format", choices=TABLE_FORMATS, default="github")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the history into a PNG")
    p.set_defaults(func=cmd_history)
