"""``vib-bench infoplane12 --out DIR``: the information-plane experiment on the original 12-bit task."""

from __future__ import annotations

from ..info.options import Plane12Options, Plane12Training
from .common import add_threads, set_threads
from .flags import add_flags, flag_values


def cmd_infoplane12(args) -> int:
    from pathlib import Path

    from ..info.plane12 import run_plane12
    from ..info.verdict import verdict_table

    set_threads(args.threads)
    values = flag_values(args, Plane12Options)
    doc = run_plane12(
        Plane12Options(
            **{**values, "out": Path(values["out"])}, train=Plane12Training(**flag_values(args, Plane12Training))
        )
    )
    print()
    print(verdict_table(doc["verdict"]))
    t = doc["timings"]
    print(f"\ntraining {t['train_s']:.0f} s, total {t['total_s']:.0f} s")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "infoplane12",
        help="the information-plane experiment on the 12-bit task of Shwartz-Ziv & "
        "Tishby (2017), with its verdict table",
        description="Train the 12-10-7-5-4-3-2 network (tanh and ReLU) on the 12-bit task (data set "
        "ib12) from several seeds, snapshot every hidden layer at log-spaced epochs, "
        "measure I(X;T) and I(T;Y) by binning, by the KDE upper bound (Saxe et al. 2018) "
        "and by the noise-regularised estimate (Goldfeld et al. 2019), and judge: does "
        "I(X;T) of the last layers fall after its peak, and does the test error track it. "
        "Writes OUT/infoplane12.json, OUT/report.md and OUT/figures/infoplane12.png.",
        epilog="examples:\n  vib-bench infoplane12 --out runs/infoplane12 --threads 1\n"
        "  vib-bench infoplane12 --out runs/p12 --activations tanh --seeds 0 --epochs 300 "
        "--estimators binning,noisy",
    )
    add_flags(p, Plane12Options, only=["out", "activations", "seeds", "estimators"])
    add_flags(p, Plane12Training)
    add_flags(p, Plane12Options, only=["bins", "noise_beta", "kde_variance", "outer_rows"])
    add_threads(p)
    p.set_defaults(func=cmd_infoplane12)
