#!/usr/bin/env bash
# GPU check of the Triton rspmm backend, in one go (a few minutes on one H100):
#   1. tests/ops/test_triton.py on CUDA tensors (TRITON_INTERPRET=0: compiled
#      kernels, plus the gpu_only larger-graph cases), against the reference;
#   2. the rspmm benchmark on the GPU: reference vs triton (vs torch_scatter when
#      installed), forward and forward+backward time, peak CUDA memory.
#
# Usage, from anywhere, on a machine with a CUDA GPU, PyTorch and Triton:
#   bash experiments/gpu_check.sh
#   OUT=/some/dir FB237=/path/to/fb237_v4/train.txt bash experiments/gpu_check.sh
#
# Environment:
#   OUT         where results go (default runs/gpu_check): env.txt, test_triton.log,
#               test_triton.xml, bench_rspmm_cuda.log, bench_rspmm_cuda.json
#   PYTHON      interpreter (default .venv/bin/python if present, else python3)
#   FB237       fb237_v4 train.txt for the second benchmark case (default
#               ../shared/data/kg/grail/fb237_v4/train.txt; skipped when absent)
#   BENCH_ARGS  extra arguments for the benchmark (e.g. "--messages mul,rotate")
# Exit status: non-zero when the tests or the benchmark failed (both always run).
set -uo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu_check}"
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
FB237="${FB237:-../shared/data/kg/grail/fb237_v4/train.txt}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TRITON_INTERPRET=0              # compiled kernels on the GPU, never the interpreter
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-/tmp/graphlearn_triton_cache}"

# 0. The environment; stop early when there is no GPU or no Triton.
"$PYTHON" - >"$OUT/env.txt" 2>&1 <<'EOF'
import platform, sys
import torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch")
print("device", torch.cuda.get_device_name(), torch.cuda.get_device_capability())
import triton
print("triton", triton.__version__)
EOF
status=$?
cat "$OUT/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$OUT/env.txt" 2>&1 || true
if [ $status -ne 0 ]; then
    echo "gpu_check: environment not usable (see $OUT/env.txt)" >&2
    exit 2
fi

# 1. Correctness on the GPU (parallel workers compile the kernel variants faster).
parallel=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then parallel=(-n 8); fi
timeout 420 "$PYTHON" -m pytest tests/ops/test_triton.py -q -rfEs "${parallel[@]}" \
    --junitxml "$OUT/test_triton.xml" 2>&1 | tee "$OUT/test_triton.log"
tests_status=${PIPESTATUS[0]}

# 2. Benchmark on the GPU.
cases=random
if [ -f "$FB237" ]; then cases=random,fb237_v4; fi
# shellcheck disable=SC2086
timeout 420 "$PYTHON" -m graphlearn bench rspmm --device cuda --cases "$cases" \
    --fb237 "$FB237" --reductions sum,mean,max,pna --repeats 5 --timeout 300 \
    --json "$OUT/bench_rspmm_cuda.json" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench_rspmm_cuda.log"
bench_status=${PIPESTATUS[0]}

echo "gpu_check: tests exit $tests_status, benchmark exit $bench_status; results in $OUT"
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
