#!/usr/bin/env bash
# GPU machine, second step (carry: .gpu2 .gpurun, where .gpurun holds ../shared/gpu/vllm_load.py):
# start vLLM (--stream-interval 8 --api-server-count 4, end_answers loaded), warm it up, then in one
# session: the direct client (vllm_load.py) and bench_e2e (its bare loop = direct on the same
# streams, then `botkit run` with the Slack adapter against the fake Slack, limits lifted) at
# 1, 32, 128 and 512 concurrent replies of 512 tokens. Results under $OUT.
set -u
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
model=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
levels=${LEVELS:-1,32,128,512}
bash benchmarks/gpu/serve.sh --stream-interval 8 --api-server-count 4 2>&1 | tee "$out/serve.txt" || { cp /tmp/vllm.log "$out/"; exit 5; }
export PYTHONPATH=$PWD:$PWD/adapters:/tmp/bksite:/tmp/site
python3 .gpurun/vllm_load.py http://127.0.0.1:8000 $model --levels 32 --max-tokens 512 > "$out/warmup.txt" 2>&1
python3 .gpurun/vllm_load.py http://127.0.0.1:8000 $model --levels "$levels" --max-tokens 512 \
  --json "$out/direct.json" > "$out/direct.txt" 2>&1
timeout 420 python3 benchmarks/bench_e2e.py --base-url http://127.0.0.1:8000/v1 --tokens-per-chunk 8 \
  --streams "$levels" --max-tokens 512 --limits off --stall 90 \
  ${COMPARE:+--compare before=$COMPARE} --botkit-env "PYTHONPATH=/tmp/bksite:/tmp/site" --json "$out/e2e.json" > "$out/e2e.txt" 2>&1
echo "bench_e2e rc=$?" >> "$out/e2e.txt"
grep -m3 "end_answers" /tmp/vllm.log > "$out/end_answers.txt"; tail -200 /tmp/vllm.log > "$out/vllm-tail.log"
cat "$out/direct.txt" "$out/e2e.txt" | tail -40
