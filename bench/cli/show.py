"""``vib-bench show suite NAME``: print a shipped suite (or a suite file), as it will run."""

from __future__ import annotations

import sys


def cmd_show(args) -> int:
    from ..suite import check_suite, load_suite, suite_text

    check_suite(load_suite(args.name))  # checked, so what is shown is what would run
    sys.stdout.write(suite_text(args.name))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "show",
        help="print a shipped suite (the starting point of your own)",
        description="Print a suite's TOML, after checking it. Copy a shipped suite to start your own: "
        "vib-bench show suite quick > my.toml",
        epilog="examples:\n  vib-bench show suite smoke\n  vib-bench show suite my.toml",
    )
    p.add_argument("what", choices=["suite"])
    p.add_argument("name", metavar="NAME", help="a shipped suite (see `vib-bench list suites`) or a .toml file")
    p.set_defaults(func=cmd_show)
