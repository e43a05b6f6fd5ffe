"""Packaging and start-up: the wheel holds vib-bench's own packages only, and `vib-bench --help` and
`vib-bench list` start without importing torch or torchattacks."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench import catalog
from bench.cli import COMMANDS, SUMMARIES, build_parser

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_vib_bench_packages_and_the_license(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for name in ("bench", "models", "attacks", "registry", "benchmarks"):  # benchmarks/ must stay out
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path / "wheel"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("vib_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"attacks", "bench", "models", "registry", next(t for t in top if t.endswith(".dist-info"))}, top
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert "bench/catalog.json" in names and "bench/suites/smoke.toml" in names


def test_the_license_is_the_one_pyproject_names():
    assert 'license = { text = "MIT" }' in (REPO / "pyproject.toml").read_text()
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) the vib-bench authors" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list", "models"],
        ["list", "models", "vib*", "mlp"],
        ["list", "attacks"],
        ["list", "datasets"],
        ["list", "suites"],
        ["list", "estimators"],
    ],
)
def test_help_and_list_import_neither_torch_nor_torchattacks(argv):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bench", *argv], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert len(imported) > 10  # importtime did report
    assert not imported & {"torch", "torchattacks", "torchvision"}, sorted(imported & {"torch", "torchattacks"})
    assert proc.stdout.strip()


def test_the_catalog_is_what_the_registries_hold():
    """bench/catalog.json is stale: regenerate it with `python -m bench.catalog`."""
    assert json.loads(catalog.PATH.read_text()) == catalog.build(), "run `python -m bench.catalog`"


def test_listing_from_the_catalog_equals_listing_from_the_registries():
    from attacks import describe_attacks
    from models import describe_model, list_models

    some = ["vib*", "mlp"]
    assert catalog.model_lines(some) == [f"{n:24s} {describe_model(n)}" for n in list_models(some)]
    assert catalog.attack_lines(["apgd*", "fgsm"]) == describe_attacks(["apgd*", "fgsm"])
    assert not catalog.matches("models", ["no_such_model"])  # the registry words that error


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_help_lines_listed_without_the_commands_are_the_commands_own():
    """SUMMARIES in bench/cli/__init__.py (what `vib-bench --help` lists) must match each module's add_parser."""
    full = _subparsers(build_parser())
    assert [(a.dest, a.help) for a in full._choices_actions] == [SUMMARIES[m] for m in COMMANDS]
    light = _subparsers(build_parser(only=""))
    assert [(a.dest, a.help) for a in light._choices_actions] == [SUMMARIES[m] for m in COMMANDS]


def test_a_command_gets_its_full_parser():
    args = build_parser(only="leaderboard").parse_args(["leaderboard", "runs/x", "--format", "csv"])
    assert args.format == "csv" and callable(args.func)
    help_text = build_parser(only="list").format_help()
    assert re.search(r"upgrade\s+rewrite results files", help_text)
