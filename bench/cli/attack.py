"""``vib-bench attack RUN_DIR``: robust accuracy of a run's models under attack, with sanity checks."""

from __future__ import annotations

from .common import (add_data, add_device, add_plugins, add_progress, add_threads, add_trained_models, device,
                     load_plugins, parse_attack_set, parse_list, patterns, set_threads)


def cmd_attack(args) -> int:
    from ..attack import AttackOptions, attack_run

    set_threads(args.threads)
    load_plugins(args.plugin)
    attack_run(AttackOptions(
        args.run_dir, attacks=parse_list(args.attacks, what="attack") if args.attacks else None,
        eps=parse_list(args.eps, float, "eps"), eps_l2=parse_list(args.eps_l2, float, "eps"),
        n_examples=args.n_examples, batch_size=args.batch_size, eot_iter=args.eot_iter,
        attack_set=parse_attack_set(args.attack_set), grid_eps=args.grid_eps, grid=not args.no_grid,
        cascade=not args.no_cascade, indicators=not args.no_indicators,
        models=patterns(args.models), device=device(args.device), data_dir=args.data_dir, resume=args.resume,
        fresh=args.fresh, progress=args.progress, plugins=args.plugin))
    return 0


def register(sub) -> None:
    from ..attack import DEFAULT_ATTACKS, DEFAULT_EPS_L2, DEFAULT_EPS_LINF
    from ..results import eps_label

    p = sub.add_parser("attack", help="robust accuracy of a run's models under adversarial attacks, with sanity checks",
                       description="Attack every trained model of a run with the strong default set (or --attacks), "
                                   "on the first N test examples, with the sanity checks that catch gradient masking "
                                   "(Carlini et al. 2019; AutoAttack), EOT for randomised models, and a per-example "
                                   "worst case per eps. Costly attacks run in a cascade on what is still robust.",
                       epilog="examples:\n  vib-bench attack runs/quick --n-examples 1000\n"
                              "  vib-bench attack runs/quick --models 'vib*' --attacks fgsm,pgd,eot_pgd,square --eps "
                              "0.1,0.2 --eps-l2 ''\n"
                              "  vib-bench attack runs/quick --attacks cw_l2 --eps-l2 0.5,1,2 --resume\n"
                              "  vib-bench attack runs/quick --attack-set pgd.steps=100 --resume   # recompute pgd")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `vib-bench train`")
    add_trained_models(p)
    p.add_argument("--attacks", default=None,
                   help=f"comma-separated attacks or wildcards (default, the strong set: {','.join(DEFAULT_ATTACKS)}; "
                        "eot_pgd runs on randomised models only); see `vib-bench list attacks`")
    p.add_argument("--eps", default=None, metavar="LIST",
                   help="L-inf budgets for L-inf attacks, in [0, 1] (default: "
                        + ",".join(eps_label(e) for e in DEFAULT_EPS_LINF) + ")")
    p.add_argument("--eps-l2", default=None, metavar="LIST",
                   help="L2 budgets for L2 attacks (default: " + ",".join(eps_label(e) for e in DEFAULT_EPS_L2) + ")")
    p.add_argument("--n-examples", type=int, default=None, metavar="N",
                   help="attack the first N test examples (default: the whole test split)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="examples per attack batch (default: as many as a quarter of the free memory holds)")
    p.add_argument("--eot-iter", type=int, default=None, metavar="K",
                   help="draws averaged per gradient by the EOT attacks on randomised models (default: EOT-PGD 10, "
                        "APGD 20)")
    p.add_argument("--attack-set", action="append", default=[], metavar="ATTACK.KEY=VALUE",
                   help="override one attack's budget, e.g. --attack-set pgd.steps=100 (repeatable)")
    p.add_argument("--grid-eps", type=float, default=0.2,
                   help="eps of the picture of adversarial examples (closest one run; default: 0.2)")
    p.add_argument("--no-grid", action="store_true", help="skip the picture")
    p.add_argument("--no-cascade", action="store_true",
                   help="run the costly attacks (APGD, Square, AutoAttack) on every example, not only on those "
                        "still robust after the cheaper ones (standalone figures; slower; same worst case)")
    p.add_argument("--no-indicators", action="store_true",
                   help="do not measure the six indicators of attack failure nor apply their mitigations (best "
                        "iterate, more steps, transfer and EOT cells, unbounded sanity run): faster, less checked")
    p.add_argument("--resume", action="store_true",
                   help="keep finished (model, seed, attack, eps, protocol) cells and run only the missing ones")
    p.add_argument("--fresh", action="store_true",
                   help="discard this command's earlier results for the selected models and recompute them")
    add_threads(p)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_attack)
