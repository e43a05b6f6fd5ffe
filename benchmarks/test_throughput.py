"""pytest-benchmark suite: every registered model's forward pass and training step, paper sizes.

Not part of the default test run. Track speed across commits with pytest-benchmark itself:

    python -m pytest benchmarks/test_throughput.py --benchmark-autosave
    python -m pytest benchmarks/test_throughput.py --benchmark-compare --benchmark-compare-fail=median:10%
"""

import copy

import pytest
import torch

from bench.train.recipe import TrainConfig, make_optimizer, make_train_step
from models import create_model, list_models

BATCH = 100


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g)


@pytest.mark.parametrize("name", list_models())
def test_forward(benchmark, name, batch):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x, _ = batch
    benchmark.extra_info["examples_per_call"] = BATCH

    def run():
        with torch.no_grad():
            return model(x)

    assert benchmark(run).shape == (BATCH, 10)


@pytest.mark.parametrize("name", list_models())
def test_train_step(benchmark, name, batch):
    torch.manual_seed(0)
    model = create_model(name).train()
    cfg = TrainConfig()
    step = make_train_step(model, copy.deepcopy(model), make_optimizer(list(model.parameters()), cfg, "cpu"), cfg)
    x, y = batch
    benchmark.extra_info["examples_per_call"] = BATCH
    stats = benchmark(step, x, y, 10_000)
    assert torch.isfinite(stats["loss"])
