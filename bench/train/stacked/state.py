"""A stack's state: its members' parameters, EMA and generators, stacked on one device.

Each member keeps what its own run would have: its seed-determined initialisation (built by
``bench.train.recipe.build_member``), its shuffle generator (seeded with its seed), its noise
generator (the RNG state right after its initialisation), its Adam moments (slices of the stacked
moments: Adam is elementwise) and its EMA. The members' own modules stay alive with parameters that
are views into the stacked tensors, so validation, snapshots and the final weights go through the
very code the per-model loop uses.

A stack's resume state is one file written atomically (``rundir.stack_checkpoint_path``), so a
``kill -9`` can never leave members at different epochs. :meth:`Stack.member_checkpoint` unpacks
one member into the per-model loop's checkpoint format, so a stack can be continued by the loop.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field

import torch

FORMAT = "vib-bench stack 1"


@dataclass
class Member:
    name: str
    seed: int
    overrides: dict
    model: torch.nn.Module
    rng: dict  # bench.train.recipe.rng_state right after initialisation
    files: object = field(default=None)  # bench.train.member_files.MemberFiles


def stack_id(pairs) -> str:
    """A stable name for a stack: its (model, seed) members, in order."""
    text = json.dumps([[name, int(seed)] for name, seed in pairs])
    return f"stack-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _alias(module: torch.nn.Module, stacked: list, i: int) -> None:
    """Make the module's parameters views of row ``i`` of the stacked tensors (in parameter order)."""
    for p, s in zip(module.parameters(), stacked):
        p.data = s.data[i]


class Stack:
    """Stacked tensors are lists in the members' ``parameters()`` order (names may differ: dropout
    layers shift an MLP's indices); ``names[i]`` are member i's parameter names."""

    def __init__(self, members: list[Member], device: torch.device):
        self.members, self.device = members, device
        self.size = len(members)
        self.names = [[k for k, _ in m.model.named_parameters()] for m in members]
        own = [list(m.model.parameters()) for m in members]
        with torch.no_grad():
            self.params = [torch.nn.Parameter(torch.stack([o[j].detach() for o in own])) for j in range(len(own[0]))]
            self.ema = [p.detach().clone() for p in self.params]
        self.models = [m.model for m in members]
        self.ema_models = [copy.deepcopy(m.model).eval() for m in members]
        for i in range(self.size):
            _alias(self.models[i], self.params, i)
            _alias(self.ema_models[i], self.ema, i)
        self.shuffles = [torch.Generator().manual_seed(int(m.seed)) for m in members]
        self.noise = []
        for m in members:
            g = torch.Generator(device=device)
            g.set_state(m.rng["cuda" if device.type == "cuda" else "cpu"])
            self.noise.append(g)
        self.failed: dict[int, tuple[str, int]] = {}  # member index -> (its error, epochs it finished)

    def active(self) -> list[int]:
        return [i for i in range(self.size) if i not in self.failed]

    # --------------------------------------------------------------------------------- checkpoints
    def rng_states(self) -> list[dict]:
        """Each member's RNG state in the loop's checkpoint format: its noise generator plays the
        global RNG of its own run."""
        key = "cuda" if self.device.type == "cuda" else "cpu"
        return [{**m.rng, key: g.get_state()} for m, g in zip(self.members, self.noise)]

    def state_dict(self, epoch: int, ema_updates: int, optimizer: dict, logs: list[list[str]] | None = None) -> dict:
        """``logs``: each member's epoch log lines so far (a resume falls back on them when a log file
        lost lines written after the checkpoint's fsync)."""
        return {
            "format": FORMAT,
            "members": [[m.name, int(m.seed)] for m in self.members],
            "epoch": epoch,
            "ema_updates": ema_updates,
            "names": self.names,
            "params": [p.detach() for p in self.params],
            "ema": list(self.ema),
            "optimizer": optimizer,
            "shuffle": [g.get_state() for g in self.shuffles],
            "rng": self.rng_states(),
            "failed": [[i, e, d] for i, (e, d) in self.failed.items()],
            "logs": [list(lg) for lg in logs] if logs is not None else None,
        }

    def load_state_dict(self, ck: dict) -> tuple[int, int, dict]:
        """Restore in place (the stacked tensors keep their storage); returns (epoch, ema_updates, optimizer)."""
        if (
            ck.get("format") != FORMAT
            or ck.get("members") != [[m.name, int(m.seed)] for m in self.members]
            or ck.get("names") != self.names
        ):
            raise ValueError("the checkpoint holds another stack")
        with torch.no_grad():
            for p, e, p0, e0 in zip(self.params, self.ema, ck["params"], ck["ema"]):
                p.copy_(p0)
                e.copy_(e0)
        key = "cuda" if self.device.type == "cuda" else "cpu"
        for g, st in zip(self.shuffles, ck["shuffle"]):
            g.set_state(st)
        for g, st in zip(self.noise, ck["rng"]):
            g.set_state(st[key])
        self.failed = {int(i): (str(e), int(d)) for i, e, d in ck.get("failed", [])}
        return int(ck["epoch"]), int(ck["ema_updates"]), ck["optimizer"]


def unpack_checkpoint(ck: dict) -> list[tuple[str, int, dict]]:
    """(name, seed, checkpoint) of each member of a stack checkpoint, in the per-model loop's format
    (``bench.train.recipe.train_model`` resumes from it): Adam's moments and every stacked tensor are
    sliced, the step count and settings shared."""
    if ck.get("format") != FORMAT:
        raise ValueError("not a stack checkpoint")
    opt = ck["optimizer"]
    groups = [{**g, "lr": float(g["lr"]), "capturable": False} for g in opt["param_groups"]]
    out = []
    for i, (name, seed) in enumerate(ck["members"]):
        state = {j: {k: (v if k == "step" else v[i]).clone() for k, v in st.items()} for j, st in opt["state"].items()}
        out.append(
            (
                name,
                int(seed),
                {
                    "epoch": int(ck["epoch"]),
                    "ema_updates": int(ck["ema_updates"]),
                    "model": {k: v[i].clone() for k, v in zip(ck["names"][i], ck["params"])},
                    "ema": {k: v[i].clone() for k, v in zip(ck["names"][i], ck["ema"])},
                    "optimizer": {"state": state, "param_groups": [dict(g) for g in groups]},
                    "shuffle": ck["shuffle"][i],
                    "rng": ck["rng"][i],
                    "log": (ck.get("logs") or [None] * len(ck["members"]))[i],
                },
            )
        )
    return out
