"""The stacked trainer: M members of one architecture trained as one computation, epoch by epoch.

It follows ``bench.train.recipe.train_model`` step for step and writes, per member, the same files
through the same code (``MemberFiles``): the epoch log, the status, snapshots, the final EMA weights.
What differs is how the steps run (``bench.train.stacked.step``), how validation runs (on CUDA, one batched
pass of every member over device-resident data where the members' evaluation is deterministic, the
MLPs; member by member for VIB, whose evaluation noise is the protocol's, and on the CPU) and the
resume state: one stack checkpoint, written atomically at the loop's cadence
(``bench.train.recipe.Cadence``), so a ``kill -9`` resumes every member from the same epoch and the stack
ends bit-identical to an uninterrupted one.

Times: a member's ``epoch_time_s`` and ``wall_time_s`` are its share of the stack's (the stack's time
/ its size), so per-member times add up to the wall time; its status records ``stack_size``.

On CUDA, everything runs with the stack's device current (``bench.train.recipe.on_device``), so
``cuda:N`` captures its graphs and side stream on device N.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from ... import rundir
from ..member_files import epoch_record
from ..recipe import (
    Cadence,
    TrainConfig,
    divergence,
    load_checkpoint,
    log_prob_metrics,
    on_device,
    save_checkpoint,
    validate,
)
from .program import StackProgram, check_members, structure
from .state import Member, Stack, stack_id
from .step import StackStep


class StackMismatch(RuntimeError):
    """The stacked program does not compute what a member's own ``loss`` computes."""


def cuda_graphs_default(device: torch.device) -> bool:
    """Graph capture on CUDA (``VIB_BENCH_CUDA_GRAPHS=0`` turns it off), never on the CPU."""
    return device.type == "cuda" and os.environ.get("VIB_BENCH_CUDA_GRAPHS", "1") != "0"


def train_stack(
    members: list[Member],
    data,
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool | None = None,
    graphs: bool | str | None = None,
    cadence: Cadence = Cadence(),
) -> list[dict]:
    """Train the members (built by ``bench.train.recipe.build_member``, ``files`` set) as one stack.

    Returns each member's status, in order. Raises :class:`StackMismatch` before writing anything
    when the stacked objective differs from a member's own; a member whose loss diverges is
    recorded as failed and the others go on.
    """
    device = torch.device(device)
    with on_device(device):
        return _train_stack(members, data, cfg, run_dir, device, resume, progress, graphs, cadence)


def _train_stack(members, data, cfg, run_dir, device, resume, progress, graphs, cadence) -> list[dict]:
    from tqdm import tqdm

    from models.base import scale_input

    graphs = cuda_graphs_default(device) if graphs is None else graphs
    program = StackProgram([structure(m.model) for m in members], data.num_classes, device)
    stack = Stack(members, device)

    x_fit, y_fit = data.split(cfg.train_split)
    x_fit, y_fit = x_fit.to(device), y_fit.to(device)
    x_val, y_val = (t.to(device) for t in data.split("val"))
    n, bs = len(x_fit), cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    step = StackStep(program, stack, cfg, scale_input(x_fit), y_fit, graphs)
    val_every = cadence.val_every(n, len(x_val))

    sid = stack_id([(m.name, m.seed) for m in members])
    ckpt_path = rundir.stack_checkpoint_path(run_dir, sid)
    start_epoch, ema_updates, logs = 0, 0, [None] * stack.size
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        start_epoch, ema_updates, opt_state = stack.load_state_dict(ck)
        step.load_optimizer_state(opt_state)
        logs = ck.get("logs") or logs
    reason = check_members(program, stack.params, stack.models, stack.noise, x_fit[:bs], y_fit[:bs], scale_input)
    if reason:
        raise StackMismatch(reason)

    statuses: dict[int, dict] = {}
    for i, m in enumerate(members):
        if i in stack.failed:
            m.files.epochs_done = stack.failed[i][1]
            statuses[i] = m.files.status("failed", error=stack.failed[i][0])
        else:
            m.files.begin(start_epoch, logs[i])

    label = ", ".join(f"{m.name}/{m.seed}" for m in members)
    bar = tqdm(
        total=cfg.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"stack of {stack.size} ({label})"[:60],
        unit="step",
        leave=False,
        dynamic_ncols=True,
        disable=(not progress) if progress is not None else None,
    )
    try:
        _epochs(
            members,
            stack,
            step,
            program,
            cfg,
            x_fit,
            y_fit,
            x_val,
            y_val,
            ckpt_path,
            start_epoch,
            ema_updates,
            statuses,
            bar,
            device,
            cadence,
            val_every,
        )
    except KeyboardInterrupt:  # Ctrl-C: no member's status may say "running"; the stack checkpoint resumes
        bar.close()
        for i in stack.active():
            members[i].files.status("interrupted")
        raise
    except BaseException as e:  # a full disk, a bug: no member's status may say "running" either
        bar.close()
        for i in stack.active():
            members[i].files.abort(e)
        raise
    bar.close()

    try:
        for i in stack.active():
            statuses[i] = members[i].files.finish(stack.ema_models[i], n, stack_size=stack.size, val_every=val_every)
    except BaseException as e:
        for i in stack.active():
            if i not in statuses:
                members[i].files.abort(e)
        raise
    rundir.remove_stack_checkpoint(run_dir, sid)
    return [statuses[i] for i in range(stack.size)]


def validate_stack(
    program: StackProgram,
    stack: Stack,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    epoch: int,
    device,
    batched: bool | None = None,
) -> dict[int, dict]:
    """Each active member's validation error and NLL (``bench.train.recipe.validate``'s numbers) for its EMA
    weights: in one batched pass over the stack, or member by member; one host synchronisation per member.

    The batched pass gives what each member's own evaluation gives: MLP members are deterministic, and a
    VIB member's evaluation noise is keyed on the example and the protocol's seed (``models.noise``), so
    every member draws the same ``eps``, computed once per batch. ``batched`` (default: on CUDA only): on
    the CPU the pass is compute-bound and the batched one was measured no faster (two 512-wide MLPs on
    MNIST's 5,000 validation images, one thread: 1.21-1.36 s batched, 1.13 s one by one)."""
    from models.base import scale_input
    from models.noise import NoiseKey, content_keys
    from models.vib import keyed_draws

    from ...protocol import EVAL_BATCH, EVAL_SEED

    active = stack.active()
    batched = torch.device(device).type == "cuda" if batched is None else batched
    if program.kind == "vib" and len({m.n_samples for m in stack.ema_models}) > 1:
        batched = False  # members that average different numbers of draws
    if not batched:
        return {i: validate(stack.ema_models[i], x_val, y_val, epoch, device) for i in active}
    xs, first = scale_input(x_val), stack.ema_models[0]
    out = []
    with torch.no_grad():
        for j in range(0, len(xs), EVAL_BATCH):
            xb = xs[j : j + EVAL_BATCH].unsqueeze(0).expand(stack.size, -1, -1)
            eps = None
            if program.kind == "vib":  # call 0 of a keyed block, as predict_log_probs makes it
                keys = NoiseKey(EVAL_SEED).keys_for(content_keys(x_val[j : j + EVAL_BATCH]), 0)
                eps = keyed_draws(keys, first.n_samples, first.k, xs.dtype)
            out.append(torch.log_softmax(program.eval_logits(stack.ema, xb, eps), dim=-1))
    logp = torch.cat(out, dim=1)
    return {i: log_prob_metrics(logp[i], y_val) for i in active}


def _epochs(
    members,
    stack,
    step,
    program,
    cfg,
    x_fit,
    y_fit,
    x_val,
    y_val,
    ckpt_path,
    start_epoch,
    ema_updates,
    statuses,
    bar,
    device,
    cadence,
    val_every: int,
) -> None:
    """The epochs of one stack, from ``start_epoch``: steps, divergence checks, validation (every
    ``val_every`` epochs and the last), checkpoints."""
    from ..snapshots import save_snapshot

    names = program.stat_names
    n, bs = len(x_fit), cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    t_mark = t_checkpoint = time.perf_counter()  # the end of the last epoch; of the last checkpoint
    for epoch in range(start_epoch, cfg.epochs):
        if not stack.active():
            break
        lr = cfg.lr_at(epoch)
        step.set_lr(lr)
        perms = torch.stack([torch.randperm(n, generator=g) for g in stack.shuffles]).to(device)
        step.reset_sums()
        t0 = time.perf_counter()
        for s in range(steps_per_epoch):
            step(perms[:, s * bs : (s + 1) * bs], ema_updates)
            ema_updates += 1
            if (s + 1) % cfg.log_every == 0 or s + 1 == steps_per_epoch:
                sums = step.sums.cpu().tolist()
                for i in stack.active():
                    means = {k: sums[names.index(k)][i] / (s + 1) for k in program.member_stats[i]}
                    error = divergence(means, epoch, s)
                    if error:
                        stack.failed[i] = (error, members[i].files.epochs_done)
                        statuses[i] = members[i].files.status("failed", error=error)
                active = stack.active()
                if not active:
                    break
                loss = sum(sums[names.index("loss")][i] for i in active) / len(active) / (s + 1)
                bar.set_postfix({"loss": f"{loss:.4g}"}, refresh=False)
                bar.update((s + 1) - (bar.n - epoch * steps_per_epoch))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        share = (t1 - t0) / stack.size
        sums = step.sums.cpu().tolist()
        vals = (
            validate_stack(program, stack, x_val, y_val, epoch, device)
            if Cadence.val_due(epoch + 1, cfg.epochs, val_every)
            else {}
        )
        val_share = (time.perf_counter() - t1) / stack.size
        active = stack.active()
        for i in active:
            if cfg.snapshot_every and ((epoch + 1) % cfg.snapshot_every == 0 or epoch == 0):
                save_snapshot(
                    members[i].files.mdir, stack.models[i], x_fit[: cfg.snapshot_n], y_fit[: cfg.snapshot_n], epoch + 1
                )
        now = time.perf_counter()
        for i in active:
            means = {k: sums[names.index(k)][i] / steps_per_epoch for k in program.member_stats[i]}
            members[i].files.log_epoch(
                epoch_record(epoch, lr, means, vals.get(i), share, val_share, n, (now - t_mark) / stack.size)
            )
        due = cadence.due(epoch + 1, cfg.epochs, now - t_checkpoint)
        if due:
            save_checkpoint(
                ckpt_path,
                stack.state_dict(epoch + 1, ema_updates, step.optimizer_state(), [m.files.log_lines for m in members]),
            )
            t_checkpoint = time.perf_counter()
            for i in active:
                members[i].files.add_checkpoint_time((t_checkpoint - now) / stack.size)
        t_mark = time.perf_counter()
        for i in active:
            members[i].files.epoch_done(epoch + 1, due)
