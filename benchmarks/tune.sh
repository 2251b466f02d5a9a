#!/usr/bin/env bash
# PRORec's tuning on Beauty validation: one full-length run of the hybrid recipe per
# variant and seed, two at a time as one-thread processes (two cores), resumable like every recipe run.
# Each variant changes one thing against the recipe's defaults (intconcat-align1: the two that won
# alone, together). Choose on the validation rows of
#   genrec report runs/tune-*/seed* docs/results/prorec-hybrid-beauty-seed*.json
# only; the test rows are read once, for the chosen configuration.
# Usage: GENREC_DATA_DIR=../shared/data benchmarks/tune.sh VARIANT@SEED ...   (e.g. align1@0 intconcat@1)
set -uo pipefail
export GENREC_DATA_DIR="${GENREC_DATA_DIR:-../shared/data}"
STORE="${STORE:-runs/store}"
LOGS="${LOGS:-docs/results/logs}"

options() {  # VARIANT: the recipe options that make it
  case "$1" in
    default) ;;
    align0.3) echo "--set fuser.align_weight=0.3" ;;
    align1) echo "--set fuser.align_weight=1.0" ;;
    tau0.05) echo "--set fuser.temperature=0.05" ;;
    tau0.2) echo "--set fuser.temperature=0.2" ;;
    normalized) echo "--set fuser.integrated=normalized" ;;
    intconcat) echo "--set fuser.integrated=concat" ;;
    distill0.3) echo "--set quantizer.collaborative_weight=0.3 --set quantizer.semantic_weight=0.3" ;;
    distill-cosine) echo "--set quantizer.loss=cosine" ;;
    no-distill) echo "--no-distill" ;;
    codebook128) echo "--set quantizer.codebook_size=128" ;;
    intconcat-align1) echo "--set fuser.integrated=concat --set fuser.align_weight=1.0" ;;  # the two best, together
    concat) echo "--concat" ;;  # the baseline PRORec has to beat
    *) echo "unknown variant: $1" >&2; return 2 ;;
  esac
}

run() {  # VARIANT@SEED
  local variant="${1%@*}" seed="${1#*@}" extra
  extra=$(options "$variant") || exit 2
  echo "=== $(date -u +%FT%TZ) $variant seed $seed"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 genrec recipe prorec --data beauty --generator causal --set generator.rerank=true $extra \
    --seeds "$seed" --store-dir "$STORE" --run-dir "runs/tune-$variant" > "$LOGS/tune-$variant-seed$seed.log" 2>&1
  echo "=== $(date -u +%FT%TZ) $variant seed $seed exit $?"
}

[ $# -gt 0 ] || { echo "usage: $0 VARIANT@SEED ..." >&2; exit 2; }
for spec in "$@"; do options "${spec%@*}" > /dev/null || exit 2; done
export -f options run
export STORE LOGS
printf '%s\n' "$@" | xargs -P 2 -I{} bash -c 'run {}'
