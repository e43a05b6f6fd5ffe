"""One writer at a time per run directory, across processes.

Every read-modify-write of a run directory's shared files (``results.json``, the per-example stores)
happens under ``RUN_DIR/.lock`` (``filelock``: ``fcntl`` on POSIX, released by the OS if the holder
dies). The holder writes its process id and command beside the lock, so a stage that cannot get the
lock in time says who holds it. The critical sections are short (read JSON, change, write atomically),
so the timeout is generous (``VIB_BENCH_LOCK_TIMEOUT`` seconds, checked by :func:`lock_timeout`).

Training takes one more lock per model-seed (:func:`member_locks`, a file in the member's folder), held
while it trains, without waiting: two ``train --resume`` of one run split the model-seeds between
them instead of both training the same ones.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import BenchError
from .io import atomic_write_text

LOCK_NAME = ".vib-bench.lock"
OWNER_NAME = ".vib-bench.lock.owner"
TIMEOUT_S: float | None = None  # None: $VIB_BENCH_LOCK_TIMEOUT, else 120 s
DEFAULT_TIMEOUT_S = 120.0


def lock_timeout() -> float:
    """Seconds to wait for a run's lock: ``VIB_BENCH_LOCK_TIMEOUT`` (a number >= 0), else 120."""
    if TIMEOUT_S is not None:
        return TIMEOUT_S
    text = os.environ.get("VIB_BENCH_LOCK_TIMEOUT")
    if text is None or not text.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BenchError(f"VIB_BENCH_LOCK_TIMEOUT={text!r}: not a number of seconds >= 0 (e.g. 120)")
    return value


_held = threading.local()  # re-entrant within one thread: nested updates of the same run do not deadlock


def _owner_text() -> str:
    return f"process {os.getpid()} ({' '.join(Path(sys.argv[0]).name.split() + sys.argv[1:3])})"


@contextlib.contextmanager
def run_lock(run_dir: str | Path, timeout: float | None = None):
    """Hold the run directory's lock for the block (re-entrant within a thread)."""
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    depth = getattr(_held, "depth", {})
    _held.depth = depth
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (LOCK_NAME, OWNER_NAME):  # a received run directory must not redirect these writes
        if (run_dir / name).is_symlink():
            raise BenchError(
                f"{run_dir / name} is a symbolic link; a run directory's lock files are plain files (remove it)"
            )
    lock = FileLock(str(run_dir / LOCK_NAME))
    wait = lock_timeout() if timeout is None else timeout
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        try:
            holder = (run_dir / OWNER_NAME).read_text().strip() or "another process"
        except OSError:
            holder = "another process"
        raise BenchError(
            f"{run_dir} is locked by {holder}; wait for it to finish (or raise VIB_BENCH_LOCK_TIMEOUT, now {wait:g} s)"
        ) from None
    depth[key] = 1
    try:
        atomic_write_text(run_dir / OWNER_NAME, _owner_text() + "\n", durable=False)  # replaces, never follows
        yield
    finally:
        depth[key] = 0
        try:
            (run_dir / OWNER_NAME).unlink()
        except OSError:
            pass
        lock.release()


@contextlib.contextmanager
def member_locks(paths: list[Path]):
    """Take each of the lock files ``paths`` that no other process holds, without waiting; yield one bool per
    path (True: held here for the block). Their folders are created."""
    held = []
    try:
        for path in paths:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                held.append(None)
            else:
                held.append(lock)
        yield [lock is not None for lock in held]
    finally:
        for lock in held:
            if lock is not None:
                lock.release()


def member_busy(path: Path) -> bool:
    """Whether another process holds the member lock ``path`` now."""
    if not Path(path).exists():
        return False
    with member_locks([path]) as got:
        return not got[0]
