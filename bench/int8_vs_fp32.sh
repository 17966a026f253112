#!/bin/sh
# int8_vs_fp32.sh - inferlab INT8 against inferlab FP32 and against ONNX Runtime running the same
# QDQ model, in the same runs (docs/int8_kernels.md shows a table and how to read it).
#
# For each model (the zoo's ResNet-18 and ResNet-50 by default: real-size shapes, random
# weights) the script writes
#   MODEL.onnx         the float model (zoo)
#   MODEL.int8.onnx    its QDQ form: BatchNormalization folded, then `inferlab quantize --calib
#                      random:8` (entropy calibration, int8 weights per channel, uint8 activations)
#                      -- QUANTIZER=script: bench/int8_qdq.py (minmax, ONNX Runtime's layout)
# and runs one `inferlab bench` experiment, single-stream, trials interleaved A B C A B C:
#   A: inferlab -O2 on the float model (FP32)
#   B: inferlab -O2 on the QDQ model (fuse-qdq turns it into QConv/QAdd/QMatMul: INT8 kernels,
#      oneDNN's by default, channels-last between them; docs/int8_kernels.md)
#   C: ONNX Runtime (onnxruntime-node, bench/peers) on the same QDQ model file
# at every batch and thread count asked for; then prints the table from the database.
#
# usage: bench/int8_vs_fp32.sh [MODEL.onnx ...]    (float models; default: zoo resnet18 resnet50)
# environment (defaults in brackets):
#   BIN [build/inferlab]  DB [int8_vs_fp32.db]  WORK [a temp dir]  BATCHES [1,32]  THREADS [2]
#   TRIALS [3]  MIN_SECONDS [0.5]  MIN_QUERIES [5]  QUANTIZER [inferlab|script]  TABLE_ONLY=1
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-build/inferlab}
DB=${DB:-int8_vs_fp32.db}
BATCHES=${BATCHES:-1,32}
THREADS=${THREADS:-2}
TRIALS=${TRIALS:-3}
MIN_SECONDS=${MIN_SECONDS:-0.5}
MIN_QUERIES=${MIN_QUERIES:-5}
QUANTIZER=${QUANTIZER:-inferlab}
PY=/usr/bin/python3

if [ "${TABLE_ONLY:-0}" != 1 ]; then
    [ -x "$BIN" ] || { echo "int8_vs_fp32: $BIN not built (make)" >&2; exit 1; }
    WORK=${WORK:-$(mktemp -d /tmp/int8_vs_fp32.XXXXXX)}
    mkdir -p "$WORK"
    if [ $# -eq 0 ]; then
        for z in resnet18 resnet50; do
            [ -f "$WORK/$z.onnx" ] || "$BIN" zoo "$z" -o "$WORK/$z.onnx" >/dev/null
        done
        set -- "$WORK/resnet18.onnx" "$WORK/resnet50.onnx"
    fi
    for m in "$@"; do
        base=$(basename "$m" .onnx)
        q="$WORK/$base.int8.onnx"
        if [ ! -f "$q" ]; then
            "$BIN" opt "$m" -p fold-constants,fold-bn,dead-nodes -o "$WORK/$base.folded.onnx" >/dev/null
            if [ "$QUANTIZER" = inferlab ]; then
                "$BIN" quantize "$WORK/$base.folded.onnx" -o "$q" --calib random:8 >/dev/null
            else
                "$PY" bench/int8_qdq.py "$WORK/$base.folded.onnx" "$q" "$BIN"
            fi
        fi
        echo "== $base: fp32 $(du -k "$m" | cut -f1) KB, int8 $(du -k "$q" | cut -f1) KB (batch $BATCHES, threads $THREADS)" >&2
        cat >"$WORK/$base.yaml" <<EOF
name: int8-vs-fp32 $base
scenario: single-stream
accuracy_samples: 8
batch: [$BATCHES]
threads: [$THREADS]
variants:
  - model: "$m"
    pipeline: O2
  - model: "$q"
    pipeline: O2
  - model: "$q"
    engine: onnxruntime
EOF
        "$BIN" bench --experiment "$WORK/$base.yaml" --db "$DB" --trials "$TRIALS" --min-seconds "$MIN_SECONDS" \
            --min-queries "$MIN_QUERIES" --quiet
    done
fi

DB="$DB" "$PY" - <<'EOF'
# The table: per experiment (model), batch and threads, the latest run of each variant.
import os, sqlite3
db = sqlite3.connect(f"file:{os.environ['DB']}?mode=ro", uri=True)
rows = db.execute("""SELECT experiment, model, batch, threads, engine, latency_p50_ms, run_id FROM results
                     WHERE experiment LIKE 'int8-vs-fp32 %' AND scenario = 'single-stream' ORDER BY run_id""").fetchall()
cell = {}
for exp, model, batch, threads, engine, p50, rid in rows:
    col = "ort" if engine == "onnxruntime" else ("int8" if model.endswith(".int8") else "fp32")
    cell[(exp.split()[-1], batch, threads, col)] = p50
print("| model | batch | threads | inferlab FP32 ms | inferlab INT8 ms | ORT INT8 (same QDQ file) ms | FP32 / INT8 | ORT / inferlab INT8 |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for k in sorted({k[:3] for k in cell}):
    f, i, o = (cell.get(k + (c,)) for c in ("fp32", "int8", "ort"))
    r = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    ms = lambda v: f"{v:.2f}" if v else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {ms(f)} | {ms(i)} | {ms(o)} | {r(f, i)} | {r(o, i)} |")
EOF
