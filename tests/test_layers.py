"""The architecture, checked from the imports: face -> harness -> models, attacks (never the reverse).

* ``models/`` and ``attacks/`` import neither ``bench/`` nor each other (``registry`` is shared);
* no harness module (``bench/`` outside ``bench/cli/``) imports the face;
* argparse appears only in the face.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    names = set()
    parts = path.relative_to(ROOT).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = ".".join(parts[:-node.level]) if path.name != "__init__.py" else ".".join(parts[:len(parts) - node.level])
                mod = f"{base}.{mod}" if mod else base
            names.add(mod)
    return names


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("**/*.py"))


def is_face(mod: str) -> bool:
    return mod == "bench.cli" or mod.startswith(("bench.cli.", "bench.__main__"))


@pytest.mark.parametrize("package, banned", [("models", ("bench", "attacks")), ("attacks", ("bench", "models")),
                                             ("registry", ("bench", "models", "attacks"))])
def test_models_and_attacks_stand_alone(package, banned):
    bad = [(p.name, m) for p in files(package) for m in imports(p) if m.split(".")[0] in banned]
    assert not bad, bad


def test_the_harness_never_imports_the_face():
    bad = []
    for p in files("bench"):
        mod = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        if is_face(mod.removesuffix(".__init__")):
            continue
        bad += [(str(p.relative_to(ROOT)), m) for m in imports(p) if is_face(m)]
    assert not bad, bad


def test_only_the_face_knows_argparse():
    users = {str(p.relative_to(ROOT)) for p in files("bench") if "argparse" in imports(p)}
    assert users and all(u.startswith("bench/cli/") for u in users), users


def test_the_import_check_itself_sees_a_violation():
    # the checker must be able to fail: a relative import of the face from a harness-like file
    fake = ROOT / "bench" / "_layers_probe.py"
    try:
        fake.write_text("from .cli import common\n")
        assert any(is_face(m) for m in imports(fake))
    finally:
        fake.unlink()
