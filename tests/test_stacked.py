"""Stacked training: members match their separate runs, a stack is deterministic and resumable
(kill -9 included), its files are the loop's files, and what cannot be stacked falls back to the loop."""

import json
from pathlib import Path

import pytest
import torch
from conftest import sigkill_mid_training
from safetensors import safe_open
from safetensors.torch import load_file

from bench import rundir
from bench.cli import main
from bench.train.recipe import EVERY_EPOCH, TrainConfig, build_member
from bench.train.stacked.plan import plan
from bench.train.stacked.program import StackProgram, structure
from bench.train.stacked.state import Member, Stack
from bench.train.stacked.step import StackStep
from bench.train.stage import train_run
from models import register_model, unregister_model
from models.base import scale_input
from models.mlp import MLPClassifier

REPO = Path(__file__).resolve().parent.parent
TINY = {"hidden": [32, 32]}
SUITE = {
    "mlp": TINY,
    "dropout": TINY,
    "confidence_penalty": TINY,
    "label_smoothing": TINY,
    "vib_beta1e-3": {**TINY, "k": 8},
    "vib_beta1e-2": {**TINY, "k": 8},
}
quiet = dict(progress=False, log=lambda *_: None)


def weights(run_dir, model, seed=0):
    return load_file(str(rundir.weights_path(run_dir, model, seed)))


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def files_of(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in Path(run_dir).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def loop_and_stack(tmp_path_factory):
    """The same six models trained 10 epochs of 22 batches (220 steps) by the loop and as two stacks."""
    from bench.data import load_dataset

    digits = load_dataset("digits")
    root = tmp_path_factory.mktemp("stacked")
    cfg = TrainConfig(epochs=10, batch_size=50, lr=1e-3)
    out = {}
    for mode in ("off", "auto"):
        out[mode] = train_run(root / mode, digits, SUITE, [0], cfg, stack=mode, **quiet)
    return root / "off", root / "auto", out["off"], out["auto"]


def flat(w: dict) -> torch.Tensor:
    return torch.cat([w[k].detach().flatten() for k in sorted(w)])


def test_stacked_members_match_their_separate_runs(loop_and_stack, digits):
    """Distances are relative to how far training moved the weights. Rounding differences stay near 0
    (1.3e-7 to 3e-7 were seen; Adam can amplify them where a gradient is about 0); a member trained on
    another data order lands 0.2-0.4 away, one with other noise 0.08-0.27 (dropout, VIB)."""
    loop, stacked, res_loop, res_stacked = loop_and_stack
    for name in SUITE:
        init = flat(build_member(name, 0, SUITE[name], digits, torch.device("cpu"))[0].state_dict())
        a, b = flat(weights(loop, name)), flat(weights(stacked, name))
        assert float((a - b).norm() / (a - init).norm()) < 1e-3, name
        ea, eb = res_loop.seed(name, 0).clean["error"], res_stacked.seed(name, 0).clean["error"]
        assert abs(ea - eb) <= 2 / 360, name  # at most 2 of 360 test digits
        assert res_stacked.seed(name, 0).train["stack_size"] == (4 if "vib" not in name else 2)


def test_stacked_members_write_the_loops_files(loop_and_stack):
    loop, stacked, res_loop, res_stacked = loop_and_stack
    assert files_of(loop) == files_of(stacked)  # no stack checkpoint left behind
    for name in SUITE:
        for seed in (0,):
            with (
                safe_open(str(rundir.weights_path(loop, name, seed)), "pt") as f,
                safe_open(str(rundir.weights_path(stacked, name, seed)), "pt") as g,
            ):
                assert f.metadata() == g.metadata()
            la = rundir.read_train_log(rundir.model_dir(loop, name, seed))
            lb = rundir.read_train_log(rundir.model_dir(stacked, name, seed))
            assert [list(r) for r in la] == [list(r) for r in lb]  # same keys, same order, every epoch
            assert [r["lr"] for r in la] == [r["lr"] for r in lb]
            ta, tb = res_loop.seed(name, seed).train, res_stacked.seed(name, seed).train
            assert set(tb) - set(ta) == {"stack_size"} and tb["state"] == "done"
            assert set(res_loop.seed(name, seed).clean) == set(res_stacked.seed(name, seed).clean)
            assert (
                rundir.load_per_example(loop, name, seed).keys() == rundir.load_per_example(stacked, name, seed).keys()
            )


def test_a_stack_is_deterministic(tmp_path, digits):
    cfg = TrainConfig(epochs=3, lr=1e-3)
    models = {"dropout": TINY, "vib_beta1e-3": {**TINY, "k": 8}}
    for sub in ("a", "b"):
        train_run(tmp_path / sub, digits, models, [0, 1], cfg, stack="on", **quiet)
    for name in models:
        for seed in (0, 1):
            a, b = weights(tmp_path / "a", name, seed), weights(tmp_path / "b", name, seed)
            assert all(torch.equal(a[k], b[k]) for k in a)
        # two seeds are two members: their own initialisation, data order and noise
        assert max_diff(weights(tmp_path / "a", name, 0), weights(tmp_path / "a", name, 1)) > 0.01


def _members(digits, names_seeds, device="cpu"):
    out = []
    for name, seed, ov in names_seeds:
        model, rng = build_member(name, seed, ov, digits, torch.device(device))
        out.append(Member(name, seed, ov, model, rng))
    return out


def _run_steps(digits, names, graphs, extra_captures=()):
    ov = {**TINY, "k": 8} if "vib" in names[0] else TINY
    x, y = digits.split("train")
    members = _members(digits, [(n, s, ov) for n in names for s in (0, 1)])
    stack = Stack(members, torch.device("cpu"))
    program = StackProgram([structure(m.model) for m in members], 10, torch.device("cpu"))
    step = StackStep(program, stack, TrainConfig(lr=1e-3), scale_input(x), y, graphs)
    perm = torch.stack([torch.randperm(len(x), generator=g) for g in stack.shuffles])
    for i in range(12):
        if i == 6:
            step.set_lr(5e-4)
        if i in extra_captures:
            step._graph(extra_captures[i])  # a capture's warm-up, then its restore, between two steps
        start = (i * 100) % 1000
        step(perm[:, start : start + (77 if i == 5 else 100)], i)  # two batch sizes: two graphs
    moments = [v.float() for p in stack.params for v in step.opt.state[p].values()]
    return [*stack.params, *stack.ema, step.sums, *moments], step


@pytest.mark.parametrize("names", [["mlp", "dropout", "confidence_penalty"], ["vib_beta1e-3", "vib_beta1e-2"]])
def test_the_graph_path_leaves_no_trace_of_its_warm_up(digits, names):
    """The static path a CUDA graph captures (tensor learning rate and EMA weight, capturable Adam, a
    warm-up from a saved state that is then restored), run uncaptured on the CPU: extra captures change
    no bit, and it follows the eager step up to rounding (Adam with a tensor learning rate rounds its
    step size in fp32)."""
    static, step = _run_steps(digits, names, "static")
    again, step2 = _run_steps(digits, names, "static", {3: 50, 8: 33})
    eager, _ = _run_steps(digits, names, False)
    assert sorted(step._graphs) == [77, 100] and sorted(step2._graphs) == [33, 50, 77, 100]
    assert all(torch.equal(a, b) for a, b in zip(static, again))
    assert all(torch.allclose(a.detach(), b.detach(), rtol=1e-5, atol=1e-7) for a, b in zip(static, eager))
    assert not all(torch.equal(a, b) for a, b in zip(static, eager))  # the two paths really differ


def test_resume_after_kill_9_is_bit_identical(tmp_path):
    """A real SIGKILL while a stack trains, then --resume, ends with the uninterrupted stack's weights."""
    args = [
        "train",
        "--models",
        "dropout,vib_beta1e-3,vib_beta1e-2",
        "--dataset",
        "digits",
        "--epochs",
        "40",
        "--lr",
        "1e-3",
        "--set",
        "hidden=48,48",
        "--set",
        "k=8",
        "--seeds",
        "0,1",
        "--threads",
        "1",
        "--no-progress",
        "--stack",
        "on",
        "--checkpoint-every",
        "1",
    ]
    killed = tmp_path / "killed"
    status = killed / "models/vib_beta1e-2/seed1/status.json"
    done_before = sigkill_mid_training(args, killed, status)
    assert 3 <= done_before < 40, "the run was not interrupted mid-way"
    assert rundir.stack_checkpoints(killed), "the stack left no resume state"

    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    for name in ("dropout", "vib_beta1e-3", "vib_beta1e-2"):
        for seed in (0, 1):
            a, b = weights(killed, name, seed), weights(tmp_path / "straight", name, seed)
            assert all(torch.equal(a[k], b[k]) for k in a), (name, seed)
            log = rundir.read_train_log(rundir.model_dir(killed, name, seed))
            assert [r["epoch"] for r in log] == list(range(1, 41))
    assert not (killed / rundir.STACKS).exists()


class _Crash(RuntimeError):
    pass


def test_a_stack_checkpoint_continues_in_the_loop(tmp_path, digits, monkeypatch):
    """A stack stopped after 3 epochs resumes with --stack off: each member continues in the per-model
    loop from its unpacked state, and ends close to the uninterrupted stack."""
    import bench.train.stacked.engine as engine

    cfg = TrainConfig(epochs=6, lr=1e-3)
    models = {"mlp": TINY, "vib_beta1e-3": {**TINY, "k": 8}}
    train_run(tmp_path / "straight", digits, models, [0, 1], cfg, stack="on", **quiet)

    calls = {"n": 0}
    real = engine.validate_stack

    def crash_in_epoch_4(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 3:  # the 4th epoch's validation of the first stack
            raise _Crash
        return real(*a, **kw)

    monkeypatch.setattr(engine, "validate_stack", crash_in_epoch_4)
    with pytest.raises(_Crash):
        train_run(tmp_path / "cut", digits, models, [0, 1], cfg, stack="on", cadence=EVERY_EPOCH, **quiet)
    monkeypatch.setattr(engine, "validate_stack", real)
    assert len(rundir.stack_checkpoints(tmp_path / "cut")) == 1

    res = train_run(tmp_path / "cut", digits, models, [0, 1], cfg, stack="off", resume=True, **quiet)
    assert not (tmp_path / "cut" / rundir.STACKS).exists()
    for name in models:
        for seed in (0, 1):
            train = res.seed(name, seed).train
            assert train["state"] == "done"
            log = rundir.read_train_log(rundir.model_dir(tmp_path / "cut", name, seed))
            assert [r["epoch"] for r in log] == list(range(1, 7))
            if name == "mlp":  # continued from epoch 3 by the loop, not restarted
                assert "stack_size" not in train
                assert (
                    max_diff(weights(tmp_path / "cut", name, seed), weights(tmp_path / "straight", name, seed)) < 1e-5
                )


def test_the_plan_stacks_one_architecture_and_leaves_the_rest_to_the_loop(tmp_path, digits):
    cfg = TrainConfig(epochs=1)
    models = {
        "mlp": TINY,
        "dropout": TINY,
        "mlp_tanh": TINY,
        "vib_beta1e-3": {**TINY, "k": 8},
        "vib_beta1e-2": {**TINY, "k": 8},
        "vib_k2_beta1e-3": {**TINY, "k": 2},
    }
    jobs = plan(tmp_path, digits, models, [0, 1], cfg, resume=False, mode="auto")
    stacks = [j.members for j in jobs if j.stacked]
    assert stacks == [
        [("mlp", 0), ("mlp", 1), ("dropout", 0), ("dropout", 1)],
        [("mlp_tanh", 0), ("mlp_tanh", 1)],
        [("vib_beta1e-3", 0), ("vib_beta1e-3", 1), ("vib_beta1e-2", 0), ("vib_beta1e-2", 1)],
        [("vib_k2_beta1e-3", 0), ("vib_k2_beta1e-3", 1)],
    ]
    assert all(not j.stacked for j in plan(tmp_path, digits, models, [0, 1], cfg, resume=False, mode="off"))
    one_seed = plan(tmp_path, digits, {"mlp": TINY, "mlp_tanh": TINY}, [0], cfg, resume=False, mode="auto")
    assert [j.stacked for j in one_seed] == [False, False]
    assert [j.stacked for j in plan(tmp_path, digits, {"mlp": TINY}, [0], cfg, resume=False, mode="on")] == [True]
    # a member with its own checkpoint (a loop run that was interrupted) resumes in the loop
    ck = rundir.model_dir(tmp_path, "dropout", 1) / rundir.CHECKPOINT
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"")
    jobs = plan(tmp_path, digits, models, [0, 1], cfg, resume=True, mode="auto")
    assert [j.members for j in jobs if j.stacked][0] == [("mlp", 0), ("mlp", 1), ("dropout", 0)]
    assert [j.members for j in jobs if not j.stacked] == [[("dropout", 1)]]


class _Wide(MLPClassifier):
    """A subclass may change anything: it is never stacked."""


@pytest.fixture
def odd_models():
    def nan_head(**kw):
        model = MLPClassifier(**{"hidden": [32, 32], **kw})
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")
        return model

    register_model(nan_head, name="test_nan_head")
    register_model(lambda **kw: _Wide(**{"hidden": [32, 32], **kw}), name="test_subclass")
    yield
    unregister_model("test_nan_head")
    unregister_model("test_subclass")


def test_structure_only_for_known_classes(odd_models):
    from models import create_model

    assert structure(create_model("mlp")) is not None
    assert structure(create_model("test_subclass")) is None
    assert structure(torch.nn.Linear(3, 3)) is None


def test_a_diverging_member_fails_alone(tmp_path, digits, odd_models):
    res = train_run(
        tmp_path,
        digits,
        {"test_nan_head": {}, "mlp": TINY, "test_subclass": {}},
        [0],
        TrainConfig(epochs=2),
        stack="auto",
        **quiet,
    )
    bad = res.seed("test_nan_head", 0).train
    assert bad["state"] == "failed" and "non-finite" in bad["error"] and bad["epochs_done"] == 0
    good = res.seed("mlp", 0).train
    assert good["state"] == "done" and good["stack_size"] == 2 and "clean" in res.seed("mlp", 0).raw
    assert res.seed("test_subclass", 0).train["state"] == "done"
    assert "stack_size" not in res.seed("test_subclass", 0).train  # trained by the loop
    assert not rundir.weights_path(tmp_path, "test_nan_head", 0).exists()


def test_a_stack_whose_loss_differs_from_the_models_falls_back(tmp_path, digits, monkeypatch):
    """If a model's objective changes and the stacked program does not follow, nothing is stacked."""
    real = MLPClassifier.loss

    def doubled(self, x, y):
        loss, stats = real(self, x, y)
        return 2 * loss, {**stats, "loss": 2 * stats["loss"]}

    monkeypatch.setattr(MLPClassifier, "loss", doubled)
    lines = []
    res = train_run(
        tmp_path,
        digits,
        {"mlp": TINY, "dropout": TINY},
        [0],
        TrainConfig(epochs=1),
        stack="auto",
        progress=False,
        log=lines.append,
    )
    assert any(line.startswith("not stacking mlp seed 0, dropout seed 0") for line in lines), lines
    for name in ("mlp", "dropout"):
        assert res.seed(name, 0).train["state"] == "done" and "stack_size" not in res.seed(name, 0).train


def test_stack_flag_reaches_the_trainer(tmp_path, capsys):
    base = [
        "train",
        "--models",
        "mlp",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--set",
        "hidden=8",
        "--seeds",
        "0,1",
        "--no-progress",
    ]
    assert main([*base, "--out", str(tmp_path / "on"), "--stack", "on"]) == 0
    assert main([*base, "--out", str(tmp_path / "off"), "--stack", "off"]) == 0
    on = json.loads((tmp_path / "on" / "results.json").read_text())["models"]["mlp"]["seeds"]
    off = json.loads((tmp_path / "off" / "results.json").read_text())["models"]["mlp"]["seeds"]
    assert on["0"]["train"]["stack_size"] == 2 and "stack_size" not in off["0"]["train"]
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x"), "--stack", "maybe"]) == 2
    assert "--stack" in capsys.readouterr().err
