"""What differs between two runs' settings: the things that make a comparison apples to oranges.

Model constructor arguments, the training recipe, the data, the attack budgets, the number of
attacked examples and the evaluation seed. ``compare`` lists these before any number, and
``--strict`` refuses to compare runs that differ in any of them.
"""

from __future__ import annotations

from .results import Results


def _fmt(v) -> str:
    return "-" if v is None else str(v)


def dict_changes(a: dict, b: dict, where: str = "") -> list[str]:
    """``["epochs: 2 -> 3"]``: one line per key whose value differs between two settings tables."""
    return _dict_changes(where, a, b)


def _dict_changes(where: str, a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{where}{k}: {_fmt(a.get(k))} -> {_fmt(b.get(k))}" for k in keys if a.get(k) != b.get(k)]


def setting_changes(base: Results, new: Results) -> list[str]:
    """One line per setting that differs (``model mlp: hidden: [1024] -> [512]``); empty when none."""
    out = []
    if base.dataset.get("checksum") != new.dataset.get("checksum"):
        out.append(
            f"data: {base.dataset.get('name')} {base.dataset.get('checksum')} -> "
            f"{new.dataset.get('name')} {new.dataset.get('checksum')}"
        )
    out += _dict_changes("recipe ", base.train_config, new.train_config)
    for name in [m for m in base.model_names() if m in new.model_names()]:
        mb, mn = base.model(name), new.model(name)
        out += _dict_changes(f"model {name}: ", mb.config, mn.config)
        out += _attack_changes(name, mb, mn)
    return out


def _attack_changes(name, mb, mn) -> list[str]:
    out = []
    sb = next((s for s in mb.done_seeds() if s.has_attacks()), None)
    sn = next((s for s in mn.done_seeds() if s.has_attacks()), None)
    if sb is None or sn is None:
        return out
    # the noise scheme matters only where there is noise: a model the attack stage found randomised
    randomised = bool(sb.attack_checks.get("randomised") or sn.attack_checks.get("randomised"))
    pairs = [
        (key, sb.attack_setup.get(key), sn.attack_setup.get(key)) for key in ("n_examples", "eval_seed", "eval_batch")
    ]
    if randomised:
        pairs.append(("eval_noise", sb.eval_noise, sn.eval_noise))
    for key, a, b in pairs:
        if a != b:
            out.append(f"model {name}: attack {key}: {_fmt(a)} -> {_fmt(b)}")
    budgets_b = {r.attack: r.budget for r in sb.records() if not r.is_worst_case}
    budgets_n = {r.attack: r.budget for r in sn.records() if not r.is_worst_case}
    for attack in sorted(set(budgets_b) & set(budgets_n)):
        for line in _dict_changes("", budgets_b[attack] or {}, budgets_n[attack] or {}):
            out.append(f"model {name}: {attack} budget {line}")
    return out
