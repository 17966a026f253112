#!/usr/bin/env bash
# bench/sparsity.sh - the measurements of docs/sparsity.md, in one run:
#  1. unstructured sparsity and the "sparse" kernel (engine/cpu/sparse.c) against the dense
#     kernels the heuristic picks: ResNet-18-shaped single layers (3x3 convs of its four stages,
#     its 1x1 stride-2 downsample, the 512->1000 classifier) at 50..95% zeros (the crossover), and
#     whole models (Fashion-MNIST teacher, zoo ResNet-18) pruned to 90% by `inferlab prune
#     --method magnitude`, also with `--tactics timed` (which picks per node);
#     timings from `inferlab run --repeat`, the variants of one row alternating round by round
#     (ROUNDS rounds; the medians of the rounds' p50s and of their minimums);
#  2. 50% channel pruning (`inferlab prune --method channel`) against the dense model at batch 1:
#     `inferlab bench` with both models in one run (its trials interleave the variants), for the
#     teacher, zoo ResNet-18 and zoo MobileNet v2; parameters and MACs of each;
#  3. the teacher's top-1 on the Fashion-MNIST test set: dense, channel-pruned at 50% without and
#     with FINETUNE epochs of fine-tuning (peak learning rate LR, cosine, augmentation AUGMENT)
#     distilled from the dense teacher (skipped when the data set is not there). FINETUNE=8
#     LR=0.05 is docs/prune.md's recipe (93.43%; about 53 minutes on the loaded 2-core machine),
#     with AUGMENT=crop+flip 93.41% (64 minutes).
# Usage: bench/sparsity.sh [BIN (build/inferlab)] [OUT (build/sparsity)]
#        THREADS (1) ROUNDS (5) REPEAT (20) FINETUNE (1) LR (0.01) AUGMENT (none), STEPS (123: which parts) and LAYERS
#        (part 1a's layers, all by default) in the environment.
# Writes OUT/sparse_layers.csv, OUT/sparse_models.csv, OUT/channel.txt, OUT/accuracy.txt and the
# models it measured; prints every table.
set -euo pipefail
BIN=${1:-build/inferlab}
OUT=${2:-build/sparsity}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-20}
FINETUNE=${FINETUNE:-1}
LR=${LR:-0.01}
AUGMENT=${AUGMENT:-none}
STEPS=${STEPS:-123}
LAYERS=${LAYERS:-conv3x3_64x56 conv3x3_128x28 conv3x3_256x14 conv3x3_512x7 conv1x1s2_128x28 fc_512x1000 dw3x3_96x56 g4conv3x3_128x28}
PY=${PY:-/usr/bin/python3}
mkdir -p "$OUT"
SPARSE="*=sparse" # every node the sparse kernel takes; the others keep the heuristic's choice

# "p50 min" in ms of one `inferlab run --repeat` of model $1 with extra options. On a loaded
# machine a run longer than the scheduler's time slice is often preempted (p50 then jumps by
# whole slices), so the minimum is recorded too: the cost of the kernels themselves.
timing() {
    local m=$1
    shift
    "$BIN" run "$m" --repeat "$REPEAT" --threads "$THREADS" "$@" |
        sed -n 's/^time: p50 \([0-9.]*\) ms over [0-9]* runs* (min \([0-9.]*\),.*/\1 \2/p'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# rounds of the variants of one row, alternating: "name|options" ... ->
# "p50 min" per variant (medians over the rounds), all on one line
measure() {
    local model=$1
    shift
    local -a p=() m=()
    local r i t
    for ((r = 0; r < ROUNDS; r++)); do
        i=0
        for v in "$@"; do
            # shellcheck disable=SC2086
            t=$(timing "$model" ${v#*|})
            p[i]="${p[i]:-} ${t% *}"
            m[i]="${m[i]:-} ${t#* }"
            i=$((i + 1))
        done
    done
    local line=""
    for ((i = 0; i < $#; i++)); do line="$line $(echo "${p[i]}" | median) $(echo "${m[i]}" | median)"; done
    echo "$line"
}

echo "== inferlab $("$BIN" --version 2>/dev/null || true), $THREADS threads, $ROUNDS rounds of $REPEAT runs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

"$BIN" zoo resnet18 -o "$OUT/resnet18.onnx" >/dev/null
"$BIN" zoo mobilenet_v2 -o "$OUT/mobilenet_v2.onnx" >/dev/null
cp tests/data/fmnist_teacher.onnx "$OUT/teacher.onnx"

if [[ $STEPS == *1* ]]; then
# ---- 1a. ResNet-18-shaped layers at 50..95% zeros (random positions, as magnitude pruning of
# Kaiming-normal weights leaves them)
"$PY" - "$OUT" <<'EOF'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out = sys.argv[1]
layers = {  # name: (input shape, weight shape, strides, pads[, group])
    "conv3x3_64x56": ((1, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    "conv3x3_128x28": ((1, 128, 28, 28), (128, 128, 3, 3), 1, 1),
    "conv3x3_256x14": ((1, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    "conv3x3_512x7": ((1, 512, 7, 7), (512, 512, 3, 3), 1, 1),
    "conv1x1s2_128x28": ((1, 64, 56, 56), (128, 64, 1, 1), 2, 0),
    "fc_512x1000": ((1, 512), (1000, 512), None, None),
    "dw3x3_96x56": ((1, 96, 56, 56), (96, 1, 3, 3), 1, 1, 96),  # MobileNet v2's depthwise
    "g4conv3x3_128x28": ((1, 128, 28, 28), (128, 32, 3, 3), 1, 1, 4),  # grouped, ResNeXt-like
}
rng = np.random.default_rng(1)
for name, (xs, ws, s, p, *grp) in layers.items():
    w = rng.standard_normal(ws).astype(np.float32)
    for sp in (0, 50, 60, 70, 80, 85, 90, 95):
        v = w.copy().reshape(-1)
        v[np.argsort(np.abs(v), kind="stable")[: int(round(sp / 100 * v.size))]] = 0
        W = numpy_helper.from_array(v.reshape(ws), "w")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xs))
        if s is None:
            node = helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)
            y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ws[0]])
        else:
            node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[s, s], pads=[p] * 4, kernel_shape=list(ws[2:]),
                                    group=grp[0] if grp else 1)
            oh = (xs[2] + 2 * p - ws[2]) // s + 1
            y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ws[0], oh, oh])
        g = helper.make_graph([node], name, [x], [y], [W])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.save(m, f"{out}/{name}.s{sp}.onnx")
EOF
echo
echo "== 1a. ResNet-18-shaped layers: dense (heuristic) vs sparse kernel, batch 1, p50 ms"
echo "layer,zeros_pct,dense_p50_ms,dense_min_ms,sparse_p50_ms,sparse_min_ms" > "$OUT/sparse_layers.csv"
printf '%-18s %5s %21s %21s %15s\n' layer zeros "dense p50 / min" "sparse p50 / min" "ratio p50/min"
for l in $LAYERS; do
    for sp in 50 60 70 80 85 90 95; do
        read -r dp dm sp_ sm <<<"$(measure "$OUT/$l.s$sp.onnx" "dense|" "sparse|--kernel $SPARSE")"
        r=$(awk -v a="$dp" -v b="$sp_" -v c="$dm" -v d="$sm" 'BEGIN {printf "%.2f/%.2f", a / b, c / d}')
        printf '%-18s %4s%% %10s /%9s %10s /%9s %15s\n' "$l" "$sp" "$dp" "$dm" "$sp_" "$sm" "$r"
        echo "$l,$sp,$dp,$dm,$sp_,$sm" >> "$OUT/sparse_layers.csv"
    done
done

# ---- 1b. whole models at 90% unstructured (magnitude, every Conv/Gemm)
echo
echo "== 1b. 90% unstructured models: dense kernels vs sparse forced vs timed tactics, batch 1, p50 ms"
echo "model,dense_p50_ms,dense_min_ms,sparse_p50_ms,sparse_min_ms,timed_p50_ms,timed_min_ms" > "$OUT/sparse_models.csv"
printf '%-10s %21s %21s %21s\n' model "dense p50 / min" "sparse p50 / min" "timed p50 / min"
rm -f "$OUT/timing.cache"
for m in teacher resnet18; do
    "$BIN" prune "$OUT/$m.onnx" -o "$OUT/$m.mag90.onnx" --method magnitude --sparsity 0.9 --quiet
    read -r dp dm sp_ sm tp tm <<<"$(measure "$OUT/$m.mag90.onnx" "dense|" "sparse|--kernel $SPARSE" \
        "timed|--tactics timed --timing-cache $OUT/timing.cache")"
    printf '%-10s %10s /%9s %10s /%9s %10s /%9s\n' "$m" "$dp" "$dm" "$sp_" "$sm" "$tp" "$tm"
    echo "$m,$dp,$dm,$sp_,$sm,$tp,$tm" >> "$OUT/sparse_models.csv"
done
fi

if [[ $STEPS == *2* ]]; then
# ---- 2. 50% channel pruning, batch 1, both models in one bench run
echo
echo "== 2. 50% channel pruning vs dense, batch 1 (inferlab bench, interleaved trials)"
: > "$OUT/channel.txt"
for m in teacher resnet18 mobilenet_v2; do
    "$BIN" prune "$OUT/$m.onnx" -o "$OUT/$m.ch50.onnx" --method channel --sparsity 0.5 --quiet
    for f in "$OUT/$m.onnx" "$OUT/$m.ch50.onnx"; do
        "$PY" - "$f" <<'EOF' | tee -a "$OUT/channel.txt"
import sys, onnx
m = onnx.load(sys.argv[1])
print(f"{sys.argv[1]}: {sum(int(__import__('numpy').prod(t.dims)) for t in m.graph.initializer)} parameters")
EOF
    done
    rm -f "$OUT/channel_$m.db"
    "$BIN" bench --model "$OUT/$m.onnx,$OUT/$m.ch50.onnx" --batch 1 --threads "$THREADS" --dataset none \
        --trials 5 --db "$OUT/channel_$m.db" 2>&1 | tee -a "$OUT/channel.txt"
done

fi

if [[ $STEPS == *3* ]]; then
# ---- 3. accuracy of the channel-pruned teacher
echo
echo "== 3. teacher top-1 on fashion-mnist:test, channel pruning 50%"
{
    "$BIN" prune "$OUT/teacher.onnx" -o "$OUT/teacher.ch50.onnx" --method channel --sparsity 0.5 \
        --val fashion-mnist:test &&
        "$BIN" prune "$OUT/teacher.onnx" -o "$OUT/teacher.ch50.ft.onnx" --method channel --sparsity 0.5 \
            --finetune "$FINETUNE" --lr "$LR" --augment "$AUGMENT" --data fashion-mnist:train \
            --teacher "$OUT/teacher.onnx" \
            --val fashion-mnist:test
} 2>&1 | tee "$OUT/accuracy.txt" || echo "accuracy skipped (no fashion-mnist data?)"
fi
