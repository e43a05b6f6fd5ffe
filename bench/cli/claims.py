"""``vib-bench claims RUN_DIR``: the paper's claims, each under its own protocol and the strongest one, with a
verdict."""

from __future__ import annotations

from .common import (
    add_data,
    add_device,
    add_plugins,
    add_progress,
    add_threads,
    device,
    load_plugins,
    parse_attack_set,
    parse_list,
    patterns,
    set_threads,
)


def cmd_claims(args) -> int:
    from ..claims import claims_text, options_for_run, run_claims
    from ..results import Results

    set_threads(args.threads)
    load_plugins(args.plugin)
    opts = options_for_run(
        args.run_dir,
        n_examples=args.n_examples,
        eps_l2=args.eps_l2,
        eps_linf=parse_list(args.eps, float, "eps"),
        baseline=args.baseline,
        models=patterns(args.models),
        eot_iter=args.eot_iter,
        zeros_n=args.zeros_n,
        batch_size=args.batch_size,
        attack_set=parse_attack_set(args.attack_set) or None,
        device=device(args.device),
        data_dir=args.data_dir,
        fresh=args.fresh,
        judge_only=args.judge_only,
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
    p.add_argument(
        "--n-examples",
        type=int,
        default=None,
        metavar="N",
        help="attack the first N test images (default: the suite's, else 1000 as in the paper)",
    )
    p.add_argument(
        "--eps-l2",
        type=float,
        default=None,
        metavar="EPS",
        help="L2 budget at which accuracies are compared (default: the suite's, else 2)",
    )
    p.add_argument(
        "--eps", default=None, metavar="LIST", help="FGS / L-inf budgets (default: the suite's, else 0.1,0.2,0.3)"
    )
    p.add_argument("--baseline", default=None, help="the deterministic baseline (default: mlp)")
    p.add_argument(
        "--models", default=None, help="models to check, names or wildcards (default: the baseline and every VIB model)"
    )
    p.add_argument(
        "--eot-iter",
        type=int,
        default=None,
        metavar="K",
        help="forward passes averaged by the EOT attacks (default: the suite's, else 20)",
    )
    p.add_argument(
        "--zeros-n", type=int, default=None, metavar="N", help="first N test zeros for claim (d) (default 10)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="examples per attack batch (default 500)")
    p.add_argument(
        "--attack-set",
        action="append",
        default=[],
        metavar="ATTACK.KEY=VALUE",
        help="override one attack's budget, e.g. --attack-set cw_paper.steps=1000 (repeatable)",
    )
    p.add_argument("--fresh", action="store_true", help="measure everything again")
    p.add_argument("--judge-only", action="store_true", help="recompute the verdicts from stored measurements only")
    add_threads(p)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_claims)
