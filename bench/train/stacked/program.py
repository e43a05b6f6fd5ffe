"""Stacked programs: the training objective of M members of one architecture as one computation.

A member is a model built by the registry's factory. Its parameters are stacked along a new first
dimension, and what differs between members (dropout rate, label smoothing, confidence penalty,
VIB's beta and sigma shift) becomes a per-member tensor. Every layer is one batched matmul
(:class:`StackedLinear`: ``baddbmm`` with the weight transposed, which on the CPU is the very GEMM
``nn.Linear`` calls, so a member's forward pass agrees bit for bit with its own model's).

The math restates ``MLPClassifier.loss`` and ``VIBClassifier.loss`` on stacked tensors. So that a
change to a model can never silently change what a stack trains, :func:`check_members` compares
every member's own ``loss`` with the stacked one on a probe batch before training (the engine falls
back to the per-model loop when they differ). Models of any other class, subclasses included, are
not stackable: :func:`signature` returns None for them.

Each member's noise (dropout masks, VIB's epsilon) is drawn from its own generator, in the order and
with the calls its model makes, so a member sees the noise its separate run would see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_ACTS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


def _leaves(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """The leaf modules of nested Sequentials, in call order, with their state-dict names."""
    if not isinstance(module, nn.Sequential):
        return [(prefix, module)]
    out = []
    for name, child in module.named_children():
        out += _leaves(child, f"{prefix}.{name}")
    return out


def _layers(leaves, activation: type | None) -> tuple[list[tuple[str, str]], list[float]] | None:
    """[(weight key, bias key)] and dropout rates of ``[Linear, act, (Dropout)]*``; None otherwise."""
    layers, rates, i = [], [], 0
    while i < len(leaves):
        name, lin = leaves[i]
        if (
            type(lin) is not nn.Linear
            or lin.bias is None
            or i + 1 >= len(leaves)
            or type(leaves[i + 1][1]) is not activation
        ):
            return None
        i += 2
        p = 0.0
        if i < len(leaves) and type(leaves[i][1]) is nn.Dropout:
            p = float(leaves[i][1].p)
            i += 1
        layers.append((f"{name}.weight", f"{name}.bias"))
        rates.append(p)
    return layers, rates


def _linear(leaf) -> tuple[str, str] | None:
    name, lin = leaf
    return (f"{name}.weight", f"{name}.bias") if type(lin) is nn.Linear and lin.bias is not None else None


@dataclass
class Structure:
    """What a stack needs to know about one member. Layers are (weight, bias) positions in the
    model's ``named_parameters()`` order, which is also the order of the stacked tensors."""

    kind: str  # "mlp" or "vib"
    hidden: list  # (weight, bias) of each hidden layer, in order
    out: tuple  # the MLP's head, or VIB's encoder output layer (2K)
    decoder: tuple | None  # VIB's decoder
    activation: type
    hyper: dict[str, float]  # per-member values: dropout, label_smoothing, ... beta, sigma_shift
    names: list[str] = None  # the member's parameter names (dropout shifts them)
    key: tuple = ()  # members with equal keys stack together


def structure(model: nn.Module) -> Structure | None:
    """The stackable structure of a model, or None (unknown class, subclass or layout)."""
    try:
        from models.mlp import MLPClassifier
        from models.vib import VIBClassifier
    except ImportError:  # pragma: no cover - a models/ without these classes
        return None
    if any(True for _ in model.buffers()) or not all(p.requires_grad for p in model.parameters()):
        return None
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        return None
    try:
        if type(model) is MLPClassifier:
            leaves = _leaves(model.body, "body")
            act = next((t for _, m in leaves for t in _ACTS if type(m) is t), None)
            parsed = _layers(leaves, act)
            out = _linear(("head", model.head))
            if parsed is None or out is None or len(set(parsed[1])) > 1:
                return None
            hyper = {
                "dropout": parsed[1][0] if parsed[1] else 0.0,
                "label_smoothing": float(model.label_smoothing),
                "confidence_penalty": float(model.confidence_penalty),
            }
            s = Structure("mlp", parsed[0], out, None, act, hyper)
        elif type(model) is VIBClassifier:
            leaves = _leaves(model.encoder, "encoder")
            act = next((t for _, m in leaves for t in _ACTS if type(m) is t), None)
            parsed = _layers(leaves[:-1], act)
            out, dec = _linear(leaves[-1]), _linear(("decoder", model.decoder))
            if parsed is None or out is None or dec is None or any(parsed[1]):
                return None
            hyper = {"beta": float(model.beta), "sigma_shift": float(model.sigma_shift)}
            s = Structure("vib", parsed[0], out, dec, act, hyper)
        else:
            return None
    except (AttributeError, IndexError, TypeError):
        return None
    if s.activation is None:
        return None
    s.names = [k for k, _ in model.named_parameters()]
    layers = [*s.hidden, s.out, *([s.decoder] if s.decoder else [])]
    if sorted(k for pair in layers for k in pair) != sorted(s.names):
        return None
    pos = {k: i for i, k in enumerate(s.names)}
    s.hidden = [(pos[w], pos[b]) for w, b in s.hidden]
    s.out = (pos[s.out[0]], pos[s.out[1]])
    s.decoder = (pos[s.decoder[0]], pos[s.decoder[1]]) if s.decoder else None
    shapes = tuple(tuple(p.shape) for p in model.parameters())
    s.key = (
        s.kind,
        s.activation.__name__,
        tuple(s.hidden),
        s.out,
        s.decoder,
        shapes,
        str(next(iter(dtypes))),
        type(model).__qualname__,
    )
    return s


class StackedLinear(torch.autograd.Function):
    """``h @ W^T + b`` for every member at once, with W (M, out, in) laid out as ``nn.Linear`` keeps it.

    The backward writes dW in W's own layout. Autograd's backward of ``baddbmm(b, h, W.transpose(1, 2))``
    would hand the optimizer a transposed gradient to copy first: on a 2-core CPU that copy took 90 ms
    per 1024 x 1024 layer of a stack of four, more than the layer's matmuls.
    """

    @staticmethod
    def forward(ctx, h, w, b):
        ctx.save_for_backward(h, w)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        grad_h = torch.bmm(grad, w) if ctx.needs_input_grad[0] else None
        return grad_h, torch.bmm(grad.transpose(1, 2), h), grad.sum(1)


class StackProgram:
    """The loss of M stacked members of one structure; hyperparameters are (M,) tensors."""

    def __init__(self, structures: list[Structure], num_classes: int, device):
        first = structures[0]
        if any(s.key != first.key for s in structures):
            raise ValueError("a stack needs members of one architecture")
        self.kind, self.hidden, self.out, self.decoder = first.kind, first.hidden, first.out, first.decoder
        self.act = _ACTS[first.activation]
        self.size, self.num_classes = len(structures), num_classes
        self.hyper = {
            k: torch.tensor([s.hyper[k] for s in structures], dtype=torch.float32, device=device) for k in first.hyper
        }
        self._rates = [s.hyper.get("dropout", 0.0) for s in structures]
        if self.kind == "mlp":
            cp = [s.hyper["confidence_penalty"] > 0 for s in structures]
            self.stat_names = ["ce", "entropy", "loss"] if any(cp) else ["ce", "loss"]
            self.member_stats = [["ce", "entropy", "loss"] if c else ["ce", "loss"] for c in cp]
        else:
            self.stat_names = ["loss", "ce", "kl"]
            self.member_stats = [list(self.stat_names) for _ in structures]
        self.dropout = any(self._rates)

    # ------------------------------------------------------------------------------------- noise
    def noise_buffers(self, batch: int, params: list) -> list[torch.Tensor]:
        """Tensors the noise of one step is drawn into (the same ones every step: graph-capturable)."""
        ref = params[self.hidden[0][0]] if self.hidden else params[self.out[0]]
        if self.kind == "vib":
            k = params[self.out[0]].shape[1] // 2
            return [torch.zeros(self.size, batch, k, dtype=ref.dtype, device=ref.device)]
        if not self.dropout:
            return []
        # Members without dropout keep a mask of ones (never drawn: their model draws nothing).
        return [
            torch.ones(self.size, batch, params[w].shape[1], dtype=ref.dtype, device=ref.device) for w, _ in self.hidden
        ]

    def draw_noise(self, buffers: list[torch.Tensor], generators: list[torch.Generator]) -> None:
        """Fill ``buffers`` with each member's noise from its own generator, as its model draws it."""
        if self.kind == "vib":
            for m, g in enumerate(generators):
                buffers[0][m].normal_(generator=g)  # = torch.randn_like(mu)
            return
        for m, (p, g) in enumerate(zip(self._rates, generators)):
            if p > 0:
                for mask in buffers:  # layer by layer, as nn.Dropout draws them
                    mask[m].bernoulli_(1 - p, generator=g).div_(1 - p)

    # -------------------------------------------------------------------------------------- loss
    def _linear(self, params: list, h: torch.Tensor, layer: tuple[str, str]) -> torch.Tensor:
        w, b = layer  # positions in the stacked parameter list
        return StackedLinear.apply(h, params[w], params[b])

    def _body(self, params: list, x: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.hidden):
            h = self.act(self._linear(params, h, layer))
            if self.kind == "mlp" and self.dropout:
                h = h * noise[i]
        return h

    def loss(self, params: list, x: torch.Tensor, y: torch.Tensor, noise: list[torch.Tensor]):
        """Per-member losses (M,) and stats {name: (M,)} for inputs x (M, B, D) already scaled."""
        h = self._body(params, x, noise)
        if self.kind == "mlp":
            return self._mlp_loss(self._linear(params, h, self.out), y)
        return self._vib_loss(params, h, y, noise[0])

    def eval_logits(self, params: list, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """What each member's own ``forward`` returns in evaluation mode, (M, B, C), for inputs (M, B, D)
        already scaled: MLP members' logits (no dropout); VIB members' log of the mean softmax over the
        draws ``eps`` (S, B, K), which every member shares (keyed noise depends on the example, not on the
        member: ``models.vib.keyed_draws``)."""
        h = x
        for layer in self.hidden:
            h = self.act(self._linear(params, h, layer))
        if self.kind == "mlp":
            return self._linear(params, h, self.out)
        if eps is None:
            raise ValueError("a VIB stack's evaluation needs the draws eps (S, B, K)")
        mu, rho = self._linear(params, h, self.out).chunk(2, dim=-1)  # (M, B, K)
        sigma = F.softplus(rho - self.hyper["sigma_shift"].view(-1, 1, 1))
        s, b, k = eps.shape
        z = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps.unsqueeze(0)  # (M, S, B, K)
        logits = self._linear(params, z.reshape(self.size, s * b, k), self.decoder)
        logp = torch.log_softmax(logits.view(self.size, s, b, -1), dim=-1)
        return torch.logsumexp(logp, dim=1) - math.log(s)

    @staticmethod
    def _nll(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(-1)

    def _mlp_loss(self, logits: torch.Tensor, y: torch.Tensor):
        logp = torch.log_softmax(logits, dim=-1)
        ce = self._nll(logp, y)
        ls = self.hyper["label_smoothing"]
        # F.cross_entropy(label_smoothing=ls) = (1 - ls) * nll + ls / C * (-sum_c log p_c)
        smoothed = (1 - ls) * ce + (-logp.sum(-1)).mean(-1) * (ls / self.num_classes)
        loss = torch.where(ls > 0, smoothed, ce)
        stats = {"ce": ce.detach()}
        if "entropy" in self.stat_names:
            cp = self.hyper["confidence_penalty"]
            ent = (-(logp.exp() * logp).sum(-1)).mean(-1)
            loss = torch.where(cp > 0, loss - cp * ent, loss)
            stats["entropy"] = ent.detach()
        stats["loss"] = loss.detach()
        return loss, stats

    def _vib_loss(self, params: list, h: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
        mu, rho = self._linear(params, h, self.out).chunk(2, dim=-1)
        t = rho - self.hyper["sigma_shift"].view(-1, 1, 1)
        sigma = F.softplus(t)
        log_sigma = torch.where(t > -15.0, torch.log(sigma), t)
        logits = self._linear(params, mu + sigma * eps, self.decoder)
        ce = self._nll(torch.log_softmax(logits, dim=-1), y)
        kl = (0.5 * (mu.pow(2) + sigma.pow(2) - 2.0 * log_sigma - 1.0).sum(-1)).mean(-1)
        loss = ce + self.hyper["beta"] * kl
        return loss, {"loss": loss.detach(), "ce": ce.detach(), "kl": kl.detach()}


def check_members(
    program: StackProgram,
    params: list,
    models: list,
    generators: list[torch.Generator],
    x: torch.Tensor,
    y: torch.Tensor,
    scale,
) -> str | None:
    """None when every member's own ``loss(x, y)`` equals the stacked loss on this batch, else a one-line
    reason. ``models`` are the members (their parameters views of ``params``); generators are untouched.

    This checks the objective, not the noise: dropout is off on both sides (the model in eval mode, the
    stack with masks of ones), and VIB's epsilon is drawn by the model's own call from each member's
    generator state, then given to the stack.
    """
    device = x.device
    noise = program.noise_buffers(len(x), params)
    states = [g.get_state() for g in generators]
    if program.kind == "vib":
        for m, st in enumerate(states):
            g = torch.Generator(device=device)
            g.set_state(st)
            noise[0][m].copy_(torch.randn(noise[0][m].shape, generator=g, device=device, dtype=noise[0].dtype))
    xs = scale(x).unsqueeze(0).expand(program.size, *x.flatten(1).shape)
    with torch.no_grad():
        loss, stats = program.loss(params, xs, y.unsqueeze(0).expand(program.size, -1), noise)
    for m, model in enumerate(models):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            if device.type == "cuda":
                torch.cuda.set_rng_state(states[m], device)
            else:
                torch.set_rng_state(states[m])
            model.train(program.kind == "vib")
            own, own_stats = model.loss(x, y)
        if list(own_stats) != program.member_stats[m]:
            return f"member {m}: its loss reports {list(own_stats)}, the stack {program.member_stats[m]}"
        for k, a, b in [("loss", own, loss[m])] + [(k, own_stats[k], stats[k][m]) for k in own_stats]:
            if not torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6, equal_nan=True):
                return f"member {m}: {k} {float(a):.6g} by its own loss, {float(b):.6g} stacked"
    return None
