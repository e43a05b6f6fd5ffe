"""Which members train together: the plan of a train stage, run job by job.

Members (model, seed) whose models have the same stackable structure (``program.structure``: same
class, layer shapes, activation) form one stack, whatever their regularizer strengths and seeds. A
member trains alone, through the per-model loop, when its model cannot be stacked (a plugin model of
unknown structure), when it is already trained (the loop reports it as skipped), when it resumes
from a per-model checkpoint, or when stacking is off. ``mode``:

* ``off``: the per-model loop for everyone;
* ``on``: every stackable group is stacked, even a group of one, and a stack whose stacked loss does
  not match its models' own is an error (``BenchError``), never a silent fall-back to the loop (on a
  GPU the loop is about 30x slower);
* ``auto`` (the default): groups of two or more are stacked (measured not slower than the loop on
  the CPU, and meant to be far faster on a GPU: see README, "Speed").

On resume, a stack checkpoint that no longer matches a planned stack (the selection changed, or
``--stack off``) is unpacked into per-model checkpoints, so its members continue in the loop from
where they stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ... import rundir
from ...errors import BenchError
from ...locking import member_busy, member_locks
from ..member_files import MemberFiles
from ..recipe import Cadence, TrainConfig, build_member, load_checkpoint, save_checkpoint, train_model
from ..weights import build_model
from .engine import StackMismatch, train_stack
from .program import structure
from .state import Member, stack_id, unpack_checkpoint

STACK_MODES = ("auto", "on", "off")
BUSY = "busy"  # the status run_job yields for a member another process is training


@dataclass
class Job:
    members: list[tuple[str, int]]  # (model, seed), in training order
    stacked: bool
    strict: bool = False  # --stack on: a stacked-loss mismatch is an error, not a fall-back

    @property
    def stack_id(self) -> str:
        return stack_id(self.members)


def check_mode(mode: str) -> str:
    if mode not in STACK_MODES:
        raise BenchError(f"--stack must be one of {', '.join(STACK_MODES)}, got {mode!r}")
    return mode


def plan(
    run_dir, dataset, model_overrides: dict[str, dict], seeds: list[int], cfg: TrainConfig, *, resume: bool, mode: str
) -> list[Job]:
    """The jobs in training order: a stack where the first of its members comes in the per-model order."""
    pairs = [(name, int(seed)) for name in model_overrides for seed in seeds]
    if check_mode(mode) == "off":
        return [Job([p], False) for p in pairs]
    keys = {}
    for name, ov in model_overrides.items():
        s = structure(build_model(name, ov, dataset.in_shape, dataset.num_classes))
        keys[name] = None if s is None else s.key
    groups: dict[tuple, list[tuple[str, int]]] = {}
    for name, seed in pairs:
        files = MemberFiles(run_dir, name, seed, cfg, model_overrides[name])
        if keys[name] is not None and not files.finished() and not (resume and files.checkpoint.exists()):
            groups.setdefault(keys[name], []).append((name, seed))
    min_size = 1 if mode == "on" else 2
    stack_of = {p: tuple(g) for g in groups.values() if len(g) >= min_size for p in g}
    jobs, started = [], set()
    for p in pairs:
        if p not in stack_of:
            jobs.append(Job([p], False))
        elif stack_of[p] not in started:
            started.add(stack_of[p])
            jobs.append(Job(list(stack_of[p]), True, strict=mode == "on"))
    return jobs


def unpack_stale(run_dir, jobs: list[Job], cfg: TrainConfig, model_overrides: dict, device) -> bool:
    """Unpack every stack checkpoint that is not a planned stack into per-model checkpoints (a failed
    member's state is dropped: it starts again); True when there was one."""
    planned = {j.stack_id for j in jobs if j.stacked}
    found = False
    for path in rundir.stack_checkpoints(run_dir):
        if path.stem in planned:
            continue
        ck = load_checkpoint(path, device)
        try:
            members = list(unpack_checkpoint(ck))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise BenchError(
                f"{path}: a damaged stack checkpoint; delete it to train its members from the start"
            ) from None
        if any(member_busy(rundir.member_lock_path(run_dir, name, seed)) for name, seed, _ in members):
            continue  # another process is training this stack now
        found = True
        failed = {int(i) for i, *_ in ck.get("failed", [])}
        for i, (name, seed, member_ck) in enumerate(members):
            if name not in model_overrides or i in failed:
                continue
            files = MemberFiles(run_dir, name, seed, cfg, model_overrides[name])
            if not files.finished() and not files.checkpoint.exists():
                files.mdir.mkdir(parents=True, exist_ok=True)
                save_checkpoint(files.checkpoint, member_ck)
        rundir.remove_stack_checkpoint(run_dir, path.stem)
    return found


def planned_jobs(
    run_dir,
    dataset,
    model_overrides: dict[str, dict],
    seeds: list[int],
    cfg: TrainConfig,
    *,
    device=torch.device("cpu"),
    resume: bool = False,
    mode: str = "auto",
) -> list[Job]:
    """The plan of a train stage, after unpacking stack checkpoints that no planned stack continues."""
    device = torch.device(device)
    run_dir = Path(run_dir)
    jobs = plan(run_dir, dataset, model_overrides, seeds, cfg, resume=resume, mode=mode)
    while resume and unpack_stale(run_dir, jobs, cfg, model_overrides, device):
        jobs = plan(run_dir, dataset, model_overrides, seeds, cfg, resume=resume, mode=mode)
    return jobs


def run_job(
    job: Job,
    run_dir,
    dataset,
    model_overrides: dict[str, dict],
    cfg: TrainConfig,
    *,
    device=torch.device("cpu"),
    resume: bool = False,
    progress=None,
    log: Callable = print,
    cadence: Cadence = Cadence(),
) -> Iterator[list[tuple[str, int, dict]]]:
    """Train one job: a stack (all its members at once) or the per-model loop; yield [(model, seed,
    status)] as members finish. A stack whose loss differs from its models' own falls back to the loop,
    or, for a strict job (``--stack on``), raises ``BenchError`` before training it.

    Each member is trained under its lock (``bench.locking.member_locks``): a member another process holds
    is not trained here and yields the status ``busy``; a stack whose members changed since it was planned
    (one busy, or finished meanwhile) trains the rest in the per-model loop."""
    device = torch.device(device)
    locks = [rundir.member_lock_path(run_dir, n, s) for n, s in job.members]
    with member_locks(locks) as got:
        busy = [p for p, ok in zip(job.members, got) if not ok]
        if busy:
            yield [(n, s, {"model": n, "seed": s, "state": BUSY}) for n, s in busy]
        mine = [p for p, ok in zip(job.members, got) if ok]
        stacked = (
            job.stacked
            and len(mine) == len(job.members)
            and not any(MemberFiles(run_dir, n, s, cfg, model_overrides[n]).finished() for n, s in mine)
        )
        yield from _run_members(
            mine,
            stacked,
            run_dir,
            dataset,
            model_overrides,
            cfg,
            device=device,
            resume=resume,
            progress=progress,
            log=log,
            cadence=cadence,
            strict=job.strict,
        )


def _run_members(
    pairs,
    stacked: bool,
    run_dir,
    dataset,
    model_overrides,
    cfg,
    *,
    device,
    resume,
    progress,
    log,
    cadence: Cadence,
    strict: bool,
):
    if stacked:
        members = []
        for name, seed in pairs:
            model, rng = build_member(name, seed, model_overrides[name], dataset, device)
            members.append(
                Member(
                    name,
                    seed,
                    model_overrides[name],
                    model,
                    rng,
                    MemberFiles(run_dir, name, seed, cfg, model_overrides[name]),
                )
            )
        try:
            statuses = train_stack(
                members, dataset, cfg, run_dir, device=device, resume=resume, progress=progress, cadence=cadence
            )
        except StackMismatch as e:
            if strict:
                raise BenchError(
                    f"--stack on: cannot stack {', '.join(f'{n} seed {s}' for n, s in pairs)}: "
                    f"the stacked loss differs from the model's own ({e}); use --stack auto to "
                    "train them one by one"
                ) from None
            log(
                f"not stacking {', '.join(f'{n} seed {s}' for n, s in pairs)}: the stacked loss "
                f"differs from the model's own ({e}); training them one by one"
            )
        else:
            yield [(n, s, st) for (n, s), st in zip(pairs, statuses)]
            return
        del members
    for name, seed in pairs:
        yield [
            (
                name,
                seed,
                train_model(
                    name,
                    seed,
                    dataset,
                    cfg,
                    run_dir,
                    overrides=model_overrides[name],
                    device=device,
                    resume=resume,
                    progress=progress,
                    cadence=cadence,
                ),
            )
        ]


def training_jobs(
    run_dir,
    dataset,
    model_overrides: dict[str, dict],
    seeds: list[int],
    cfg: TrainConfig,
    *,
    device=torch.device("cpu"),
    resume: bool = False,
    mode: str = "auto",
    progress=None,
    log: Callable = print,
    cadence: Cadence = Cadence(),
) -> Iterator[list[tuple[str, int, dict]]]:
    """Train every (model, seed); yield [(model, seed, status)] for each job as it finishes."""
    for job in planned_jobs(run_dir, dataset, model_overrides, seeds, cfg, device=device, resume=resume, mode=mode):
        yield from run_job(
            job,
            Path(run_dir),
            dataset,
            model_overrides,
            cfg,
            device=device,
            resume=resume,
            progress=progress,
            log=log,
            cadence=cadence,
        )
