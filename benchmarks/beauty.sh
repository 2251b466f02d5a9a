#!/usr/bin/env bash
# The Amazon Beauty runs behind docs/results.md, one after another, resumable: run it again after an
# interruption and finished stages are reused, training continues from its last checkpoint.
# Usage: GENREC_DATA_DIR=../shared/data benchmarks/beauty.sh [sasrec|analysis|tiger|prorec|ablations ...]
set -uo pipefail
export GENREC_DATA_DIR="${GENREC_DATA_DIR:-../shared/data}"
STORE="${STORE:-runs/store}"
# Per-epoch model selection of the code generators on a fixed 3,000-user validation sample (speed on CPU);
# the reported validation and test metrics use all users. EXTRA adds options to every code-generator run
# (for example EXTRA="--set generator.epochs=10" for a fixed-budget comparison).
TIGER_SET=(--set generator.valid_users=3000 ${EXTRA:-})
steps=("${@:-sasrec analysis tiger prorec ablations}")
for step in ${steps[@]}; do
  echo "=== $(date -u +%FT%TZ) $step"
  case "$step" in
    sasrec) /usr/bin/time -v genrec recipe sasrec --data beauty --store-dir "$STORE" ;;
    analysis) genrec analyze domination --data beauty --store-dir "$STORE" --out docs/figures ;;
    tiger) genrec recipe tiger --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" ;;
    prorec) genrec recipe prorec --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" ;;
    ablations)
      for flag in --no-align --no-distill --concat --semantic-only --collaborative-only; do
        genrec recipe prorec --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" "$flag"
      done ;;
  esac
  echo "=== $(date -u +%FT%TZ) $step exit $?"
done
