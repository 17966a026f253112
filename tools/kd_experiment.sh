#!/bin/sh
# kd_experiment.sh - the distillation experiment of distill/README.md: a teacher, then students
# of <= 1/5 of its parameters trained with and without KD (same seed, epochs, data), all with
# `--device cuda` (on the GPU machine after `. tools/gpu_env.sh`; DEVICE=cpu runs it here, slowly).
#   OUT=dir [TEACHER=file.onnx] sh tools/kd_experiment.sh
set -u
OUT=${OUT:-/tmp/kd}; IL=${IL:-build/inferlab}; DEVICE=${DEVICE:-cuda}
TW=${TW:-32}; TE=${TE:-30}; SE=${SE:-20}; SW=${SW:-8 12}; SEED=${SEED:-1}
mkdir -p "$OUT"
common="--data fashion-mnist --batch 128 --opt sgd --lr 0.1 --augment crop+flip --device $DEVICE --threads 2"
if [ -z "${TEACHER:-}" ]; then
    TEACHER=$OUT/teacher_w$TW.onnx
    $IL train --model zoo:vgg --width "$TW" --epochs "$TE" --seed "$SEED" $common -o "$TEACHER" >"$OUT/teacher_w$TW.log" 2>&1
    tail -n 3 "$OUT/teacher_w$TW.log"
fi
for w in $SW; do
    $IL train --model zoo:vgg --width "$w" --epochs "$SE" --seed "$SEED" $common -o "$OUT/s${w}_nokd.onnx" >"$OUT/s${w}_nokd.log" 2>&1 &
    for a in ${ALPHAS:-0.9 0.5}; do
        $IL distill --teacher "$TEACHER" --student zoo:vgg --width "$w" --epochs "$SE" --seed "$SEED" $common \
            --temperature "${T:-4}" --alpha "$a" -o "$OUT/s${w}_kd$a.onnx" >"$OUT/s${w}_kd$a.log" 2>&1 &
    done
done
wait
for f in "$OUT"/s*.log; do printf '%s: %s | %s\n' "$(basename "$f" .log)" "$(grep -m1 parameters "$f" | sed 's/.*, \([0-9]*\) parameters.*/\1 params/')" "$(grep 'test top-1' "$f")"; done
