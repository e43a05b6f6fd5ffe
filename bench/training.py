"""The training engine: the published recipe, fast, deterministic and resumable.

Recipe (Alemi et al. 2017): Adam(lr 1e-4, betas 0.5/0.999), lr x 0.97 every 2 epochs
(staircase), batch 100, an exponential moving average of the weights (decay 0.999) used for
evaluation.

Speed: the whole data set lives on the device as one tensor; an epoch is one ``randperm`` and
index-gathers of it, so there is no per-sample Python work and no DataLoader. Adam is the fused
kernel and the EMA update one ``_foreach_lerp_``: both are memory-bound and small next to the
matrix multiplies.

Determinism and resume: a seed fixes the initialisation, the shuffling (its own generator) and the
model's noise (the global RNG). A checkpoint written atomically at the end of every epoch holds
the weights, the EMA, Adam's state and every RNG state, so a run killed at any point (even with
``kill -9``) resumes from the last finished epoch and ends bit-identical to an uninterrupted run.
Validation runs on a forked RNG so it never perturbs training.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from . import rundir
from .errors import BenchError
from .evaluate import clean_metrics
from .io import atomic_write_bytes
from .weights import build_model, save_weights


@dataclass
class TrainConfig:
    epochs: int = 200
    batch_size: int = 100
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: float = 0.97
    decay_every: int = 2
    ema_decay: float = 0.999
    train_split: str = "train"      # "train" (validation held out) or "trainval" (all training data)
    log_every: int = 50             # steps between progress updates and divergence checks
    snapshot_every: int = 0         # epochs between hidden-activation snapshots (0: none)
    snapshot_n: int = 2000          # size of the fixed sample (first N training examples) snapshotted

    def validate(self) -> "TrainConfig":
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must be in [0, 1)"),
            (0 < self.lr_decay <= 1, f"lr decay must be in (0, 1], got {self.lr_decay}"),
            (self.decay_every >= 1, "decay_every must be >= 1"),
            (0 <= self.ema_decay < 1, f"ema decay must be in [0, 1), got {self.ema_decay}"),
            (self.train_split in ("train", "trainval"), "--train-split must be train or trainval"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.snapshot_every >= 0, "--snapshot-every must be >= 0"),
            (self.snapshot_n >= 1, "--snapshot-n must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BenchError(msg)
        return self

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** (epoch // self.decay_every)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class TrainingDiverged(RuntimeError):
    pass


def ema_decay_at(decay: float, updates: int) -> float:
    # TF's ExponentialMovingAverage(num_updates=...) warm-up: min(decay, (1 + t) / (10 + t)).
    # Identical to a plain 0.999 EMA after ~9,000 steps (18 MNIST epochs); keeps short runs sane.
    return min(decay, (1.0 + updates) / (10.0 + updates))


def make_optimizer(params, cfg: TrainConfig, device: torch.device):
    """Adam with the recipe's betas; the fused kernel where the device supports it."""
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    try:
        return torch.optim.Adam(params, fused=True, **kw)
    except (RuntimeError, TypeError):  # fused unsupported for this device/dtype
        return torch.optim.Adam(params, **kw)


def make_train_step(model, ema_model, opt, cfg: TrainConfig):
    """One optimisation step plus the EMA update; shared by the engine and the speed benchmark."""
    params = [p for p in model.parameters() if p.requires_grad]
    ema_params = [p for p, q in zip(ema_model.parameters(), model.parameters()) if q.requires_grad]
    buffers = list(zip(ema_model.buffers(), model.buffers()))

    def step(xb, yb, ema_updates: int) -> dict:
        loss, stats = model.loss(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1.0 - ema_decay_at(cfg.ema_decay, ema_updates))
            for b_ema, b in buffers:
                b_ema.copy_(b)
        return stats

    return step


def rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def build_member(name: str, seed: int, overrides: dict, data, device: torch.device):
    """The seed-determined initial model of one (model, seed), and the RNG state its training noise
    starts from (the global RNG right after initialisation). The loop and the stacked trainer both
    build members here, so a stacked member starts exactly where its own run would."""
    torch.manual_seed(seed)
    model = build_model(name, overrides, data.in_shape, data.num_classes).to(device)
    return model, rng_state(device)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a checkpoint is written atomically, so this means tampering
        raise BenchError(f"{path}: unreadable checkpoint ({type(e).__name__})") from None


def save_checkpoint(path: Path, ck: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(ck, buf)
    atomic_write_bytes(path, buf.getvalue())


class MemberFiles:
    """One (model, seed)'s files while it trains: status, epoch log, final weights.

    Shared by the loop (``train_model``) and the stacked trainer, so both write the same files in
    the same order.
    """

    def __init__(self, run_dir, name: str, seed: int, cfg: TrainConfig, overrides: dict):
        self.name, self.seed, self.cfg, self.overrides = name, seed, cfg, overrides
        self.mdir = rundir.model_dir(run_dir, name, seed)
        self.log_lines: list[str] = []
        self.epochs_done = 0

    @property
    def checkpoint(self) -> Path:
        return self.mdir / rundir.CHECKPOINT

    def finished(self) -> dict | None:
        """The status of a member that is already trained (never retrained), else None."""
        status = rundir.read_status(self.mdir)
        if status and status.get("state") == "done" and (self.mdir / rundir.WEIGHTS).exists():
            return {**status, "skipped": True}
        return None

    def begin(self, start_epoch: int) -> None:
        """Keep only the log lines of epochs the resumed state contains; status ``running``."""
        self.mdir.mkdir(parents=True, exist_ok=True)
        if start_epoch:
            self.log_lines = [ln for ln in rundir.read_log_lines(self.mdir) if json.loads(ln)["epoch"] <= start_epoch]
        rundir.write_log_lines(self.mdir, self.log_lines)
        self.epochs_done = start_epoch
        self.status("running")

    def status(self, state: str, **kw) -> dict:
        st = {"model": self.name, "seed": self.seed, "state": state, "epochs_done": self.epochs_done,
              "epochs": self.cfg.epochs, **kw}
        rundir.write_status(self.mdir, st)
        return st

    def log_epoch(self, line: dict) -> None:
        self.log_lines.append(json.dumps(line))
        rundir.write_log_lines(self.mdir, self.log_lines)

    def abort(self, error: BaseException) -> None:
        """After an error that stops training (a full disk, a bug): the status must not stay ``running``.
        Best effort: ``interrupted`` with the error (``--resume`` goes on from the last checkpoint), else no
        status at all (read as not trained)."""
        try:
            self.status("interrupted", error=f"{type(error).__name__}: {' '.join(str(error).split())[:200]}")
        except BaseException:  # noqa: BLE001 - the storage may refuse even this small write
            try:
                (self.mdir / rundir.STATUS).unlink(missing_ok=True)
            except OSError:
                pass

    def epoch_done(self, epoch: int) -> None:
        """Call once the checkpoint holding ``epoch`` is written."""
        self.epochs_done = epoch
        self.status("running")

    def finish(self, ema_model, n_examples: int, **extra) -> dict:
        """Save the final (EMA) weights and the ``done`` status; remove the member's checkpoint."""
        epochs_log = [json.loads(ln) for ln in self.log_lines]
        save_weights(self.mdir / rundir.WEIGHTS, ema_model, self.name, self.overrides,
                     {"epochs": self.cfg.epochs, "seed": self.seed})
        times = [e["epoch_time_s"] for e in epochs_log]
        st = self.status("done", train_time_s=sum(times), time_per_epoch_s=sum(times) / max(len(times), 1),
                         examples_per_s=n_examples * len(times) / max(sum(times), 1e-9),
                         final_val_error=epochs_log[-1]["val_error"] if epochs_log else None, **extra)
        self.checkpoint.unlink(missing_ok=True)  # the final weights are in model.safetensors
        return st


def epoch_record(epoch: int, lr: float, means: dict, val: dict, train_time: float, val_time: float,
                 n_examples: int) -> dict:
    """One line of ``train_log.jsonl``."""
    return {"epoch": epoch + 1, "lr": lr, **means, "val_error": val["error"], "val_nll": val["nll"],
            "epoch_time_s": train_time, "val_time_s": val_time, "examples_per_s": n_examples / train_time}


def divergence(means: dict, epoch: int, step: int) -> str | None:
    """The failure message when a running mean of the loss terms is not finite."""
    if all(math.isfinite(v) for v in means.values()):
        return None
    return f"loss became non-finite at epoch {epoch + 1}, step {step + 1}"


def train_model(name: str, seed: int, data, cfg: TrainConfig, run_dir: str | Path, *,
                overrides: dict | None = None, device: torch.device | str = "cpu", resume: bool = False,
                progress: bool | None = None) -> dict:
    """Train one (model, seed) into ``run_dir/models/<name>/seed<k>/`` and return its status.

    A finished model is never retrained. Raises nothing for a diverging loss: the status says
    ``failed`` with the reason, so the caller can go on with the other models.
    """
    from tqdm import tqdm

    from .snapshots import save_snapshot

    device = torch.device(device)
    overrides = dict(overrides or {})
    files = MemberFiles(run_dir, name, seed, cfg, overrides)
    finished = files.finished()
    if finished:
        return finished
    files.mdir.mkdir(parents=True, exist_ok=True)

    model, _ = build_member(name, seed, overrides, data, device)
    ema_model = copy.deepcopy(model).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg, device)
    train_step = make_train_step(model, ema_model, opt, cfg)
    shuffle = torch.Generator().manual_seed(seed)

    x_fit, y_fit = data.split(cfg.train_split)
    x_fit, y_fit = x_fit.to(device), y_fit.to(device)
    x_val, y_val = data.split("val")
    n, bs = len(x_fit), cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)

    start_epoch, ema_updates = 0, 0
    if files.checkpoint.exists() and resume:
        ck = load_checkpoint(files.checkpoint, device)
        model.load_state_dict(ck["model"])
        ema_model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        shuffle.set_state(ck["shuffle"])
        _set_rng_state(ck["rng"], device)
        start_epoch, ema_updates = int(ck["epoch"]), int(ck["ema_updates"])
    files.begin(start_epoch)

    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
               desc=f"{name} seed {seed}", unit="step", disable=(not progress) if progress is not None else None,
               leave=False, dynamic_ncols=True)
    model.train()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            lr = cfg.lr_at(epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            perm = torch.randperm(n, generator=shuffle).to(device)
            sums: dict[str, torch.Tensor] = {}
            t0 = time.perf_counter()
            for step in range(steps_per_epoch):
                idx = perm[step * bs:(step + 1) * bs]
                stats = train_step(x_fit[idx], y_fit[idx], ema_updates)
                ema_updates += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                if (step + 1) % cfg.log_every == 0 or step + 1 == steps_per_epoch:
                    means = {k: float(v) / (step + 1) for k, v in sums.items()}
                    error = divergence(means, epoch, step)
                    if error:
                        raise TrainingDiverged(error)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()}, refresh=False)
                    bar.update((step + 1) - (bar.n - epoch * steps_per_epoch))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_time = time.perf_counter() - t0
            t1 = time.perf_counter()
            val, _ = clean_metrics(ema_model, x_val, y_val, seed=10_000 + epoch, device=device)
            files.log_epoch(epoch_record(epoch, lr, {k: float(v) / steps_per_epoch for k, v in sums.items()}, val,
                                         train_time, time.perf_counter() - t1, n))
            if cfg.snapshot_every and ((epoch + 1) % cfg.snapshot_every == 0 or epoch == 0):
                save_snapshot(files.mdir, model, x_fit[:cfg.snapshot_n], y_fit[:cfg.snapshot_n], epoch + 1)
            ck = {"epoch": epoch + 1, "ema_updates": ema_updates, "model": model.state_dict(),
                  "ema": ema_model.state_dict(), "optimizer": opt.state_dict(), "shuffle": shuffle.get_state(),
                  "rng": rng_state(device)}
            save_checkpoint(files.checkpoint, ck)
            files.epoch_done(epoch + 1)
    except TrainingDiverged as e:
        bar.close()
        return files.status("failed", error=str(e))
    except KeyboardInterrupt:  # Ctrl-C: the status must not say "running"; the checkpoint lets --resume go on
        bar.close()
        files.status("interrupted")
        raise
    except BaseException as e:  # a full disk, a bug: neither may leave the status at "running"
        bar.close()
        files.abort(e)
        raise
    bar.close()
    try:
        return files.finish(ema_model, n)
    except BaseException as e:
        files.abort(e)
        raise


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
