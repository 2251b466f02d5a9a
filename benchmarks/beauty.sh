#!/usr/bin/env bash
# The Amazon Beauty runs behind docs/results.md, one after another, resumable: run it again after an
# interruption and finished stages are reused, training continues from its last checkpoint.
# Usage: GENREC_DATA_DIR=../shared/data benchmarks/beauty.sh [STEP ...]
# Steps: sasrec analysis tiger prorec ablations (all five below) no-align no-distill concat semantic-only
# collaborative-only, and with the causal generator: tiger-causal prorec-causal (STORE=runs/store-e2e for
# an end-to-end run from an empty store). Two chains may share the store: a stage another chain is building is waited for
# and reused. On two cores, two chains with OMP_NUM_THREADS=1 each finish sooner than one after another
# (docs/performance.md).
set -uo pipefail
export GENREC_DATA_DIR="${GENREC_DATA_DIR:-../shared/data}"
STORE="${STORE:-runs/store}"
ABLATIONS=(no-align no-distill concat semantic-only collaborative-only)
# Per-epoch model selection of the code generators on a fixed 3,000-user validation sample (speed on CPU);
# the reported validation and test metrics use all users. EXTRA adds options to every code-generator run
# (for example EXTRA="--set generator.epochs=8" for a fixed-budget comparison).
TIGER_SET=(--set generator.valid_users=3000 ${EXTRA:-})
steps=("${@:-sasrec analysis tiger prorec ablations}")
for step in ${steps[@]/ablations/${ABLATIONS[*]}}; do
  echo "=== $(date -u +%FT%TZ) $step"
  case "$step" in
    sasrec) /usr/bin/time -v genrec recipe sasrec --data beauty --store-dir "$STORE" ;;
    analysis) genrec analyze domination --data beauty --store-dir "$STORE" --out docs/figures ;;
    tiger) genrec recipe tiger --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" ;;
    prorec) genrec recipe prorec --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" ;;
    tiger-causal) /usr/bin/time -v genrec recipe tiger --data beauty --generator causal --store-dir "$STORE" ;;
    prorec-causal) /usr/bin/time -v genrec recipe prorec --data beauty --generator causal --store-dir "$STORE" ;;
    # the hybrid: its own row, never "PRORec" (item_loss trains the dense head that rerank re-scores with)
    prorec-hybrid) genrec recipe prorec --data beauty --generator causal --store-dir "$STORE" \
      --set generator.id_dropout=0.5 --set generator.item_loss=1.0 --set generator.rerank=true ;;
    no-align | no-distill | concat | semantic-only | collaborative-only)
      genrec recipe prorec --data beauty --store-dir "$STORE" "${TIGER_SET[@]}" "--$step" ;;
    *) echo "unknown step: $step" >&2; exit 2 ;;
  esac
  status=$?
  echo "=== $(date -u +%FT%TZ) $step exit $status"
done
