"""The training engine: the published recipe, fast, deterministic and resumable.

Recipe (Alemi et al. 2017): Adam(lr 1e-4, betas 0.5/0.999), lr x 0.97 every 2 epochs
(staircase), batch 100, an exponential moving average of the weights (decay 0.999) used for
evaluation.

Speed: the whole data set lives on the device as one tensor; an epoch is one ``randperm`` and
index-gathers of it, so there is no per-sample Python work and no DataLoader. Adam is the fused
kernel and the EMA update one ``_foreach_lerp_``: both are memory-bound and small next to the
matrix multiplies.

Determinism and resume: a seed fixes the initialisation, the shuffling (its own generator) and the
model's noise (the global RNG). A checkpoint written atomically (and fsynced) holds the weights, the
EMA, Adam's state, every RNG state and the epoch log so far, so a run killed at any point (even with
``kill -9``) resumes from its last checkpoint and ends bit-identical to an uninterrupted run.
Validation runs on a forked RNG so it never perturbs training.

Cadence (:class:`Cadence`): a checkpoint is written every N epochs, or (the default) once 60 s have
passed since the last one, and always after the last epoch, so checkpoints cost a few per cent of an
epoch or less. Between checkpoints the epoch log and status are rewritten every epoch atomically but
without fsync (cheap; a crashed process still leaves whole files). A resumed run keeps the log lines
up to its checkpoint (the file's, or, when the file lost them in a power cut, the checkpoint's own
copy) and recomputes the later epochs: their lines come back identical except for their times.

Times: a log line's ``epoch_time_s`` is the steps alone; ``wall_time_s`` is the epoch's whole wall time
(steps, validation, snapshots, the checkpoint, the previous epoch's file writes: the times between
consecutive epoch ends add up), ``checkpoint_s`` the checkpoint's part. The final status adds up both
(``train_time_s``, ``wall_time_s``) and records ``overhead_fraction`` = 1 - steps / wall.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from ..errors import BenchError
from ..io import atomic_writer
from .member_files import MemberFiles, epoch_record
from .weights import build_model


@dataclass
class TrainConfig:
    epochs: int = 20  # the CLI and suite default (bench.train.options); the paper trains 200
    batch_size: int = 100
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: float = 0.97
    decay_every: int = 2
    ema_decay: float = 0.999
    train_split: str = "train"  # "train" (validation held out) or "trainval" (all training data)
    log_every: int = 50  # steps between progress updates and divergence checks
    snapshot_every: int = 0  # epochs between hidden-activation snapshots (0: none)
    snapshot_n: int = 2000  # size of the fixed sample (first N training examples) snapshotted

    def validate(self) -> TrainConfig:
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
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class TrainingDiverged(RuntimeError):
    pass


@dataclass(frozen=True)
class Cadence:
    """When training does its epoch-end work. The resume checkpoint: every ``epochs`` epochs, or
    (``epochs == 0``) at the end of the first epoch that ends ``seconds`` or more after the last
    checkpoint (or the start). Validation: every ``val_epochs`` epochs, or (``val_epochs == 0``, the
    default) every :func:`auto_val_every` epochs. Both always after the last epoch. Not part of the
    recipe: it never changes what is trained (validation runs on the EMA weights under a forked RNG)."""

    epochs: int = 0
    seconds: float = 60.0
    val_epochs: int = 0

    @classmethod
    def parse(cls, text: str) -> Cadence:
        """``"5"``: every 5 epochs; ``"60s"``: at most one per 60 s (plus the last epoch)."""
        text = str(text).strip().lower()
        try:
            if text.endswith("s"):
                value = float(text[:-1])
                if value >= 0 and math.isfinite(value):
                    return cls(0, value)
            elif int(text) >= 1:
                return cls(int(text), 0.0)
        except ValueError:
            pass
        raise BenchError(
            f"--checkpoint-every must be a number of epochs (>= 1) or of seconds such as 60s, got {text!r}"
        )

    def with_val_every(self, text: str) -> Cadence:
        """This cadence validating every ``text`` epochs (``"auto"``: :func:`auto_val_every`)."""
        text = str(text).strip().lower()
        if text == "auto":
            return dataclasses.replace(self, val_epochs=0)
        if text.isdigit() and int(text) >= 1:
            return dataclasses.replace(self, val_epochs=int(text))
        raise BenchError(f"--val-every must be a number of epochs (>= 1) or auto, got {text!r}")

    def due(self, epochs_done: int, total: int, since_last: float) -> bool:
        if epochs_done >= total:
            return True
        if self.epochs:
            return epochs_done % self.epochs == 0
        return since_last >= self.seconds

    def describe(self) -> str:
        return f"every {self.epochs} epoch(s)" if self.epochs else f"at most one per {self.seconds:g} s"

    def val_every(self, n_fit: int, n_val: int) -> int:
        """Validate every this many epochs (``val_epochs``, or the automatic choice for these split sizes)."""
        return self.val_epochs if self.val_epochs >= 1 else auto_val_every(n_fit, n_val)

    @staticmethod
    def val_due(epochs_done: int, total: int, every: int) -> bool:
        return epochs_done >= total or epochs_done % every == 0


EVERY_EPOCH = Cadence(epochs=1, val_epochs=1)  # a checkpoint and validation after every epoch

VAL_SHARE = 0.02  # the automatic validation cadence keeps validation's compute under this share of the steps'


def auto_val_every(n_fit: int, n_val: int) -> int:
    """The smallest N for which validating every N epochs costs at most ``VAL_SHARE`` of the steps'
    compute. One validation is a forward pass over ``n_val`` examples (2 FLOP per weight and example),
    an epoch's steps a forward and a backward pass over ``n_fit`` (6 FLOP): a ratio of n_val / (3 n_fit),
    whatever the model. MNIST (50,000 / 10,000): 4 (3 on train+val); digits (1,077 / 360): 6."""
    return max(1, math.ceil(n_val / (3 * max(n_fit, 1)) / VAL_SHARE - 1e-9))


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
    """Atomically and durably (fsync), streamed into the file: no in-memory copy of the whole state."""
    with atomic_writer(path) as f:
        torch.save(ck, f)


@torch.no_grad()
def validate(model, x: torch.Tensor, y: torch.Tensor, epoch: int, device) -> dict:
    """The validation error and NLL of an epoch (what the epoch log records) in one pass over ``x`` and
    ``y``, which the caller keeps on the device; the evaluation protocol's batches and a seed of the
    epoch, so the loop and a stack record the same numbers for the same weights."""
    from ..protocol import EVAL_BATCH, predict_log_probs, seeded

    with seeded(VAL_SEED + epoch, device):
        logp = predict_log_probs(model, x, EVAL_BATCH, device)
    return log_prob_metrics(logp, y)


def log_prob_metrics(logp: torch.Tensor, y: torch.Tensor) -> dict:
    """Error and NLL of log-probabilities (N, C) against labels, with one host synchronisation."""
    err, nll = torch.stack(
        [(logp.argmax(-1) != y).double().mean(), -logp.gather(-1, y[:, None]).double().mean()]
    ).tolist()
    return {"error": err, "nll": nll}


VAL_SEED = 10_000  # + epoch: the noise seed of a stochastic model's validation


def on_device(device: torch.device):
    """The context that makes ``device`` CUDA's current device (``cuda:N``: graph capture, streams and
    generators then sit on device N, not device 0); nothing on the CPU."""
    import contextlib

    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def divergence(means: dict, epoch: int, step: int) -> str | None:
    """The failure message when a running mean of the loss terms is not finite."""
    if all(math.isfinite(v) for v in means.values()):
        return None
    return f"loss became non-finite at epoch {epoch + 1}, step {step + 1}"


def train_model(
    name: str,
    seed: int,
    data,
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    overrides: dict | None = None,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool | None = None,
    cadence: Cadence = Cadence(),
) -> dict:
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
    x_val, y_val = (t.to(device) for t in data.split("val"))
    n, bs = len(x_fit), cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    val_every = cadence.val_every(n, len(x_val))

    start_epoch, ema_updates, saved_log = 0, 0, None
    if files.checkpoint.exists() and resume:
        ck = load_checkpoint(files.checkpoint, device)
        model.load_state_dict(ck["model"])
        ema_model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        shuffle.set_state(ck["shuffle"])
        _set_rng_state(ck["rng"], device)
        start_epoch, ema_updates, saved_log = int(ck["epoch"]), int(ck["ema_updates"]), ck.get("log")
    files.begin(start_epoch, saved_log)

    bar = tqdm(
        total=cfg.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"{name} seed {seed}",
        unit="step",
        disable=(not progress) if progress is not None else None,
        leave=False,
        dynamic_ncols=True,
    )
    model.train()
    t_mark = t_checkpoint = time.perf_counter()  # the end of the last epoch; of the last checkpoint
    try:
        for epoch in range(start_epoch, cfg.epochs):
            lr = cfg.lr_at(epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            perm = torch.randperm(n, generator=shuffle).to(device)
            sums: dict[str, torch.Tensor] = {}
            t0 = time.perf_counter()
            for step in range(steps_per_epoch):
                idx = perm[step * bs : (step + 1) * bs]
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
            val = (
                validate(ema_model, x_val, y_val, epoch, device)
                if cadence.val_due(epoch + 1, cfg.epochs, val_every)
                else None
            )
            val_time = time.perf_counter() - t1
            if cfg.snapshot_every and ((epoch + 1) % cfg.snapshot_every == 0 or epoch == 0):
                save_snapshot(files.mdir, model, x_fit[: cfg.snapshot_n], y_fit[: cfg.snapshot_n], epoch + 1)
            now = time.perf_counter()
            files.log_epoch(
                epoch_record(
                    epoch,
                    lr,
                    {k: float(v) / steps_per_epoch for k, v in sums.items()},
                    val,
                    train_time,
                    val_time,
                    n,
                    now - t_mark,
                )
            )
            due = cadence.due(epoch + 1, cfg.epochs, now - t_checkpoint)
            if due:
                ck = {
                    "epoch": epoch + 1,
                    "ema_updates": ema_updates,
                    "model": model.state_dict(),
                    "ema": ema_model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "shuffle": shuffle.get_state(),
                    "rng": rng_state(device),
                    "log": list(files.log_lines),
                }
                save_checkpoint(files.checkpoint, ck)
                t_checkpoint = time.perf_counter()
                files.add_checkpoint_time(t_checkpoint - now)
            t_mark = time.perf_counter()
            files.epoch_done(epoch + 1, due)
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
        return files.finish(ema_model, n, val_every=val_every)
    except BaseException as e:
        files.abort(e)
        raise


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
