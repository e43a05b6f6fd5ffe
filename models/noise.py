"""Keyed evaluation noise: a randomised model's draws for an example depend on the example, never on its batch.

Outside a :func:`keyed_noise` block a stochastic model draws from torch's global RNG, as in training
(which this module never touches). Inside one, every forward call ``t`` (counted from 0 in the block)
draws the noise of row ``i`` as a pure function of ``(seed, content of x[i], t, k)`` with a counter-based
generator: a vectorised 32-bit integer hash of those four numbers, turned into standard normals by
Box-Muller. So the same image gets the same noise whatever its batch size, its position in the batch or
its neighbours, on any device, and repeated calls (EOT draws) still differ, because ``t`` does.

Keying on the content rather than on an example index means callers that attack or predict on subsets
(a cascade, a restart on the examples not yet fooled) need not carry indices: the image is its own key.

Usage (a harness sets one block per batch)::

    with keyed_noise(model, seed):
        logits = model(x)          # t = 0
        logits2 = model(x)         # t = 1: fresh draws for every row

A model supports keyed noise by calling :func:`normal_like_rows` for its eval-time noise when
:func:`active_key` returns a key (see ``models/vib.py``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch

_GOLDEN = 0x61C88647  # -(2^32 / phi) mod 2^32 (Fibonacci hashing), positive as an int32
_SEED_SALT = 0x2545F491


def _mix32(h: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche mix (lowbias32 constants) on int32 tensors with wrap-around arithmetic.

    Right shifts of int32 are arithmetic in torch, so each is masked to make it logical.
    """
    h = h ^ ((h >> 16) & 0xFFFF)
    h = h * 0x7FEB352D
    h = h ^ ((h >> 15) & 0x1FFFF)
    h = h * 0x046CA68B
    return h ^ ((h >> 16) & 0xFFFF)


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 2**32 if v >= 2**31 else v


def _scalar_key(*parts: int) -> int:
    """Fold Python integers into one signed 32-bit key with the same mix (for seeds and counters)."""
    h = 0
    for p in parts:
        h ^= int(p) & 0xFFFFFFFF
        h ^= h >> 16
        h = (h * 0x7FEB352D) & 0xFFFFFFFF
        h ^= h >> 15
        h = (h * 0x046CA68B) & 0xFFFFFFFF
        h ^= h >> 16
    return _signed32(h)


def _to_int32(v: torch.Tensor) -> torch.Tensor:
    """The low 32 bits of an int64 tensor as int32 (two's complement), without relying on a narrowing cast."""
    v = v & 0xFFFFFFFF
    return (v - (v >= 2**31).to(torch.int64) * 2**32).to(torch.int32)


@functools.lru_cache(maxsize=32)
def _position_codes(n: int, device: str) -> torch.Tensor:
    """Per-position hashes ``mix32(j * golden)``, j < n (cached: they depend on n only)."""
    j = torch.arange(n, dtype=torch.int32, device=device)
    return _mix32(j * _GOLDEN + 1)


def content_keys(x: torch.Tensor) -> torch.Tensor:
    """One int32 key per row of ``x`` from its float32 bit patterns (equal rows, equal keys)."""
    rows = x.detach().reshape(len(x), -1).to(torch.float32).contiguous()
    bits = rows.view(torch.int32)
    mixed = _mix32(bits ^ _position_codes(bits.shape[1], str(bits.device)))
    folded = mixed.to(torch.int64).sum(1)  # exact: at most 2^31 * D
    return _mix32(_to_int32(folded))


def normal_from_keys(keys: torch.Tensor, n: int, dtype=torch.float32) -> torch.Tensor:
    """``(len(keys), n)`` standard normals, row ``i`` a pure function of ``keys[i]`` (Box-Muller on hashes)."""
    half = (n + 1) // 2
    h = _mix32(keys[:, None] ^ _position_codes(2 * half, str(keys.device))[None, :])
    u = ((h >> 8) & 0xFFFFFF).to(torch.float32).add_(0.5).mul_(1.0 / 16777216.0)  # (0, 1), 24 bits
    r = u[:, :half].log().mul_(-2.0).sqrt_()
    theta = u[:, half:].mul(2.0 * math.pi)
    return torch.cat([r * theta.cos(), r * theta.sin()], 1)[:, :n].to(dtype)


@dataclass
class NoiseKey:
    """The state of one keyed block: its seed and how many forward calls it has served."""

    seed: int
    calls: int = 0

    def row_keys(self, x: torch.Tensor, call: int | None = None) -> torch.Tensor:
        """Keys of the rows of ``x`` for forward call ``call`` (default: the next one, which is then used up)."""
        if call is None:
            call, self.calls = self.calls, self.calls + 1
        return self.keys_for(content_keys(x), call)

    def keys_for(self, content: torch.Tensor, call: int) -> torch.Tensor:
        """Row keys from precomputed :func:`content_keys` for forward call ``call``."""
        return _mix32(content ^ _scalar_key(self.seed, _SEED_SALT, call))

    def take(self, n: int) -> int:
        """Reserve ``n`` consecutive forward calls (an EOT batch computed at once); returns the first."""
        first, self.calls = self.calls, self.calls + int(n)
        return first


def _stochastic_modules(model: torch.nn.Module):
    return [m for m in model.modules() if getattr(m, "stochastic", False)]


@contextlib.contextmanager
def keyed_noise(model: torch.nn.Module, seed: int | None):
    """Inside the block, ``model``'s eval-time noise is keyed on (seed, row content, call); ``None``: unchanged."""
    if seed is None:
        yield None
        return
    key = NoiseKey(int(seed))
    mods = _stochastic_modules(model)
    old = [m.__dict__.get("_noise_key") for m in mods]
    for m in mods:
        m._noise_key = key
    try:
        yield key
    finally:
        for m, o in zip(mods, old):
            if o is None:
                m.__dict__.pop("_noise_key", None)
            else:
                m._noise_key = o


def active_key(module: torch.nn.Module) -> NoiseKey | None:
    """The key of the keyed block ``module`` is in, or None (then it draws from the global RNG).

    Training (``module.training``) never uses keyed noise.
    """
    if module.training:
        return None
    return module.__dict__.get("_noise_key")
