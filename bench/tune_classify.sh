#!/usr/bin/env bash
# rnnkit tune on the classify task's embedded default (digits), a fixed budget of 30 updates per run:
# the same 20 trials (TPE, sampler seed 0) without and with the median pruner. Trial 0 of each study is the
# task's defaults. Results: docs/tune.md. Usage: bench/tune_classify.sh OUT_DIR
set -euo pipefail
out=${1:?usage: bench/tune_classify.sh OUT_DIR}
common=(--trials 20 --max-steps 30 --eval-every 5 --threads 1 --tensorboard off --sampler-seed 0)
for pruner in none median; do
  /usr/bin/time -f "$pruner: %e s wall, %U s user" rnnkit tune classify "${common[@]}" --pruner "$pruner" \
    --out "$out/$pruner"
done
