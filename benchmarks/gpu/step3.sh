#!/usr/bin/env bash
# GPU machine, third step (within 30 s of step 2; carry nothing: the server and .gpurun are still
# there): bench_e2e against the running vLLM — its bare loop on the same streams is "direct", then
# `botkit run` with the Slack adapter against the fake Slack (every budget lifted), SQLite, at
# 1, 32, 128 and 512 concurrent replies; with .gpurun/base present, that checkout too, alternating,
# in the same run. Results under $OUT.
set -u
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
levels=${LEVELS:-1,32,128,512}
export PYTHONPATH=$PWD:$PWD/adapters:/tmp/bksite:/tmp/site
compare=(); [ -d .gpurun/base/botkit ] && compare=(--compare "before=$PWD/.gpurun/base")
timeout 540 python3 benchmarks/bench_e2e.py --base-url http://127.0.0.1:8000/v1 --tokens-per-chunk 8 \
  --streams "$levels" --max-tokens 512 --limits off --stall 90 "${compare[@]}" \
  --botkit-env "PYTHONPATH=/tmp/bksite:/tmp/site" --json "$out/e2e.json" > "$out/e2e.txt" 2>&1
echo "bench_e2e rc=$?" >> "$out/e2e.txt"
tail -200 /tmp/vllm.log > "$out/vllm-tail.log"
tail -30 "$out/e2e.txt"
