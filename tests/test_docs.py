"""The documentation: the site builds (`mkdocs build --strict`), its generated tables match the committed
results, and every shell command it shows is either run here (small, on digits, in a temporary
directory) or marked ``# long-running``."""

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md"] + sorted(DOCS.glob("*.md"))
LONG = re.compile(r"#\s*long-running\b")


def shell_commands(text: str) -> list[tuple[str, bool]]:
    """Every command of the page's ```bash blocks (continuation lines joined), with whether it is marked
    ``# long-running``; blank and comment-only lines are not commands."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        pending = ""
        for line in block.splitlines():
            if pending:
                line = pending + "\n" + line
            if line.rstrip().endswith("\\"):
                pending = line
                continue
            pending = ""
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((line, bool(LONG.search(line))))
    return out


def test_every_page_is_in_the_site_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f": {page.name}" in nav, f"docs/{page.name} is not in mkdocs.yml's nav"


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def test_the_readme_shows_the_test_command_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^\./test\.sh\s*$", ci, flags=re.M)
    assert any(cmd.split("#")[0].strip() == "./test.sh" for cmd, _ in shell_commands((REPO / "README.md").read_text()))


def test_the_generated_tables_match_the_committed_results():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e .[docs])")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def run_shown(cmd: str, cwd: Path, env: dict) -> tuple[int, str]:
    """Run one shown command: ``vib-bench ...`` (with at most a ``> FILE`` redirection) in this process,
    as the console script would, so torch is imported once; anything else in bash."""
    words = shlex.split(cmd, comments=True)
    out_file = None
    if len(words) >= 2 and words[-2] == ">":
        words, out_file = words[:-2], words[-1]
    if words and words[0] == "vib-bench" and not set(words) & {"|", "&&", "||", ";", ">", "<"}:
        out, err = io.StringIO(), io.StringIO()
        old = os.getcwd()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(words[1:])
                except SystemExit as e:  # --help
                    rc = e.code or 0
            if out_file:
                (cwd / out_file).write_text(out.getvalue())
        finally:
            os.chdir(old)
        return rc, err.getvalue()
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_shown_command_runs_or_is_marked_long_running(page, tmp_path):
    """The page's unmarked commands run, in order, in a scratch directory holding a copy of the committed
    results (without figures), as `vib-bench` would run them."""
    commands = [cmd for cmd, long in shell_commands(page.read_text()) if not long]
    if not commands:
        return
    shutil.copytree(REPO / "results", tmp_path / "results", ignore=shutil.ignore_patterns("*.png", "*.html"))
    (tmp_path / "bin").mkdir()
    shim = tmp_path / "bin" / "vib-bench"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bench "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
    }
    for cmd in commands:
        rc, err = run_shown(cmd, tmp_path, env)
        assert rc == 0, (
            f"{page.name}: `{cmd}` exited {rc} (mark it `# long-running` if a test cannot run it):\n{err[-2000:]}"
        )
