#!/usr/bin/env bash
# Set up (first run only) and run the main job. Extra arguments go to `vib-bench run`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/vib-bench run --suite smoke --out "${VIB_BENCH_OUT:-runs/smoke}" --resume "$@"
