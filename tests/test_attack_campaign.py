"""The attack stage built for a campaign: per-cell seeds reach every attack, eps 0 from the clean pass,
batch sizes from memory, and VIB's encoder computed once per EOT batch."""

import pytest
import torch

from attacks import create_attack


class _Recorder:
    """An attack that returns its inputs and records the seed it was given before each batch."""

    def __init__(self):
        self.seeds, self.rngs = [], []

    def reseed(self, seed):
        self.seeds.append(seed)

    def __call__(self, x, y):
        self.rngs.append(float(torch.rand(())))
        return x


def test_every_batch_gets_its_own_seed_from_the_cell_seed():
    from bench.attack.cost import run_attack
    from bench.protocol import batch_seed

    model = torch.nn.Linear(4, 3)
    x, y = torch.rand(7, 1, 2, 2), torch.zeros(7, dtype=torch.long)
    runs = []
    for seed in (11, 11, 12):
        rec = _Recorder()
        adv, _ = run_attack(model, rec, x, y, batch_size=3, seed=seed, device="cpu")
        assert torch.equal(adv, x)
        runs.append(rec)
    assert runs[0].seeds == [batch_seed(11, b) for b in range(3)] == runs[1].seeds
    assert len(set(runs[0].seeds)) == 3 and runs[0].seeds[0] == 11
    assert runs[0].rngs == runs[1].rngs and runs[0].rngs != runs[2].rngs  # random starts follow the seed
    assert runs[2].seeds[0] == 12


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t", "square", "autoattack"])
def test_reseed_reaches_the_torchattacks_seed(name):
    from attacks._registry import _seeded_parts

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    atk = create_attack(name, model, 0.1)
    parts = _seeded_parts(atk.ta)
    assert parts
    atk.reseed(1234)
    assert all(p.seed == 1234 for p in parts)
    atk2 = create_attack(name, model, 0.1, seed=5)  # a budget seed still shifts the stream
    atk2.reseed(1234)
    assert all(p.seed == 1239 for p in _seeded_parts(atk2.ta))


def _trained_vib(digits, epochs=3):
    from models import create_model

    torch.manual_seed(0)
    model = create_model("vib_beta1e-3", in_shape=digits.in_shape, num_classes=digits.num_classes, hidden=[32], k=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = digits.split("train")
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            model.loss(x[i : i + 64], y[i : i + 64])[0].backward()
            opt.step()
    return model.eval()


def test_fused_eot_pgd_equals_torchattacks_loop_and_counts_the_same(digits, monkeypatch):
    """EOT-PGD through one encoder pass per step gives the plain loop's adversarial examples (same draws),
    and the cost meter counts the same forward and gradient evaluations."""
    import torchattacks

    from attacks.eot import FusedEOTPGD
    from bench.attack.cost import run_attack
    from bench.protocol import predict_correct

    model = _trained_vib(digits)
    x, y = digits.split("test")
    x, y = x[:60], y[:60]
    atk = create_attack("eot_pgd", model, 0.15, steps=6, eot_iter=3)
    assert isinstance(atk.ta, FusedEOTPGD)
    calls = []
    plain_eot = type(model).eot_logits
    monkeypatch.setattr(type(model), "eot_logits", lambda self, xx, n: calls.append(n) or plain_eot(self, xx, n))
    fused, cost_f = run_attack(model, atk, x, y, batch_size=1000, seed=3, device="cpu")
    assert calls == [3] * 6
    monkeypatch.setattr(torchattacks.EOTPGD, "forward", torchattacks.EOTPGD.forward)
    plain_atk = create_attack("eot_pgd", model, 0.15, steps=6, eot_iter=3)
    plain_atk.ta.forward = lambda images, labels: torchattacks.EOTPGD.forward(plain_atk.ta, images, labels)
    plain, cost_p = run_attack(model, plain_atk, x, y, batch_size=1000, seed=3, device="cpu")
    assert calls == [3] * 6  # the plain run did not use the fused path
    assert (plain - x).abs().max() > 0.1
    same = (plain - fused).abs().amax((1, 2, 3)) < 1e-6
    assert same.float().mean() >= 0.95
    assert torch.equal(predict_correct(model, plain, y, "cpu"), predict_correct(model, fused, y, "cpu"))
    assert cost_f["grad_evals"] == cost_p["grad_evals"] == 60 * 6 * 3
    assert cost_f["forward_evals"] == cost_p["forward_evals"]
    assert cost_f["gflop"] < cost_p["gflop"]  # the encoder ran once per step, not three times


def test_auto_batch_size_follows_memory_and_model(monkeypatch, digits):
    from bench.attack import batching

    model = _trained_vib(digits, epochs=0)
    per = batching.activation_bytes_per_example(model, digits.in_shape, "cpu")
    assert per >= 4 * (32 + 16 + model.n_samples * 10)  # encoder layers + the S samples' logits
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 10**12)
    assert batching.auto_batch_size(model, 360, digits.in_shape, "cpu") == 360
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: per * batching.OVERHEAD * 4 * 100)
    assert batching.auto_batch_size(model, 360, digits.in_shape, "cpu") == 100
    assert batching.auto_batch_size(model, 360, digits.in_shape, "cpu", draws=4) == 25
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 1)
    assert batching.auto_batch_size(model, 360, digits.in_shape, "cpu") == 1


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t"])
def test_apgd_eot_with_one_encoder_pass_equals_the_plain_loop(digits, monkeypatch, name):
    """APGD's EOT loop through SharedEncoderEOT (one encoder forward and backward per step for all draws)
    gives the plain loop's adversarial examples with the same keyed draws, counted the same."""
    import attacks.builtin
    from attacks.eot import SharedEncoderEOT
    from bench.attack.cost import run_attack
    from bench.protocol import predict_correct

    model = _trained_vib(digits)
    x, y = digits.split("test")
    x, y = x[:60], y[:60]
    budget = {"steps": 8, "eot_iter": 3} | ({"n_target_classes": 2} if name == "apgd_t" else {})
    atk = create_attack(name, model, 0.15, **budget)
    assert isinstance(atk.ta.model, SharedEncoderEOT)
    encodes = []
    plain_encode = type(model).encode
    monkeypatch.setattr(type(model), "encode", lambda self, xx: encodes.append(len(xx)) or plain_encode(self, xx))
    fused, cost_f = run_attack(model, atk, x, y, batch_size=1000, seed=3, device="cpu")
    n_fused = len(encodes)
    monkeypatch.setattr(attacks.builtin, "eot_model", lambda m, n: m)
    plain_atk = create_attack(name, model, 0.15, **budget)
    assert plain_atk.ta.model is model
    plain, cost_p = run_attack(model, plain_atk, x, y, batch_size=1000, seed=3, device="cpu")
    assert len(encodes) - n_fused > 2 * n_fused  # the plain loop encoded ~3x as often
    assert (plain - x).abs().max() > 0.1
    same = (plain - fused).abs().amax((1, 2, 3)) < 1e-6
    assert same.float().mean() >= 0.95
    assert torch.equal(predict_correct(model, plain, y, "cpu"), predict_correct(model, fused, y, "cpu"))
    assert cost_f["grad_evals"] == cost_p["grad_evals"] and cost_f["forward_evals"] == cost_p["forward_evals"]
    assert cost_f["gflop"] < cost_p["gflop"]


@pytest.mark.parametrize("name", ["eot_pgd", "apgd_ce"])
def test_the_tracer_sees_the_iterates_of_the_fused_eot_paths(digits, name):
    """The fused EOT paths bypass ``forward`` (``eot_logits``, ``draw_logits``); the indicators' tracer must
    still see every query, or silent success and incomplete optimization would silently read 0."""
    from attacks.trace import TracedAttack
    from bench.attack.cost import run_attack

    model = _trained_vib(digits)
    x, y = digits.split("test")
    x, y = x[:40], y[:40]
    atk = create_attack(name, model, 0.15, steps=4, eot_iter=3)
    traced = TracedAttack(atk, model, "Linf", 0.15)
    run_attack(model, traced, x, y, batch_size=1000, seed=3, device="cpu")
    assert traced.queries >= 4 * 3  # every draw of every step was seen
    assert len(traced.loss_trace()) > 1
    assert not {"draw_logits", "eot_logits"} & set(vars(model))  # the model's own methods again


def test_tracing_an_eot_attack_does_not_change_its_cost_count(digits):
    """The tracer's and the cost meter's wrappers of the fused entry points nest: removing one must not
    remove the other, or the EOT draws of later batches go uncounted."""
    from attacks.trace import TracedAttack
    from bench.attack.cost import run_attack

    model = _trained_vib(digits)
    x, y = digits.split("test")
    x, y = x[:8], y[:8]
    atk = create_attack("eot_pgd", model, 0.15, steps=2, eot_iter=3)
    _, plain = run_attack(model, atk, x, y, batch_size=4, seed=3, device="cpu")
    _, traced = run_attack(model, TracedAttack(atk, model, "Linf", 0.15), x, y, batch_size=4, seed=3, device="cpu")
    assert plain["grad_evals"] == traced["grad_evals"] == 8 * 2 * 3
    assert plain["forward_evals"] == traced["forward_evals"]
    assert not {"draw_logits", "eot_logits"} & set(vars(model))
