#!/usr/bin/env bash
# Training runs that need a GPU, one after another inside a time budget.
#
# The inductive FB15k-237 v2-v4 NBFNet runs (official config, 20 epochs) and the
# 20-epoch NBFNet runs on Cora and CiteSeer (experiments/configs/link/<name>/nbfnet.yaml,
# the TorchDrug protocol: 30-43 minutes per epoch on 2 shared CPU cores) take
# hours per seed on CPU; on one H200 v1 trains at 1.7 s per epoch. Runs
# go one at a time: six processes sharing one H200 each slowed 6-8x (v1: 13.4 s
# per epoch), since processes take turns on the GPU rather than overlap.
#
# Usage, from the repository root, on a machine with a CUDA GPU, PyTorch and Triton:
#   DATA=../shared/data bash experiments/gpu_runs.sh                 # every run, in order
#   DATA=/data BUDGET_S=540 RUNS="fb237_v4:0 fb237_v3:0" bash experiments/gpu_runs.sh
#
# Environment:
#   DATA      data root holding kg/grail/<name> and kg/grail/<name>_ind (default ../shared/data)
#   OUT       where run directories, logs and summaries go (default runs/gpu_runs)
#   RUNS      space-separated DATASET:SEED, DATASET one of fb237_v1..v4, cora, citeseer
#             (default: v3 seed 0, v2 seeds 1-2, v4 seed 0, then v3 and v4 seeds 1-2)
#   BUDGET_S  seconds for the whole script (default 540); a run starts only when its
#             estimate fits in what is left, and is stopped when the budget ends
#   PYTHON    interpreter (default python3)
#   DEVICE    train.device (default cuda; cpu only to try the script)
#   DRY_RUN   1: print each run's command instead of running it
# A run stopped early leaves its validation curve (metrics.jsonl) and epoch
# checkpoints but no test numbers (the test set is read once, at the end); the
# next call with the same OUT on the same machine resumes it. Finished runs are summarised in
# $OUT/<name>_s<seed>.json (experiments/tools/summarize_runs.py).
set -uo pipefail

cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/gpu_runs}"
BUDGET_S="${BUDGET_S:-540}"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
DRY_RUN="${DRY_RUN:-0}"
RUNS="${RUNS:-fb237_v3:0 fb237_v2:1 fb237_v2:2 fb237_v4:0 fb237_v3:1 fb237_v3:2 fb237_v4:1 fb237_v4:2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TRITON_INTERPRET=0

# Seconds per 20-epoch run on one H200, alone, evaluation included: v1's 1.7 s
# per epoch measured there, the others scaled by NBFNet-PyG's published epoch
# times on 4 V100s (v1-v4: 2 / 6 / 15 / 29 s, DESIGN.md section 3), rounded up;
# Cora and CiteSeer by the CPU-to-GPU ratio of v1 (65 s to 1.7 s per epoch)
# applied to Cora's quiet-CPU epoch (about 540 s), plus evaluation. Estimates,
# not measurements; unknown datasets get the largest. v4 wants a device call of
# its own (BUDGET_S=570).
estimate() {
    case "$1" in
        fb237_v1) echo 60 ;; fb237_v2) echo 150 ;; fb237_v3) echo 300 ;;
        cora | citeseer) echo 400 ;; *) echo 520 ;;
    esac
}

# The config, its overrides and the metrics to summarise, per dataset.
config_of() {
    case "$1" in
        cora | citeseer) echo "experiments/configs/link/$1/nbfnet.yaml" ;;
        *) echo "experiments/configs/kg/fb237_v1/nbfnet.yaml" ;;
    esac
}
dataset_override() {
    case "$1" in cora | citeseer) ;; *) echo "data.name=$1" ;; esac
}
metrics_of() {
    case "$1" in cora | citeseer) echo "auroc ap" ;; *) echo "mrr hits@1 hits@3 hits@10 hits@10_50" ;; esac
}

mkdir -p "$OUT"
if [ "$DEVICE" = cuda ] && [ "$DRY_RUN" != 1 ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')" \
        || exit 2
fi
start=$(date +%s)
status=0
for item in $RUNS; do
    name="${item%%:*}" seed="${item##*:}"
    run="$OUT/${name}_s${seed}"
    left=$(( BUDGET_S - ($(date +%s) - start) ))
    need=$(estimate "$name")
    if [ -f "$run/final.json" ]; then echo "$run: finished before, skipped"; continue; fi
    if [ "$need" -gt "$left" ]; then echo "$run: needs about ${need} s, ${left} s left: not started"; continue; fi
    resume=()
    if [ -f "$run/config.yaml" ]; then resume=(--resume); fi  # a run stopped by an earlier budget
    echo "$run: started with ${left} s left (estimate ${need} s) ${resume[*]}"
    overrides=(data.root="$DATA" train.seed="$seed" train.device="$DEVICE")
    dataset=$(dataset_override "$name")
    if [ -n "$dataset" ]; then overrides+=("$dataset"); fi
    command=("$PYTHON" -m graphlearn train "$(config_of "$name")" "${overrides[@]}"
             --threads 4 --out "$run" "${resume[@]}")
    if [ "$DRY_RUN" = 1 ]; then echo "would run: ${command[*]}"; continue; fi
    timeout "$left" "${command[@]}" >>"$run.log" 2>&1
    rc=$?
    grep -a "selected epoch" "$run.log" || { echo "$run: stopped (exit $rc)"; status=1; }
    if [ -f "$run/final.json" ]; then
        # shellcheck disable=SC2046  # the metric names are separate words
        "$PYTHON" experiments/tools/summarize_runs.py "$run" \
            --metrics $(metrics_of "$name") --json "$OUT/${name}_s${seed}.json"
    fi
done
exit $status
