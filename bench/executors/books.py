"""The Ray driver's books: what it keeps of each model-seed while tasks run, and how it writes it.

The driver is the only writer of ``results.json`` and the per-example stores: every write goes through
``bench.results.update_results`` and ``bench.rundir.save_per_example`` (atomic, under the run lock), as
soon as a task's result arrives, so an interrupted driver loses only what was still running. Results
arrive in completion order; an attack book puts its records back in the in-process stage's order when its
last unit is in, so that both executors write the same file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..attack.checks import post_checks
from ..attack.group import cell_line, eot_needed
from ..results import AttackRecord, Results, norm_eps, put_record, update_results
from ..rundir import load_per_example, model_dir, read_status, save_per_example, write_status


# ------------------------------------------------------------------------------------------- train
def failed_status(out: Path, name: str, seed: int, epochs: int, error: str) -> dict:
    """A training whose task failed for good: its status file and its record say failed, with the error."""
    mdir = model_dir(out, name, seed)
    old = read_status(mdir) or {}
    status = {
        "model": name,
        "seed": seed,
        "state": "failed",
        "epochs_done": old.get("epochs_done", 0),
        "epochs": epochs,
        "error": error,
    }
    if mdir.is_dir():
        write_status(mdir, status)
    return status


def mark_interrupted(out: Path, pairs) -> None:
    """Ctrl-C: trainings cut off mid-way must not say "running" (their checkpoints let --resume go on)."""
    for name, seed in pairs:
        mdir = model_dir(out, name, seed)
        st = read_status(mdir)
        if st and st.get("state") == "running":
            write_status(mdir, {**st, "state": "interrupted"})


# ------------------------------------------------------------------------------------------ attack
class AttackBook:
    """One model-seed's attack results while its units run."""

    def __init__(self, out: Path, name: str, seed: int, records: list[AttackRecord], units: list[list]):
        self.out, self.name, self.seed = out, name, seed
        self.initial = list(records)
        self.records = list(records)
        self.vectors = {k: torch.from_numpy(v) for k, v in load_per_example(out, name, seed).items()} if records else {}
        self.units = units  # [[(norm, eps), ...], ...]
        self.puts: dict[int, list] = {}
        self.left = len(units)
        self.setup = self.checks = self.clean = None
        self.skipped = False  # did not train: nothing to attack
        self.failures: list[dict] = []

    def unit_input(self, i: int) -> tuple[list[dict], dict]:
        """The records and vectors a unit's groups may reuse (``--resume``) or need for their worst case."""
        at = {(n, norm_eps(e)) for n, e in self.units[i]}
        recs = [r for r in self.records if (r.norm, r.eps) in at]
        keys = {r.vector_key for r in recs}
        return [r.raw for r in recs], {k: v for k, v in self.vectors.items() if k in keys}

    def start(self, result: dict | None) -> None:
        if result is None:
            self.skipped = True
            return
        self.clean, self.setup, self.checks = result["clean"], result["setup"], result["checks"]

    def apply(self, i: int, puts: list, log) -> None:
        """Merge one unit's records and vectors (writing the vectors and the results file)."""
        recs = []
        for raw, robust in puts:
            rec = AttackRecord(raw)
            save_per_example(self.out, self.name, self.seed, rec.vector_key, robust)
            put_record(self.records, rec)
            self.vectors[rec.vector_key] = robust
            recs.append((rec, robust))
            if not rec.is_worst_case:
                log(cell_line(rec))
        self.puts[i] = recs
        post_checks(self.records, self.checks)
        self.save()

    def fail(self, task: str, error: str) -> None:
        self.failures.append({"task": task, "error": error})
        self.save()

    def finish(self) -> list[AttackRecord] | None:
        """The last unit is in: records in the in-process order, the cross checks, the EOT check; saved."""
        if self.checks is None:
            return None
        records = list(self.initial)
        for i in sorted(self.puts):
            for rec, _ in self.puts[i]:
                put_record(records, rec)
        self.records = records
        post_checks(records, self.checks)
        if self.checks["randomised"]:
            self.checks["eot_needed"] = eot_needed(records)
        self.save()
        return records

    def save(self) -> None:
        def write(r: Results):
            entry = r.seed(self.name, self.seed, create=True)
            if self.checks is not None:
                entry.set_attacks(self.records, self.checks, self.setup)
            entry.set_failures("attack", self.failures)

        update_results(self.out, write)
