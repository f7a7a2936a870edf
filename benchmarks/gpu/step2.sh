#!/usr/bin/env bash
# GPU machine, second step (carry: .gpu2 .gpurun, where .gpurun holds ../shared/gpu/vllm_load.py and,
# for an A/B, another checkout in .gpurun/base): start vLLM (--stream-interval 8 --api-server-count 4,
# end_answers loaded; it keeps running for step 3), warm it up, then the direct client (vllm_load.py)
# at 1, 32, 128 and 512 concurrent replies of 512 tokens. Results under $OUT.
set -u
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
model=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
levels=${LEVELS:-1,32,128,512}
bash benchmarks/gpu/serve.sh --stream-interval 8 --api-server-count 4 2>&1 | tee "$out/serve.txt" || { cp /tmp/vllm.log "$out/"; exit 5; }
export PYTHONPATH=/tmp/site
python3 .gpurun/vllm_load.py http://127.0.0.1:8000 $model --levels 32 --max-tokens 512 > "$out/warmup.txt" 2>&1
python3 .gpurun/vllm_load.py http://127.0.0.1:8000 $model --levels "$levels" --max-tokens 512 \
  --json "$out/direct.json" > "$out/direct.txt" 2>&1
grep -m3 "end_answers" /tmp/vllm.log > "$out/end_answers.txt"
cat "$out/direct.txt"
