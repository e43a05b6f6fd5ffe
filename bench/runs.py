"""Opening an existing run: its results, the plugins its models need, its data set, its trained models."""

from __future__ import annotations

from pathlib import Path

import registry

from . import plugins, rundir
from .errors import BenchError
from .results import Results


def load_run_plugins(res: Results) -> None:
    for p in res.plugins:
        if not Path(p).is_file():
            raise BenchError(f"this run used the plugin {p}, which no longer exists")
    plugins.load_plugins(res.plugins)


def open_run(run_dir) -> Results:
    """Load a run's results file and the plugins its models need."""
    res = Results.load(run_dir)
    load_run_plugins(res)
    return res


def failed_models(res: Results, names, seeds) -> list[tuple[str, int]]:
    """(model, seed) pairs of ``names`` x ``seeds`` whose training did not finish."""
    out = []
    for m in names:
        for s in seeds:
            entry = res.seed(m, s)
            if entry is None or entry.train.get("state") != "done":
                out.append((m, s))
    return out


def load_run_dataset(res: Results, data_dir=None):
    """The data set a run was trained on, checked to be byte-identical to the one recorded."""
    from .data import load_dataset

    rec = res.dataset
    src = rec.get("source")
    if data_dir is None and src and Path(src).is_dir():
        data_dir = src
    ds = load_dataset(rec["name"], data_dir)
    if ds.checksum != rec.get("checksum"):
        raise BenchError(f"dataset {rec['name']} at {ds.source} differs from the one this run was trained on "
                         f"(checksum {ds.checksum} vs {rec.get('checksum')})")
    return ds


def trained_models(run_dir: Path, res: Results, patterns=None) -> list[tuple[str, int]]:
    """(model, seed) pairs of a run whose weights exist, optionally filtered by patterns."""
    pairs = []
    for m in res.models():
        if patterns and not registry.matches(m.name, patterns):
            continue
        for seed in m.seed_ids():
            if rundir.has_weights(run_dir, m.name, int(seed)):
                pairs.append((m.name, int(seed)))
    return pairs


def select_trained(run_dir: Path, res: Results, patterns=None) -> list[tuple[str, int]]:
    """Like :func:`trained_models`, but an empty selection is an error that says what to do."""
    pairs = trained_models(run_dir, res, patterns)
    if pairs:
        return pairs
    what = f" matching {','.join(patterns)!r}" if patterns else ""
    done = [(m.name, s.seed_id) for m in res.models() if not patterns or registry.matches(m.name, patterns)
            for s in m.done_seeds()]
    if done:  # trained, but the weights are not here: a reference run, or weights deleted
        how = (f"`vib-bench run --suite {res.suite['name']} --out DIR` retrains them" if res.suite.get("name")
               else "`vib-bench train` with the run's recipe retrains them")
        raise BenchError(f"{run_dir}: the weights of its {len(done)} trained model-seed(s){what} are absent "
                         f"(reference runs ship without weights); {how} (same seeds, bit-identical on the same "
                         "machine), or `vib-bench import` brings your own")
    raise BenchError(f"{run_dir}: no trained models{what} (train some with `vib-bench train`)")
