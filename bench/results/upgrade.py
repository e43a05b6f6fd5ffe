"""Versions of the results file and the steps between them.

Every results file says which format it is in; the code reads every format up to :data:`FORMAT`.
An older file is brought up to date one step at a time, by one small function per step,
``update_to_N(data) -> data`` (N is the format the step produces), the way asv upgrades its
results: :func:`upgrade` does it in memory on every load (with a one-line notice), and
:func:`upgrade_file` (``vib-bench upgrade RUN_DIR``) writes the upgraded file back, atomically.
A file newer than the code is refused: an old vib-bench cannot know what a newer one changed.

The formats:

1. ``{"schema": "vib-bench/results/1", ...}``: the version is a suffix of the schema string,
   matched exactly, so it could not be compared.
2. ``{"schema": "vib-bench/results", "format": 2, ...}``: the name and an integer format version,
   both first in the file. Nothing else changed.

Adding a step: write ``update_to_N`` (it receives a file in format N-1, returns it in format N, and
sets ``data["format"] = N``), add it to :data:`STEPS`, raise :data:`FORMAT`, and describe the change
above and in ``docs/results-format.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BenchError
from ..io import atomic_write_json

NAME = "vib-bench/results"
FORMAT = 2
_V1_SCHEMA = "vib-bench/results/1"

log = logging.getLogger("bench.results")


def update_to_2(data: dict) -> dict:
    """Format 1 -> 2: ``"schema": "vib-bench/results/1"`` becomes ``"schema": "vib-bench/results", "format": 2``."""
    rest = {k: v for k, v in data.items() if k not in ("schema", "format")}
    return {"schema": NAME, "format": 2, **rest}


# update_to_N by the format N it produces; a file in format k goes through STEPS[k + 1], ..., STEPS[FORMAT].
STEPS: dict[int, Callable[[dict], dict]] = {2: update_to_2}


def format_of(data) -> int | None:
    """The format a loaded results file is in, or None when it is not a vib-bench results file."""
    if not isinstance(data, dict):
        return None
    if data.get("schema") == _V1_SCHEMA:
        return 1
    version = data.get("format")
    if data.get("schema") == NAME and isinstance(version, int) and not isinstance(version, bool) and version >= 2:
        return version
    return None


def check_format(data, where) -> int:
    """The format of ``data``; a BenchError (exit 2) for a file that is not a results file or is too new."""
    version = format_of(data)
    if version is None or not isinstance(data.get("models"), dict):
        raise BenchError(f"{where}: not a vib-bench results file (expected schema {NAME!r} with a format number)")
    if version > FORMAT:
        raise BenchError(
            f"{where}: results.json has format {version}; this vib-bench reads up to {FORMAT}: upgrade vib-bench"
        )
    return version


def apply_steps(data: dict, version: int) -> dict:
    """``data`` (in format ``version``) taken step by step to :data:`FORMAT`."""
    for target in range(version + 1, FORMAT + 1):
        data = STEPS[target](data)
        assert data.get("format") == target, f"update_to_{target} did not set the format"
    return data


_noticed: set[str] = set()


def upgrade(data, where, check=None) -> dict:
    """The loaded file ``data`` in the current format; an older one is upgraded in memory with a notice.

    ``check`` (the validation of :mod:`bench.results.validate`) runs on the upgraded data before the notice,
    so a file that is refused anyway gets one line, the refusal. The notice goes to the ``bench.results``
    logger (the command line prints it as one line on stderr), once per file and process.
    """
    version = check_format(data, where)
    data = apply_steps(data, version)
    if check is not None:
        data = check(data)
    if version != FORMAT and str(where) not in _noticed:
        _noticed.add(str(where))
        log.warning(
            "%s is in results format %d (this vib-bench writes %d); upgraded in memory "
            "(`vib-bench upgrade %s` rewrites the file)",
            where,
            version,
            FORMAT,
            Path(where).parent,
        )
    return data


@dataclass(frozen=True)
class Upgrade:
    """What ``vib-bench upgrade`` found (and did) for one file."""

    path: Path
    old: int
    new: int
    written: bool

    @property
    def needed(self) -> bool:
        return self.old != self.new


def upgrade_file(run_dir_or_file: str | Path, check: bool = False) -> Upgrade:
    """Bring a run's results file to the current format on disk, atomically and under the run's lock;
    ``check`` only looks."""
    from ..locking import run_lock
    from ..rundir import results_path

    path = results_path(run_dir_or_file)
    if not path.exists():
        raise BenchError(f"{path}: no results file (is this a vib-bench run directory?)")
    if check:  # only looks: no lock file is created
        return _upgrade_file(path, check)
    with run_lock(path.parent):
        return _upgrade_file(path, check)


def _upgrade_file(path: Path, check: bool) -> Upgrade:
    from .validate import parse, validate

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BenchError(f"{path}: no results file (is this a vib-bench run directory?)") from None
    except UnicodeDecodeError as e:
        raise BenchError(f"{path}: not a valid results file (not UTF-8 text: byte {e.start})") from None
    data = parse(text, str(path))
    version = check_format(data, path)
    upgraded = validate(apply_steps(data, version), str(path), NAME)  # a damaged file is refused, never rewritten
    if version == FORMAT or check:
        return Upgrade(path, version, FORMAT, written=False)
    atomic_write_json(path, upgraded)
    return Upgrade(path, version, FORMAT, written=True)
