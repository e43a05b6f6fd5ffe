"""What an executor is given (:class:`Campaign`, a checked and planned campaign) and what it reports back
(:class:`Execution`); the executors (:mod:`.local`, :mod:`.ray`) build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Campaign:
    """A checked campaign (``bench.campaign._prepare``'s output): what the executors run."""

    out: Path
    names: list[str]  # the models run now
    seeds: list[int]
    dataset: object  # bench.data.Dataset
    per_model: dict[str, dict]  # model -> overrides
    cfg: object  # bench.train.recipe.TrainConfig
    attack_opts: object | None = None  # bench.attack.AttackOptions (None: the suite has no [attack] table)
    attack_plan: object | None = None
    timing: dict = field(default_factory=dict)
    device: torch.device | str = "cpu"
    resume: bool = False
    progress: bool | None = None
    plugins: list[str] = field(default_factory=list)
    suite: dict | None = None  # recorded in results.json
    stack: str = "auto"  # bench.train.stacked mode (Ray: auto stacks on CUDA workers only)


@dataclass
class Execution:
    """What an executor reports back: whether anything trained, and the tasks that failed for good."""

    trained_any: bool = True
    failures: list[tuple[str, int, str, str]] = field(default_factory=list)  # (model, seed, task, error)
