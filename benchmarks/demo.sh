#!/usr/bin/env bash
# The demo rows of docs/results.md: every recipe on the embedded demo data, each in a fresh store (its
# wall time includes the text embeddings), then the PRORec ablations, sharing one store.
# Usage: benchmarks/demo.sh [OUT]   (OUT defaults to a new temporary directory; nothing else should run)
set -euo pipefail
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
time_run() {  # NAME ARGS...: run a recipe, print its wall time
  local name="$1" start
  shift
  start=$(date +%s.%N)
  genrec recipe "$@" --data demo --run-dir "$out/$name" > "$out/$name.log" 2>&1
  printf '%-28s %6.1f s\n' "$name" "$(echo "$(date +%s.%N) - $start" | bc)"
}
for recipe in sasrec tiger prorec; do
  time_run "$recipe" "$recipe" --store-dir "$out/store-$recipe"
done
for flag in no-align no-distill concat semantic-only collaborative-only; do
  time_run "prorec-$flag" prorec --store-dir "$out/store-prorec" "--$flag"
done
python "$(dirname "$0")/results_table.py" "$out"/*/results.json
