"""The command-line flags of a stage, generated from its options dataclass (``bench.settings``).

:func:`add_flags` declares one flag per field that has one, with the field's default and the help text
that states it; :func:`flag_values` reads them back as the fields' values. A bool that defaults to true
is switched off by ``--no-NAME`` (argparse ``dest`` ``no_NAME``, default false). Where the command's flags
refine a suite table it reads itself (``bench.settings.refines_suite``), a suite setting's flag defaults to
None ("not given") and reads back as None.
"""

from __future__ import annotations

from dataclasses import MISSING

from ..settings import default_of, help_text, refines_suite, settings
from .common import parse_list

PARSE = {"int": int, "float": float, "str": str}


def dest_of(field, s) -> str:
    """The argparse ``dest`` of a setting's flag."""
    return s.flag.lstrip("-").replace("-", "_")


def add_flags(p, cls, only: list[str] | None = None, fill: dict | None = None) -> None:
    """One flag per declared field of ``cls`` that has one, in declaration order (or the fields ``only``, in
    that order); ``fill`` completes help texts known only now (``{suites}``: the shipped suites)."""
    declared = {f.name: (f, s) for f, s in settings(cls)}
    refine = refines_suite(cls)
    for f, s in [declared[n] for n in only] if only is not None else declared.values():
        if not s.flag:
            continue
        default, text = default_of(f), help_text(f, s)
        if default is MISSING or (refine and s.suite):  # a required setting, or the suite's: "not given"
            default = None
        for key, value in (fill or {}).items():
            text = text.replace("{" + key + "}", value)
        kw = {"dest": dest_of(f, s), "help": text}
        if s.metavar:
            kw["metavar"] = s.metavar
        if s.required:
            kw["required"] = True
        if s.kind == "bool":
            p.add_argument(s.flag, action="store_true", default=None if refine and s.suite else False, **kw)
        elif s.kind == "table":
            p.add_argument(s.flag, action="append", default=[], **kw)
        elif s.kind == "list":  # comma-separated on the command line
            p.add_argument(s.flag, default=None if default is None else ",".join(map(str, default)), **kw)
        else:
            p.add_argument(s.flag, type=PARSE[s.kind], default=default, choices=s.choices, **kw)


def flag_values(args, cls) -> dict:
    """Field name -> value of every flag :func:`add_flags` declared, except tables (the command parses those):
    lists are comma-separated, ``--no-NAME`` switches a setting off; a flag refining the suite's and not given
    is None."""
    out = {}
    refine = refines_suite(cls)
    for f, s in settings(cls):
        if not s.flag or s.kind == "table":
            continue
        value = getattr(args, dest_of(f, s))
        if refine and s.suite and value is None:
            out[f.name] = None
        elif s.kind == "bool":
            out[f.name] = not value if s.flag.startswith("--no-") else value
        elif s.kind == "list":
            out[f.name] = _list_value(f, s, value)
        else:
            out[f.name] = value
    return out


def _list_value(f, s, text):
    """A comma-separated list; given empty (``blank``): by default the field's default where it has one
    ("--seeds ''": seed 0), else ``[]``; "empty": ``[]``; "none": None ("not given")."""
    if not text:
        default = default_of(f)
        if s.blank == "none":
            return None
        if s.blank == "default" and default is not None:
            return default
    return parse_list(text, PARSE[s.item], s.what or f.name)
