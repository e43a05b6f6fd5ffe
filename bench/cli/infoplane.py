"""``vib-bench infoplane RUN_DIR``: the information plane during training, from activation snapshots."""

from __future__ import annotations

from ..info.options import InfoplaneOptions
from .common import (
    add_data,
    add_device,
    add_threads,
    add_trained_models,
    add_trust_plugins,
    device,
    patterns,
    set_threads,
)
from .flags import add_flags, flag_values


def cmd_infoplane(args) -> int:
    from ..info.infoplane import run_infoplane

    set_threads(args.threads)
    run_infoplane(
        InfoplaneOptions(
            args.run_dir,
            models=patterns(args.models),
            **flag_values(args, InfoplaneOptions),
            data_dir=args.data_dir,
            device=device(args.device),
        )
    )
    return 0


def register(sub) -> None:
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
    add_flags(p, InfoplaneOptions, only=["estimators", "bins", "layers", "steps", "restarts", "batch_size", "seed"])
    add_threads(p)
    add_flags(p, InfoplaneOptions, only=["mi_threads", "copula"])
    add_data(p)
    add_device(p)
    add_trust_plugins(p)
    p.set_defaults(func=cmd_infoplane)
