"""``vib-bench infoplane RUN_DIR``: the information plane during training, from activation snapshots."""

from __future__ import annotations

from .common import (
    add_data,
    add_device,
    add_threads,
    add_trained_models,
    add_trust_plugins,
    device,
    parse_list,
    patterns,
    set_threads,
)


def cmd_infoplane(args) -> int:
    from ..info.infoplane import InfoplaneOptions, run_infoplane

    set_threads(args.threads)
    run_infoplane(
        InfoplaneOptions(
            args.run_dir,
            models=patterns(args.models),
            estimators=parse_list(args.estimator, what="estimator") or [],
            bins=parse_list(args.bins, int, what="bin count") or [],
            layers=parse_list(args.layers, what="layer") if args.layers is not None else None,
            steps=args.steps,
            restarts=args.restarts,
            batch_size=args.batch_size,
            seed=args.seed,
            mi_threads=args.mi_threads,
            copula=args.copula,
            data_dir=args.data_dir,
            device=device(args.device),
        )
    )
    return 0


def register(sub) -> None:
    from ..info.infoplane import PLANE_BINS, PLANE_MINE_BATCH, PLANE_MINE_RESTARTS, PLANE_MINE_STEPS

    p = sub.add_parser(
        "infoplane",
        help="the information plane during training, from activation snapshots (and bounds on a VIB's z)",
        description="Per layer and snapshot epoch, (I(X;T), I(T;Y)) by binning at one or several bin "
        "counts (or MINE), from the activations `train --snapshot-every` stored; for VIB "
        "the rate and H(Y) - CE per epoch beside the known-encoder interval of z.",
        epilog="examples:\n  vib-bench train --models mlp,mlp_tanh --dataset mnist --epochs 5 "
        "--snapshot-every 1 --out runs/plane\n"
        "  vib-bench infoplane runs/plane --bins 2,8,30,100\n"
        "  vib-bench infoplane runs/plane --estimator binning,mine --layers hidden1,hidden2",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory trained with --snapshot-every")
    add_trained_models(p)
    p.add_argument("--estimator", default="binning", help="binning, mine, or both comma-separated (default: binning)")
    p.add_argument(
        "--bins",
        default=",".join(map(str, PLANE_BINS)),
        help="bins per unit for binning, one or more comma-separated counts (one record and panel "
        f"each, e.g. 2,8,30,100; default {','.join(map(str, PLANE_BINS))})",
    )
    p.add_argument(
        "--layers",
        default=None,
        help="comma-separated snapshot layers (hidden1, hidden2, ..., representation, logits; "
        "default: every hidden layer, plus the representation when it is not the last hidden)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=PLANE_MINE_STEPS,
        help=f"mine: critic steps per estimate (default {PLANE_MINE_STEPS})",
    )
    p.add_argument(
        "--restarts",
        type=int,
        default=PLANE_MINE_RESTARTS,
        help=f"mine: restarts per estimate (default {PLANE_MINE_RESTARTS})",
    )
    p.add_argument(
        "--batch-size", type=int, default=PLANE_MINE_BATCH, help=f"mine: critic batch size (default {PLANE_MINE_BATCH})"
    )
    p.add_argument("--seed", type=int, default=0, help="mine: seed (default 0)")
    add_threads(p)
    p.add_argument("--mi-threads", type=int, default=1, help="mine: torch threads inside each estimate (default 1)")
    p.add_argument(
        "--no-copula",
        dest="copula",
        action="store_false",
        help="mine: feed the raw coordinates to the critic (default: rank-Gaussian transform of every "
        "coordinate with at most 1%% tied values)",
    )
    add_data(p)
    add_device(p)
    add_trust_plugins(p)
    p.set_defaults(func=cmd_infoplane)
