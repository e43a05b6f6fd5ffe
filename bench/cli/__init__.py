"""The ``vib-bench`` command line: the face. It parses, calls the harness, prints; nothing else.

One module per command (``bench/cli/<command>.py``, each with ``register(subparsers)``), shared
options in ``common.py``. Mistakes in user input (``BenchError`` from the harness, ``ModelError``
and ``AttackError`` from the registries) come out as one line on stderr with exit status 2, never
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, BenchError

# Command modules, in --help order.
COMMANDS = ["listing", "show", "train", "import_weights", "run", "timing", "attack", "leaderboard", "compare", "history",
            "report", "info", "infoplane", "infoplane12", "mi_validate", "claims"]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks, and states every option's default (unless its help already does)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS) or action.option_strings == []
                or isinstance(default, list) and not default):
            return text
        return f"{text} (default: {default})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, not usage + message
        sub = self.prog.removeprefix("vib-bench").strip()
        raise BenchError(f"{sub}: {message}" if sub else message)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="vib-bench", description="Benchmark and adversarial-robustness suite for classifier regularizers.")
    parser.add_argument("--version", action="version", version=f"vib-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from attacks import AttackError
    from models import ModelError

    return (BenchError, ModelError, AttackError)


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return int(args.func(args) or 0)
    except _user_errors() as e:
        print(f"vib-bench: error: {' '.join(str(e).split())}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("vib-bench: interrupted (finished work is saved; rerun with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug, not a user error: one line unless asked for the traceback
        if os.environ.get("VIB_BENCH_DEBUG"):
            raise
        msg = " ".join(str(e).split())[:300]
        print(f"vib-bench: internal error: {type(e).__name__}: {msg} (set VIB_BENCH_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
