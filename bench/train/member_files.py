"""One (model, seed)'s files while it trains, and the lines of its epoch log.

``MemberFiles`` is shared by the per-model loop (``bench.train.recipe.train_model``) and the stacked trainer
(``bench.train.stacked``), so both write the same files in the same order: the status, ``train_log.jsonl`` (one
``epoch_record`` per epoch) and the final EMA weights. The run-directory layout itself is
``bench.rundir``'s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import rundir
from .weights import save_weights

if TYPE_CHECKING:
    from .recipe import TrainConfig


def _epoch_of(line: str) -> int | None:
    """The epoch of a train-log line, or None for a line that is not a log line (torn, or edited)."""
    try:
        epoch = json.loads(line).get("epoch")
    except (ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


class MemberFiles:
    """One (model, seed)'s files while it trains: status, epoch log, final weights.

    Shared by the loop (``train_model``) and the stacked trainer, so both write the same files in
    the same order.
    """

    #: Between checkpoints, the log and the status are rewritten at most once per this many seconds (always
    #: at a checkpoint and at the end): on short epochs (a GPU, a small data set) a rewrite per epoch was
    #: several percent of the epoch, and a status a few seconds old is as good for watching progress.
    FLUSH_S = 2.0

    def __init__(self, run_dir, name: str, seed: int, cfg: TrainConfig, overrides: dict):
        self.name, self.seed, self.cfg, self.overrides = name, seed, cfg, overrides
        self.mdir = rundir.model_dir(run_dir, name, seed)
        self.log_lines: list[str] = []
        self.epochs_done = self.checkpoint_epoch = 0
        self._flushed = time.monotonic()

    @property
    def checkpoint(self) -> Path:
        return self.mdir / rundir.CHECKPOINT

    def finished(self) -> dict | None:
        """The status of a member that is already trained (never retrained), else None."""
        status = rundir.read_status(self.mdir)
        if status and status.get("state") == "done" and (self.mdir / rundir.WEIGHTS).exists():
            return {**status, "skipped": True}
        return None

    def begin(self, start_epoch: int, saved_log: list[str] | None = None) -> None:
        """Keep only the log lines of epochs the resumed state contains (``saved_log``: the checkpoint's
        copy, used when the file lacks some of them); status ``running``."""
        self.mdir.mkdir(parents=True, exist_ok=True)
        self.log_lines = []
        if start_epoch:
            # a torn or edited line (a crash mid-write, a received run) is dropped, never a crash
            lines = [ln for ln in rundir.read_log_lines(self.mdir) if (_epoch_of(ln) or start_epoch + 1) <= start_epoch]
            if saved_log is not None and [_epoch_of(ln) for ln in lines] != list(range(1, start_epoch + 1)):
                lines = list(saved_log)
            self.log_lines = lines
        rundir.write_log_lines(self.mdir, self.log_lines)
        self.epochs_done = self.checkpoint_epoch = start_epoch
        self.status("running")

    def status(self, state: str, durable: bool = True, **kw) -> dict:
        """Write the status; a final one (interrupted, failed) first gives the log the epochs done since its
        last rewrite (best effort: the status matters more)."""
        if state not in ("running", "done") and self.log_lines:
            try:
                rundir.write_log_lines(self.mdir, self.log_lines, durable=False)
            except OSError:
                pass
        st = {
            "model": self.name,
            "seed": self.seed,
            "state": state,
            "epochs_done": self.epochs_done,
            "epochs": self.cfg.epochs,
            **kw,
        }
        rundir.write_status(self.mdir, st, durable)
        return st

    def log_epoch(self, line: dict) -> None:
        """Add an epoch's line (written to the file by ``epoch_done``)."""
        self.log_lines.append(json.dumps(line))

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

    def add_checkpoint_time(self, seconds: float) -> None:
        """Charge the checkpoint just written to the last line's wall time."""
        line = json.loads(self.log_lines[-1])
        line["wall_time_s"] += seconds
        line["checkpoint_s"] = seconds
        self.log_lines[-1] = json.dumps(line)

    def epoch_done(self, epoch: int, checkpointed: bool) -> None:
        """Rewrite the log and the status (atomically, without fsync: the checkpoint is the durable state, and
        it holds its own copy of the log) after a checkpoint, else when ``FLUSH_S`` has passed since the last
        rewrite; :meth:`finish` writes both at the end."""
        self.epochs_done = epoch
        if checkpointed:
            self.checkpoint_epoch = epoch
        now = time.monotonic()
        if not checkpointed and now - self._flushed < self.FLUSH_S:
            return
        self._flushed = now
        rundir.write_log_lines(self.mdir, self.log_lines, durable=False)
        self.status("running", durable=False, checkpoint_epoch=self.checkpoint_epoch)

    def finish(self, ema_model, n_examples: int, **extra) -> dict:
        """Save the final (EMA) weights and the ``done`` status; remove the member's checkpoint."""
        epochs_log = [json.loads(ln) for ln in self.log_lines]
        rundir.write_log_lines(self.mdir, self.log_lines)
        save_weights(
            self.mdir / rundir.WEIGHTS,
            ema_model,
            self.name,
            self.overrides,
            {"epochs": self.cfg.epochs, "seed": self.seed},
        )
        times = [e["epoch_time_s"] for e in epochs_log]
        walls = [e.get("wall_time_s", e["epoch_time_s"]) for e in epochs_log]  # logs from before issue 18
        st = self.status(
            "done",
            train_time_s=sum(times),
            time_per_epoch_s=sum(times) / max(len(times), 1),
            wall_time_s=sum(walls),
            wall_time_per_epoch_s=sum(walls) / max(len(walls), 1),
            overhead_fraction=1.0 - sum(times) / sum(walls) if sum(walls) > 0 else None,
            examples_per_s=n_examples * len(times) / max(sum(times), 1e-9),
            final_val_error=epochs_log[-1]["val_error"] if epochs_log else None,
            **extra,
        )
        self.checkpoint.unlink(missing_ok=True)  # the final weights are in model.safetensors
        return st


def epoch_record(
    epoch: int,
    lr: float,
    means: dict,
    val: dict | None,
    train_time: float,
    val_time: float,
    n_examples: int,
    wall_time: float,
) -> dict:
    """One line of ``train_log.jsonl``: ``epoch_time_s`` the steps, ``wall_time_s`` the whole epoch so far
    (the checkpoint, when one follows, is added by ``MemberFiles.add_checkpoint_time``). ``val`` None: the
    epoch was not validated (``Cadence.val_every``); its ``val_error`` and ``val_nll`` are null."""
    val, val_time = (val, val_time) if val else ({"error": None, "nll": None}, 0.0)
    return {
        "epoch": epoch + 1,
        "lr": lr,
        **means,
        "val_error": val["error"],
        "val_nll": val["nll"],
        "epoch_time_s": train_time,
        "val_time_s": val_time,
        "examples_per_s": n_examples / train_time,
        "wall_time_s": wall_time,
        "checkpoint_s": 0.0,
    }
