"""Property-based fuzzing of results.json: a mutated real results file never crashes a command (exit 0, 1
or 2, never 3) and never changes a file outside its run directory."""

import contextlib
import hashlib
import io
import json
import math
import tempfile
from pathlib import Path

from conftest import golden_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main

BASE_RAW = golden_data()

HOSTILE_NAMES = [
    "../../x",
    "../../../victim/models/mlp",
    "/abs",
    "/tmp/abs",
    "a\nb",
    "a\rb",
    ".",
    "..",
    ".hidden",
    "a/b",
    "a\\b",
    "",
    "x" * 300,
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "| forged |",
    "a\x00b",
    "é",
    "-1",
    "4294967296",
    "0x10",
]


def _deep(n: int):
    v = []
    for _ in range(n):
        v = [v]
    return v


HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            10**30,
            -(10**30),
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            "",
            "abc",
            "NaN",
            [],
            {},
            [1, "a"],
            {"a": None},
            _deep(40),
            _deep(2000),
        ]
    ),
    st.sampled_from(HOSTILE_NAMES),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(obj, prefix=()):
    """Every (path to a value) of the tree, parents first."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE_RAW) if p]
KEY_PATHS = [p for p in PATHS if isinstance(p[-1], str)]


def _parent(raw, path):
    for p in path[:-1]:
        raw = raw[p]
    return raw


@st.composite
def mutated(draw):
    raw = json.loads(json.dumps(BASE_RAW))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "rename", "model name", "seed key", "drop"]))
        try:
            if kind == "model name":
                name = draw(st.sampled_from(list(raw["models"])))
                raw["models"][draw(st.sampled_from(HOSTILE_NAMES))] = raw["models"].pop(name)
                continue
            if kind == "seed key":
                m = raw["models"][draw(st.sampled_from(list(raw["models"])))]
                seeds = m.get("seeds") or {}
                if seeds:
                    seeds[draw(st.sampled_from(HOSTILE_NAMES))] = seeds.pop(draw(st.sampled_from(list(seeds))))
                continue
            path = draw(st.sampled_from(KEY_PATHS if kind == "rename" else PATHS))
            parent = _parent(raw, path)
            if kind == "value":
                parent[path[-1]] = draw(HOSTILE_VALUES)
            elif kind == "drop":
                del parent[path[-1]]
            else:
                parent[draw(st.sampled_from(HOSTILE_NAMES))] = parent.pop(path[-1])
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed or retyped the path
            continue
    return raw


COMMANDS = [
    ["leaderboard", "{run}"],
    ["leaderboard", "{run}", "--format", "csv"],
    ["leaderboard", "{run}", "--format", "latex"],
    ["compare", "{base}", "{run}"],
    ["compare", "{run}", "{base}"],
    ["history", "{base}", "{run}"],
    ["time", "{run}", "--threads", "1"],
    ["attack", "{run}", "--threads", "1"],
    ["info", "{run}"],
    ["claims", "{run}", "--judge-only"],
    ["show", "run", "{run}"],
]


def _snapshot(root: Path, skip: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if skip == p or skip in p.parents:
            continue
        out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


COUNTS = {"examples": 0, "runs": 0, "refused": 0, "ok": 0, "regression": 0}


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=mutated(), commands=st.lists(st.sampled_from(range(len(COMMANDS))), min_size=1, max_size=3, unique=True))
def test_a_mutated_results_file_never_crashes_nor_writes_outside(raw, commands):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        deep = root / "a" / "b"
        run, base = deep / "run", deep / "base"
        for d in (run, base, root / "victim" / "models" / "mlp" / "seed0"):
            d.mkdir(parents=True)
        (root / "victim" / "models" / "mlp" / "seed0" / "keep.txt").write_text("victim")
        (base / "results.json").write_text(json.dumps(BASE_RAW))
        (run / "results.json").write_text(json.dumps(raw))  # NaN and Infinity as JSON writes them
        before = _snapshot(root, run)
        COUNTS["examples"] += 1
        for i in commands:
            argv = [a.format(run=run, base=base) for a in COMMANDS[i]]
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                rc = main(argv)
            COUNTS["runs"] += 1
            COUNTS[{0: "ok", 1: "regression", 2: "refused"}.get(rc, "ok")] += 1
            assert rc in (0, 1, 2), (argv, rc, err.getvalue()[-500:])
            assert "Traceback" not in err.getvalue()
            assert _snapshot(root, run) == before, (argv, "a file outside the run directory changed")
