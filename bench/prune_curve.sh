#!/bin/sh
# prune_curve.sh - the sparsity-accuracy curve of a model under unstructured magnitude pruning,
# one-shot and with fine-tuning (masks held fixed), as the markdown table of docs/prune.md.
#
#   bench/prune_curve.sh [BIN] [MODEL] [TRAIN_SPEC] [EPOCHS] [LEVELS]
#     BIN         build/inferlab
#     MODEL       tests/data/fmnist_teacher.onnx
#     TRAIN_SPEC  fashion-mnist:train:8000   (fine-tuning data; the first N samples)
#     EPOCHS      1
#     LEVELS      "0.3 0.5 0.7 0.9"
# Accuracy is top-1 on the whole Fashion-MNIST test set (10,000 images) through `inferlab eval`.
# Work files go to $TMPDIR (or /tmp); the table to stdout, progress to stderr.
set -eu
BIN=${1:-build/inferlab}
MODEL=${2:-tests/data/fmnist_teacher.onnx}
TRAIN=${3:-fashion-mnist:train:8000}
EPOCHS=${4:-1}
LEVELS=${5:-0.3 0.5 0.7 0.9}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/prune_curve.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

top1() { "$BIN" eval "$1" --data fashion-mnist:test | sed -n 's/.*top-1 \([0-9.]*\)%.*/\1/p' | head -1; }
achieved() { "$BIN" prune "$@" --json | sed -n 's/.*"recipe":{.*"achieved":\([0-9.e-]*\),"pruned_weights".*/\1/p'; }

start=$(date +%s)
dense=$(top1 "$MODEL")
echo "dense: $dense%" >&2
echo "| sparsity asked | achieved (prunable weights) | top-1 one-shot | top-1 fine-tuned ($EPOCHS epoch on $TRAIN) |"
echo "| --- | --- | --- | --- |"
echo "| 0% (dense) | 0% | $dense% | - |"
for s in $LEVELS; do
    a=$(achieved "$MODEL" -o "$DIR/os.onnx" --method magnitude --sparsity "$s")
    os=$(top1 "$DIR/os.onnx")
    "$BIN" prune "$MODEL" -o "$DIR/ft.onnx" --method magnitude --sparsity "$s" --finetune "$EPOCHS" --data "$TRAIN" \
        --quiet
    ft=$(top1 "$DIR/ft.onnx")
    echo "sparsity $s: one-shot $os%, fine-tuned $ft% ($(($(date +%s) - start)) s so far)" >&2
    echo "| $(echo "$s * 100" | bc | sed 's/\.0*$//')% | $(echo "$a * 100" | bc -l | xargs printf '%.2f')% | $os% | $ft% |"
done
echo "run took $(($(date +%s) - start)) s on $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
