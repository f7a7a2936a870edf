#!/usr/bin/env bash
# GPU machine, first step (carry: .gpu1 .whl): the first half of the vLLM bundle, and botkit's
# dependencies that the image lacks into /tmp/bksite. Writes what it found to $OUT/step1.txt.
set -u
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 --version
  mkdir -p /tmp/chunks && cp .gpu1/part.* /tmp/chunks/ && echo "part.00 copied"
  python3 benchmarks/gpu/install_wheels.py .whl /tmp/bksite; echo "install rc=$?"; } 2>&1 | tee "${OUT:-/tmp}/step1.txt"
