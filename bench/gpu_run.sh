#!/bin/bash
# One device call: versions, the Triton/scan tests on the GPU, the scan tile sweep, the GPU benchmark.
# usage (on the GPU machine, repo root): bash bench/gpu_run.sh [bench args...]
export PYTHONUNBUFFERED=1 PYTHONPATH=.
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv | tee $OUT/smi.txt
if [ -z "$SKIP_TESTS" ]; then
  timeout 150 python3 -m pytest tests/engines/test_triton_scan.py tests/engines/test_triton_rnn.py \
    tests/engines/test_scan.py tests/cells/test_minrnn.py -q -p no:cacheprovider 2>&1 | tee $OUT/pytest.log | tail -15
fi
if [ -z "$SKIP_SWEEP" ]; then timeout 70 python3 -m rnnkit.bench.gpu_tune scan 2>&1 | tee $OUT/scan_sweep.log; fi
timeout ${BENCH_TIMEOUT:-380} python3 -m rnnkit.bench.gpu --json $OUT/gpu.json "$@" 2>&1 | grep -v -i warn | tee $OUT/bench.log | tail -150
