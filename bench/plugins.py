"""User models without editing the package: ``--plugin FILE`` or the ``vib_bench.models`` entry point.

A plugin is a Python file whose factories register themselves with ``models.register_model``.
Its absolute path is recorded in the run's results file. A results file is untrusted input (a run
directory may come from anyone), so later stages (attack, info...) execute a recorded plugin only when
the user names it again (``--plugin FILE``) or trusts the run's plugins (``--trust-plugins``:
:func:`trust_recorded`); otherwise :func:`load_recorded` skips it and returns it, so the caller can
say so, or refuse when a model of the run needs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from .errors import BenchError

_loaded: dict[str, object] = {}
_trust = {"recorded": False}  # --trust-plugins: set by the command line for each command


def trust_recorded(trust: bool) -> None:
    """Whether plugins listed in a results file may be executed without being named on the command line."""
    _trust["recorded"] = bool(trust)


def is_loaded(path: str | Path) -> bool:
    return str(Path(path).expanduser().resolve()) in _loaded


def load_recorded(paths) -> list[str]:
    """Load the plugins a results file lists when trusted (``--trust-plugins``); the ones not loaded
    (neither trusted nor already loaded from the command line) are returned, in order."""
    skipped = []
    for p in paths or []:
        if is_loaded(p):
            continue
        if not _trust["recorded"]:
            skipped.append(str(p))
            continue
        if not Path(p).is_file():
            raise BenchError(f"this run used the plugin {p}, which no longer exists")
        load_plugin(p)
    return skipped


def load_plugin(path: str | Path) -> str:
    from attacks import AttackError  # imported here: loading no plugin (`vib-bench list`) needs no torch
    from models import ModelError

    path = Path(path).expanduser().resolve()
    key = str(path)
    if key in _loaded:
        return key
    if not path.is_file():
        raise BenchError(f"--plugin {path}: no such file")
    if path.suffix != ".py":
        raise BenchError(f"--plugin {path}: not a Python file (.py)")
    mod_name = "vib_bench_plugin_" + hashlib.sha1(key.encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except (BenchError, ModelError, AttackError):  # e.g. a duplicate name: already one line
        del sys.modules[mod_name]
        raise
    except SystemExit as e:  # a plugin must not end the command (a `train` that exits 0 having trained nothing)
        del sys.modules[mod_name]
        raise BenchError(
            f"--plugin {path}: called sys.exit({e.code!r}) while loading; a plugin may only register models or attacks"
        ) from None
    except Exception as e:
        del sys.modules[mod_name]
        raise BenchError(f"--plugin {path}: failed to import ({type(e).__name__}: {e})") from None
    _loaded[key] = module
    return key


def load_plugins(paths) -> list[str]:
    return [load_plugin(p) for p in (paths or [])]


def load_entry_points() -> None:
    """Load installed packages that advertise models under the ``vib_bench.models`` group."""
    for ep in metadata.entry_points(group="vib_bench.models"):
        if ep.value in _loaded:
            continue
        try:
            _loaded[ep.value] = ep.load()
        except SystemExit as e:
            raise BenchError(f"entry point {ep.name} ({ep.value}) called sys.exit({e.code!r}) while loading") from None
        except Exception as e:
            raise BenchError(f"entry point {ep.name} ({ep.value}) failed to load: {e}") from None
