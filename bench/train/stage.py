"""The train stage: train and evaluate every (model, seed) of a run, resumably, recording failures.

``run_training(TrainOptions)`` is what ``vib-bench train`` calls; ``train_run`` is the stage itself,
shared with suites. A model whose loss diverges is recorded as failed and the others go on. Members
of one architecture train as one stack (``bench.train.stacked``) where ``stack`` allows; each still gets
its own files and results entry, recorded as soon as its stack finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import plugins
from ..env import environment, use_deterministic_cuda
from ..errors import BenchError
from ..evaluate import clean_metrics
from ..locking import LOCK_NAME, OWNER_NAME, member_busy, run_lock
from ..overrides import overrides_per_model
from ..results import CLEAN_KEY, Results, update_results
from ..run_diff import dict_changes
from ..rundir import RESULTS, check_seeds, check_writable, member_lock_path, save_per_example
from ..runs import failed_models
from .recipe import Cadence, TrainConfig, config_dict
from .stacked import BUSY, check_mode, training_jobs
from .weights import load_trained

CLEAN_KEYS = {"error", "nll", "ece", "brier", "reliability"}  # evaluated again if any is missing


@dataclass
class TrainOptions:
    """Everything ``vib-bench train`` needs; models are names or wildcards."""

    out: Path
    models: list[str] = field(default_factory=lambda: ["*"])
    dataset: str = "digits"
    seeds: list[int] = field(default_factory=lambda: [0])
    config: TrainConfig = field(default_factory=TrainConfig)
    overrides: dict = field(default_factory=dict)
    data_dir: str | None = None
    plugins: list[str] = field(default_factory=list)
    device: torch.device | str = "cpu"
    resume: bool = False
    progress: bool | None = None
    stack: str = "auto"  # auto | on | off: train same-architecture members as one stack
    cadence: Cadence = field(default_factory=Cadence)  # when resume checkpoints are written


def init_run(run_dir: Path, run: dict, resume: bool, device) -> Results:
    """Create a run's results file, or check that ``--resume`` continues a compatible run."""
    run_dir = Path(run_dir)
    env = environment(device)
    if run_dir.exists() and not run_dir.is_dir():
        raise BenchError(f"{run_dir} is a file, not a run directory")
    with run_lock(run_dir):
        return _init_locked(run_dir, run, resume, env)


def _init_locked(run_dir: Path, run: dict, resume: bool, env: dict) -> Results:
    if (run_dir / RESULTS).exists():
        if not resume:
            raise BenchError(
                f"{run_dir} already holds a run; pass --resume to continue it, --fresh to start over, "
                "or choose another --out"
            )
        res = Results.load(run_dir)
        old = res.dataset
        same_data = all(old.get(k) == run["dataset"].get(k) for k in ("name", "checksum"))
        if not same_data:
            raise BenchError(
                f"--resume: {run_dir} was trained on {old.get('name')} "
                f"({old.get('checksum')}), not {run['dataset']['name']} ({run['dataset']['checksum']})"
            )
        # Compare recipes as TrainConfig objects, so settings added later compare at their defaults.
        old_cfg, new_cfg = TrainConfig.from_dict(res.train_config), TrainConfig.from_dict(run["train"])
        if old_cfg != new_cfg:
            changed = dict_changes(config_dict(old_cfg), config_dict(new_cfg))
            raise BenchError(
                f"--resume: {run_dir} was trained with other settings ({'; '.join(changed)}); "
                "use another --out, or --fresh to start over"
            )
        for name, ov in run["models"].items():
            if name in res.model_overrides and res.model_overrides[name] != ov:
                changed = dict_changes(res.model_overrides[name], ov)
                raise BenchError(
                    f"--resume: model {name} was trained with other arguments ({'; '.join(changed)}); "
                    "use another --out, or --fresh to start over"
                )
        res.merge_run(run)
    else:
        if any(p.name not in (LOCK_NAME, OWNER_NAME) for p in run_dir.iterdir()) and not resume:
            raise BenchError(f"{run_dir} exists and is not empty; choose another --out")
        res = Results.new(run, env)
    res.set_environment("train", env)
    res.save(run_dir)
    return res


def run_record(
    dataset, cfg: TrainConfig, model_overrides: dict[str, dict], seeds, plugin_paths=(), suite: dict | None = None
) -> dict:
    """The ``run`` section of a results file: data set, recipe, models with their arguments, seeds."""
    return {
        "dataset": dataset.describe(),
        "train": config_dict(cfg),
        "models": {m: dict(ov) for m, ov in model_overrides.items()},
        "seeds": list(seeds),
        "plugins": [str(Path(p).resolve()) for p in plugin_paths],
        "suite": suite,
    }


def clean_result(run_dir: Path, dataset, name: str, seed: int, device) -> dict:
    """Clean test metrics of one trained (model, seed), computed, not written (a Ray task returns them):
    ``{"metrics", "correct" (per-example, CPU), "config", "stochastic"}``."""
    model = load_trained(run_dir, name, seed, device)
    metrics, correct = clean_metrics(model, *dataset.split("test"), device=device)
    return {
        "metrics": metrics,
        "correct": correct.cpu(),
        "config": model.config,
        "stochastic": bool(getattr(model, "stochastic", False)),
    }


def evaluate_clean(run_dir: Path, dataset, name: str, seed: int, device) -> dict:
    """``clean_result``, with its per-example correctness written to the run directory."""
    clean = clean_result(run_dir, dataset, name, seed, device)
    save_per_example(run_dir, name, seed, CLEAN_KEY, clean["correct"])
    return clean


def record_train(run_dir: Path, name: str, seed: int, status: dict, clean: dict | None) -> Results:
    """Record one model-seed's training status and, when evaluated (``clean_result``), its clean metrics
    and per-example vector; returns the updated results."""
    if status.get("state") == BUSY:  # another process trains it and records it
        return Results.load(run_dir)
    train = {k: v for k, v in status.items() if k not in ("model", "seed", "skipped")}
    if clean is not None:
        save_per_example(run_dir, name, seed, CLEAN_KEY, clean["correct"])

    def record(r: Results):
        r.seed(name, seed, create=True).set_train(train)
        if clean is not None:
            r.seed(name, seed).set_clean(clean["metrics"])
            r.model(name).set_config(clean["config"], clean["stochastic"])

    return update_results(run_dir, record)


def train_line(res: Results, name: str, seed: int, status: dict) -> str:
    """The line a finished (or failed) model-seed prints."""
    if status["state"] == BUSY:
        return f"{name} seed {seed}: another process is training it (skipped here)"
    if status["state"] != "done":
        return f"{name} seed {seed}: FAILED: {status.get('error')}"
    c = res.seed(name, seed).clean
    stack = f", in a stack of {status['stack_size']}" if status.get("stack_size") else ""
    return (
        f"{name} seed {seed}: {'already trained' if status.get('skipped') else 'trained'}"
        f" {status['epochs_done']} epochs ({status.get('time_per_epoch_s', 0):.3g} s/epoch{stack}), "
        f"test error {100 * c['error']:.2f}%, NLL {c['nll']:.4f}"
    )


def needs_clean(res: Results, name: str, seed: int, status: dict) -> bool:
    """A done model-seed is evaluated when it was trained now or lacks any clean metric."""
    entry = res.seed(name, seed)
    return status["state"] == "done" and (
        not status.get("skipped") or entry is None or not CLEAN_KEYS <= set(entry.clean)
    )


def train_run(
    run_dir,
    dataset,
    model_overrides: dict[str, dict],
    seeds: list[int],
    cfg: TrainConfig,
    *,
    plugin_paths=(),
    device=torch.device("cpu"),
    resume=False,
    progress=None,
    log=print,
    suite: dict | None = None,
    stack: str = "auto",
    cadence: Cadence = Cadence(),
) -> Results:
    """Train (and evaluate on the test split) every model x seed; failures are recorded, not fatal.

    ``stack``: ``auto`` (stack same-architecture members where that is not slower), ``on`` or ``off``
    (the per-model loop); see ``bench.train.stacked.plan``. ``cadence``: when resume checkpoints are written.
    On CUDA the deterministic settings (``bench.env.use_deterministic_cuda``) are set first, so the
    environment recorded in the results holds them.
    """
    run_dir = Path(run_dir)
    check_mode(stack)
    if torch.device(device).type == "cuda":
        use_deterministic_cuda()
    res = init_run(run_dir, run_record(dataset, cfg, model_overrides, seeds, plugin_paths, suite), resume, device)
    overrides = {name: res.model_overrides[name] for name in model_overrides}
    for job in training_jobs(
        run_dir,
        dataset,
        overrides,
        seeds,
        cfg,
        device=device,
        resume=resume,
        mode=stack,
        progress=progress,
        log=log,
        cadence=cadence,
    ):
        for name, seed, status in job:
            clean = clean_result(run_dir, dataset, name, seed, device) if needs_clean(res, name, seed, status) else None
            res = record_train(run_dir, name, seed, status, clean)
            log(train_line(res, name, seed, status))
    return res


def run_training(opts: TrainOptions, log=print) -> list[tuple[str, int]]:
    """``vib-bench train``: check everything, train, and return the (model, seed) pairs that failed."""
    from models import list_models

    from ..data import load_dataset

    check_seeds(opts.seeds)
    plugins.load_plugins(opts.plugins)
    plugins.load_entry_points()
    names = list_models(opts.models)
    check_mode(opts.stack)
    cfg = opts.config.validate()
    dataset = load_dataset(opts.dataset, opts.data_dir)
    per_model = overrides_per_model(names, opts.overrides, dataset.in_shape, dataset.num_classes)
    log(
        f"training {len(names)} model(s) x {len(opts.seeds)} seed(s) on {dataset.name} "
        f"({len(dataset.split(cfg.train_split)[0])} examples, {cfg.epochs} epochs) on {opts.device} -> {opts.out}"
    )
    check_writable(opts.out)
    res = train_run(
        opts.out,
        dataset,
        per_model,
        opts.seeds,
        cfg,
        plugin_paths=opts.plugins,
        device=opts.device,
        resume=opts.resume,
        progress=opts.progress,
        log=log,
        stack=opts.stack,
        cadence=opts.cadence,
    )
    failed = failed_models(res, names, opts.seeds)
    elsewhere = [(m, s) for m, s in failed if member_busy(member_lock_path(opts.out, m, s))]
    for m, s in elsewhere:
        log(f"{m} seed {s}: still being trained by another process")
    return [p for p in failed if p not in elsewhere]
