"""Executors: who carries out a campaign's work once ``bench.campaign`` has checked and planned it.

* ``local`` (the default, :mod:`.local`): everything in this process, stage after stage.
* ``ray`` (:mod:`.ray`): a graph of Ray tasks on a local or remote Ray cluster (train units, one attack
  setup per model-seed, attack units, timing), with this process as the driver and the only writer of
  ``results.json`` and the per-example stores.

Both produce the same results file: the same records, per-example vectors and numbers (environments and
wall times differ). Ray is an optional extra: nothing here imports it until the ray executor runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import BenchError

EXECUTORS = ("local", "ray")
RAY_MISSING = 'the ray executor needs Ray, which is not installed here: pip install "vib-bench[ray]"'


@dataclass
class Campaign:
    """A checked campaign (``bench.campaign._prepare``'s output): what the executors run."""

    out: Path
    names: list[str]                     # the models run now
    seeds: list[int]
    dataset: object                      # bench.data.Dataset
    per_model: dict[str, dict]           # model -> overrides
    cfg: object                          # bench.training.TrainConfig
    attack_opts: object | None = None    # bench.attack.AttackOptions (None: the suite has no [attack] table)
    attack_plan: object | None = None
    timing: dict = field(default_factory=dict)
    device: torch.device | str = "cpu"
    resume: bool = False
    progress: bool | None = None
    plugins: list[str] = field(default_factory=list)
    suite: dict | None = None            # recorded in results.json
    stack: str = "auto"                  # bench.stacked mode (Ray: auto stacks on CUDA workers only)


@dataclass
class Execution:
    """What an executor reports back: whether anything trained, and the tasks that failed for good."""

    trained_any: bool = True
    failures: list[tuple[str, int, str, str]] = field(default_factory=list)   # (model, seed, task, error)


def require_ray() -> None:
    """Raise a one-line error naming the install command when Ray is not importable."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise BenchError(RAY_MISSING) from None


def make_executor(name: str, ray_address: str | None = None):
    """The executor called ``name``; checked before any work (Ray must be importable for ``ray``)."""
    if name not in EXECUTORS:
        raise BenchError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if name == "local":
        if ray_address:
            raise BenchError("--ray-address needs --executor ray")
        from .local import LocalExecutor

        return LocalExecutor()
    require_ray()
    from .ray import RayExecutor

    return RayExecutor(address=ray_address)
