"""Options and parsing shared by several commands (the face only: the harness never sees argparse)."""

from __future__ import annotations

import json
from collections import defaultdict

from ..errors import BenchError

# Process-level flags added by the helpers below (where the data is, which device, which plugins, threads,
# progress bars): they configure the process, not a stage, so no stage's options declare them.
SHARED_FLAGS = frozenset(
    {"-h", "--help", "--models", "--threads", "--data-dir", "--device", "--plugin", "--trust-plugins", "--no-progress"}
)


def parse_list(text: str | None, kind=str, what="value") -> list | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` converted by ``kind``; None stays None."""
    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(kind(part))
        except ValueError:
            raise BenchError(f"bad {what} {part!r} in {text!r}") from None
    return out


def parse_value(text: str):
    """``64,64`` -> [64, 64]; ``[64,64]`` -> [64, 64]; ``1e-3`` -> 0.001; ``true`` -> True; otherwise the string."""
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    if "," in text:
        return [parse_value(p) for p in text.split(",") if p.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items) -> dict:
    """``--set KEY=VALUE`` items -> {key: value}."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise BenchError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def parse_attack_set(items) -> dict:
    """``--attack-set ATTACK.KEY=VALUE`` items -> {attack: {key: value}}."""
    out: dict[str, dict] = defaultdict(dict)
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise BenchError(f"--attack-set expects ATTACK.KEY=VALUE, got {item!r}")
        lhs, value = item.split("=", 1)
        attack, key = lhs.split(".", 1)
        out[attack.strip()][key.strip().replace("-", "_")] = parse_value(value.strip())
    return dict(out)


def patterns(text: str | None, what: str = "model pattern") -> list[str] | None:
    """A comma-separated list of wildcards, or None for "all"."""
    return parse_list(text, what=what) if text else None


def add_format(p, choices, default: str = "github", help_text: str = ""):
    """``--format``: one of ``choices``; ``markdown`` is accepted for ``github`` (a Markdown pipe table)."""
    from ..reporting.leaderboard import FORMAT_ALIASES

    names = [*choices, *(a for a, f in FORMAT_ALIASES.items() if f in choices)]
    p.add_argument(
        "--format",
        type=lambda s: FORMAT_ALIASES.get(s, s),
        choices=list(choices),
        default=default,
        metavar="{" + ",".join(names) + "}",
        help=(help_text + "; " if help_text else "")
        + f"default {default}"
        + (" (markdown is the same)" if "github" in choices else ""),
    )


def add_device(p):
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")


def add_data(p):
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the IDX files (default: $VIB_BENCH_DATA/<dataset>/, then download)",
    )


def add_plugins(p):
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE",
        help="Python file that registers extra models or attacks (repeatable)",
    )
    add_trust_plugins(p)


def add_trust_plugins(p):
    p.add_argument(
        "--trust-plugins",
        action="store_true",
        help="execute the plugins a run's results file lists (by default they are not: a run directory "
        "is untrusted input; naming one with --plugin also loads it)",
    )


def add_trained_models(p):
    p.add_argument("--models", default=None, help="comma-separated names or wildcards (default: every trained model)")


def add_progress(p):
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="hide progress bars (they are hidden anyway when stderr is not a terminal)",
    )


def add_threads(p, help_text: str | None = "CPU threads for torch (default: torch's)"):
    p.add_argument("--threads", type=int, default=None, help=help_text)


def set_threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise BenchError(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)


def device(name: str | None):
    from ..env import resolve_device

    return resolve_device(name)


def load_plugins(paths) -> None:
    from .. import plugins

    plugins.load_plugins(paths)
    plugins.load_entry_points()
