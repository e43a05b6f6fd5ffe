"""Stacked training: every model-seed of one architecture trained as one computation.

* ``program``: which models stack, and their objective on stacked parameters (batched matmuls);
* ``state``: the stacked parameters, EMA and per-member generators; the stack checkpoint;
* ``step``: one training step, eager or captured as a CUDA graph;
* ``engine``: the epoch loop of a stack, writing each member's usual files;
* ``plan``: which members train together, and the fallback to the per-model loop.

``training_jobs`` is what the train stage calls; the Ray executor plans with ``planned_jobs`` and runs
each job as one task with ``run_job``.
"""

from .plan import BUSY, STACK_MODES, Job, check_mode, planned_jobs, run_job, training_jobs

__all__ = ["BUSY", "STACK_MODES", "Job", "check_mode", "planned_jobs", "run_job", "training_jobs"]
