"""User-facing errors.

Anything a user can get wrong (a bad flag, a missing file, a corrupt results file) raises
:class:`BenchError` with a one-line message. The CLI prints it as ``vib-bench: error: ...`` and
exits with status 2, never with a traceback.
"""


class BenchError(Exception):
    """An error caused by the user's input or environment, reported as one line."""

    exit_code = 2
