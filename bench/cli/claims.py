"""``vib-bench claims RUN_DIR``: the paper's claims, each under its own protocol and the strongest one, with a
verdict."""

from __future__ import annotations

from ..claims.options import ClaimsOptions
from .common import (
    add_data,
    add_device,
    add_plugins,
    add_progress,
    add_threads,
    device,
    load_plugins,
    parse_attack_set,
    set_threads,
)
from .flags import add_flags, flag_values


def cmd_claims(args) -> int:
    from ..claims import claims_text, options_for_run, run_claims
    from ..results import Results

    set_threads(args.threads)
    load_plugins(args.plugin)
    opts = options_for_run(
        args.run_dir,
        **flag_values(args, ClaimsOptions),  # None where not given: the run's suite's, else the field's default
        attack_set=parse_attack_set(args.attack_set) or None,
        device=device(args.device),
        data_dir=args.data_dir,
        progress=args.progress,
    )
    run_claims(opts)
    print(claims_text(Results.load(args.run_dir)))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "claims",
        help="check the paper's claims: the paper's protocol beside the strongest evaluation, one verdict per claim",
        description="Check the claims of Alemi et al. (2017) on a run with the baseline and the VIB "
        "beta sweep: each claim measured under the paper's protocol (CW-L2 as the reference "
        "implementation ran it, FGS) and under the strongest evaluation (PGD/APGD with "
        "restarts, EOT, a mean-mode transfer attack, Square), with a paired test and a "
        "verdict: reproduced, not reproduced, or reproduced only under the paper's protocol.",
        epilog="examples:\n  vib-bench run --suite claims --out runs/claims --threads 1   # trains, "
        "then checks\n  vib-bench claims runs/claims --judge-only\n"
        "  vib-bench claims runs/claims_full --device cuda --attack-set cw_paper.steps=1000",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run with the baseline and VIB models (e.g. --suite claims)")
    add_flags(p, ClaimsOptions)
    add_threads(p)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_claims)
