"""--stack on under the Ray executor: a train unit's stack is strict, so a stacked loss that differs from
the members' own is an error there too, never a quiet fall-back to the per-model loop. The task body is
called in-process (it imports no Ray), so this runs without Ray installed."""

import pytest

from bench import rundir
from bench.errors import BenchError
from bench.executors import tasks
from bench.train.recipe import TrainConfig
from models.mlp import MLPClassifier

TINY = {"hidden": [8]}


@pytest.fixture
def doubled_loss(monkeypatch):
    real = MLPClassifier.loss

    def doubled(self, x, y):
        loss, stats = real(self, x, y)
        return 2 * loss, {**stats, "loss": 2 * stats["loss"]}

    monkeypatch.setattr(MLPClassifier, "loss", doubled)


def unit(tmp_path, digits, strict):
    members = [("mlp", 0, TINY, False), ("dropout", 0, TINY, False)]
    return tasks.train_unit(
        str(tmp_path), members, digits, TrainConfig(epochs=1), "cpu", [], 1, stacked=True, strict=strict
    )


def test_a_strict_unit_refuses_a_stack_whose_loss_differs(tmp_path, digits, doubled_loss):
    with pytest.raises(BenchError, match="--stack on: cannot stack .*stacked loss differs"):
        unit(tmp_path, digits, strict=True)
    assert not rundir.weights_path(tmp_path, "mlp", 0).exists()


def test_a_unit_that_is_not_strict_still_falls_back(tmp_path, digits, doubled_loss):
    out = unit(tmp_path, digits, strict=False)
    assert [r["status"]["state"] for r in out] == ["done", "done"]
    assert "stack_size" not in out[0]["status"]  # trained one by one
    assert rundir.weights_path(tmp_path, "mlp", 0).exists()
