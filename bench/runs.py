"""Opening an existing run: its results, the plugins its models need, its data set, its trained models."""

from __future__ import annotations

from pathlib import Path

import registry

from . import plugins, rundir
from .errors import BenchError
from .results import Results


def run_architectures(res: Results) -> dict[str, str]:
    """model name -> the registered architecture that rebuilds it (the name itself, unless imported)."""
    out = {}
    for m in res.models():
        arch = next((s.imported.get("model") for s in m.seeds() if isinstance(s.imported.get("model"), str)), None)
        out[m.name] = arch or m.name
    return out


def load_run_plugins(res: Results) -> None:
    """Load the plugins the run lists, if the user trusts them (``--trust-plugins``) or named them again
    (``--plugin``). Untrusted ones are not executed: one notice on stderr, or a one-line error when a model
    of the run is not registered without them."""
    import sys

    from models import is_model

    skipped = plugins.load_recorded(res.plugins)
    if not skipped:
        return
    listed = ", ".join(skipped)
    unknown = [(n, a) for n, a in run_architectures(res).items() if not is_model(a)]
    if unknown:
        name, arch = unknown[0]
        raise BenchError(
            f"{res.path}: model {name} ({arch}) needs the plugin(s) this run lists ({listed}), "
            "which are not executed unless you name them with --plugin FILE or pass --trust-plugins "
            "(a run directory is untrusted input)"
        )
    print(
        f"vib-bench: notice: {res.path} lists plugin(s) {listed}; not executed (a run directory is untrusted "
        "input; --plugin FILE or --trust-plugins loads them)",
        file=sys.stderr,
    )


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
        raise BenchError(
            f"dataset {rec['name']} at {ds.source} differs from the one this run was trained on "
            f"(checksum {ds.checksum} vs {rec.get('checksum')})"
        )
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
    from .train.weights import read_header

    pairs = trained_models(run_dir, res, patterns)
    if pairs:
        for m, s in pairs:  # a damaged or foreign weights file stops the stage before any work
            read_header(rundir.weights_path(run_dir, m, s))
        return pairs
    what = f" matching {','.join(patterns)!r}" if patterns else ""
    done = [
        (m.name, s.seed_id)
        for m in res.models()
        if not patterns or registry.matches(m.name, patterns)
        for s in m.done_seeds()
    ]
    if done:  # trained, but the weights are not here: a reference run, or weights deleted
        how = (
            f"`vib-bench run --suite {res.suite['name']} --out DIR` retrains them"
            if res.suite.get("name")
            else "`vib-bench train` with the run's recipe retrains them"
        )
        raise BenchError(
            f"{run_dir}: the weights of its {len(done)} trained model-seed(s){what} are absent "
            f"(reference runs ship without weights); {how} (same seeds, bit-identical on the same "
            "machine), or `vib-bench import` brings your own"
        )
    raise BenchError(f"{run_dir}: no trained models{what} (train some with `vib-bench train`)")
