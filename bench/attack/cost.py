"""What an attack costs: example-gradients, forward rows and Linear FLOPs, against the measured peak."""

from __future__ import annotations

import functools
import sys
import time

import torch

from ..protocol import batch_seed, keyed_noise, seeded


@functools.lru_cache(maxsize=4)
def matmul_peak_flops(device: str = "cpu") -> float:
    """The fp32 matmul rate this process reaches (FLOP/s), measured once per process (bench.flops)."""
    from ..flops import matmul_peak_gflops

    return matmul_peak_gflops(device) * 1e9


class CostMeter:
    """Counts what an attack costs while active: example-gradients, forward rows and Linear FLOPs.

    FLOPs come from the model's ``nn.Linear`` layers only (2 per multiply-add): a forward counts every
    row it processed (for a stochastic model that includes each sample through the layers after the
    noise); a backward through a layer counts the same again (input gradients only: parameters are
    frozen during attacks, so no weight gradients are computed).
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.forward_rows = 0
        self.grad_rows = 0
        self.flops = 0.0
        self._handles = []
        self._wrapped: list[str] = []  # instance wrappers set by _wrap_eot_logits (removed on exit)

    def __enter__(self):
        self._handles.append(self.model.register_forward_hook(self._on_model))
        for m in self.model.modules():
            if isinstance(m, torch.nn.Linear):
                self._handles.append(m.register_forward_hook(self._on_linear))
        self._wrap_eot_logits()
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for name in self._wrapped:  # only the wrappers set here: the class's methods (or another's) again
            self.model.__dict__.pop(name, None)
        self._wrapped = []

    def _wrap_eot_logits(self):
        """Count ``eot_logits(x, n)`` (n forward passes computed at once, ``attacks.eot``) as n forward and,
        when differentiated, n gradient evaluations per row, as the plain EOT loop would be counted."""

        def count(out, rows):
            self.forward_rows += rows
            if out.requires_grad:
                out.register_hook(lambda g, rows=rows: self._add_grad(rows))
            return out

        self._wrapped = []
        fused = getattr(self.model, "eot_logits", None)
        if fused is not None and "eot_logits" not in self.model.__dict__:
            self.model.eot_logits = lambda x, n: count(out := fused(x, n), int(out.shape[0] * out.shape[1]))
            self._wrapped.append("eot_logits")
        # one draw from a shared encoder pass (attacks.eot.SharedEncoderEOT): one forward, as the plain call
        draw = getattr(self.model, "draw_logits", None)
        if draw is not None and "draw_logits" not in self.model.__dict__:
            self.model.draw_logits = lambda mu, sigma, x: count(out := draw(mu, sigma, x), int(out.shape[0]))
            self._wrapped.append("draw_logits")

    def _on_model(self, module, inputs, out):
        rows = int(out.shape[0])
        self.forward_rows += rows
        if out.requires_grad:
            out.register_hook(lambda g, rows=rows: self._add_grad(rows))

    def _add_grad(self, rows):
        self.grad_rows += rows

    def _on_linear(self, module, inputs, out):
        rows = inputs[0].numel() // module.in_features
        flops = 2.0 * rows * module.in_features * module.out_features
        self.flops += flops
        if out.requires_grad:
            out.register_hook(lambda g, flops=flops: self._add_flops(flops))

    def _add_flops(self, flops):
        self.flops += flops


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cost_fields(meter: CostMeter, wall: float, device) -> dict:
    peak = matmul_peak_flops(str(torch.device(device)))
    rate = meter.flops / wall if wall > 0 else float("nan")
    return {
        "wall_time_s": wall,
        "grad_evals": meter.grad_rows,
        "forward_evals": meter.forward_rows,
        "grad_evals_per_s": meter.grad_rows / wall if wall > 0 else float("nan"),
        "gflop": meter.flops / 1e9,
        "gflop_per_s": rate / 1e9,
        "peak_fraction": rate / peak,
    }


def run_attack(model, attack, x, y, *, batch_size: int, seed: int, device, progress=False, desc=""):
    """Attack every example in batches; returns (adversarial inputs on CPU, cost dict).

    The model's noise is keyed on (``seed``, example, call) in every batch (``models.noise``), so each
    example meets the same draws whatever the batching; random starts and the attack's own seed (APGD,
    Square) come from the batch's seed (:func:`bench.protocol.batch_seed`).
    """
    from tqdm.auto import tqdm

    adv = []
    meter = CostMeter(model)
    _sync(device)
    t0 = time.perf_counter()
    reseed = getattr(attack, "reseed", None)
    with meter:
        starts = range(0, len(x), batch_size)
        for b, i in enumerate(tqdm(starts, desc=desc, leave=False, disable=not progress, file=sys.stderr)):
            bseed = batch_seed(seed, b)
            if reseed is not None:
                reseed(bseed)
            with seeded(bseed, device), keyed_noise(model, seed):
                adv.append(attack(x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)).cpu())
    _sync(device)
    wall = time.perf_counter() - t0
    return torch.cat(adv), cost_fields(meter, wall, device)


def perturbation_fields(x, adv) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Mean and max L-inf and L2 size of the perturbations, and the per-example norms."""
    d = (adv - x).flatten(1).double()
    linf, l2 = d.abs().amax(1), d.norm(dim=1)
    fields = {
        "linf_mean": float(linf.mean()),
        "linf_max": float(linf.max()),
        "l2_mean": float(l2.mean()),
        "l2_max": float(l2.max()),
    }
    return fields, linf, l2
