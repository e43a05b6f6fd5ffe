"""The options of ``vib-bench run`` (``bench.campaign``), declared once (``bench.settings``): the flags of the
command come from :class:`RunOptions`. A suite file is their input, not their source: its tables are the
stages' (``bench.attack.options``, ``bench.timing_options``, ``bench.train.options``). Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import setting
from .train.options import STACK_MODES, TrainSettings

if TYPE_CHECKING:
    import torch

EXECUTORS = ("local", "ray")


@dataclass
class RunOptions:
    suite: dict = setting(
        kind="str",
        suite=None,
        required=True,  # a loaded suite (bench.suite.load_suite)
        help="a shipped suite ({suites}) or a .toml file",
    )
    out: Path | None = setting(
        None, kind="str", suite=None, metavar="RUN_DIR", shown="runs/<suite>", help="run directory (default: {default})"
    )
    models: list[str] | None = setting(  # patterns: run only these of the suite's models
        None,
        kind="list",
        suite=None,
        metavar="PATTERNS",
        what="model pattern",
        help="run only these of the suite's models (comma-separated names or wildcards; default: all)",
    )
    seeds: list[int] | None = setting(  # run these seeds instead of the suite's
        None,
        kind="list",
        item="int",
        suite=None,
        metavar="LIST",
        what="seed",
        help="run these seeds instead of the suite's (e.g. 0,1,2)",
    )
    resume: bool = setting(False, kind="bool", suite=None, help="continue; finished work is never redone")
    fresh: bool = setting(False, kind="bool", suite=None, help="discard what RUN_DIR holds and start over")
    dry_run: bool = setting(
        False, kind="bool", suite=None, help="print the plan (model-seeds, attack cells, estimated time) and exit"
    )
    executor: str = setting(  # who runs the work: "local" (this process) or "ray" (bench.executors)
        "local",
        kind="str",
        choices=EXECUTORS,
        suite=None,
        help="who runs the work: local (this process, the default) or ray (a graph of Ray tasks; the optional "
        'extra: pip install "vib-bench[ray]"); both write the same results file',
    )
    ray_address: str | None = setting(  # --executor ray: "auto", "HOST:PORT"; None starts a local Ray instance
        None,
        kind="str",
        suite=None,
        metavar="auto|HOST:PORT",
        help="with --executor ray: the cluster to use (auto: the one this machine belongs to; default: start a "
        "local Ray instance). The run directory must be on storage every node shares",
    )
    # bench.train.stacked: auto | on | off (Ray: auto stacks on CUDA only); the flag is train's (TrainSettings.stack)
    stack: str = setting(TrainSettings.stack, kind="str", choices=STACK_MODES, suite=None, flag=None)
    # process-level settings: the shared flags of bench.cli.common
    device: torch.device | str = "cpu"
    data_dir: str | None = None
    plugins: list[str] = field(default_factory=list)
    progress: bool | None = None
