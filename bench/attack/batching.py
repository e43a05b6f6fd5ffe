"""How many examples an attack batch holds: as many as memory allows, unless the user says otherwise.

Attacks are per-example computations (``bench.protocol`` keys a randomised model's noise on the example,
so results do not depend on the batch, up to float32 rounding and per-batch random starts), so the
largest batch that fits is the fastest: fewer Python steps per example, larger matrix products and, on
a GPU, fewer launches and syncs. The size comes from the model's activation footprint per example,
measured with forward hooks on a two-row forward pass, times the EOT draws, against the memory free on
the device.
"""

from __future__ import annotations

import os

import torch

MEMORY_FRACTION = 0.25  # of the free memory, for one attack batch (autograd keeps activations and their grads)
OVERHEAD = 4  # activations + their gradients + the attack's own per-example tensors and temporaries
MAX_BATCH = 20_000


def free_memory_bytes(device) -> int:
    """Free memory on ``device``: CUDA's own count, or the host's available memory (Linux), else 4 GiB."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


@torch.no_grad()
def activation_bytes_per_example(model: torch.nn.Module, in_shape, device) -> int:
    """Bytes of every module output for one example of one forward pass (a stochastic model's samples included)."""
    total = [0]

    def hook(module, inputs, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(2, *in_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return max(total[0] // 2, 1)


def auto_batch_size(model: torch.nn.Module, n_examples: int, in_shape, device, draws: int = 1) -> int:
    """The attack batch size for ``model``: the examples whose activations (times ``draws`` EOT draws
    computed at once, and :data:`OVERHEAD`) fit in :data:`MEMORY_FRACTION` of the free memory; at most
    ``n_examples`` (one batch) and :data:`MAX_BATCH`, at least 1."""
    per_example = activation_bytes_per_example(model, in_shape, device) * max(int(draws), 1) * OVERHEAD
    fits = int(MEMORY_FRACTION * free_memory_bytes(device)) // per_example
    return max(1, min(int(n_examples), MAX_BATCH, fits))
