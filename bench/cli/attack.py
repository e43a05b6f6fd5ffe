"""``vib-bench attack RUN_DIR``: robust accuracy of a run's models under attack, with sanity checks."""

from __future__ import annotations

from .common import (
    add_data,
    add_device,
    add_plugins,
    add_progress,
    add_threads,
    add_trained_models,
    device,
    load_plugins,
    parse_attack_set,
    patterns,
    set_threads,
)
from .flags import add_flags, flag_values


def cmd_attack(args) -> int:
    from ..attack import AttackOptions, attack_run

    set_threads(args.threads)
    load_plugins(args.plugin)
    attack_run(
        AttackOptions(
            args.run_dir,
            **flag_values(args, AttackOptions),
            attack_set=parse_attack_set(args.attack_set),
            models=patterns(args.models),
            device=device(args.device),
            data_dir=args.data_dir,
            progress=args.progress,
            plugins=args.plugin,
        )
    )
    return 0


def register(sub) -> None:
    from ..attack.options import AttackOptions

    p = sub.add_parser(
        "attack",
        help="robust accuracy of a run's models under adversarial attacks, with sanity checks",
        description="Attack every trained model of a run with the strong default set (or --attacks), "
        "on the first N test examples, with the sanity checks that catch gradient masking "
        "(Carlini et al. 2019; AutoAttack), EOT for randomised models, and a per-example "
        "worst case per eps. Costly attacks run in a cascade on what is still robust.",
        epilog="examples:\n  vib-bench attack runs/quick --n-examples 1000\n"
        "  vib-bench attack runs/quick --models 'vib*' --attacks fgsm,pgd,eot_pgd,square --eps "
        "0.1,0.2 --eps-l2 ''\n"
        "  vib-bench attack runs/quick --attacks cw_l2 --eps-l2 0.5,1,2 --resume\n"
        "  vib-bench attack runs/quick --attack-set pgd.steps=100 --resume   # recompute pgd",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `vib-bench train`")
    add_trained_models(p)
    add_flags(p, AttackOptions)  # every stage flag, with its default, from the one declaration
    add_threads(p)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_attack)
