"""``vib-bench import``: weights trained outside vib-bench, evaluated as if they had been trained here.

A plain safetensors state dict (no vib-bench metadata needed) is checked key by key and shape by shape
against a registered architecture (with its ``--set`` arguments), then written through
:mod:`bench.train.weights` into ``RUN_DIR/models/<name>/seed<k>/`` with the config that rebuilds it, and
evaluated on the clean test split. Every later stage (``attack``, ``time``, ``info``, ``report``) then
treats it like a trained model. The results record that it was imported (file, SHA-256, no training
log); the leaderboard says so in its notes.

Everything is checked before anything is written: the file, the architecture, the keys and shapes,
the data set, that ``--name`` is a safe name (one path component: ``bench.rundir.name_problem``), and
that the (model, seed) slot is free, in the results file and on disk (``--replace`` overwrites it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path

import torch

from . import plugins, rundir
from .env import environment
from .errors import BenchError
from .import_options import DEFAULT_DATASET, ImportOptions
from .overrides import overrides_per_model
from .results import Results, update_results
from .runs import load_run_dataset, load_run_plugins
from .train.weights import build_model, save_weights

_PREFIXES = ("module.", "_orig_mod.")  # DataParallel and torch.compile wrap a model's keys


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a missing or foreign file is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such weights file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise BenchError(
            f"{path}: not a safetensors file ({' '.join(str(e).split())[:120]}); save a state dict "
            "with safetensors.torch.save_file(model.state_dict(), PATH)"
        ) from None
    if not state:
        raise BenchError(f"{path}: the file holds no tensors")
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def check_state_dict(state: dict[str, torch.Tensor], model, what: str) -> dict[str, torch.Tensor]:
    """The state dict cast to the model's dtypes, or a one-line error naming the first mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]

    def more(items: list) -> str:
        return f" (and {len(items) - 1} more)" if len(items) > 1 else ""

    if missing:
        raise BenchError(
            f"{what}: missing key {missing[0]!r}{more(missing)}; the model expects "
            f"{', '.join(list(expected)[:4])}{', ...' if len(expected) > 4 else ''} "
            "(check MODEL and --set)"
        )
    if unexpected:
        raise BenchError(
            f"{what}: unexpected key {unexpected[0]!r}{more(unexpected)}, not in the model (check MODEL and --set)"
        )
    shapes = [k for k in expected if tuple(state[k].shape) != tuple(expected[k].shape)]
    if shapes:
        k = shapes[0]
        raise BenchError(
            f"{what}: {k!r} has shape {list(state[k].shape)} in the file but "
            f"{list(expected[k].shape)} in the model{more(shapes)} (check --set and --dataset)"
        )
    out = {}
    for k, ref in expected.items():
        t = state[k]
        if t.dtype != ref.dtype:
            if ref.dtype.is_floating_point != t.dtype.is_floating_point:
                raise BenchError(f"{what}: {k!r} is {t.dtype} in the file but {ref.dtype} in the model")
            t = t.to(ref.dtype)
        out[k] = t
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _open_or_new(opts: ImportOptions):
    """(results or None for a new run, the data set) with the run's data set checked against ``--dataset``."""
    from .data import load_dataset

    into = Path(opts.into)
    if into.exists() and not into.is_dir():
        raise BenchError(f"--into {into}: a file, not a run directory")
    if (into / rundir.RESULTS).exists():
        res = Results.load(into)
        load_run_plugins(res)
        name = res.dataset.get("name")
        if opts.dataset and opts.dataset != name:
            raise BenchError(f"--dataset {opts.dataset}: {into} was evaluated on {name}; import into another run")
        return res, load_run_dataset(res, opts.data_dir)
    if into.exists() and any(into.iterdir()):
        raise BenchError(f"--into {into}: exists, is not empty and holds no results.json")
    return None, load_dataset(opts.dataset or DEFAULT_DATASET, opts.data_dir)


def import_weights(opts: ImportOptions, log=print) -> dict:
    """Check, store and evaluate outside weights; returns the clean metrics."""
    from models import is_model, list_models

    from .train.stage import evaluate_clean

    plugins.load_plugins(opts.plugins)
    plugins.load_entry_points()
    if not is_model(opts.model):
        list_models(opts.model)  # no match: a one-line error with a suggestion
        raise BenchError(f"MODEL {opts.model!r}: give one registered architecture, not a pattern")
    name = rundir.check_name(opts.name or opts.model, "--name")
    rundir.check_seeds([opts.seed], "--seed")
    state = read_state_dict(opts.weights)
    res, dataset = _open_or_new(opts)
    overrides = overrides_per_model([opts.model], opts.overrides, dataset.in_shape, dataset.num_classes)[opts.model]
    model = build_model(opts.model, overrides, dataset.in_shape, dataset.num_classes)
    args = ", ".join(f"{k}={v}" for k, v in overrides.items())
    what = f"{Path(opts.weights).name} does not fit {opts.model}{f' ({args})' if args else ''} on {dataset.name}"
    model.load_state_dict(check_state_dict(state, model, what))
    mdir = rundir.model_dir(opts.into, name, opts.seed)
    taken = res is not None and res.seed(name, opts.seed) is not None
    if (taken or mdir.exists()) and not opts.replace:
        where = "its results file" if taken else f"{mdir}"
        raise BenchError(
            f"--into {opts.into}: {where} already holds {name} seed {opts.seed}; choose --name or "
            "--seed (or --replace to overwrite that slot)"
        )
    if res is not None:
        if name in res.model_overrides and res.model_overrides[name] != overrides:
            raise BenchError(
                f"--name {name}: the run's {name} was built with {res.model_overrides[name]}, "
                f"not {overrides}; choose another --name"
            )
    else:
        run = {
            "dataset": dataset.describe(),
            "train": {},
            "models": {},
            "seeds": [],
            "plugins": [str(Path(p).resolve()) for p in opts.plugins],
            "suite": None,
        }
        res = Results.new(run, environment(opts.device))
        Path(opts.into).mkdir(parents=True, exist_ok=True)
        res.save(opts.into)
    run_dir = Path(opts.into)
    source = {
        "file": str(Path(opts.weights).resolve()),
        "sha256": sha256(Path(opts.weights)),
        "model": opts.model,
        "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if opts.replace and mdir.exists():
        import shutil

        from .locking import member_busy

        if member_busy(rundir.member_lock_path(run_dir, name, opts.seed)):
            raise BenchError(
                f"--replace: {name} seed {opts.seed} in {run_dir} is being trained by another process; "
                "wait for it to finish"
            )
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True, exist_ok=True)
    save_weights(
        rundir.weights_path(run_dir, name, opts.seed),
        model,
        opts.model,
        overrides,
        {"imported": source, "seed": opts.seed},
    )
    status = {"model": name, "seed": opts.seed, "state": "done", "imported": source}
    rundir.write_status(mdir, status)
    clean = evaluate_clean(run_dir, dataset, name, opts.seed, opts.device)
    metrics = clean["metrics"]
    env = environment(opts.device)

    def record(r: Results):
        if opts.replace:
            r.remove_seed(name, opts.seed)
        r.add_run_model(name, overrides, opts.seed)
        r.seed(name, opts.seed, create=True).set_train({"state": "done", "imported": source})
        r.seed(name, opts.seed).set_clean(metrics)
        r.model(name).set_config(clean["config"], clean["stochastic"])
        r.set_environment("import", env)

    update_results(run_dir, record)
    log(
        f"imported {name} seed {opts.seed} ({opts.model}) from {opts.weights} into {run_dir}: "
        f"test error {100 * metrics['error']:.2f}%, NLL {metrics['nll']:.4f} on {dataset.name}"
    )
    return metrics
