#!/usr/bin/env bash
# The paper campaign on one GPU (issue 18, item 6): the models of the `paper` and `claims_full` suites
# (13 models) x 3 seeds, 200 epochs on train+val (the paper's recipe), clean Table 1 on the full test
# set, then the paper suite's strongest attack set and the claims on the first 1,000 test images, a
# report, Table 1 over seeds against the paper (table1.md), and the run published without weights to
# results/paper (scripts/publish_reference.sh).
#
# usage: scripts/paper_campaign.sh                  # (long-running: a GPU; target under 9 minutes)
#        TINY=1 scripts/paper_campaign.sh           # rehearsal on the CPU: digits, tiny networks and budgets
# settings (environment): RUN (run directory, default runs/paper, TINY: runs/paper_tiny), SEEDS (default
# 0,1,2, TINY: 0), DEVICE (default cuda, TINY: cpu), THREADS (torch threads), NAME (published as results/NAME, default paper, TINY:
# paper_tiny), PUBLISH=0 (skip publishing), PY (python, default .venv/bin/python, else python3).
# Each stage resumes what a previous call of this script finished (--resume), so a cut run continues.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PAPER="mlp,dropout,confidence_penalty,label_smoothing,vib_beta1e-4,vib_beta1e-3,vib_beta1e-2,vib_beta1e-1,vib_k2_beta1e-3"
CLAIMS="mlp,vib_beta0,vib_beta1e-10,vib_beta1e-8,vib_beta1e-6,vib_beta1e-4,vib_beta1e-3,vib_beta1e-2"
ALL="$PAPER,vib_beta0,vib_beta1e-10,vib_beta1e-8,vib_beta1e-6"        # the 13 models of both suites
ATTACKS="fgsm,pgd,pgd_l2,cw_l2,eot_pgd,apgd_ce,apgd_t,square,apgd_l2,apgd_t_l2,square_l2"   # the paper suite's

if [ "${TINY:-0}" = 1 ]; then
  RUN=${RUN:-runs/paper_tiny}; DEVICE=${DEVICE:-cpu}; NAME=${NAME:-paper_tiny}; SEEDS=${SEEDS:-0}
  TRAIN=(--dataset digits --epochs 2 --set hidden=32,32)
  ATTACK=(--n-examples 20 --eps 0,0.2 --eps-l2 2 --eot-iter 2
          --attack-set pgd.steps=3 --attack-set pgd_l2.steps=3 --attack-set eot_pgd.steps=3
          --attack-set cw_l2.steps=5 --attack-set apgd_ce.steps=3 --attack-set apgd_t.steps=3
          --attack-set apgd_t.n_target_classes=2 --attack-set apgd_l2.steps=3 --attack-set apgd_t_l2.steps=3
          --attack-set apgd_t_l2.n_target_classes=2 --attack-set square.n_queries=20
          --attack-set square_l2.n_queries=20)
  CLAIM=(--n-examples 20 --eps 0.2 --eps-l2 2 --eot-iter 2 --zeros-n 2 --batch-size 20
         --attack-set cw_paper.binary_steps=2 --attack-set cw_paper.steps=5
         --attack-set cw_paper_targeted.binary_steps=2 --attack-set cw_paper_targeted.steps=5
         --attack-set pgd_strong.steps=3 --attack-set pgd_strong.restarts=1
         --attack-set pgd_l2_strong.steps=3 --attack-set pgd_l2_strong.restarts=1
         --attack-set eot_pgd_strong.steps=3 --attack-set eot_pgd_strong.restarts=1
         --attack-set eot_pgd_l2_strong.steps=3 --attack-set eot_pgd_l2_strong.restarts=1
         --attack-set transfer_pgd_strong.steps=3 --attack-set transfer_pgd_l2_strong.steps=3
         --attack-set apgd_strong.steps=3 --attack-set apgd_strong.restarts=1
         --attack-set apgd_l2_strong.steps=3 --attack-set apgd_l2_strong.restarts=1
         --attack-set square.n_queries=20 --attack-set square_l2_strong.n_queries=20)
else
  RUN=${RUN:-runs/paper}; DEVICE=${DEVICE:-cuda}; NAME=${NAME:-paper}; SEEDS=${SEEDS:-0,1,2}
  TRAIN=(--dataset mnist --epochs 200)
  ATTACK=(--n-examples 1000 --eps 0,0.05,0.1,0.15,0.2,0.25,0.3 --eps-l2 0.5,1,1.5,2,3)
  CLAIM=(--n-examples 1000 --eps 0.1,0.2,0.3 --eps-l2 2 --eot-iter 20 --zeros-n 10 --batch-size 1000)
fi
COMMON=(--device "$DEVICE" --no-progress ${THREADS:+--threads "$THREADS"})

t0=$(date +%s)
stage() { echo "[paper_campaign] $1: $(( $(date +%s) - t0 )) s since the start"; }

# 1. training, and clean Table 1 on the full test set (train evaluates every model-seed on the test split)
$PY -m bench train --models "$ALL" --seeds "$SEEDS" --train-split trainval "${TRAIN[@]}" --stack on \
    --out "$RUN" --resume "${COMMON[@]}"
stage "trained and evaluated (clean, full test set)"
# 2. the paper suite's strongest attack set on the first 1,000 test images
$PY -m bench attack "$RUN" --models "$PAPER" --attacks "$ATTACKS" "${ATTACK[@]}" --resume "${COMMON[@]}"
stage "attacked"
# 3. the claims of Alemi et al. (2017) on the claims_full models
$PY -m bench claims "$RUN" --models "$CLAIMS" "${CLAIM[@]}" "${COMMON[@]}"
stage "claims checked"
# 4. report (leaderboard, figures, the HTML page with its Table 1 section), Table 1 as table1.md (mean and
#    spread over seeds against the paper, bench/reporting/table1.py), then publish without weights
$PY -m bench report "$RUN"
$PY -c 'import sys; from bench.reporting.table1 import write_table1; print(f"[paper_campaign] wrote {write_table1(sys.argv[1])}")' "$RUN"
if [ "${PUBLISH:-1}" = 1 ]; then
  scripts/publish_reference.sh "$RUN" "$NAME"
fi
stage "done"
