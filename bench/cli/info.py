"""``vib-bench info RUN_DIR``: I(X;Z) and I(Z;Y) of each model's representation: bounds, interval, estimates."""

from __future__ import annotations

from ..info.options import InfoOptions
from ..reporting.escape import markdown
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

INFO_HEADERS = [
    "model",
    "seed",
    "quantity",
    "estimator",
    "estimate (nats)",
    "estimate (bits)",
    "lower bound (nats)",
    "upper bound (nats)",
    "time (s)",
    "flags",
]


def info_table_rows(name: str, seed, rec: dict) -> list[list[str]]:
    from ..info.bounds import QUANTITIES, bound_intervals

    rows = []
    iv = bound_intervals(rec["bounds"])
    for q in QUANTITIES:
        lo, up = iv[q]["lower"], iv[q]["upper"]
        lower = f"{lo[0]:.3f} ({lo[2]})" if lo[0] > 0 else "0"
        upper = f"{up[0]:.3f} ({up[2]})" if up else "inf" if q == "I(X;Z)" else ""
        for est_name, e in (rec["estimates"].get(q) or {}).items():
            flag = ", ".join(
                f["flag"] for f in rec.get("flags", []) if f["quantity"] == q and f["estimator"] == est_name
            )
            rows.append(
                [
                    markdown(name),
                    str(seed),
                    q,
                    est_name,
                    f"{e['nats']:.3f} +- {e['std_nats']:.3f}",
                    f"{e['bits']:.3f} +- {e['std_bits']:.3f}",
                    lower,
                    upper,
                    f"{e['seconds']:.1f}",
                    flag,
                ]
            )
    return rows


def format_info_table(rows) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=INFO_HEADERS, tablefmt="github", disable_numparse=True)


def ixz_text(rec: dict) -> str:
    """The I(X;Z) cell: the known-encoder interval, "inf (deterministic)", or empty."""
    from ..info.bounds import DETERMINISTIC_CELL, ixz_interval
    from ..info.stage import is_deterministic

    if is_deterministic(rec):
        return DETERMINISTIC_CELL
    iv = ixz_interval(rec["bounds"])
    if iv is None:
        return ""
    lo, up, up_name = iv
    cap = "*" if rec["bounds"].get("ixz_lower_at_cap") else ""
    return f"[{lo:.3f}{cap}, {up:.3f}] ({up_name})"


def izy_text(rec: dict) -> str:
    """The I(Z;Y) cell: the provable interval [max(0, H(Y) - CE), min(H(Y), rate, leave-one-out)] and the
    upper end's name."""
    from ..info.bounds import izy_interval

    iv = izy_interval(rec["bounds"])
    return "" if iv is None else f"[{iv[0]:.3f}, {iv[1]:.3f}] ({iv[3]})"


def format_bounds_table(items) -> str:
    """One row per (model, seed): the I(X;Z) interval in nats, and the analytic bounds in nats and bits."""
    from tabulate import tabulate

    from ..info.bounds import LN2

    rows = []
    for name, seed, rec in items:
        b = rec["bounds"]
        cells = [markdown(name), str(seed), rec["representation"], str(rec["n"]), ixz_text(rec), izy_text(rec)]
        for key in ("rate_nats", "izy_lower_nats", "h_y_nats"):
            v = b.get(key)
            cells.append("" if v is None else f"{v:.3f} / {v / LN2:.3f}")
        rows.append(cells)
    return tabulate(
        rows,
        headers=[
            "model",
            "seed",
            "representation",
            "n",
            "I(X;Z) in [lower, upper] (nats)",
            "I(Z;Y) in [lower, upper] (nats)",
            "rate >= I(X;Z) (nats / bits)",
            "H(Y)-CE <= I(Z;Y)",
            "H(Y) >= I(Z;Y)",
        ],
        tablefmt="github",
        disable_numparse=True,
    )


def cmd_info(args) -> int:
    from ..info.bounds import DETERMINISTIC_NOTE, QUANTITIES
    from ..info.stage import run_info

    set_threads(args.threads)
    out = run_info(
        InfoOptions(
            args.run_dir,
            models=patterns(args.models),
            **flag_values(args, InfoOptions),
            data_dir=args.data_dir,
            device=device(args.device),
        )
    )
    items = out.items
    rows = [r for name, seed, rec in items for r in info_table_rows(name, seed, rec)]
    print()
    print(format_bounds_table(items))
    if any(rec["bounds"].get("ixz_lower_nats") is not None for _, _, rec in items):
        print(
            "\nI(X;Z) interval: the known-encoder lower bound (InfoNCE with the true p(z|x), at most log N) and "
            "the smaller of the leave-one-out upper bound and the rate (Poole et al. 2019)."
        )
    capped = {name: rec["bounds"]["log_n_nats"] for name, _, rec in items if rec["bounds"].get("ixz_lower_at_cap")}
    if capped:
        print(
            f"* ({', '.join(sorted(capped))}): the lower bound is at its cap log N = "
            f"{max(capped.values()):.3f} nats: I(X;Z) may be much larger; more examples (--n-examples) "
            "raise the cap."
        )
    if rows:
        print()
        print(format_info_table(rows))
    if any(rec.get("notes") for _, _, rec in items):
        det = sorted({name for name, _, rec in items if rec.get("notes")})
        print(f"\nnote ({', '.join(det)}): {DETERMINISTIC_NOTE}.")
    times = [e["seconds"] for _, _, rec in items for q in QUANTITIES for e in rec["estimates"].get(q, {}).values()]
    if times:
        print(
            f"time per estimate: median {sorted(times)[len(times) // 2]:.1f} s, max {max(times):.1f} s "
            f"({len(times)} estimates); total {out.seconds:.0f} s"
        )
    if out.figure:
        print(f"wrote {out.figure}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="estimate I(X;Z) and I(Z;Y) of each model's representation, beside the analytic bounds",
        description="How much each model's representation keeps about the input and the label: for "
        "VIB, I(X;Z) in [lower, upper] from the known Gaussian encoder beside the rate; "
        "critic estimates (MINE, JSD, InfoNCE) of I(X;Z) and I(Z;Y), flagged where they "
        "contradict the analytic bounds; no I(X;Z) number for deterministic maps.",
        epilog="examples:\n  vib-bench info runs/quick --threads 1\n"
        "  vib-bench info runs/quick --models 'vib*' --estimators infonce --n-examples 5000\n"
        "  vib-bench info runs/smoke --batch-size 32 --resume",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by `vib-bench train`")
    add_trained_models(p)
    add_flags(p, InfoOptions, only=["estimators", "n_examples", "steps", "restarts", "batch_size", "seed"])
    add_flags(p, InfoOptions, only=["resume", "plot"])
    add_threads(p)
    add_flags(p, InfoOptions, only=["mi_threads", "copula"])
    add_data(p)
    add_device(p)
    add_trust_plugins(p)
    p.set_defaults(func=cmd_info)
