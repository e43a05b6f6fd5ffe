"""The entries of the results file: one model (:class:`ModelResult`) and one model-seed (:class:`SeedResult`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .records import AttackRecord, _num, _seed_sort

if TYPE_CHECKING:
    from .file import Results


# ---------------------------------------------------------------------------------------- seeds
UNRECORDED_NOISE = "unrecorded"


def recorded_noise(setup: dict) -> str:
    """The ``eval_noise`` an attack setup records, or ``UNRECORDED_NOISE`` for a run attacked before the scheme
    was recorded (it may have been keyed or drawn per batch: ``bench.protocol.EVAL_NOISE``)."""
    return setup.get("eval_noise") or UNRECORDED_NOISE


class SeedResult:
    """Everything measured for one (model, seed)."""

    def __init__(self, model: str, seed: str, raw: dict, results: Results):
        self.model, self.seed_id, self.raw, self._results = model, str(seed), raw, results

    @property
    def seed(self) -> int:
        return int(self.seed_id)

    # training and clean evaluation
    @property
    def train(self) -> dict:
        return self.raw.get("train") or {}

    @property
    def imported(self) -> dict:
        """Where imported weights came from (``vib-bench import``: file, checksum); {} when trained here."""
        return self.train.get("imported") or {}

    @property
    def state(self) -> str:
        """``done``, ``running`` or ``failed`` (a seed with no training record counts as done)."""
        return self.train.get("state", "done")

    @property
    def clean(self) -> dict:
        return self.raw.get("clean") or {}

    @property
    def is_done(self) -> bool:
        """Trained and evaluated: the seeds every table is computed over."""
        return self.state == "done" and bool(self.raw.get("clean"))

    def clean_metric(self, key: str) -> float:
        """One clean metric (``error``, ``nll``, ``ece``, ``brier``, ``rate_nats``, ``n``); NaN when absent."""
        return _num(self.clean.get(key))

    def set_train(self, status: dict) -> None:
        self.raw["train"] = status

    def set_clean(self, metrics: dict) -> None:
        self.raw["clean"] = metrics

    # attacks
    def records(self) -> list[AttackRecord]:
        """The attack records that carry a number, in stored order."""
        out = []
        for r in self.raw.get("attacks") or []:
            if isinstance(r, dict):
                rec = AttackRecord(r)
                if rec.valid():
                    out.append(rec)
        return out

    def has_attacks(self) -> bool:
        return bool(self.raw.get("attacks"))

    @property
    def attack_checks(self) -> dict:
        return self.raw.get("attack_checks") or {}

    @property
    def attack_setup(self) -> dict:
        return self.raw.get("attack_setup") or {}

    @property
    def eval_noise(self) -> str:
        """The evaluation-noise scheme its attacks ran under (:func:`recorded_noise`)."""
        return recorded_noise(self.attack_setup)

    def set_attacks(self, records: list[AttackRecord], checks: dict, setup: dict) -> None:
        self.raw["attacks"] = [r.raw for r in records]
        self.raw["attack_checks"] = checks
        self.raw["attack_setup"] = setup

    # timing and information
    @property
    def throughput(self) -> dict:
        return self.raw.get("throughput") or {}

    def throughput_median(self, part: str, batch: str | None = None) -> float:
        """Median examples/s of ``inference`` at a batch size (``"100"``) or of ``train``; NaN when absent."""
        st = self.throughput.get(part) or {}
        if batch is not None:
            st = st.get(batch) or {}
        return _num(st.get("median"))

    @property
    def machine(self) -> dict:
        """The machine the throughput was measured on ({} when not timed)."""
        return self.throughput.get("machine") or {}

    def set_throughput(self, tp: dict) -> None:
        self.raw["throughput"] = tp

    @property
    def info(self) -> dict:
        return self.raw.get("info") or {}

    def info_estimates(self, quantity: str) -> dict[str, dict]:
        """``vib-bench info``'s estimates of ``I(X;Z)`` or ``I(Z;Y)``: estimator -> estimate record."""
        return (self.info.get("estimates") or {}).get(quantity) or {}

    @property
    def info_bounds(self) -> dict:
        """``vib-bench info``'s bounds in nats: ``rate_nats``, ``izy_lower_nats``, ``h_y_nats`` and, for a
        Gaussian encoder, the known-encoder interval ``ixz_lower_nats``/``ixz_upper_nats``/``ixz_lower_at_cap``."""
        return self.info.get("bounds") or {}

    @property
    def info_flags(self) -> list[dict]:
        """``vib-bench info``'s flags on its estimates (``flag``, ``quantity``, ``estimator``, ``message``)."""
        return list(self.info.get("flags") or [])

    @property
    def info_deterministic(self) -> bool | None:
        """Whether ``info`` measured a deterministic representation (I(X;Z) infinite); None without info."""
        if not self.info:
            return None
        return self.info.get("representation") not in (None, "z sample")

    def set_info(self, rec: dict) -> None:
        self.raw["info"] = rec

    @property
    def infoplane(self) -> dict:
        return self.raw.get("infoplane") or {}

    @property
    def infoplane_setup(self) -> dict:
        return self.raw.get("infoplane_setup") or {}

    def update_infoplane(self, plane: dict, setup: dict) -> None:
        self.raw.setdefault("infoplane", {}).update(plane)
        self.raw.setdefault("infoplane_setup", {}).update(setup)

    @property
    def claims(self) -> dict:
        """``vib-bench claims``' measurements for this (model, seed): setup, attack cells, first-zeros results."""
        return self.raw.get("claims") or {}

    def set_claims(self, rec: dict) -> None:
        self.raw["claims"] = rec

    def per_example(self) -> dict[str, np.ndarray]:
        """This seed's stored per-example correctness vectors ({} when absent or unreadable)."""
        return self._results.per_example(self.model, self.seed_id)

    def failures(self, stage: str | None = None) -> list[dict]:
        """Tasks that failed for good, after retries (Ray executor): ``[{"stage", "task", "error"}]``."""
        return [f for f in self.raw.get("failures") or [] if stage in (None, f.get("stage"))]

    def set_failures(self, stage: str, failures: list[dict]) -> None:
        """Replace one stage's failures with ``[{"task", "error"}]``; the key goes when none are left."""
        kept = [f for f in self.failures() if f.get("stage") != stage] + [{"stage": stage, **f} for f in failures]
        if kept:
            self.raw["failures"] = kept
        else:
            self.raw.pop("failures", None)


# --------------------------------------------------------------------------------------- models
class ModelResult:
    """One model of a run: its configuration and its seeds."""

    def __init__(self, name: str, raw: dict, results: Results):
        self.name, self.raw, self._results = name, raw, results

    @property
    def config(self) -> dict:
        return self.raw.get("config") or {}

    @property
    def stochastic(self) -> bool:
        return bool(self.raw.get("stochastic"))

    @property
    def beta(self) -> float | None:
        """The VIB beta (> 0) of this model's configuration, or None."""
        b = self.config.get("beta")
        return float(b) if isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 else None

    @property
    def vib_beta(self) -> float | None:
        """The beta (>= 0, so beta = 0 counts) of a stochastic model whose configuration has one, or None."""
        b = self.config.get("beta")
        ok = isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0
        return float(b) if ok and self.stochastic else None

    def set_config(self, config: dict, stochastic: bool) -> None:
        self.raw["config"] = config
        self.raw["stochastic"] = bool(stochastic)

    def seed_ids(self) -> list[str]:
        return sorted(self.raw.get("seeds") or {}, key=_seed_sort)

    def seeds(self) -> list[SeedResult]:
        return [self.seed(s) for s in self.seed_ids()]

    def seed(self, seed) -> SeedResult | None:
        raw = (self.raw.get("seeds") or {}).get(str(int(seed)) if str(seed).isdigit() else str(seed))
        return None if raw is None else SeedResult(self.name, str(seed), raw, self._results)

    def done_seeds(self) -> list[SeedResult]:
        return [s for s in self.seeds() if s.is_done]
