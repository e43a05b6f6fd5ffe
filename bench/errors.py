"""User-facing errors and the exit codes every command shares.

Anything a user can get wrong (a bad flag, a missing file, a corrupt results file) raises
:class:`BenchError` with a one-line message. The CLI prints it as ``vib-bench: error: ...`` and
exits with status 2, never with a traceback.

Exit codes, the same for every command (so CI can tell a crash from a regression):

====  =====================================================================
0     success
1     a regression (``compare``) or a model that failed to train (``train``, ``run``)
2     bad input: a flag, a file, a suite, a results file (one line on stderr)
3     an internal error: a bug in vib-bench (one line; ``VIB_BENCH_DEBUG=1`` for the traceback)
130   interrupted (Ctrl-C); finished work is saved
====  =====================================================================
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class BenchError(Exception):
    """An error caused by the user's input or environment, reported as one line."""

    exit_code = EXIT_BAD_INPUT
