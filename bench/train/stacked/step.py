"""One training step of a stack, eager or as a captured CUDA graph.

A step gathers each member's batch (one index-gather of the data for all members), draws each
member's noise from its own generator, runs the stacked forward and backward, one fused Adam step
over the stacked parameters (elementwise, so every member keeps its own moments) and the EMA update
(``_foreach_lerp_``, with TF's warm-up of the decay). Loss terms accumulate on the device, so a
step needs no host synchronisation.

**Graph capture** (``graphs=True``; the engine turns it on on CUDA and off on the CPU): a batch of 100
through a 784-1024-1024 network is tiny for a GPU, so an eager step is mostly kernel-launch time. With
graphs, the step's static shapes (one graph per batch size: a full batch and the last partial one)
are captured once and replayed: the member's indices, the learning rate and the EMA weight are
device tensors written before each replay (the EMA as one ``lerp_`` per tensor, since ``_foreach_lerp_``
takes its weight as a number a graph would freeze), Adam is ``capturable`` with a tensor learning rate, and
the noise is drawn (eagerly, from each member's own generator) into the graph's static buffers. The
warm-up steps capture needs run from a saved state that is restored afterwards, so they leave no
trace: a graph's first replay is the stack's next real step, wherever a run (or a resumed run) starts.

On the CPU the same static path runs without capture (``graphs="static"``, for the tests). It follows
the eager step up to rounding: Adam with a tensor learning rate computes its step size in fp32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..recipe import TrainConfig, ema_decay_at, make_optimizer


class StackStep:
    def __init__(self, program, stack, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, graphs: bool | str = False):
        """``x`` (N, D): the training inputs, flattened and scaled as the models scale them; ``y`` (N,)."""
        self.program, self.stack, self.cfg, self.x, self.y = program, stack, cfg, x, y
        self.device = x.device
        self.static = bool(graphs)
        self.capture = graphs is True and self.device.type == "cuda"
        params = stack.params
        if self.static:
            self.lr = torch.tensor(cfg.lr, dtype=torch.float32, device=self.device)
            self.ema_weight = torch.zeros((), dtype=torch.float32, device=self.device)
            self.opt = torch.optim.Adam(params, lr=self.lr, betas=(cfg.beta1, cfg.beta2), fused=True, capturable=True)
        else:
            self.opt = make_optimizer(params, cfg, self.device)
        self.sums = torch.zeros(len(program.stat_names), program.size, device=self.device)
        self._noise: dict[int, list[torch.Tensor]] = {}
        self._graphs: dict[int, tuple] = {}

    # ------------------------------------------------------------------------------- optimizer
    def set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            if self.static:
                g["lr"].fill_(lr)
            else:
                g["lr"] = lr

    def optimizer_state(self) -> dict:
        sd = self.opt.state_dict()
        sd["param_groups"] = [{**g, "lr": float(g["lr"])} for g in sd["param_groups"]]
        return sd

    def load_optimizer_state(self, sd: dict) -> None:
        groups = [{**g, "capturable": self.static} for g in sd["param_groups"]]
        self.opt.load_state_dict({**sd, "param_groups": groups})
        if self.static:  # load_state_dict replaced the lr tensor with a float: restore the static one
            for g in self.opt.param_groups:
                lr = float(g["lr"])
                g["lr"] = self.lr
                self.lr.fill_(lr)

    def reset_sums(self) -> None:
        self.sums.zero_()

    # ------------------------------------------------------------------------------------ steps
    def _noise_for(self, batch: int) -> list[torch.Tensor]:
        if batch not in self._noise:
            self._noise[batch] = self.program.noise_buffers(batch, self.stack.params)
        return self._noise[batch]

    def _body(self, idx: torch.Tensor, noise: list[torch.Tensor], ema_weight) -> None:
        loss, stats = self.program.loss(self.stack.params, self.x[idx], self.y[idx], noise)
        if not self.capture:
            self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # members are independent: each one's gradient is its own loss's
        self.opt.step()
        with torch.no_grad():
            if self.static:  # _foreach_lerp_ takes a number, which a graph would freeze: lerp_ takes a tensor
                for e, p in zip(self.stack.ema, self.stack.params):
                    e.lerp_(p, ema_weight)
            else:
                torch._foreach_lerp_(self.stack.ema, self.stack.params, ema_weight)
            self.sums.add_(torch.stack([stats[k] for k in self.program.stat_names]))

    def __call__(self, idx: torch.Tensor, ema_updates: int) -> None:
        """One step on the members' batches ``idx`` (M, B): row m indexes member m's examples."""
        noise = self._noise_for(idx.shape[1])
        self.program.draw_noise(noise, self.stack.noise)
        weight = 1.0 - ema_decay_at(self.cfg.ema_decay, ema_updates)
        if not self.static:
            self._body(idx, noise, weight)
            return
        static_idx, replay = self._graph(idx.shape[1])
        static_idx.copy_(idx)
        self.ema_weight.fill_(weight)
        replay()

    # --------------------------------------------------------------------------------- capture
    def _graph(self, batch: int):
        if batch not in self._graphs:
            idx = torch.zeros(self.program.size, batch, dtype=torch.long, device=self.device)
            noise = self._noise_for(batch)
            self._warm_up(idx, noise)
            if self.capture:
                graph = torch.cuda.CUDAGraph()
                self.opt.zero_grad(set_to_none=True)
                with torch.cuda.graph(graph):
                    self._body(idx, noise, self.ema_weight)
                replay = graph.replay
            else:

                def replay(idx=idx, noise=noise):
                    self._body(idx, noise, self.ema_weight)

            self._graphs[batch] = (idx, replay)
        return self._graphs[batch]

    def _tensors(self) -> list[torch.Tensor]:
        """Every tensor a step mutates (Adam's state included, once it exists)."""
        out = [p.data for p in self.stack.params] + list(self.stack.ema) + [self.sums]
        for p in self.stack.params:
            out += [v for v in self.opt.state.get(p, {}).values() if torch.is_tensor(v)]
        return out

    def _warm_up(self, idx: torch.Tensor, noise: list[torch.Tensor], steps: int = 3) -> None:
        """Run the eager steps capture needs, then put every tensor back as it was (in place)."""
        had_state = set(self.opt.state)
        saved = [t.clone() for t in self._tensors()]
        n_saved = len(saved)
        stream = torch.cuda.Stream() if self.capture else None
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "capturable=True ... running without CUDA graph capture"
            for _ in range(steps):
                self.opt.zero_grad(set_to_none=True)
                self._body(idx, noise, self.ema_weight)
        if stream is not None:
            torch.cuda.current_stream().wait_stream(stream)
        with torch.no_grad():
            now = self._tensors()
            for t, s in zip(now[:n_saved], saved):
                t.copy_(s)
            for p in self.stack.params:  # Adam's state created by the warm-up: back to its zeros
                if p not in had_state:
                    for v in self.opt.state[p].values():
                        if torch.is_tensor(v):
                            v.zero_()
        self.opt.zero_grad(set_to_none=True)
