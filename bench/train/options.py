"""The training stage's settings, declared once (``bench.settings``): a suite's ``[train]`` table and the
flags of ``vib-bench train`` (and the recipe ``vib-bench run`` reads from a suite) come from
:class:`TrainSettings`. Imports no torch (``bench.train.recipe`` does).

The recipe's defaults are the paper's (Adam 1e-4, betas 0.5/0.999, x0.97 every 2 epochs, batch 100, weight
EMA 0.999) except ``epochs``: 20 here, as the CLI and the shipped suites have always had it (the paper: 200).
:meth:`TrainSettings.config` passes every recipe field to ``bench.train.recipe.TrainConfig`` explicitly, so the
recipe never falls back on that class's own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import from_table, setting, settings

STACK_MODES = ("auto", "on", "off")
TRAIN_SPLITS = ("train", "trainval")


@dataclass(frozen=True)
class TrainSettings:
    """What ``vib-bench train`` may be told (the recipe also by a suite's ``[train]`` table)."""

    models: list[str] = setting(
        default_factory=lambda: ["*"],
        kind="list",
        suite=None,
        what="model pattern",
        help="comma-separated names or wildcards (default: all)",
    )
    dataset: str = setting("digits", kind="str", suite=None, help="mnist, fashion-mnist or digits (default: {default})")
    # the recipe: suite [train] keys (bench.train.recipe.TrainConfig's fields)
    epochs: int = setting(20, kind="int", lo=1, help="passes over the training split (the paper: 200)")
    seeds: list[int] = setting(
        default_factory=lambda: [0],
        kind="list",
        item="int",
        suite=None,
        what="seed",
        help="comma-separated seeds (default: {default})",
    )
    batch_size: int = setting(100, kind="int", lo=1, help="examples per optimisation step (the paper's)")
    lr: float = setting(
        1e-4,
        kind="float",
        lo=0,
        open_lo=True,
        help="Adam's learning rate, decayed x0.97 every 2 epochs (the paper's 1e-4)",
    )
    train_split: str = setting(
        "train",
        kind="str",
        choices=TRAIN_SPLITS,
        help="train: hold out the validation split (default); trainval: all training data",
    )
    beta1: float = setting(0.5, kind="float", lo=0, hi=0.999999, flag=None, help="Adam's beta1 (default {default})")
    beta2: float = setting(0.999, kind="float", lo=0, hi=0.999999, flag=None, help="Adam's beta2 (default {default})")
    lr_decay: float = setting(
        0.97,
        kind="float",
        lo=0,
        hi=1,
        open_lo=True,
        flag=None,
        help="factor of the learning rate every decay_every epochs (default {default})",
    )
    decay_every: int = setting(2, kind="int", lo=1, flag=None, help="epochs between decays (default {default})")
    ema_decay: float = setting(
        0.999,
        kind="float",
        lo=0,
        hi=0.999999,
        flag=None,
        help="decay of the weights' moving average (default {default})",
    )
    overrides: dict = setting(
        kind="table",
        default_factory=dict,
        suite=None,
        flag="--set",
        metavar="KEY=VALUE",
        repeat=True,
        help="override a model argument, e.g. --set hidden=64,64 --set k=16 (repeatable)",
    )
    snapshot_every: int = setting(
        0,
        kind="int",
        lo=0,
        metavar="EPOCHS",
        help="save every layer's activations on a fixed sample every EPOCHS epochs (information plane)",
    )
    snapshot_n: int = setting(2000, kind="int", lo=1, metavar="N", help="size of that sample (default {default})")
    stack: str = setting(
        "auto",
        kind="str",
        choices=STACK_MODES,
        suite=None,
        help="train the model-seeds of one architecture as one stacked computation: auto (default: "
        "groups of two or more), on (every stackable group, even a group of one) or off "
        "(one model at a time)",
    )
    val_every: str = setting(
        "auto",
        kind="str",
        suite=None,
        metavar="N|auto",
        help="validate the EMA weights every N epochs and after the last; auto (default): as often as costs "
        "about 2%% of the steps' compute for these split sizes (MNIST: every 4). Never changes the weights",
    )
    checkpoint_every: str = setting(
        "60s",
        kind="str",
        suite=None,
        metavar="N|Ns",
        help="write the resume checkpoint every N epochs, or (Ns) at most once per N "
        "seconds; always after the last epoch (default {default}). --resume "
        "continues from the last one, bit-identical",
    )
    resume: bool = setting(False, kind="bool", suite=None, help="continue an interrupted run; finished work is kept")
    out: str | None = setting(None, kind="str", suite=None, metavar="RUN_DIR", required=True, help="run directory")

    @classmethod
    def recipe_keys(cls) -> list[str]:
        """The recipe's fields: those a suite's ``[train]`` table may set."""
        return [f.name for f, s in settings(cls) if s.suite]

    @classmethod
    def from_suite(cls, table: dict | None) -> TrainSettings:
        """The recipe of a suite's ``[train]`` table (checked by ``bench.suite``; absent keys: the defaults)."""
        return cls(**from_table(cls, table or {}))

    def config(self):
        """The ``bench.train.recipe.TrainConfig`` of this recipe, every recipe field given explicitly."""
        from .recipe import TrainConfig

        return TrainConfig(**{k: getattr(self, k) for k in self.recipe_keys()})
