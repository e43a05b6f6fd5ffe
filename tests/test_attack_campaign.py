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
    assert runs[0].rngs == runs[1].rngs and runs[0].rngs != runs[2].rngs     # random starts follow the seed
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
    atk2 = create_attack(name, model, 0.1, seed=5)      # a budget seed still shifts the stream
    atk2.reseed(1234)
    assert all(p.seed == 1239 for p in _seeded_parts(atk2.ta))
