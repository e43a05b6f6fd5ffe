"""Run directories: everything a run produced lives in one folder.

    RUN_DIR/results.json                       the single source of truth (see bench.results)
    RUN_DIR/models/<model>/seed<k>/model.safetensors   final (EMA) weights + the config that made them
    RUN_DIR/models/<model>/seed<k>/checkpoint.pt       resume state while training (weights-only torch file)
    RUN_DIR/models/<model>/seed<k>/train_log.jsonl     one line per epoch: loss terms, validation error
    RUN_DIR/models/<model>/seed<k>/status.json         running / done / failed (with the error)
    RUN_DIR/models/<model>/seed<k>/per_example.safetensors  bit-packed per-example correctness
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import plugins
from .env import environment
from .errors import BenchError
from .evaluate import clean_metrics
from .results import (RESULTS_NAME, load_results, model_dir, new_results, save_per_example, seed_entry,
                      write_results)
from .train import WEIGHTS, TrainConfig, config_dict, load_weights, train_model

CLEAN_KEYS = {"error", "nll", "ece", "brier", "reliability"}  # evaluated again if any is missing


def init_run(run_dir: Path, run: dict, resume: bool, device) -> dict:
    """Create a run's results file, or check that ``--resume`` continues a compatible run."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise BenchError(f"{run_dir} is a file, not a run directory")
    path = run_dir / RESULTS_NAME
    if path.exists():
        if not resume:
            raise BenchError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
        data = load_results(run_dir)
        old = data["run"]
        same_data = all(old["dataset"].get(k) == run["dataset"].get(k) for k in ("name", "checksum"))
        if not same_data:
            raise BenchError(f"--resume: {run_dir} was trained on {old['dataset'].get('name')} "
                             f"({old['dataset'].get('checksum')}), not {run['dataset']['name']} ({run['dataset']['checksum']})")
        # Compare recipes as TrainConfig objects, so settings added later compare at their defaults.
        if TrainConfig.from_dict(old["train"]) != TrainConfig.from_dict(run["train"]):
            raise BenchError(f"--resume: {run_dir} was started with different train settings "
                             f"({old['train']} vs {run['train']})")
        old["train"] = run["train"]
        for name, ov in run["models"].items():
            if name in old["models"] and old["models"][name] != ov:
                raise BenchError(f"--resume: model {name} was started with overrides {old['models'][name]}, not {ov}")
        old["models"].update(run["models"])
        old["seeds"] = sorted(set(old["seeds"]) | set(run["seeds"]))
        old["plugins"] = sorted(set(old.get("plugins", [])) | set(run.get("plugins", [])))
        data["environment"] = environment(device)
        data["environments"]["train"] = data["environment"]
    else:
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise BenchError(f"{run_dir} exists and is not empty; choose another --out")
        data = new_results(run, environment(device))
        data["environments"]["train"] = data["environment"]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(run_dir, data)
    return data


def load_run_plugins(data: dict) -> None:
    for p in data["run"].get("plugins", []):
        if not Path(p).is_file():
            raise BenchError(f"this run used the plugin {p}, which no longer exists")
    plugins.load_plugins(data["run"].get("plugins", []))


def failed_models(data: dict, names, seeds) -> list[tuple[str, int]]:
    """(model, seed) pairs of ``names`` x ``seeds`` whose training did not finish."""
    return [(m, s) for m in names for s in seeds
            if data["models"].get(m, {}).get("seeds", {}).get(str(s), {}).get("train", {}).get("state") != "done"]


def load_run_dataset(data: dict, data_dir=None):
    """The data set a run was trained on, checked to be byte-identical to the one recorded."""
    from .data import load_dataset

    rec = data["run"]["dataset"]
    src = rec.get("source")
    if data_dir is None and src and Path(src).is_dir():
        data_dir = src
    ds = load_dataset(rec["name"], data_dir)
    if ds.checksum != rec.get("checksum"):
        raise BenchError(f"dataset {rec['name']} at {ds.source} differs from the one this run was trained on "
                         f"(checksum {ds.checksum} vs {rec.get('checksum')})")
    return ds


def require_run_dir(run_dir) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run directory")
    return run_dir


def open_run(run_dir) -> dict:
    """Load a run's results file and the plugins its models need."""
    data = load_results(run_dir)
    load_run_plugins(data)
    return data


def trained_models(run_dir: Path, data: dict, patterns=None) -> list[tuple[str, int]]:
    """(model, seed) pairs of a run whose training finished, optionally filtered by patterns."""
    import fnmatch

    pairs = []
    for name, m in data["models"].items():
        if patterns and not any(fnmatch.fnmatchcase(name, p.strip()) for p in patterns):
            continue
        for seed in sorted(m.get("seeds", {}), key=int):
            if (model_dir(run_dir, name, int(seed)) / WEIGHTS).exists():
                pairs.append((name, int(seed)))
    return pairs


def load_trained(run_dir: Path, name: str, seed: int, device="cpu"):
    path = model_dir(run_dir, name, seed) / WEIGHTS
    if not path.exists():
        raise BenchError(f"{run_dir}: no trained weights for {name} seed {seed}")
    return load_weights(path, device)


def evaluate_clean(run_dir: Path, data: dict, dataset, name: str, seed: int, device) -> dict:
    model = load_trained(run_dir, name, seed, device)
    x, y = dataset.split("test")
    metrics, correct = clean_metrics(model, x, y, device=device)
    save_per_example(run_dir, name, seed, "clean", correct)
    entry = seed_entry(data, name, seed)
    entry["clean"] = metrics
    data["models"][name]["config"] = model.config
    data["models"][name]["stochastic"] = bool(getattr(model, "stochastic", False))
    return metrics


def train_run(run_dir, dataset, model_overrides: dict[str, dict], seeds: list[int], cfg: TrainConfig, *,
              plugin_paths=(), device=torch.device("cpu"), resume=False,
              progress=None, log=print, suite: dict | None = None) -> dict:
    """Train (and evaluate on the test split) every model x seed; failures are recorded, not fatal."""
    run_dir = Path(run_dir)
    model_names = list(model_overrides)
    run = {"dataset": dataset.describe(), "train": config_dict(cfg),
           "models": {m: dict(ov) for m, ov in model_overrides.items()}, "seeds": list(seeds),
           "plugins": [str(Path(p).resolve()) for p in plugin_paths], "suite": suite}
    data = init_run(run_dir, run, resume, device)
    for name in model_names:
        for seed in seeds:
            status = train_model(name, seed, dataset, cfg, run_dir, overrides=data["run"]["models"][name],
                                 device=device, resume=resume, progress=progress)
            entry = seed_entry(data, name, seed)
            entry["train"] = {k: v for k, v in status.items() if k not in ("model", "seed", "skipped")}
            if status["state"] == "done":
                if not CLEAN_KEYS <= set(entry.get("clean", {})) or not status.get("skipped"):
                    evaluate_clean(run_dir, data, dataset, name, seed, device)
                c = entry["clean"]
                log(f"{name} seed {seed}: {'already trained' if status.get('skipped') else 'trained'}"
                    f" {status['epochs_done']} epochs ({status.get('time_per_epoch_s', 0):.3g} s/epoch), "
                    f"test error {100 * c['error']:.2f}%, NLL {c['nll']:.4f}")
            else:
                log(f"{name} seed {seed}: FAILED: {status.get('error')}")
            write_results(run_dir, data)
    return data
