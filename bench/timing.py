"""The timing stage. Throughput: inference examples/s at several batch sizes and training examples/s, per model.

Measured with ``torch.utils.benchmark`` (warm-up, then blocks of repetitions until a minimum run
time); statistics are over the blocks' per-call times and quoted as examples/s. Compare medians,
and only between like machines: the machine is recorded alongside.
"""

from __future__ import annotations

import copy
import logging
import statistics

import torch

# torch.utils.benchmark imports cpp_extension, which warns about a missing CUDA toolkit on CPU machines.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

from .env import cpu_model, device_name
from .errors import BenchError
from .flops import train_flops_per_example
from .protocol import EVAL_SEED, eval_mode, keyed_noise
from .timing_options import TimingOptions

DEFAULTS = TimingOptions()


def _stats(times_s: list[float], batch: int) -> dict:
    rates = sorted(batch / t for t in times_s)
    q = statistics.quantiles(rates, n=4) if len(rates) >= 2 else [rates[0]] * 3
    return {
        "median": statistics.median(rates),
        "iqr": q[2] - q[0],
        "mean": statistics.fmean(rates),
        "stddev": statistics.stdev(rates) if len(rates) > 1 else 0.0,
        "min": rates[0],
        "max": rates[-1],
        "rounds": len(rates),
        "batch_size": batch,
    }


def _measure(fn, min_run_time: float) -> list[float]:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return list(m.times)


def machine(device) -> dict:
    device = torch.device(device)
    return {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
    }


def throughput(
    model: torch.nn.Module,
    in_shape,
    num_classes: int,
    *,
    device="cpu",
    batch_sizes=DEFAULTS.batch_sizes,
    train_batch: int = DEFAULTS.train_batch,
    min_run_time: float = DEFAULTS.min_run_time,
    seed: int = 0,
) -> dict:
    """Time one model's prediction (as it predicts: VIB averages its samples) and training step."""
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {
        "params": int(sum(p.numel() for p in model.parameters())),
        "inference": {},
        "train_flops_per_example": train_flops_per_example(model),
        "machine": machine(device),
    }
    with eval_mode(model), torch.no_grad(), keyed_noise(model, EVAL_SEED):  # as predictions run: keyed noise
        for bs in batch_sizes:
            x = torch.rand(bs, *in_shape, generator=g).to(device)

            def infer():
                model(x)
                sync()

            out["inference"][str(bs)] = _stats(_measure(infer, min_run_time), bs)

    from .train.recipe import TrainConfig, make_optimizer, make_train_step

    trainee = copy.deepcopy(model).train()
    ema = copy.deepcopy(model)
    cfg = TrainConfig()
    step = make_train_step(trainee, ema, make_optimizer(list(trainee.parameters()), cfg, device), cfg)
    x = torch.rand(train_batch, *in_shape, generator=g).to(device)
    y = torch.randint(0, num_classes, (train_batch,), generator=g).to(device)

    def train():
        step(x, y, 10_000)
        sync()

    out["train"] = _stats(_measure(train, min_run_time), train_batch)
    return out


def timing_pairs(run_dir, res, fresh: bool = False, log=print) -> list[tuple[str, int]]:
    """The model-seeds to time: each trained model's first seed (speed does not depend on the seed), unless
    it was timed before and not ``fresh``."""
    from .runs import select_trained

    seen, pairs = set(), []
    for name, seed in select_trained(run_dir, res):
        if name in seen:
            continue
        seen.add(name)
        if res.seed(name, seed).throughput and not fresh:
            log(f"{name}: already timed (pass --fresh to time it again)")
            continue
        pairs.append((name, seed))
    return pairs


def time_model(run_dir, name: str, seed: int, in_shape, num_classes: int, timing: dict, device) -> dict:
    """Throughput of one trained model-seed with a suite's ``[timing]`` settings."""
    from .train.weights import load_trained

    opts = TimingOptions.from_suite(timing)
    model = load_trained(run_dir, name, seed, device)
    return throughput(
        model,
        in_shape,
        num_classes,
        device=device,
        batch_sizes=opts.batch_sizes,
        train_batch=int(opts.train_batch),
        min_run_time=float(opts.min_run_time),
    )


def record_throughput(run_dir, name: str, seed: int, tp: dict | None, error: str | None = None) -> str:
    """Record one model's throughput (or the failure of its timing task) and return the line to print."""
    from .results import update_results

    def write(r):
        entry = r.seed(name, seed)
        if tp is not None:
            entry.set_throughput(tp)
        entry.set_failures("timing", [] if error is None else [{"task": "timing", "error": error}])

    update_results(run_dir, write)
    if tp is None:
        return f"{name}: timing FAILED: {error}"
    return (
        f"{name}: {tp['params']:,} params, inference {tp['inference'].get('100', {}).get('median', 0):,.0f} ex/s "
        f"@100, training {tp['train']['median']:,.0f} ex/s"
    )


def time_run(run_dir, timing: dict, *, device, fresh: bool = False, log=print) -> None:
    """Throughput of every trained model (first seed only: speed does not depend on the seed)."""
    from .runs import open_run

    if "min_run_time" in timing and not float(timing["min_run_time"]) > 0:
        raise BenchError(f"--min-run-time must be > 0, got {timing['min_run_time']}")
    res = open_run(run_dir)
    ds = res.dataset
    for name, seed in timing_pairs(run_dir, res, fresh, log):
        tp = time_model(run_dir, name, seed, ds["in_shape"], ds["num_classes"], timing, device)
        log(record_throughput(run_dir, name, seed, tp))
