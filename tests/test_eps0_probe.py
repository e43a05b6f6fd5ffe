"""The eps = 0 check after eps-0 cells stopped running attacks: the protocol's reproducibility probe
(predictions again in reverse order at another batch size) flags a model whose noise depends on its batch,
and the noise scheme is recorded so that runs made under another one are never mixed or compared."""

import pytest
import torch
from torch import nn

from bench import protocol
from bench.attack import cells
from bench.attack.group import ModelUnderAttack
from bench.attack.stage import check_resumable
from bench.attack.worst_case import worst_case_records
from bench.errors import BenchError
from models import create_model


class BatchNoise(nn.Module):
    """A plugin-style randomised classifier that ignores keyed noise: one draw per forward call, shared by
    the whole batch, so an example's prediction depends on which call (batch) it falls in."""

    def __init__(self, in_features: int, scale: float):
        super().__init__()
        self.lin = nn.Linear(in_features, 10)
        self.scale = scale

    def forward(self, x):
        logits = self.lin(x.flatten(1))
        return logits + self.scale * torch.randn(1, 10, device=x.device)


def _data(digits, n=120):
    x, y = digits.split("test")
    return x[:n], y[:n]


def _mua(model, x, y):
    clean = protocol.predict_correct(model, x, y, "cpu")
    return ModelUnderAttack("m", 0, model, x, y, clean, "cpu")


def test_the_probe_takes_rounding_for_rounding(digits, monkeypatch):
    """Log-probabilities that differ by float rounding between batch shapes pass; a noise-sized change fails."""
    x, y = _data(digits)
    torch.manual_seed(0)
    model = BatchNoise(x[0].numel(), scale=0.0).eval()
    real = protocol.predict_log_probs

    def shifted(by):
        def predict(m, xs, batch_size=protocol.EVAL_BATCH, device=None, seed=protocol.EVAL_SEED):
            out = real(m, xs, batch_size, device, seed)
            return out + by if batch_size == protocol.PROBE_BATCH else out

        return predict

    monkeypatch.setattr(protocol, "predict_log_probs", shifted(1e-6))
    assert protocol.reproducible(model, x, "cpu")
    monkeypatch.setattr(protocol, "predict_log_probs", shifted(1e-2))
    assert not protocol.reproducible(model, x, "cpu")


def test_the_probe_passes_a_keyed_vib_and_fails_batch_dependent_noise(digits):
    x, y = _data(digits)
    torch.manual_seed(0)
    vib = create_model("vib_beta1e-3", in_shape=digits.in_shape, num_classes=10, hidden=[16], k=4).eval()
    assert _mua(vib, x, y).reproducible()
    torch.manual_seed(0)
    noisy = BatchNoise(x[0].numel(), scale=5.0).eval()
    assert not _mua(noisy, x, y).reproducible()
    # scale 0: the same model without noise passes (the probe measures the noise, not the model)
    quiet = BatchNoise(x[0].numel(), scale=0.0).eval()
    quiet.lin.load_state_dict(noisy.lin.state_dict())
    assert _mua(quiet, x, y).reproducible()


@pytest.mark.parametrize("reproducible", [True, False])
def test_an_eps0_cell_from_the_clean_pass_carries_the_probe(digits, reproducible):
    x, y = _data(digits, 40)
    clean = torch.ones(len(x), dtype=torch.bool)
    clean[::3] = False
    c = cells.Cell(None, None, x, y, clean, "cpu", 0, 40, reproducible=reproducible)
    rec, robust = cells.from_clean(c, "fgsm", "Linf", 0.0, "standard", {"budget": {}})
    assert torch.equal(robust, clean) and rec["from_clean_pass"]
    assert rec.checks["eps0_differs_from_clean"] is (not reproducible)
    # the worst case at eps 0 (the leaderboard's row) inherits the flag
    worst = worst_case_records([rec], {rec.vector_key: robust}, "Linf", 0.0, False, rec.robust_acc)
    assert worst[0][0].checks["eps0_differs_from_clean"] is (not reproducible)


def test_the_setup_records_the_noise_scheme_and_resume_refuses_another(tmp_path):
    from bench.attack.options import AttackOptions

    opts = AttackOptions(tmp_path, resume=True)
    check_resumable(tmp_path, "m", 0, True, {"n_examples": 5, "eval_noise": protocol.EVAL_NOISE}, 5, opts)
    for old in ({"n_examples": 5}, {"n_examples": 5, "eval_noise": "something-else"}):
        with pytest.raises(BenchError, match="--fresh") as e:
            check_resumable(tmp_path, "m", 0, True, old, 5, opts)
        assert protocol.EVAL_NOISE in str(e.value) and (old.get("eval_noise") or "unrecorded") in str(e.value)
    check_resumable(tmp_path, "m", 0, False, {"n_examples": 5}, 5, opts)  # nothing to mix with
    # a model the earlier checks found deterministic has no noise to mix
    check_resumable(tmp_path, "m", 0, True, {"n_examples": 5}, 5, opts, {"randomised": False})
    with pytest.raises(BenchError, match="--fresh"):
        check_resumable(tmp_path, "m", 0, True, {"n_examples": 5}, 5, opts, {"randomised": True})


def test_compare_lists_a_changed_noise_scheme(tmp_path):
    from bench.results import Results
    from bench.run_diff import setting_changes
    from tests.conftest import golden_data

    def results(noise):
        raw = golden_data()
        for name, entry in raw["models"].items():
            for s in entry["seeds"].values():
                s["attack_setup"] = {"n_examples": 200, **({} if noise is None else {"eval_noise": noise})}
                s["attack_checks"] = {"randomised": name.startswith("vib")}
        return Results(raw)

    assert setting_changes(results(protocol.EVAL_NOISE), results(protocol.EVAL_NOISE)) == []
    lines = setting_changes(results(None), results(protocol.EVAL_NOISE))
    # listed for the randomised models only: a deterministic model's numbers do not depend on the scheme
    assert sorted(ln.split(":")[0] for ln in lines) == ["model vib_beta1e-2", "model vib_beta1e-3"]
    assert all("eval_noise: unrecorded -> " + protocol.EVAL_NOISE in ln for ln in lines)
