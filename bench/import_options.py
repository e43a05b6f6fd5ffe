"""The options of ``vib-bench import`` (``bench.import_weights``), declared once (``bench.settings``): the
command's flags come from :class:`ImportOptions`; no suite table sets them. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import setting

if TYPE_CHECKING:
    import torch

DEFAULT_DATASET = "mnist"


@dataclass
class ImportOptions:
    """What ``vib-bench import`` needs."""

    model: str  # a registered architecture (the command's MODEL)
    weights: Path  # a safetensors state dict (the command's WEIGHTS)
    into: Path = setting(  # the run directory (created when absent)
        kind="str", suite=None, required=True, metavar="RUN_DIR", help="run directory (created when absent)"
    )
    overrides: dict = setting(
        kind="table",
        default_factory=dict,
        suite=None,
        flag="--set",
        metavar="KEY=VALUE",
        repeat=True,
        help="a model argument the weights were trained with, e.g. --set hidden=64,64 (repeatable)",
    )
    dataset: str | None = setting(  # default: the run's; for a new run, mnist
        None,
        kind="str",
        suite=None,
        shown=f"the run's; for a new run {DEFAULT_DATASET}",
        help="mnist, fashion-mnist or digits (default: {default})",
    )
    data_dir: str | None = None
    name: str | None = setting(  # the model's name in the run (default: ``model``)
        None,
        kind="str",
        suite=None,
        help="the model's name in the run (default: MODEL); letters, digits, _ . + = - (one path component)",
    )
    seed: int = setting(0, kind="int", suite=None, help="the seed slot it takes in the run (default: {default})")
    device: torch.device | str = "cpu"
    plugins: list[str] = field(default_factory=list)
    replace: bool = setting(  # take a slot that already holds a model-seed (its files and its entry)
        False,
        kind="bool",
        suite=None,
        help="overwrite the slot (models/<name>/seed<k>/ and its results entry) when it is taken",
    )
