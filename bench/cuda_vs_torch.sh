#!/bin/sh
# cuda_vs_torch.sh - inferlab's cuda backend against PyTorch eager on the same GPU, in the same runs.
#
# Exports ResNet-50, MobileNetV2 (torchvision) and BERT-base (transformers, 12 layers, hidden 768,
# sequence 128, vocabulary 1000, random seeded weights) with tools/export_models.py's builders
# (legacy exporter, batch dim symbolic), then per model one `inferlab bench` run measures
# inferlab (-O2) and PyTorch (the exported file) on --backend cuda at --precision fp32,tf32,fp16
# and --batch 1,256, all variants of the model in one interleaved group (an experiment file),
# into one SQLite database, and prints a markdown table:
# model, precision, batch, inferlab ms / items/s, PyTorch ms / items/s, and their ratio.
#
# Both engines are timed the same way: single-stream queries, the inputs already on the GPU, each
# query ending when the device is done (inferlab: a resident rerun of the plan, bench's default for
# cuda; PyTorch: its module on device tensors, torch.cuda.synchronize()), warm-up until steady.
# PyTorch computes in the precision of its row (fp16: module.half(), channels-last for the CNNs;
# tf32: TF32 on; fp32: TF32 off) with cudnn.benchmark on. Each PyTorch measurement is a process of
# its own (import torch, rebuild the module, check it against ONNX Runtime on 8 samples), which is
# most of this script's time; so trials are short and single (TRIALS=1), and only inferlab's
# variants get the agreement pass (8 samples against inferlab's FP32 CPU run).
#
# Needs only the carried binary (.dev/bin/inferlab with its libraries: `. tools/gpu_env.sh`, see
# distill/README.md "On the GPU machine") and the GPU machine's python with torch, torchvision,
# transformers, onnx and onnxruntime. Meant to finish within about 8 minutes on an H200.
#
# usage: sh bench/cuda_vs_torch.sh
# environment (defaults in brackets):
#   BIN [$IL, else .dev/bin/inferlab, else build/inferlab]  PY [python3]  WORK [/tmp/cuda_vs_torch]
#   DB [$WORK/cuda_vs_torch.db]  TABLE [$WORK/cuda_vs_torch.md]  NAME [cuda-vs-torch]: experiment name
#   MODELS [resnet50,mobilenet_v2,bert_base]  PRECISIONS [fp32,tf32,fp16]  BATCHES [1,256]
#   GRAPHS [off]: on, or on,off (inferlab --graphs and PyTorch's CUDA graph replay)
#   PIPELINE [O2]: inferlab's pass pipeline (PyTorch runs the exported file: O0)
#   TRIALS [1]  MIN_SECONDS [0.3]  MIN_QUERIES [10]  WARMUP [3]
#   PEERS [bench/peers]: the folder of torch_bench.py
#   TABLE_ONLY=1: only print the table from DB
set -eu
cd "$(dirname "$0")/.."
T0=$(date +%s)
if [ -z "${BIN:-}" ]; then
    BIN=${IL:-}
    [ -n "$BIN" ] || { [ -x .dev/bin/inferlab ] && BIN=.dev/bin/inferlab; } || true
    [ -n "$BIN" ] || BIN=build/inferlab
fi
PY=${PY:-python3}
WORK=${WORK:-/tmp/cuda_vs_torch}
DB=${DB:-$WORK/cuda_vs_torch.db}
TABLE=${TABLE:-$WORK/cuda_vs_torch.md}
NAME=${NAME:-cuda-vs-torch}
MODELS=${MODELS:-resnet50,mobilenet_v2,bert_base}
PRECISIONS=${PRECISIONS:-fp32,tf32,fp16}
BATCHES=${BATCHES:-1,256}
GRAPHS=${GRAPHS:-off}
PIPELINE=${PIPELINE:-O2}
TRIALS=${TRIALS:-1}
MIN_SECONDS=${MIN_SECONDS:-0.3}
MIN_QUERIES=${MIN_QUERIES:-10}
WARMUP=${WARMUP:-3}
mkdir -p "$WORK/models"

if [ "${TABLE_ONLY:-0}" != 1 ]; then
    [ -x "$BIN" ] || { echo "cuda_vs_torch: no inferlab binary at '$BIN' (set BIN, or . tools/gpu_env.sh)" >&2; exit 1; }
    # the exports, once: WORK/models/NAME/model.onnx + torch_source.json (what the peer rebuilds)
    "$PY" - "$WORK/models" "$MODELS" <<'EOF'
import functools, os, shutil, sys, time
out, names = sys.argv[1], sys.argv[2].split(",")
missing = [n for n in names if not os.path.exists(os.path.join(out, n, "model.onnx"))]
if missing:  # torch, onnxruntime and the builders only when something is to be exported
    sys.path.insert(0, "tools")
    import export_models as em
    # export_models' bert_base example is 16 tokens long, and the legacy exporter fixes every dim
    # but the batch: the same network, exported at sequence length 128
    em.MODELS["bert_base_s128"] = (em.MODELS["bert_base"][0], functools.partial(em.bert_inputs, seq=128), False)
for n in missing:
    folder = os.path.join(out, n)
    key = "bert_base_s128" if n == "bert_base" else n
    if key not in em.MODELS:
        sys.exit("cuda_vs_torch: tools/export_models.py has no model '%s'" % n)
    t0 = time.time()
    made, err, scale = em.export(key, "legacy", out)
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(made, folder)
    print("cuda_vs_torch: exported %s in %.1f s (ONNX Runtime vs torch max|d| %.2e, max|out| %.3g)"
          % (n, time.time() - t0, err, scale), file=sys.stderr)
EOF
    echo "cuda_vs_torch: exports done at $(( $(date +%s) - T0 )) s" >&2
    n_prec=$(echo "$PRECISIONS" | tr ',' '\n' | grep -c .)
    n_batch=$(echo "$BATCHES" | tr ',' '\n' | grep -c .)
    n_graphs=$(echo "$GRAPHS" | tr ',' '\n' | grep -c .)
    group=$((2 * n_prec * n_batch * n_graphs))
    for m in $(echo "$MODELS" | tr ',' ' '); do
        echo "== $m: $group variants, $(( $(date +%s) - T0 )) s in" >&2
        # inferlab at its pipeline (fusions are what its GPU kernels take), PyTorch on the file as
        # exported (its module is rebuilt from the torch_source.json beside it); one group per
        # model: every variant opened, then the trials in turn (A B C ...)
        cat >"$WORK/$m.yaml" <<YAML
name: $NAME
backend: cuda
scenario: single-stream
dataset: none
precision: [$PRECISIONS]
graphs: [$GRAPHS]
batch: [$BATCHES]
variants:
  - model: "$WORK/models/$m/model.onnx"
    engine: inferlab
    pipeline: $PIPELINE
  - model: "$WORK/models/$m/model.onnx"
    engine: pytorch
    pipeline: O0
YAML
        INFERLAB_PYTHON="$PY" "$BIN" bench --experiment "$WORK/$m.yaml" --trials "$TRIALS" \
            --min-seconds "$MIN_SECONDS" --min-queries "$MIN_QUERIES" --warmup "$WARMUP" --eval inferlab \
            --accuracy-samples 8 --interleave "$group" --peers "${PEERS:-bench/peers}" --db "$DB" \
            --cache "$WORK/cache" || \
            echo "cuda_vs_torch: some $m variants failed (above); the table shows what was stored" >&2
    done
fi

# the table, from the database (python's sqlite3: the GPU machine has no sqlite3 command)
"$PY" - "$DB" "$NAME" "$(( $(date +%s) - T0 ))" >"$TABLE" <<'EOF'
import sqlite3, sys
db, name, secs = sys.argv[1], sys.argv[2], sys.argv[3]
c = sqlite3.connect(db)
rows = c.execute("SELECT model, compute_precision, batch, cuda_graphs, engine, lat_p50_ms, throughput_per_s, valid,"
                 " agreement_top1, max_abs_error, gpu, gpu_driver, cuda_version, cublas_version, cudnn_version,"
                 " engine_version, peak_device_bytes FROM runs WHERE experiment = ? AND backend = 'cuda' ORDER BY id",
                 (name,)).fetchall()
cell, facts, models = {}, {}, []
for (model, prec, batch, graphs, engine, p50, tput, valid, agree, err, gpu, drv, cuda, cublas, dnn, ver, mem) in rows:
    if model not in models:
        models.append(model)
    cell[(model, prec, batch, graphs, engine)] = (p50, tput, valid, agree, err, mem)  # the latest wins
    facts.setdefault(engine, (gpu, drv, cuda, cublas, dnn, ver))
order = {"fp32": 0, "tf32": 1, "fp16": 2, "bf16": 3}
keys = sorted({k[:4] for k in cell}, key=lambda k: (models.index(k[0]), order.get(k[1], 9), k[2], k[3] or 0))


def fmt(c):
    if not c:
        return "failed", "-"
    p50, tput, valid, _, _, _ = c
    bad = "" if valid != 0 else " (INVALID)"
    return "%.3f%s" % (p50, bad), "{:,.0f}".format(tput)


print("# inferlab cuda vs PyTorch eager, same GPU, same runs (%s)\n" % name)
for eng, label in (("inferlab", "inferlab"), ("pytorch", "PyTorch")):
    if eng in facts:
        gpu, drv, cuda, cublas, dnn, ver = facts[eng]
        print("- %s: %s on %s, driver %s, CUDA %s, cuBLAS %s, cuDNN %s"
              % tuple([label] + [x if x else "-" for x in (ver, gpu, drv, cuda, cublas, dnn)]))
print("- single-stream, device time (inputs on the GPU), p50 per query; items/s = batch / query time, mean "
      "over trials; ratio = inferlab items/s / PyTorch items/s (> 1: inferlab faster)")
print("- %s s for the whole script; database %s\n" % (secs, db))
print("| model | precision | batch | inferlab ms | inferlab items/s | PyTorch ms | PyTorch items/s | ratio | "
      "inferlab agree top-1 / max abs err vs FP32 CPU |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for k in keys:
    model, prec, batch, graphs = k
    a, b = cell.get(k + ("inferlab",)), cell.get(k + ("pytorch",))
    ratio = "%.2fx" % (a[1] / b[1]) if a and b and a[1] and b[1] else "-"
    agree = "%.3f / %.2g" % (a[3], a[4]) if a and a[3] is not None and a[4] is not None else "-"
    print("| %s | %s%s | %d | %s | %s | %s | %s | %s | %s |"
          % (model, prec, " graphs" if graphs else "", batch, *fmt(a), *fmt(b), ratio, agree))
EOF
cat "$TABLE"
echo "cuda_vs_torch: $(( $(date +%s) - T0 )) s; table in $TABLE, database $DB" >&2
