#!/bin/bash
# One device call: versions, the Triton/scan tests on the GPU, then the GPU benchmark.
# usage (on the GPU machine, repo root): bash bench/gpu_run.sh [bench args...]
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv
if [ -z "$SKIP_TESTS" ]; then
  timeout 240 python3 -m pytest tests/engines/test_triton_scan.py tests/engines/test_triton_rnn.py \
    tests/engines/test_scan.py tests/cells/test_minrnn.py -q -x -p no:cacheprovider 2>&1 | tee $OUT/pytest.log | tail -40
fi
timeout ${BENCH_TIMEOUT:-420} python3 -m rnnkit.bench.gpu --json $OUT/gpu.json "$@" 2>&1 | tee $OUT/bench.log | tail -120
