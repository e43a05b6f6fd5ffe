"""The ``vib-bench`` command line: the face. It parses, calls the harness, prints; nothing else.

One module per command (``bench/cli/<command>.py``, each with ``register(subparsers)``), shared
options in ``common.py``. Mistakes in user input (``BenchError`` from the harness, ``ModelError``
and ``AttackError`` from the registries) come out as one line on stderr with exit status 2, never
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, BenchError

# Command modules, in --help order.
COMMANDS = [
    "listing",
    "show",
    "train",
    "import_weights",
    "run",
    "timing",
    "attack",
    "leaderboard",
    "compare",
    "history",
    "report",
    "info",
    "infoplane",
    "infoplane12",
    "mi_validate",
    "claims",
    "upgrade",
]

# Each command's name and the line `vib-bench --help` shows for it, by module. ``vib-bench --help`` lists the
# commands from here, and ``vib-bench COMMAND ...`` registers only COMMAND's module: registering a command
# reads its harness's defaults, which imports torch (seconds), so neither --help nor `list` pays for all of
# them. tests/test_packaging.py checks these lines against the ones the modules register.
SUMMARIES = {
    "listing": ("list", "list registered models, attacks, data sets, suites or estimators"),
    "show": ("show", "print a shipped suite (the starting point of your own)"),
    "train": ("train", "train models into a run directory"),
    "import_weights": (
        "import",
        "evaluate weights trained outside vib-bench (a safetensors state dict) in a run directory",
    ),
    "run": ("run", "run a whole benchmark suite: train, attack, time, leaderboard"),
    "timing": ("time", "measure inference and training throughput of a run's models"),
    "attack": ("attack", "robust accuracy of a run's models under adversarial attacks, with sanity checks"),
    "leaderboard": (
        "leaderboard",
        "one row per model from a run's results file (Markdown also refreshes leaderboard.md)",
    ),
    "compare": ("compare", "compare two runs metric by metric; exit 1 if something got worse (CI gate)"),
    "history": ("history", "one metric across many runs, with step changes found by a change-point fit"),
    "report": ("report", "figures and a self-contained HTML report of a run (RUN_DIR/report.html)"),
    "info": ("info", "estimate I(X;Z) and I(Z;Y) of each model's representation, beside the analytic bounds"),
    "infoplane": (
        "infoplane",
        "the information plane during training, from activation snapshots (and bounds on a VIB's z)",
    ),
    "infoplane12": (
        "infoplane12",
        "the information-plane experiment on the 12-bit task of Shwartz-Ziv & Tishby (2017), with its verdict table",
    ),
    "mi_validate": ("mi-validate", "check the MI estimators and the known-encoder bounds against known ground truth"),
    "claims": (
        "claims",
        "check the paper's claims: the paper's protocol beside the strongest evaluation, one verdict per claim",
    ),
    "upgrade": ("upgrade", "rewrite results files in the current results format"),
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks, and states every option's default (unless its help already does)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
            or isinstance(default, list)
            and not default
        ):
            return text
        return f"{text} (default: {default})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, not usage + message
        sub = self.prog.removeprefix("vib-bench").strip()
        raise BenchError(f"{sub}: {message}" if sub else message)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the full parser of that one command (by its name on the command line)
    and a one-line entry for each other command (what ``--help`` lists), so nothing else's harness is imported."""
    from .. import __version__

    parser = _Parser(
        prog="vib-bench", description="Benchmark and adversarial-robustness suite for classifier regularizers."
    )
    parser.add_argument("--version", action="version", version=f"vib-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        command, summary = SUMMARIES[module]
        if only is None or only == command:
            importlib.import_module(f"{__name__}.{module}").register(sub)
        else:
            sub.add_parser(command, help=summary, add_help=False)
    return parser


def _command_of(argv) -> str:
    """The command named on the command line ('' for none: ``vib-bench --help``)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _user_error(e: Exception) -> bool:
    """Whether ``e`` is the user's mistake (a registry's error can only come from a registry already imported)."""
    kinds = [BenchError] + [
        getattr(sys.modules.get(module), name, None)
        for module, name in (("models", "ModelError"), ("attacks", "AttackError"))
    ]
    return isinstance(e, tuple(k for k in kinds if k is not None))


class _Notice(logging.Handler):
    """The harness's notices (``logging`` under ``bench``) as one line each on stderr."""

    def emit(self, record):
        print(f"vib-bench: note: {' '.join(record.getMessage().split())}", file=sys.stderr)


def _show_notices() -> None:
    logger = logging.getLogger("bench")
    if not any(isinstance(h, _Notice) for h in logger.handlers):
        logger.addHandler(_Notice(logging.INFO))
        logger.setLevel(logging.INFO)


def main(argv=None) -> int:
    _show_notices()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(only=_command_of(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        from .. import plugins
        from ..locking import lock_timeout

        plugins.trust_recorded(getattr(args, "trust_plugins", False))
        lock_timeout()  # a bad VIB_BENCH_LOCK_TIMEOUT stops the command before it writes anything
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vib-bench: interrupted (finished work is saved; rerun with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        from ..io import STORAGE_ERRNOS

        if e.errno not in STORAGE_ERRNOS or os.environ.get("VIB_BENCH_DEBUG"):
            return _internal(e)
        print(
            f"vib-bench: error: {e.filename or 'a file'}: {e.strerror} (the disk is full or not writable); "
            "fix the storage and rerun (with --resume where the command takes it)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except Exception as e:
        if _user_error(e):
            print(f"vib-bench: error: {' '.join(str(e).split())}", file=sys.stderr)
            return getattr(e, "exit_code", EXIT_BAD_INPUT)
        return _internal(e)  # a bug, not a user error


def _internal(e: Exception) -> int:
    """One line for a bug (the traceback with VIB_BENCH_DEBUG=1)."""
    if os.environ.get("VIB_BENCH_DEBUG"):
        raise e
    msg = " ".join(str(e).split())[:300]
    print(
        f"vib-bench: internal error: {type(e).__name__}: {msg} (set VIB_BENCH_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
