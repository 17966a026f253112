#!/bin/sh
# demo.sh - `make demo`: the whole pipeline on the embedded Fashion-MNIST default, ending in
# demo/results.db and demo/report/index.html + report.pdf (+ screenshot.png).
#
#   1. the model: the Fashion-MNIST teacher inferlab trained (tests/data/fmnist_teacher.onnx), else
#      one trained now by `inferlab train`, else a test model - the note printed says which;
#   2. every variant whose tool exists: baseline (O0), -O2 (`inferlab opt` passes), a distilled
#      student (`inferlab distill`), INT8 (`inferlab quantize`) and pruned (`inferlab prune`); a variant whose
#      tool is missing is left out with a note, never faked;
#   3. benchmarks on every backend present (cpu; cuda when a probe run succeeds) and ONNX Runtime
#      (when onnxruntime-node is installed), in the single-stream, offline and server scenarios;
#   4. the report.
# Meant to finish in well under 10 minutes on 2 cores. Usage: tools/demo.sh [build/inferlab]
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-build/inferlab}
OUT=demo
DB=$OUT/results.db
T0=$(date +%s)
note() { echo "demo: $*"; }
has() { "$BIN" help | grep -q "^  $1 "; }

[ -x "$BIN" ] || { echo "demo: $BIN not built (run make)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/models"
THREADS=$(nproc)

# ---- 1. the model: the Fashion-MNIST teacher inferlab trained itself (94.5% top-1; the command
# is in distill/README.md), shipped in tests/data so the demo needs no 8-minute training run
MODEL=$OUT/models/fmnist_vgg.onnx
if [ -f tests/data/fmnist_teacher.onnx ]; then
    cp tests/data/fmnist_teacher.onnx "$MODEL"
    note "model: the VGG-style teacher inferlab trained (tests/data/fmnist_teacher.onnx)"
elif has train; then
    note "training the default Fashion-MNIST MLP (inferlab train, 3 epochs)"
    "$BIN" train --model zoo:mlp --epochs 3 --batch 128 --seed 1 --quiet -o "$MODEL"
else
    MODEL=$(ls tests/data/*/model.onnx 2>/dev/null | head -1)
    [ -n "$MODEL" ] || { echo "demo: no teacher, no train and no tests/data model to benchmark" >&2; exit 1; }
    note "no trained model and no train command: benchmarking the test model $MODEL"
fi

# ---- 2. variants
PIPELINES=O0
if has opt; then PIPELINES=O0,O2; else note "inferlab opt is not available yet: no -O2 variant"; fi
MODELS=$MODEL
if has distill; then
    STUDENT=$OUT/models/fmnist_vgg_student.onnx
    note "distilling a student with 1/16 of the teacher's parameters (inferlab distill, 1 epoch)"
    "$BIN" distill --teacher "$MODEL" --student zoo:vgg --width 8 --epochs 1 --seed 1 --quiet -o "$STUDENT"
else
    STUDENT=
    note "inferlab distill is not available: no distilled variant"
fi
INT8=
if has quantize; then
    # entropy calibration on 512 training images; the teacher's per-layer error goes to the report
    note "quantizing the teacher and the student to INT8 (entropy calibration, 512 images)"
    "$BIN" quantize "$MODEL" -o "$OUT/models/fmnist_vgg_int8.onnx" --calib fashion-mnist:train:512 --method entropy \
        --analyze --db "$DB" --quiet
    INT8=$OUT/models/fmnist_vgg_int8.onnx
    if [ -n "$STUDENT" ]; then
        "$BIN" quantize "$STUDENT" -o "$OUT/models/fmnist_vgg_student_int8.onnx" --calib fashion-mnist:train:512 \
            --method entropy --quiet
    fi
else
    note "inferlab quantize is not available: no INT8 variant"
fi
PRUNED=
if has prune; then
    # half the channels removed for real (a smaller dense model: faster), fine-tuned for one short
    # epoch; half the weights zeroed (sparsity: as fast, smaller when compressed); and each
    # layer's sensitivity, which the report plots
    note "pruning the teacher: 50% of its channels (fine-tuned 1 epoch on 8000 samples), 50% of its weights"
    "$BIN" prune "$MODEL" -o "$OUT/models/fmnist_vgg_channels50.onnx" --method channel --sparsity 0.5 \
        --finetune 1 --data fashion-mnist:train:8000 --seed 1 --quiet
    "$BIN" prune "$MODEL" -o "$OUT/models/fmnist_vgg_sparse50.onnx" --method magnitude --sparsity 0.5 --quiet
    "$BIN" prune "$MODEL" --scan --levels 0.3,0.5,0.7,0.9 --val fashion-mnist:test:1000 --db "$DB" --quiet
    PRUNED="$OUT/models/fmnist_vgg_channels50.onnx,$OUT/models/fmnist_vgg_sparse50.onnx"
else
    note "inferlab prune is not available: no pruned variant"
fi

# ---- 3. engines and backends
BACKENDS=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if "$BIN" bench --model "$MODEL" --backend cuda --db "$OUT/probe.db" --trials 1 --min-seconds 0 \
        --min-queries 1 --warmup 0 --accuracy-samples 10 >/dev/null 2>&1; then
        BACKENDS=cpu,cuda
    else
        note "a GPU is present but this build cannot run the CUDA backend: CPU only"
    fi
    rm -rf "$OUT/probe.db"* "$OUT/variants"
else
    note "no GPU here (nvidia-smi finds none): the CUDA rows were skipped"
fi
ORT=0
if node -e "require('onnxruntime-node')" >/dev/null 2>&1; then ORT=1; else
    note "onnxruntime-node is not installed (make deps): no ONNX Runtime rows"; fi

COMMON="--db $DB --threads $THREADS --trials 3 --min-seconds 0.3 --min-queries 50 --accuracy-samples 2000 --name demo"
note "benchmarking: models $(echo $MODEL $STUDENT | wc -w), pipelines $PIPELINES, backends $BACKENDS, ONNX Runtime $ORT"
for M in $MODEL $STUDENT; do
    PARENT=
    [ "$M" = "$STUDENT" ] && PARENT="--parent $MODEL"
    # latency (profiled, for the per-layer breakdown) and throughput across batch sizes
    "$BIN" bench $COMMON $PARENT --model "$M" --pipeline "$PIPELINES" --backend "$BACKENDS" \
        --scenario single-stream --batch 1 --profile
    "$BIN" bench $COMMON $PARENT --model "$M" --pipeline "$PIPELINES" --backend "$BACKENDS" \
        --scenario offline --batch 1,8,32
done
# the optimized families against their FP32 parent: accuracy, agreement, size, speed
DERIVED=$(echo "$PRUNED,$INT8" | sed 's/^,//; s/,$//')
if [ -n "$DERIVED" ]; then
    "$BIN" bench $COMMON --parent "$MODEL" --model "$DERIVED" --pipeline O2 --scenario single-stream --batch 1
    "$BIN" bench $COMMON --parent "$MODEL" --model "$DERIVED" --pipeline O2 --scenario offline --batch 32
fi
if [ -n "$INT8" ] && [ -n "$STUDENT" ]; then
    "$BIN" bench $COMMON --parent "$STUDENT" --model "$OUT/models/fmnist_vgg_student_int8.onnx" --pipeline O2 \
        --scenario single-stream,offline --batch 1
fi
# the server scenario: the highest Poisson QPS whose p99 stays under 5 ms
"$BIN" bench $COMMON --model "$MODEL" --pipeline "$PIPELINES" --scenario server --find-max-qps --latency-bound 5 \
    --trials 2
if [ $ORT = 1 ]; then
    "$BIN" bench $COMMON --model "$MODEL" --engine onnxruntime --scenario single-stream --batch 1
    "$BIN" bench $COMMON --model "$MODEL" --engine onnxruntime --scenario offline --batch 1,8,32
    "$BIN" bench $COMMON --model "$MODEL" --engine onnxruntime --scenario server --find-max-qps --latency-bound 5 \
        --trials 2
fi

# the teacher as a built plan (-O2, each node's kernel chosen by timing, remembered in a timing
# cache): loaded and measured without passes or kernel choice
if has build; then
    PLAN=$OUT/models/fmnist_teacher.O2.plan
    note "building a plan of the teacher: -O2, kernels chosen by timing (inferlab build)"
    "$BIN" build "$MODEL" -O2 --tactics timed --timing-cache "$OUT/timing.cache" --threads $THREADS -o "$PLAN"
    "$BIN" bench $COMMON --model "$PLAN" --parent "$MODEL" --scenario single-stream --batch 1 --label "teacher O2 plan"
fi

# ---- 4. the report
"$BIN" report --db "$DB" -o "$OUT/report" --plots "$OUT/report/plots" --title "inferlab demo: Fashion-MNIST"
if command -v chromium >/dev/null 2>&1; then
    PROFILE=$(mktemp -d)
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --user-data-dir="$PROFILE" --window-size=1280,2200 \
        --screenshot="$OUT/report/screenshot.png" "file://$(pwd)/$OUT/report/index.html" >/dev/null 2>&1 || true
    rm -rf "$PROFILE"
fi
"$BIN" db --db "$DB" list
note "done in $(( $(date +%s) - T0 )) s: $DB, $OUT/report/index.html, $OUT/report/report.pdf"
