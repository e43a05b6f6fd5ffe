#!/usr/bin/env bash
# Choose the dropout rate and the confidence-penalty strength on the validation split
# (the last 10,000 MNIST training images; the test set is never looked at).
# Usage: scripts/tune_regularizers.sh [EPOCHS] [OUT]   (defaults: 10 epochs, runs/tune)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-10}
OUT=${2:-runs/tune}
VB=.venv/bin/vib-bench
for p in 0.1 0.2 0.3 0.5; do
  $VB train --models dropout --set dropout=$p --dataset mnist --epochs "$EPOCHS" --out "$OUT/dropout_$p" --resume --no-progress ${THREADS:+--threads $THREADS}
done
for b in 0.1 0.3 1.0; do
  $VB train --models confidence_penalty --set confidence_penalty=$b --dataset mnist --epochs "$EPOCHS" --out "$OUT/cp_$b" --resume --no-progress ${THREADS:+--threads $THREADS}
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys, pathlib
rows = []
for st in sorted(pathlib.Path(sys.argv[1]).glob("*/models/*/seed0/status.json")):
    s = json.loads(st.read_text())
    rows.append((st.parts[-5], s.get("final_val_error")))
print("| setting | validation error (EMA weights, last epoch) |\n|---|---|")
for name, err in rows:
    print(f"| {name} | {100 * err:.2f}% |" if err is not None else f"| {name} | failed |")
PY
