"""Training at paper scale (issue 18): checkpoint cadence with exact resume, the epoch's whole wall time
recorded beside its step time, --stack on refusing to fall back, and the environment's CUDA numerics."""

import json

import pytest
import torch
from conftest import one_error_line, sigkill_mid_training
from safetensors.torch import load_file

from bench import rundir
from bench.cli import main
from bench.env import environment, resolve_device
from bench.errors import BenchError
from bench.train.recipe import Cadence, TrainConfig, build_member, on_device
from bench.train.stacked.program import StackProgram, structure
from bench.train.stacked.state import Stack
from bench.train.stage import train_run
from models.mlp import MLPClassifier

TINY = {"hidden": [32, 32]}
quiet = dict(progress=False, log=lambda *_: None)


def weights(run_dir, model, seed=0):
    return load_file(str(rundir.weights_path(run_dir, model, seed)))


def test_cadence_parses_epochs_and_seconds():
    assert Cadence.parse("5") == Cadence(5, 0.0) and Cadence.parse("90s") == Cadence(0, 90.0)
    for bad in ("0", "-3", "x", "1.5", "-1s", "nans"):
        with pytest.raises(BenchError, match="--checkpoint-every"):
            Cadence.parse(bad)
    every3 = Cadence(3, 0.0)
    assert [e for e in range(1, 11) if every3.due(e, 10, 0.0)] == [3, 6, 9, 10]  # and always the last
    timed = Cadence(0, 60.0)
    assert not timed.due(4, 10, 59.9) and timed.due(4, 10, 60.0) and timed.due(10, 10, 0.0)


@pytest.mark.parametrize("stack", ["off", "on"])
def test_checkpoints_follow_the_cadence_and_wall_time_is_recorded(tmp_path, digits, monkeypatch, stack):
    """Every 3 epochs of 7 (3, 6 and the last): the loop and a stack write checkpoints then only; each
    log line records the epoch's wall time (>= its steps + validation) and the checkpoint's share."""
    import bench.train.recipe as training
    import bench.train.stacked.engine as engine

    saved = []
    real = training.save_checkpoint

    def spy(path, ck):
        saved.append(int(ck["epoch"]))
        real(path, ck)

    monkeypatch.setattr(training, "save_checkpoint", spy)
    monkeypatch.setattr(engine, "save_checkpoint", spy)
    models = {"mlp": TINY, "vib_beta1e-3": {**TINY, "k": 8}}
    res = train_run(
        tmp_path, digits, models, [0, 1], TrainConfig(epochs=7, lr=1e-3), stack=stack, cadence=Cadence(3, 0.0), **quiet
    )
    jobs = 2 if stack == "on" else 4
    assert saved == [3, 6, 7] * jobs
    for name in models:
        log = rundir.read_train_log(rundir.model_dir(tmp_path, name, 0))
        assert [r["epoch"] for r in log] == list(range(1, 8))
        for r in log:
            assert r["wall_time_s"] >= r["epoch_time_s"] + r["val_time_s"] > 0
            assert (r["checkpoint_s"] > 0) == (r["epoch"] in (3, 6, 7))
        train = res.seed(name, 0).train
        assert train["wall_time_s"] == pytest.approx(sum(r["wall_time_s"] for r in log))
        assert train["train_time_s"] < train["wall_time_s"]
        assert train["overhead_fraction"] == pytest.approx(1 - train["train_time_s"] / train["wall_time_s"])
        assert 0 < train["overhead_fraction"] < 1


@pytest.mark.parametrize("kind", ["mlp", "vib"])
def test_stacked_validation_equals_each_members_own(digits, kind, monkeypatch):
    """The batched validation pass gives each member's own validation numbers: MLP members, and VIB members
    whose keyed evaluation noise the stack draws once for all of them."""
    from bench.train.recipe import validate
    from bench.train.stacked.engine import validate_stack

    ov = {"hidden": [32, 32], "dropout": 0.3}
    members = []
    from bench.train.stacked.state import Member

    names = ("mlp", "dropout", "label_smoothing") if kind == "mlp" else ("vib_beta1e-3", "vib_beta1e-2", "vib_beta0")
    for name, seed in zip(names, (0, 1, 2)):
        model, rng = build_member(name, seed, ov if name == "dropout" else TINY, digits, torch.device("cpu"))
        members.append(Member(name, seed, {}, model, rng))
    stack = Stack(members, torch.device("cpu"))
    program = StackProgram([structure(m.model) for m in members], 10, torch.device("cpu"))
    x, y = digits.split("val")
    import bench.train.stacked.engine as engine

    def one_by_one(*a, **kw):
        raise AssertionError("the batched pass fell back to validating members one by one")

    with monkeypatch.context() as mp:
        mp.setattr(engine, "validate", one_by_one)
        got = validate_stack(program, stack, x, y, 4, torch.device("cpu"), batched=True)
    for i, m in enumerate(stack.ema_models):
        own = validate(m, x, y, 4, torch.device("cpu"))
        assert got[i]["error"] == own["error"]
        assert got[i]["nll"] == pytest.approx(own["nll"], rel=1e-6)
    assert len({round(v["nll"], 6) for v in got.values()}) == 3  # three different members


@pytest.mark.parametrize("damage", ["lost lines", "torn line"])
def test_resume_takes_the_log_from_the_checkpoint_when_the_file_lost_lines(tmp_path, digits, monkeypatch, damage):
    """The epoch log is rewritten without fsync; after a power cut it may lack lines the (fsynced)
    checkpoint holds, or end in a torn line. Resume restores them from the checkpoint (never a crash) and
    ends as an uninterrupted run."""
    import bench.train.stacked.engine as engine

    cfg = TrainConfig(epochs=5, lr=1e-3)
    models = {"mlp": TINY, "dropout": TINY}
    every2 = Cadence(2, 0.0, val_epochs=1)  # the crash below is timed by the validations: one per epoch
    train_run(tmp_path / "straight", digits, models, [0], cfg, stack="on", cadence=Cadence(val_epochs=1), **quiet)
    calls = {"n": 0}
    real = engine.validate_stack

    def crash_in_epoch_4(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(engine, "validate_stack", crash_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path / "cut", digits, models, [0], cfg, stack="on", cadence=every2, **quiet)
    monkeypatch.setattr(engine, "validate_stack", real)
    mdir = rundir.model_dir(tmp_path / "cut", "mlp", 0)
    assert json.loads((mdir / rundir.STATUS).read_text())["state"] == "interrupted"
    assert [r["epoch"] for r in rundir.read_train_log(mdir)] == [1, 2, 3]
    kept = rundir.read_log_lines(mdir)[:1]  # the file lost epochs 2 and 3...
    rundir.write_log_lines(mdir, kept if damage == "lost lines" else kept + ['{"epoch": 2, "ce": 0.'])  # ...or tore
    train_run(tmp_path / "cut", digits, models, [0], cfg, stack="on", resume=True, cadence=every2, **quiet)
    for name in models:
        a, b = weights(tmp_path / "cut", name), weights(tmp_path / "straight", name)
        assert all(torch.equal(a[k], b[k]) for k in a)
        log = rundir.read_train_log(rundir.model_dir(tmp_path / "cut", name, 0))
        assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5]
        straight = rundir.read_train_log(rundir.model_dir(tmp_path / "straight", name, 0))
        assert [r["val_nll"] for r in log] == [r["val_nll"] for r in straight]


def test_resume_after_kill_9_with_a_cadence_of_3_epochs_is_bit_identical(tmp_path):
    """A real SIGKILL with checkpoints every 3 epochs: resume redoes the epochs after the last checkpoint
    and ends with the uninterrupted run's weights and a complete log."""
    args = [
        "train",
        "--models",
        "mlp,vib_beta1e-3",
        "--dataset",
        "digits",
        "--epochs",
        "30",
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
        "3",
    ]
    killed = tmp_path / "killed"
    status = killed / "models/vib_beta1e-3/seed1/status.json"
    done_before = sigkill_mid_training(args, killed, status, after_epochs=4)
    assert 4 <= done_before < 30, "the run was not interrupted mid-way"
    st = json.loads(status.read_text())
    assert st["checkpoint_epoch"] % 3 == 0 and st["checkpoint_epoch"] <= st["epochs_done"]

    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "straight"), "--checkpoint-every", "60s"]) == 0
    for name in ("mlp", "vib_beta1e-3"):
        for seed in (0, 1):
            a, b = weights(killed, name, seed), weights(tmp_path / "straight", name, seed)
            assert all(torch.equal(a[k], b[k]) for k in a), (name, seed)
            assert [r["epoch"] for r in rundir.read_train_log(rundir.model_dir(killed, name, seed))] == list(
                range(1, 31)
            )
    assert not (killed / rundir.STACKS).exists()


def test_stack_on_refuses_a_stack_whose_loss_differs(tmp_path, capsys, monkeypatch):
    """--stack on never falls back to the per-model loop silently: one line naming why, exit 2."""
    real = MLPClassifier.loss

    def doubled(self, x, y):
        loss, stats = real(self, x, y)
        return 2 * loss, {**stats, "loss": 2 * stats["loss"]}

    monkeypatch.setattr(MLPClassifier, "loss", doubled)
    base = [
        "train",
        "--models",
        "mlp,dropout",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--set",
        "hidden=8",
        "--no-progress",
    ]
    assert main([*base, "--out", str(tmp_path / "on"), "--stack", "on"]) == 2
    err = one_error_line(capsys)
    assert "--stack on" in err and "stacked loss differs" in err
    assert not rundir.weights_path(tmp_path / "on", "mlp", 0).exists()
    assert main([*base, "--out", str(tmp_path / "auto"), "--stack", "auto"]) == 0  # auto still falls back
    assert rundir.weights_path(tmp_path / "auto", "mlp", 0).exists()


def test_the_environment_records_cuda_numerics():
    num = environment("cpu")["numerics"]
    for key in (
        "cuda_version",
        "cudnn_version",
        "tf32_matmul",
        "tf32_cudnn",
        "float32_matmul_precision",
        "cudnn_deterministic",
        "deterministic_algorithms",
        "CUBLAS_WORKSPACE_CONFIG",
    ):
        assert key in num
    assert num["float32_matmul_precision"] == torch.get_float32_matmul_precision()
    assert num["tf32_matmul"] == torch.backends.cuda.matmul.allow_tf32


def test_devices_parse_and_the_cpu_needs_no_device_context():
    assert resolve_device("cpu") == torch.device("cpu")
    with on_device(torch.device("cpu")):
        pass
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="CUDA is not available"):
            resolve_device("cuda:1")
    else:
        with pytest.raises(BenchError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
