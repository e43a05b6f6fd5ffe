"""CUDA only (marker ``gpu``; skipped without a CUDA device): the captured step equals the eager step,
CUDA training is deterministic, ``cuda:N`` trains on device N, and training records its numerics.

None of these has run on hardware in the session that wrote them (no GPU was available): see
docs/scaling.md. ``benchmarks/gpu_check.py`` checks the same things on a GPU in one command.
"""

import pytest
import torch
from safetensors.torch import load_file

from bench import rundir
from bench.train.recipe import TrainConfig, build_member, on_device
from bench.train.stacked.program import StackProgram, structure
from bench.train.stacked.state import Member, Stack
from bench.train.stacked.step import StackStep
from bench.train.stage import train_run
from models.base import scale_input

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TINY = {"hidden": [64, 64]}
quiet = dict(progress=False, log=lambda *_: None)


def _steps(digits, names, device, graphs, n=12):
    """``n`` steps of a stack of ``names`` x seeds 0, 1 (two batch sizes: two graphs); the tensors a step
    changes, and the parameters before the first step."""
    ov = {**TINY, "k": 8} if "vib" in names[0] else TINY
    x, y = (t.to(device) for t in digits.split("train"))
    members = []
    for name in names:
        for seed in (0, 1):
            model, rng = build_member(name, seed, ov, digits, device)
            members.append(Member(name, seed, ov, model, rng))
    with on_device(device):
        stack = Stack(members, device)
        program = StackProgram([structure(m.model) for m in members], 10, device)
        step = StackStep(program, stack, TrainConfig(lr=1e-3), scale_input(x), y, graphs)
        before = [p.detach().clone() for p in stack.params]
        perm = torch.stack([torch.randperm(len(x), generator=g) for g in stack.shuffles]).to(device)
        for i in range(n):
            start = (i * 100) % 1000
            step(perm[:, start : start + (77 if i == 5 else 100)], i)
        torch.cuda.synchronize(device)
    return [p.detach().clone() for p in stack.params] + [e.clone() for e in stack.ema], before, step


@pytest.mark.parametrize("names", [["mlp", "dropout", "confidence_penalty"], ["vib_beta1e-3", "vib_beta1e-2"]])
def test_the_captured_step_equals_the_eager_step_and_trains(digits, names):
    device = torch.device("cuda")
    captured, before, step = _steps(digits, names, device, True)
    eager, _, _ = _steps(digits, names, device, False)
    assert step.capture and sorted(step._graphs) == [77, 100]
    for a, b in zip(captured, eager):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), float((a - b).abs().max())
    # the replayed graph really updated the parameters (a graph that does nothing would also "agree" with
    # nothing; it must move them as far as the eager steps do)
    for p, p0 in zip(captured, before):
        assert float((p - p0).abs().max()) > 1e-4


def test_two_cuda_runs_give_identical_weights(tmp_path, digits):
    models = {"mlp": TINY, "dropout": TINY, "vib_beta1e-3": {**TINY, "k": 8}}
    cfg = TrainConfig(epochs=2, lr=1e-3)
    for sub in ("a", "b"):
        train_run(tmp_path / sub, digits, models, [0, 1], cfg, device=torch.device("cuda"), stack="on", **quiet)
    for name in models:
        for seed in (0, 1):
            a = load_file(str(rundir.weights_path(tmp_path / "a", name, seed)))
            b = load_file(str(rundir.weights_path(tmp_path / "b", name, seed)))
            assert all(torch.equal(a[k], b[k]) for k in a), (name, seed)


def test_training_on_cuda_records_its_numerics(tmp_path, digits):
    from bench.runs import open_run

    train_run(tmp_path, digits, {"mlp": TINY}, [0], TrainConfig(epochs=1), device=torch.device("cuda"), **quiet)
    num = open_run(tmp_path).environment("train")["numerics"]
    assert num["cuda_version"] and num["tf32_matmul"] is False and num["tf32_cudnn"] is False
    assert num["float32_matmul_precision"] == "highest" and num["CUBLAS_WORKSPACE_CONFIG"]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_n_trains_on_device_n(tmp_path, digits):
    """A stack on cuda:1 captures its graphs there and ends with the weights a stack on cuda:0 gets."""
    models = {"mlp": TINY, "dropout": TINY}
    cfg = TrainConfig(epochs=2, lr=1e-3)
    for i in (0, 1):
        train_run(tmp_path / str(i), digits, models, [0, 1], cfg, device=torch.device(f"cuda:{i}"), stack="on", **quiet)
    for name in models:
        a = load_file(str(rundir.weights_path(tmp_path / "0", name, 0)))
        b = load_file(str(rundir.weights_path(tmp_path / "1", name, 0)))
        assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a), name
