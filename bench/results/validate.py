"""Validation of a results file on load: a received run directory is untrusted input.

:func:`parse` reads the file's text (JSON, UTF-8, nesting at most :data:`MAX_DEPTH` deep, every number
finite: ``NaN``, ``Infinity`` and overflowing literals such as ``1e400`` are refused); :func:`validate`
checks the structure every accessor of :mod:`bench.results` reads: the schema, the type of each
nested field, and that every model name and seed key is a single safe path component
(:func:`bench.rundir.name_problem`). A bad file is refused with one :class:`BenchError` line naming the
file and the field, e.g. ``runs/x/results.json: models."../a": model name '../a' is not a safe name``.

Fields the accessors do not read are free (a later version may add them); fields they read must have
the type they expect, or be ``null`` where a number may be missing (vib-bench writes a non-finite
number as ``null``). The check walks the file once; results files are small.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import BenchError
from ..rundir import name_problem, seed_problem

MAX_DEPTH = 32  # the deepest results file vib-bench writes has 11 levels
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_]+")


class _Bad(Exception):
    def __init__(self, where: list, msg: str):
        super().__init__(msg)
        self.where, self.msg = where, msg


def _where(path: list) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + (p if _SIMPLE_KEY.fullmatch(p) else json.dumps(p))
    return out or "(top level)"


def parse(text: str, label: str):
    """The JSON value of ``text``; malformed or too deeply nested JSON is a one-line error."""
    try:
        return json.loads(text)  # NaN, Infinity and 1e400 parse (as floats): validate() names their field
    except json.JSONDecodeError as e:
        raise BenchError(
            f"{label}: not a valid results file (truncated or malformed JSON: {e.msg} at line "
            f"{e.lineno} column {e.colno})"
        ) from None
    except RecursionError:
        raise BenchError(f"{label}: not a valid results file (nested more than {MAX_DEPTH} levels deep)") from None


# ------------------------------------------------------------------------------------ type checks
def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _sound(obj, depth: int = 0) -> bool:
    """Whether the whole tree is at most MAX_DEPTH deep with finite numbers (the fast pass, no paths)."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(obj, dict):
        return all(_sound(v, depth + 1) for v in obj.values() if isinstance(v, (dict, list, float)))
    if isinstance(obj, list):
        return all(_sound(v, depth + 1) for v in obj if isinstance(v, (dict, list, float)))
    return not isinstance(obj, float) or math.isfinite(obj)


def _generic(obj, path: list, depth: int = 0) -> None:
    """Depth and finite numbers over the whole tree; the slow pass (with paths) runs only to name a problem."""
    if depth == 0 and _sound(obj):
        return
    if depth > MAX_DEPTH:
        raise _Bad(path, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _generic(v, path + [k], depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _generic(v, path + [i], depth + 1)
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise _Bad(
            path,
            "NaN, Infinity or an out-of-range number (such as 1e400) is not allowed; vib-bench "
            "writes a missing number as null",
        )


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_KINDS = {
    "dict": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": _is_int,
    "num": _is_num,
    "rate": lambda v: _is_num(v) and 0 <= v <= 1,
    "count": lambda v: _is_int(v) and v >= 0,
}
_EXPECTED = {
    "dict": "an object",
    "list": "a list",
    "str": "a string",
    "bool": "true or false",
    "int": "an integer",
    "num": "a number",
    "rate": "a number in [0, 1]",
    "count": "an integer >= 0",
}


def _type(v, kind: str, path: list) -> None:
    """``kind``: a name of _KINDS; a trailing ``?`` also allows null."""
    nullable = kind.endswith("?")
    base = kind.rstrip("?")
    if (v is None and nullable) or _KINDS[base](v):
        return
    shown = json.dumps(v)[:40] if not isinstance(v, (dict, list)) else type(v).__name__
    raise _Bad(path, f"{shown} is not {_EXPECTED[base]}{' or null' if nullable else ''}")


def _fields(obj: dict, spec: dict, path: list) -> None:
    """Each key of ``spec`` present in ``obj`` has its type (a kind name, or a function for nested checks)."""
    for key, kind in spec.items():
        if key in obj:
            if callable(kind):
                kind(obj[key], path + [key])
            else:
                _type(obj[key], kind, path + [key])


def _obj(spec: dict | None = None, nullable: bool = True):
    def check(v, path):
        _type(v, "dict?" if nullable else "dict", path)
        if v and spec:
            _fields(v, spec, path)

    return check


def _list_of(item, nullable: bool = True):
    def check(v, path):
        _type(v, "list?" if nullable else "list", path)
        for i, x in enumerate(v or []):
            item(x, path + [i]) if callable(item) else _type(x, item, path + [i])

    return check


def _map_of(item):
    """An object whose values all have one shape (``item``: a kind name or a check)."""

    def check(v, path):
        _type(v, "dict?", path)
        for k, x in (v or {}).items():
            item(x, path + [k]) if callable(item) else _type(x, item, path + [k])

    return check


def _names(v, path, what="model name"):
    _type(v, "dict?", path)
    for name in v or {}:
        problem = name_problem(name)
        if problem:
            raise _Bad(path + [name], f"{what} {problem}")


def _seed_list(v, path):
    _type(v, "list?", path)
    for i, s in enumerate(v or []):
        problem = seed_problem(s)
        if problem:
            raise _Bad(path + [i], f"seed {problem}")


# What the accessors of bench.results (and the stages reading through them) read.
_DATASET = _obj(
    {
        "name": "str",
        "checksum": "str?",
        "source": "str?",
        "in_shape": _list_of("int"),
        "num_classes": "int",
        "n_train": "int?",
        "n_val": "int?",
        "n_test": "int?",
    }
)
_RUN = _obj(
    {
        "dataset": _DATASET,
        "train": _obj(),
        "models": lambda v, p: (_names(v, p), _map_of("dict")(v, p)),
        "seeds": _seed_list,
        "plugins": _list_of("str"),
        "suite": _obj({"name": "str?"}),
    }
)
_STATS = _obj(
    {
        "median": "num?",
        "iqr": "num?",
        "mean": "num?",
        "stddev": "num?",
        "min": "num?",
        "max": "num?",
        "rounds": "int?",
        "batch_size": "int?",
    }
)
# the indicators of attack failure and the mitigations that ran (bench.attack.indicators, .mitigate)
_INDICATOR = _obj({"value": "rate?", "after": "rate?", "threshold": "num", "fired": "bool?"}, nullable=False)
_MITIGATION = _obj(
    {"indicator": "str", "action": "str?", "robust_acc_before": "rate", "robust_acc_after": "rate"}, nullable=False
)
_ATTACK = _obj(
    {
        "attack": "str",
        "norm": "str",
        "eps": "num?",
        "protocol": "str?",
        "robust_acc": "rate?",
        "ci_low": "rate?",
        "ci_high": "rate?",
        "n": "count?",
        "n_robust": "count?",
        "clean_acc": "rate?",
        "checks": _obj(),
        "config": _obj(),
        "leaderboard": "bool?",
        "indicators": _map_of(_INDICATOR),
        "mitigations": _list_of(_MITIGATION),
        "loss_trace": _list_of("num"),
        "mitigation_for": "str?",
        "robust_acc_before": "rate?",
    },
    nullable=False,
)
_SEED = _obj(
    {
        "train": _obj(
            {
                "state": "str",
                "epochs_done": "int?",
                "epochs": "int?",
                "train_time_s": "num?",
                "time_per_epoch_s": "num?",
                "examples_per_s": "num?",
                "final_val_error": "num?",
                "stack_size": "int?",
                "imported": _obj(),
                "error": "str?",
            }
        ),
        "clean": _obj(
            {
                "n": "count?",
                "error": "rate?",
                "nll": "num?",
                "ece": "rate?",
                "brier": "num?",
                "rate_nats": "num?",
                "reliability": _obj({k: _list_of("num?") for k in ("edges", "count", "confidence", "accuracy")}),
            }
        ),
        "attacks": _list_of(_ATTACK),
        "attack_checks": _obj(),
        "attack_setup": _obj({"n_examples": "count?", "clean_acc": "rate?", "eval_noise": "str?"}),
        "throughput": _obj({"params": "int?", "inference": _map_of(_STATS), "train": _STATS, "machine": _obj()}),
        "info": _obj(
            {
                "estimates": _map_of(_map_of("dict")),
                "bounds": _obj(),
                "flags": _list_of("dict"),
                "representation": "str?",
            }
        ),
        "infoplane": _obj(),
        "infoplane_setup": _obj(),
        "claims": _obj(),
        "failures": _list_of(_obj({"stage": "str?", "task": "str?", "error": "str?"}, nullable=False)),
    },
    nullable=False,
)


def _seeds(v, path):
    _type(v, "dict", path)
    for key, entry in v.items():
        problem = (
            seed_problem(int(key))
            if key.isascii() and key.isdigit() and len(key) <= 10
            else (f"{key!r} is not a seed (decimal digits)")
        )
        if problem:
            raise _Bad(path + [key], f"seed key {problem}")
        _SEED(entry, path + [key])


_MODEL = _obj({"config": _obj(), "stochastic": "bool?", "seeds": _seeds}, nullable=False)
_TOP = {
    "vib_bench_version": "str?",
    "run": _RUN,
    "environment": _obj(),
    "environments": _map_of(_obj()),
    "models": lambda v, p: (_names(v, p), _map_of(_MODEL)(v, p)),
    "claims": _obj({"setup": _obj(), "rows": _list_of("dict")}),
}


def validate(raw, label: str, schema: str) -> dict:
    """``raw`` when it is a well-formed results file of ``schema``; else one line naming file and field."""
    if not isinstance(raw, dict) or raw.get("schema") != schema or not isinstance(raw.get("models"), dict):
        raise BenchError(f"{label}: not a vib-bench results file (expected schema {schema!r})")
    try:
        _generic(raw, [])
        _fields(raw, _TOP, [])
    except _Bad as e:
        raise BenchError(f"{label}: {_where(e.where)}: {e.msg}") from None
    return raw
