#!/bin/sh
# gpu_opt_table.sh - on the GPU machine's CPU (16 cores, quiet): issue #3's table. Exports a
# ResNet, a MobileNet and a BERT encoder (legacy exporter), then -O0 vs -O2 with
# bench/opt_latency.sh, and ONNX Runtime on the same files, at 16 and at 2 threads.
set -u
OUT=${OUT:-/tmp/opt_table}
M=/tmp/models
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/.dev/lib:${LD_LIBRARY_PATH:-}"
python3 tools/export_models.py "$M" --only resnet50,mobilenet_v2,bert_base --exporters legacy >"$OUT/export.log" 2>&1
MODELS="$M/resnet50_legacy/model.onnx $M/mobilenet_v2_legacy/model.onnx $M/bert_base_legacy/model.onnx"
lscpu | grep -E "Model name|^CPU\(s\)" | tee "$OUT/cpu.txt"
for T in 16 2; do
    echo "## $T threads" | tee -a "$OUT/table.md"
    sh bench/opt_latency.sh -b .dev/inferlab -r 10 -t $T $MODELS 2>>"$OUT/err.log" | tee -a "$OUT/table.md"
    python3 tools/ort_latency.py $T 10 $MODELS 2>>"$OUT/err.log" | tee -a "$OUT/table.md"
done
