"""Batch-invariant evaluation: a randomised model's prediction for an example never depends on its batch."""

import math

import pytest
import torch

from models import create_model
from models.noise import content_keys, keyed_noise, normal_from_keys


def _vib(digits, seed=0, epochs=0, **kw):
    torch.manual_seed(seed)
    model = create_model(
        "vib_beta1e-3", in_shape=digits.in_shape, num_classes=digits.num_classes, hidden=[32], k=8, **kw
    )
    if epochs:  # a few plain Adam epochs: enough for ~90% accuracy, so that attacks have work to do
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = digits.split("train")
        for _ in range(epochs):
            for i in range(0, len(x), 64):
                opt.zero_grad()
                model.loss(x[i : i + 64], y[i : i + 64])[0].backward()
                opt.step()
    return model.eval()


def test_normals_are_standard_and_keyed():
    keys = torch.arange(-2000, 2000, dtype=torch.int32) * 7919
    z = normal_from_keys(keys, 500)
    assert z.shape == (4000, 500)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z**4).mean()) - 3) < 0.05  # Gaussian kurtosis, not uniform or clipped
    assert float(z.abs().max()) > 4.5
    # row i depends only on keys[i]: the same key in another batch gives the same row
    assert torch.equal(normal_from_keys(keys[5:6], 500), z[5:6])
    assert torch.equal(normal_from_keys(keys.flip(0), 500).flip(0), z)
    # different keys, (nearly) uncorrelated rows
    assert abs(float((z[0] * z[1]).mean())) < 0.2


def test_content_keys_depend_on_the_row_only():
    x = torch.rand(50, 1, 8, 8)
    k = content_keys(x)
    assert torch.equal(content_keys(x[10:20]), k[10:20])
    assert len(set(k.tolist())) == 50
    y = x.clone()
    y[3, 0, 4, 4] = torch.nextafter(y[3, 0, 4, 4], torch.tensor(2.0))  # one ulp in one pixel
    assert content_keys(y)[3] != k[3] and torch.equal(content_keys(y)[4:], k[4:])


def _predict_recording_noise(monkeypatch, model, x, bs, seed=0):
    """(log-probs, the noise rows every example got) of ``predict_log_probs`` at batch size ``bs``."""
    import models.vib
    from bench.protocol import predict_log_probs

    rows = []

    def recording(keys, n, dtype=torch.float32):
        out = normal_from_keys(keys, n, dtype)
        rows.append(out)
        return out

    monkeypatch.setattr(models.vib, "normal_from_keys", recording)
    logp = predict_log_probs(model, x, bs, seed=seed)
    monkeypatch.undo()
    return logp, torch.cat(rows)


def test_vib_noise_and_predictions_do_not_depend_on_the_batch(digits, monkeypatch):
    """Bit-identical noise per example at batch sizes 1, 7 and 1,000, for a prefix and for other neighbours;
    the log-probabilities then differ only by float32 matmul rounding (as a deterministic model's do) and
    the predicted labels not at all."""
    model = _vib(digits)
    x, _ = digits.split("test")
    assert len(x) == 360
    full, noise = _predict_recording_noise(monkeypatch, model, x, 1000)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    for xs, bs, idx in ((x, 1, slice(None)), (x, 7, slice(None)), (x[:50], 7, slice(0, 50)), (x[perm], 13, perm)):
        logp, nz = _predict_recording_noise(monkeypatch, model, xs, bs)
        assert torch.equal(nz, noise[idx]), bs
        assert torch.allclose(logp, full[idx], atol=1e-5, rtol=0), bs
        assert torch.equal(logp.argmax(1), full[idx].argmax(1)), bs
    # the noise matters (the model really is randomised) and depends on the seed
    other, other_noise = _predict_recording_noise(monkeypatch, model, x, 1000, seed=1)
    assert not torch.equal(other_noise, noise) and (other - full).abs().max() > 1e-3
    with torch.no_grad():
        model.mean_mode = True
        assert (torch.log_softmax(model(x), -1) - full).abs().max() > 1e-3


def test_clean_metrics_do_not_depend_on_the_batch_size(digits):
    from bench.evaluate import clean_metrics

    model = _vib(digits)
    x, y = digits.split("test")
    m1, c1 = clean_metrics(model, x, y, batch_size=1000)
    m2, c2 = clean_metrics(model, x, y, batch_size=7)
    assert torch.equal(c1, c2) and m1["error"] == m2["error"]
    assert abs(m1["nll"] - m2["nll"]) < 1e-6


def test_repeated_calls_draw_afresh_and_the_global_rng_is_untouched(digits):
    model = _vib(digits)
    x, _ = digits.split("test")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with torch.no_grad(), keyed_noise(model, 0) as key:
        a, b = model(x[:20]), model(x[:20])
    assert key.calls == 2 and not torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)
    with torch.no_grad(), keyed_noise(model, 0):
        assert torch.equal(model(x[:20]), a)
    # outside a block: the global RNG, as before (and training never uses keys)
    torch.manual_seed(5)
    with torch.no_grad():
        c = model(x[:20])
    torch.manual_seed(5)
    with torch.no_grad():
        mu, sigma, _ = model.encode(x[:20])
        z = mu.unsqueeze(0) + sigma.unsqueeze(0) * torch.randn((model.n_samples, *mu.shape))
        ref = torch.logsumexp(torch.log_softmax(model.decoder(z), -1), 0) - math.log(model.n_samples)
    assert torch.equal(c, ref)
    model.train()
    with keyed_noise(model, 0):
        torch.manual_seed(5)
        d = model(x[:20])
        torch.manual_seed(5)
        assert torch.equal(model(x[:20]), d)


@pytest.mark.parametrize("keyed", [True, False])
def test_eot_logits_equal_successive_forward_calls(digits, keyed):
    model = _vib(digits)
    x, _ = digits.split("test")
    x = x[:30]
    torch.manual_seed(3)
    with torch.no_grad(), keyed_noise(model, 7 if keyed else None):
        loop = torch.stack([model(x) for _ in range(4)])
    torch.manual_seed(3)
    with torch.no_grad(), keyed_noise(model, 7 if keyed else None) as key:
        fused = model.eot_logits(x, 4)
        if keyed:
            assert key.calls == 4
    assert fused.shape == loop.shape
    assert torch.allclose(fused, loop, atol=1e-6, rtol=0)


def test_eot_gradient_with_one_encoder_pass_is_exact(digits):
    """The summed input gradient over N draws from one encoder forward/backward equals the plain N-draw loop."""
    model = _vib(digits).requires_grad_(False)
    x, y = digits.split("test")
    x, y = x[:40].clone(), y[:40]
    grads = []
    for fused in (False, True):
        xg = x.clone().requires_grad_(True)
        with keyed_noise(model, 11):
            if fused:
                out = model.eot_logits(xg, 5)
                (g,) = torch.autograd.grad(sum(torch.nn.functional.cross_entropy(o, y) for o in out), xg)
            else:
                g = torch.zeros_like(xg)
                for _ in range(5):
                    g += torch.autograd.grad(torch.nn.functional.cross_entropy(model(xg), y), xg)[0]
        grads.append(g)
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(
    "attack,budget",
    [
        ("fgsm", {}),
        ("eot_pgd", {"steps": 5, "eot_iter": 3, "random_start": False}),
        ("apgd_ce", {"steps": 5, "eot_iter": 2}),
    ],
)
def test_an_attack_on_a_vib_does_not_depend_on_the_batch(digits, attack, budget):
    """Same adversarial examples and robust flags at batch sizes 7 and 1,000 (keyed noise, keyed EOT draws).

    APGD's random start is drawn per batch from the batch's seed, so only its flags are compared on the first
    batch of 7 (the same seed in both runs)."""
    from attacks import create_attack
    from bench.attack.cost import run_attack
    from bench.protocol import predict_correct

    model = _vib(digits, epochs=3)
    x, y = digits.split("test")
    x, y = x[:70], y[:70]
    atk = create_attack(attack, model, 0.2, **budget)
    big, _ = run_attack(model, atk, x, y, batch_size=1000, seed=5, device="cpu")
    small, _ = run_attack(model, atk, x, y, batch_size=7, seed=5, device="cpu")
    if attack == "apgd_ce":
        big, small = big[:7], small[:7]
        x, y = x[:7], y[:7]
    assert (big - x).abs().max() > 0.04  # the attack did move the images
    assert (big - small).abs().amax((1, 2, 3)).lt(1e-6).float().mean() >= 0.95
    assert torch.equal(predict_correct(model, big, y, "cpu"), predict_correct(model, small, y, "cpu"))
    assert predict_correct(model, big, y, "cpu").float().mean() < predict_correct(model, x, y, "cpu").float().mean()


def test_the_generator_is_pinned():
    """Keyed noise defines every randomised model's numbers: a change to the hash or the transform (or a
    platform whose integer arithmetic differs) must show up here, not as silently different results."""
    from models.noise import NoiseKey

    z = normal_from_keys(torch.tensor([0, 1, -5], dtype=torch.int32), 4)
    expected = torch.tensor(
        [
            [0.37609926, -0.70086926, 1.11921620, -1.11600411],
            [1.13898396, -0.25238634, 0.45068160, 1.14616501],
            [0.68317467, 1.06446791, -1.63445783, 0.22789678],
        ]
    )
    assert torch.allclose(z, expected, atol=1e-6, rtol=0)
    x = torch.linspace(0, 1, 2 * 64).view(2, 1, 8, 8)
    assert content_keys(x).tolist() == [1393526303, 675587240]
    assert NoiseKey(3).keys_for(content_keys(x), 2).tolist() == [1762692222, -1804621842]


def test_a_randomised_model_without_keyed_noise_still_predicts_reproducibly():
    """A plugin's randomised model that draws from torch's global RNG: the protocol seeds it, so two
    predictions agree (and the eps-0 cells filled from the clean pass stay exact)."""
    from bench.protocol import predict_labels

    class Noisy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x.flatten(1)) + 3 * torch.randn(len(x), 3)

    model, x = Noisy(), torch.rand(200, 4)
    assert torch.equal(predict_labels(model, x, "cpu"), predict_labels(model, x, "cpu"))
