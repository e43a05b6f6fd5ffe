"""``vib-bench upgrade RUN_DIR... [--check]``: rewrite results files in the current results format."""

from __future__ import annotations


def cmd_upgrade(args) -> int:
    from ..results.upgrade import upgrade_file

    stale = []
    for target in args.run_dirs:
        done = upgrade_file(target, check=args.check)
        if not done.needed:
            print(f"{done.path}: format {done.new}, up to date")
        elif done.written:
            print(f"{done.path}: upgraded from format {done.old} to {done.new}")
        else:
            print(f"{done.path}: format {done.old}, needs `vib-bench upgrade` to format {done.new}")
            stale.append(done.path)
    return 1 if stale else 0


def register(sub) -> None:
    p = sub.add_parser(
        "upgrade",
        help="rewrite results files in the current results format",
        description="Bring results files written by an older vib-bench to the current results format, "
        "step by step, and write them back atomically. Every command also reads older "
        "files (upgrading them in memory, with a notice); a file newer than this "
        "vib-bench is refused with exit 2.",
        epilog="examples:\n  vib-bench upgrade results/quick\n"
        "  vib-bench upgrade --check results/*/   # exit 1 if any file needs upgrading",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or results files")
    p.add_argument(
        "--check", action="store_true", help="only report; exit 1 if a file is in an older format (nothing is written)"
    )
    p.set_defaults(func=cmd_upgrade)
