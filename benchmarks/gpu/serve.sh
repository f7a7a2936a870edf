#!/usr/bin/env bash
# On the GPU test machine, in the step that carries .gpu2 (an earlier step on the same machine carried
# .gpu1 and ran benchmarks/gpu/step1.sh). Reassembles the vLLM 0.26.0 tree once (../shared/gpu/README.md),
# then starts `vllm serve` on dummy weights with benchmarks/gpu/end_answers.py loaded (answers that end:
# </think> at 256 output tokens, stop at 512) and waits for /health.
# usage: benchmarks/gpu/serve.sh [extra vllm serve flags...]      env: VLLM_PORT (8000)
set -u
port=${VLLM_PORT:-8000}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf /tmp/model && cp -r .gpu2/model /tmp/model
if [ ! -d /tmp/site/vllm ]; then
  [ -f /tmp/chunks/part.00 ] || { echo "part.00 missing: run step1.sh first, on the same machine"; exit 3; }
  cp .gpu2/part.* .gpu2/SHA256 /tmp/chunks/
  (cd /tmp/chunks && cat part.* > site.tar.xz && sha256sum -c SHA256) || exit 4
  python3 -c "import tarfile;tarfile.open('/tmp/chunks/site.tar.xz').extractall('/tmp/site',filter='data')"
fi
export PYTHONPATH="/tmp/site:$here" HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0
[ -f /tmp/vllm.pid ] && kill -- -"$(cat /tmp/vllm.pid)" 2>/dev/null && sleep 5
setsid nohup python3 -m vllm.entrypoints.cli.main serve /tmp/model --load-format dummy \
  --served-model-name deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --max-model-len 4096 \
  --gpu-memory-utilization 0.8 --port "$port" --logits-processors end_answers:EndAnswers "$@" \
  > /tmp/vllm.log 2>&1 < /dev/null &
echo $! > /tmp/vllm.pid
t0=$(date +%s)
for _ in $(seq 300); do
  curl -sf "localhost:$port/health" >/dev/null && { echo "vllm ready in $(( $(date +%s) - t0 )) s on port $port"; exit 0; }
  kill -0 "$(cat /tmp/vllm.pid)" 2>/dev/null || break; sleep 1
done
echo "vllm did not become ready"; tail -60 /tmp/vllm.log; exit 5
