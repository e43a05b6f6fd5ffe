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
                base = (
                    ".".join(parts[: -node.level])
                    if path.name != "__init__.py"
                    else ".".join(parts[: len(parts) - node.level])
                )
                mod = f"{base}.{mod}" if mod else base
            names.add(mod)
    return names


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("**/*.py"))


def is_face(mod: str) -> bool:
    return mod == "bench.cli" or mod.startswith(("bench.cli.", "bench.__main__"))


@pytest.mark.parametrize(
    "package, banned",
    [("models", ("bench", "attacks")), ("attacks", ("bench", "models")), ("registry", ("bench", "models", "attacks"))],
)
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


# ------------------------------------------------------------------------------------ no import cycles
def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never executed, so no edge of the graph)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph(package: str = "bench") -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, at module level or inside functions (``from . import x``
    and ``from .pkg import x`` count as importing the submodule ``x`` where one exists)."""
    paths = {module_name(p): p for p in files(package)}
    graph = {}
    for me, path in paths.items():
        here = me if path.name == "__init__.py" else me.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        out = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([mod] if mod else []))
                out |= {f"{mod}.{a.name}" if f"{mod}.{a.name}" in paths else mod for a in node.names}
        graph[me] = {m for m in out if m in paths and m != me}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search, in sorted order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v):
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_bench_has_no_import_cycle():
    cycle = find_cycle(import_graph("bench"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_sees_a_function_level_cycle(tmp_path):
    graph = import_graph("bench")
    assert "bench.attack.options" in graph["bench.attack.stage"]  # module-level, relative
    assert "bench.attack.cells" in graph["bench.attack.group"]  # function-level `from . import cells`
    assert "bench.results.file" not in graph["bench.results.entries"]  # under TYPE_CHECKING only
    # a function-level import back up the package closes a cycle, and the check names it
    graph["bench.attack.options"] = graph["bench.attack.options"] | {"bench.attack.stage"}
    cycle = find_cycle(graph)
    assert cycle and cycle[0] == cycle[-1] and {"bench.attack.options", "bench.attack.stage"} <= set(cycle)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
