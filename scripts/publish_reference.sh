#!/usr/bin/env bash
# Copy a run directory into results/<name>/ as a committed reference: everything but the weights,
# checkpoints and locks (results.json, leaderboard, report, figures, logs, status, per-example vectors).
# usage: scripts/publish_reference.sh RUN_DIR NAME
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?RUN_DIR}; name=${2:?NAME}; dst=results/$name
rm -rf "$dst"; mkdir -p "$dst"
(cd "$src" && find . -type f ! -name 'model.safetensors' ! -name 'checkpoint.pt' ! -path './stacks/*' \
    ! -name '.vib-bench.lock*' ! -name '.train.lock' ! -path '*/snapshots/*' -print0) | (cd "$src" && xargs -0 tar cf -) | (cd "$dst" && tar xf -)
du -sh "$dst"
