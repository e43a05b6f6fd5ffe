"""Atomic file writes: a crash never leaves a half-written file behind.

A write the file system refuses (a full disk, a read-only folder, a quota) is a one-line
:class:`BenchError` naming the file, not a crash; nothing half-written is left.

Callers build the paths of run directories through ``bench.rundir`` (``run_path``), so the parent
folders created here are inside the run directory; the other callers write where the user asked
(``leaderboard --out``, ``history --figure``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import BenchError

# errors of the storage, not of vib-bench: reported as one line (exit 2)
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def storage_error(path, e: OSError) -> BenchError:
    """The one-line error for a write the storage refused."""
    why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "not writable"
    return BenchError(
        f"{path}: cannot write ({e.strerror or e}: {why}); nothing half-written was left; "
        "fix the storage and rerun (with --resume where the command takes it)"
    )


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, durable: bool = True):
    """A binary file object whose content replaces ``path`` atomically when the block ends without an error.

    ``durable``: fsync before the rename, so the new content survives a power loss too (a process crash
    never leaves a half-written file either way). Writers that stream (``torch.save``) write straight into
    it, without a copy of the whole content in memory.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if e.errno in STORAGE_ERRNOS:
            raise storage_error(path, e) from None
        raise
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            raise storage_error(path, e) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    with atomic_writer(path, durable) as f:
        f.write(data)


def json_safe(obj):
    """``obj`` with NaN/inf replaced by None, tuples by lists and keys by strings: valid JSON everywhere."""
    return _clean(obj)


def _clean(obj):
    # JSON has no NaN/inf; store them as null so every reader can parse the file.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj, durable: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(_clean(obj), indent=1, sort_keys=False) + "\n").encode(), durable)


def atomic_write_figure(fig, path: str | os.PathLike, **savefig_kw) -> Path:
    """Render a matplotlib figure to PNG and write it atomically."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_kw)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), durable)
