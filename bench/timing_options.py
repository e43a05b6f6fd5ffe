"""The timing stage's settings, declared once (``bench.settings``): a suite's ``[timing]`` table and the
flags of ``vib-bench time`` come from :class:`TimingOptions`. Imports no torch (``bench.timing`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import from_table, setting


@dataclass(frozen=True)
class TimingOptions:
    """How throughput is measured (``bench.timing``): inference batch sizes, the training batch, seconds per
    measurement; ``fresh`` times models that were timed before again."""

    batch_sizes: tuple[int, ...] = setting(
        (1, 100, 1000), kind="list", item="int", lo=1, flag=None, help="inference batch sizes (default: {default})"
    )
    min_run_time: float = setting(
        0.5, kind="float", lo=0, open_lo=True, help="seconds per measurement (default {default})"
    )
    train_batch: int = setting(
        100, kind="int", lo=1, flag=None, help="batch of the timed training step (default: {default})"
    )
    fresh: bool = setting(False, kind="bool", suite=None, help="time models that were timed before again")

    @classmethod
    def from_suite(cls, table: dict | None) -> TimingOptions:
        """The options of a suite's ``[timing]`` table (checked by ``bench.suite``; absent keys: the defaults)."""
        kw = from_table(cls, table or {})
        if "batch_sizes" in kw:
            kw["batch_sizes"] = tuple(kw["batch_sizes"])
        return cls(**kw)
