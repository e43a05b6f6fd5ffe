"""One writer at a time per run directory, across processes.

Every read-modify-write of a run directory's shared files (``results.json``, the per-example stores)
happens under ``RUN_DIR/.lock`` (``filelock``: ``fcntl`` on POSIX, released by the OS if the holder
dies). The holder writes its process id and command beside the lock, so a stage that cannot get the
lock in time says who holds it. The critical sections are short (read JSON, change, write atomically),
so the timeout is generous.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import BenchError

LOCK_NAME = ".vib-bench.lock"
OWNER_NAME = ".vib-bench.lock.owner"
TIMEOUT_S = float(os.environ.get("VIB_BENCH_LOCK_TIMEOUT", "120"))

_held = threading.local()   # re-entrant within one thread: nested updates of the same run do not deadlock


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
    lock = FileLock(str(run_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=TIMEOUT_S if timeout is None else timeout)
    except Timeout:
        try:
            holder = (run_dir / OWNER_NAME).read_text().strip() or "another process"
        except OSError:
            holder = "another process"
        raise BenchError(f"{run_dir} is locked by {holder}; wait for it to finish (or raise "
                         f"VIB_BENCH_LOCK_TIMEOUT, now {TIMEOUT_S:g} s)") from None
    depth[key] = 1
    try:
        (run_dir / OWNER_NAME).write_text(_owner_text() + "\n")
        yield
    finally:
        depth[key] = 0
        try:
            (run_dir / OWNER_NAME).unlink()
        except OSError:
            pass
        lock.release()
