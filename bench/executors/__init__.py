"""Executors: who carries out a campaign's work once ``bench.campaign`` has checked and planned it.

* ``local`` (the default, :mod:`.local`): everything in this process, stage after stage.
* ``ray`` (:mod:`.ray`): a graph of Ray tasks on a local or remote Ray cluster (train units, one attack
  setup per model-seed, attack units, timing), with this process as the driver and the only writer of
  ``results.json`` and the per-example stores.

Both produce the same results file: the same records, per-example vectors and numbers (environments and
wall times differ). Ray is an optional extra: nothing here imports it until the ray executor runs.
"""

from __future__ import annotations

from ..errors import BenchError
from .work import Campaign, Execution

__all__ = ["EXECUTORS", "Campaign", "Execution", "make_executor", "require_ray"]

EXECUTORS = ("local", "ray")
RAY_MISSING = 'the ray executor needs Ray, which is not installed here: pip install "vib-bench[ray]"'


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
