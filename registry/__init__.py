"""Name matching shared by the model registry, the attack registry and the harness.

It depends on nothing but the standard library, so ``models/``, ``attacks/`` and ``bench/`` may all
import it without importing one another. Patterns are shell-style wildcards (``vib_beta*``),
matched case-sensitively; a name that matches nothing gets "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence


class NoMatch(LookupError):
    """A pattern that matches no registered name; ``suggestions`` holds near misses."""

    def __init__(self, pattern: str, suggestions: Sequence[str] = ()):
        super().__init__(pattern)
        self.pattern = pattern
        self.suggestions = list(suggestions)

    def hint(self) -> str:
        """``" (did you mean 'mlp'?)"`` or an empty string."""
        if not self.suggestions:
            return ""
        return " (did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?)"


def as_patterns(pattern: str | Iterable[str] | None) -> list[str]:
    """One pattern or several, stripped; an empty result means "everything"."""
    if not pattern:
        return []
    items = [pattern] if isinstance(pattern, str) else list(pattern)
    return [p.strip() for p in items if p and p.strip()]


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches any of ``patterns``."""
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in patterns)


def suggest(word: str, names: Iterable[str], n: int = 2) -> list[str]:
    """Registered names close to a mistyped ``word`` (``mpl`` -> ``mlp``)."""
    return difflib.get_close_matches(word, list(names), n=n, cutoff=0.6)


def select(names: Sequence[str], pattern: str | Iterable[str] | None) -> list[str]:
    """The names matching one or more patterns, in the order of ``names``; no pattern selects all.

    Each pattern must match something: the first that matches nothing raises :class:`NoMatch`.
    """
    patterns = as_patterns(pattern)
    if not patterns:
        return list(names)
    out: list[str] = []
    for pat in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise NoMatch(pat, suggest(pat, names))
        out.extend(h for h in hits if h not in out)
    return out
