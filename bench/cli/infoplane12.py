"""``vib-bench infoplane12 --out DIR``: the information-plane experiment on the original 12-bit task."""

from __future__ import annotations

from .common import add_threads, parse_list, set_threads


def cmd_infoplane12(args) -> int:
    from pathlib import Path

    from ..info.plane12 import Plane12Options, TrainSettings, run_plane12
    from ..info.verdict import verdict_table

    set_threads(args.threads)
    doc = run_plane12(
        Plane12Options(
            Path(args.out),
            activations=parse_list(args.activations, what="activation") or [],
            seeds=parse_list(args.seeds, int, what="seed") or [],
            estimators=parse_list(args.estimators, what="estimator") or [],
            train=TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, snapshots=args.snapshots),
            bins=args.bins,
            noise_beta=args.noise_beta,
            kde_variance=args.kde_variance,
            outer_rows=args.rows,
        )
    )
    print()
    print(verdict_table(doc["verdict"]))
    t = doc["timings"]
    print(f"\ntraining {t['train_s']:.0f} s, total {t['total_s']:.0f} s")
    return 0


def register(sub) -> None:
    from ..info import plane12 as p12

    tr = p12.TrainSettings()
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
    p.add_argument("--out", required=True, help="output folder (results file, report, figure)")
    p.add_argument("--activations", default=",".join(p12.ACTIVATIONS), help="tanh, relu or both (default: both)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    p.add_argument(
        "--estimators",
        default=",".join(p12.ESTIMATORS),
        help=f"comma-separated: {', '.join(p12.ESTIMATORS)} (default: all)",
    )
    p.add_argument("--epochs", type=int, default=tr.epochs, help=f"training epochs (default {tr.epochs})")
    p.add_argument("--batch-size", type=int, default=tr.batch_size, help="minibatch size; 0: full batch (default 0)")
    p.add_argument("--lr", type=float, default=tr.lr, help=f"Adam learning rate (default {tr.lr:g})")
    p.add_argument(
        "--snapshots",
        type=int,
        default=tr.snapshots,
        help=f"log-spaced snapshot epochs, plus epoch 0 (default {tr.snapshots})",
    )
    p.add_argument("--bins", type=int, default=p12.BINS, help=f"binning: bins per unit (default {p12.BINS})")
    p.add_argument(
        "--noise-beta", type=float, default=p12.NOISY_BETA, help=f"noisy: noise std (default {p12.NOISY_BETA:g})"
    )
    p.add_argument(
        "--kde-variance",
        type=float,
        default=p12.KDE_VARIANCE,
        help=f"kde: noise variance (default {p12.KDE_VARIANCE:g})",
    )
    p.add_argument(
        "--rows",
        type=int,
        default=p12.OUTER_ROWS,
        help=f"kde, noisy: patterns the outer mean runs over (default {p12.OUTER_ROWS})",
    )
    add_threads(p)
    p.set_defaults(func=cmd_infoplane12)
