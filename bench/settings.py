"""Settings declared once: a stage's options dataclass carries, on each field, everything the suite file
and the command line need to know about it.

``setting(...)`` is ``dataclasses.field`` plus a :class:`Setting` in the field's metadata: the kind of
value, its bounds or choices, its help text, its suite key (``[attack] eps``) and its CLI flag
(``--eps``). From those declarations come

* the suite-file checks (:func:`suite_schema`, used by ``bench.suite``) and the options a suite table
  gives (:func:`from_table`);
* the CLI flags and the defaults they state (``bench.cli.flags`` turns a :class:`Setting` into
  ``add_argument``; this module knows no argparse).

A field's default is the one default: the CLI's argparse default, the suite's value when a key is absent
and the help text's "(default: ...)" all read it. This module imports neither torch nor any stage.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass

KINDS = ("int", "float", "bool", "str", "list", "table")
SAME = object()  # suite key / flag derived from the field name


@dataclass(frozen=True)
class Setting:
    """What a suite file and the command line need to know about one options field."""

    kind: str  # one of KINDS
    help: str = ""  # "{default}" is replaced by the stated default
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False  # lo itself is not allowed
    open_hi: bool = False  # hi itself is not allowed
    choices: tuple | None = None
    item: str = "str"  # kind of a list's items
    nonempty: bool = True  # a list may not be empty
    suite: str | None = None  # key in the stage's suite table (None: not settable from a suite)
    flag: str | None = None  # CLI flag (None: no flag); a bool defaulting to true has a --no-... flag
    metavar: str | None = None
    shown: str | None = None  # the stated default when the field's own is None ("as large as fits")
    repeat: bool = False  # a table flag given once per entry (--attack-set A.K=V ...)
    what: str | None = None  # the noun of a bad list item in an error (default: the field name)
    required: bool = False  # the flag must be given (its field's default None means "not given")
    blank: str = "default"  # a list flag given empty: the field's default ([] where it is None), "empty" or "none"

    def check(self, v) -> str | None:
        """Why ``v`` is not a valid value of this setting (None when it is), as a suite error's tail."""
        if self.kind == "list":
            if not isinstance(v, list):
                return f"{v!r} is not a list"
            if self.nonempty and not v:
                return "is empty"
            item = dataclasses.replace(self, kind=self.item)
            return next((msg for x in v if (msg := item.check(x))), None)
        return _CHECKS[self.kind](self, v)


def _check_int(s: Setting, v):
    if isinstance(v, bool) or not isinstance(v, int):
        return f"{v!r} is not an integer"
    return _bounds(s, v)


def _check_float(s: Setting, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return f"{v!r} is not a number"
    return _bounds(s, v)


def _bounds(s: Setting, v):
    if s.lo is not None and (v <= s.lo if s.open_lo else v < s.lo):
        return f"{v:g} is {'not above' if s.open_lo else 'below'} {s.lo:g}"
    if s.hi is not None and (v >= s.hi if s.open_hi else v > s.hi):
        return f"{v:g} is {'not below' if s.open_hi else 'above'} {s.hi:g}"
    return None


def _check_str(s: Setting, v):
    if not isinstance(v, str):
        return f"{v!r} is not a string"
    if s.choices and v not in s.choices:
        return f"{v!r} is not one of {', '.join(s.choices)}"
    return None


def _check_bool(s: Setting, v):
    return None if isinstance(v, bool) else f"{v!r} is not true or false"


def _check_table(s: Setting, v):
    return None if isinstance(v, dict) else "is not a table"


_CHECKS: dict[str, Callable] = {
    "int": _check_int,
    "float": _check_float,
    "str": _check_str,
    "bool": _check_bool,
    "table": _check_table,
}


def setting(default=MISSING, *, kind: str, help: str = "", suite=SAME, flag=SAME, default_factory=MISSING, **more):
    """A dataclass field declared with its :class:`Setting`; ``suite``/``flag`` default to the field name
    (``eps_l2`` -> suite key ``eps_l2``, flag ``--eps-l2``; a bool defaulting to true -> ``--no-eps-l2``),
    None leaves it out of the suite file / the command line."""
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}")
    meta = {"setting": (kind, help, suite, flag, more)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def _resolve(f: dataclasses.Field) -> Setting | None:
    raw = f.metadata.get("setting")
    if raw is None:
        return None
    kind, help_text, suite, flag, more = raw
    if suite is SAME:
        suite = f.name
    if flag is SAME:
        negated = kind == "bool" and default_of(f) is True
        flag = ("--no-" if negated else "--") + f.name.replace("_", "-")
    return Setting(kind, help_text, suite=suite, flag=flag, **more)


def default_of(f: dataclasses.Field):
    """A field's default value (a fresh one from its factory; MISSING when it has none)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def settings(cls) -> list[tuple[dataclasses.Field, Setting]]:
    """The declared fields of an options dataclass, in order, with their settings."""
    return [(f, s) for f in dataclasses.fields(cls) if (s := _resolve(f)) is not None]


def suite_schema(cls) -> dict[str, Callable]:
    """Suite key -> check (``value -> None | why not``) for every field a suite may set."""
    return {s.suite: s.check for _, s in settings(cls) if s.suite}


def from_table(cls, table: dict) -> dict:
    """The options (field name -> value) a suite table sets; absent keys are left to the field defaults."""
    return {f.name: table[s.suite] for f, s in settings(cls) if s.suite and s.suite in table}


def refines_suite(cls) -> bool:
    """Whether the command of ``cls`` reads a suite table itself, its flags refining the table's values
    (``vib-bench claims`` reads the run's ``[claims]``; the class says ``FLAGS_REFINE_SUITE = True``): the flag
    of a suite setting then defaults to None, "not given", so the suite's value applies, else the field's."""
    return bool(getattr(cls, "FLAGS_REFINE_SUITE", False))


def first_error(obj) -> tuple[str, str] | None:
    """The first declared field of an options object whose value its setting refuses: (field name, why not)."""
    for f, s in settings(type(obj)):
        msg = s.check(getattr(obj, f.name))
        if msg and not (getattr(obj, f.name) is None and default_of(f) is None):  # None: "not given"
            return f.name, msg
    return None


def stated_default(f: dataclasses.Field, s: Setting) -> str:
    """The default as the help text states it."""
    if s.shown is not None:
        return s.shown
    d = default_of(f)
    if isinstance(d, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in d)
    return f"{d:g}" if isinstance(d, float) else str(d)


def help_text(f: dataclasses.Field, s: Setting) -> str:
    return s.help.replace("{default}", stated_default(f, s))
