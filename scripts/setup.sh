#!/usr/bin/env bash
# Create ./.venv on first use and install vib-bench (editable, with test and docs tools) into it.
# Idempotent: a second call only checks that the install is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "vib-bench: creating a virtual environment in .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import bench, models, attacks, torchattacks, pytest, ruff, mkdocs, pymdownx" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.vib-bench-installed ]; then
  echo "vib-bench: installing dependencies into .venv (first run only; torch is large)" >&2
  # torch and torchvision first, pinned as a pair (a mismatched pair fails to import torchvision).
  .venv/bin/python -m pip install --quiet "torch==${VIB_BENCH_TORCH:-2.14.1}" "torchvision==${VIB_BENCH_TORCHVISION:-0.29.1}"
  .venv/bin/python -m pip install --quiet -e ".[dev,docs]"
  # The optional Ray executor: its tests skip when this install fails (e.g. no wheel for this platform).
  .venv/bin/python -m pip install --quiet -e ".[dev,docs,ray]" \
    || echo "vib-bench: the ray extra did not install; tests of --executor ray will skip" >&2
  touch .venv/.vib-bench-installed
fi
