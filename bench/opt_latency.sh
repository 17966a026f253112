#!/bin/sh
# opt_latency.sh - nodes before/after and CPU latency of -O0 against -O2, measured in one run.
#
#   bench/opt_latency.sh [-b BIN] [-r REPEAT] [-t THREADS] MODEL.onnx... [-- RUN_ARGS]
#
# For each model: `inferlab opt -O2 --verify` (outputs checked against the original), then
# `inferlab run --repeat` at batch 1 and batch 8 on the original (-O0) and the optimized (-O2)
# model, interleaved so both see the same machine state. Prints one markdown table row per model:
# the p50 of REPEAT runs after run's steady-state warm-up, the lower of two interleaved calls. RUN_ARGS (after --) go to every `inferlab run`, e.g.
# `-- --dim sequence=128`.
set -eu
BIN=build/inferlab
REPEAT=20
THREADS=0
while [ $# -gt 0 ]; do
    case "$1" in
    -b) BIN=$2; shift 2 ;;
    -r) REPEAT=$2; shift 2 ;;
    -t) THREADS=$2; shift 2 ;;
    *) break ;;
    esac
done
MODELS=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do MODELS="$MODELS $1"; shift; done
[ $# -gt 0 ] && shift
[ -n "$MODELS" ] || { echo "usage: $0 [-b BIN] [-r REPEAT] [-t THREADS] MODEL.onnx... [-- RUN_ARGS]" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$0: $BIN not built (make, or -b PATH)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

RUN_ARGS="$*"

# p50 ms per run of MODEL at BATCH (extra arguments go to inferlab run)
latency() {
    model=$1 batch=$2
    shift 2
    if ! "$BIN" run "$model" --batch "$batch" --repeat "$REPEAT" --threads "$THREADS" --topk 0 "$@" >"$TMP/run.log" 2>&1; then
        echo "$0: inferlab run $model --batch $batch failed: $(tail -1 "$TMP/run.log")" >&2
        echo nan
        return
    fi
    sed -n 's/^time: p50 \([0-9.]*\) ms over.*/\1/p' "$TMP/run.log"
}

echo "| model | nodes -O0 | nodes -O2 | batch 1 -O0 (ms) | batch 1 -O2 (ms) | speedup | batch 8 -O0 (ms) | batch 8 -O2 (ms) | speedup |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in $MODELS; do
    out="$TMP/$(basename "$(dirname "$m")")_$(basename "$m" .onnx).O2.onnx"
    # shellcheck disable=SC2086 # RUN_ARGS: plain words, split on purpose
    "$BIN" opt "$m" -O2 --verify -o "$out" $RUN_ARGS >"$TMP/opt.log" 2>&1 ||
        { echo "$0: inferlab opt $m failed:" >&2; cat "$TMP/opt.log" >&2; exit 1; }
    nodes=$(sed -n 's/.*: \([0-9]*\) nodes -> \([0-9]*\) nodes.*/\1 \2/p' "$TMP/opt.log")
    row="| $m | ${nodes% *} | ${nodes#* }"
    for b in 1 8; do
        # shellcheck disable=SC2086
        a0=$(latency "$m" $b $RUN_ARGS); a2=$(latency "$out" $b $RUN_ARGS)
        # shellcheck disable=SC2086 # twice, interleaved: take the lower p50 of each
        b0=$(latency "$m" $b $RUN_ARGS); b2=$(latency "$out" $b $RUN_ARGS)
        t0=$(echo "$a0 $b0" | awk '{print ($1 < $2) ? $1 : $2}')
        t2=$(echo "$a2 $b2" | awk '{print ($1 < $2) ? $1 : $2}')
        case "$t0$t2" in
        *nan*) row="$row | $t0 | $t2 | -" ;;
        *) row="$row | $t0 | $t2 | $(echo "$t0 $t2" | awk '{printf "%.2fx", $1 / $2}')" ;;
        esac
    done
    echo "$row |"
done
