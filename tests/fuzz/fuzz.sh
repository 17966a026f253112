#!/bin/sh
# fuzz.sh - run the libFuzzer targets of tests/fuzz/ (built by `make fuzz`) and report, per
# target, the seconds fuzzed, the executions and whether it crashed.
#
#   tests/fuzz/fuzz.sh SECONDS [TARGET...]        (default: every target)
#   env: FUZZ_DIR (build/fuzz), FUZZ_JOBS (parallel workers, default 1), BIN (build/inferlab,
#        used to make plan-file seeds)
#
# Corpora live in $FUZZ_DIR/corpus/TARGET, seeded on first use from the ONNX conformance models,
# tests/data, tests/fuzz/seeds and the regression cases; libFuzzer adds what it finds there.
# A crash leaves $FUZZ_DIR/crashes/TARGET-crash-*: minimize it (-minimize_crash=1), fix the
# bug, and keep the input in tests/fuzz/regress/TARGET/ so that `make test` replays it.
# Figures are appended to $FUZZ_DIR/stats.tsv (date, target, seconds, workers, executions, result).
set -u
SECS=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
JOBS=${FUZZ_JOBS:-1}
BIN=${BIN:-build/inferlab}
TARGETS=${*:-onnx tensor yaml store plan}
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
here=$(dirname "$0")
mkdir -p "$FUZZ_DIR/crashes"

seed() { # target corpus-dir
    t=$1; c=$2
    mkdir -p "$c"
    # every regression case, also new ones in an old corpus: the sanitized run replays them
    [ -d "$here/regress/$t" ] && cp "$here/regress/$t"/* "$c"/ 2>/dev/null
    [ -f "$c/.seeded" ] && return
    touch "$c/.seeded"
    [ -d "$here/seeds/$t" ] && cp "$here/seeds/$t"/* "$c"/ 2>/dev/null
    case $t in
    onnx)
        for m in "$DATA"/node/*/model.onnx "$DATA"/pytorch-*/*/model.onnx; do
            [ -f "$m" ] && cp "$m" "$c/$(basename "$(dirname "$m")").onnx"
        done
        find tests/data -name '*.onnx' -size -256k -exec sh -c 'cp "$1" "$2/data_$(echo "$1" | tr / _)"' _ {} "$c" \; ;;
    tensor)
        for f in "$DATA"/node/test_[a-c]*/test_data_set_0/*.pb; do
            { printf '\001'; cat "$f"; } > "$c/$(echo "$f" | cut -d/ -f7- | tr / _)"
        done ;;
    plan)
        for m in test_relu test_conv_with_strides_padding test_gemm_default_no_bias test_maxpool_2d_default \
                 test_softmax_axis_1 test_reshape_reduced_dims test_matmul_2d test_concat_2d_axis_0; do
            [ -x "$BIN" ] && "$BIN" build "$DATA/node/$m/model.onnx" -o "$c/$m.plan" >/dev/null 2>&1
        done ;;
    esac
}

status=0
for t in $TARGETS; do
    exe="$FUZZ_DIR/fuzz_$t"
    [ -x "$exe" ] || { echo "fuzz: $exe is missing (make fuzz builds it)"; status=1; continue; }
    corpus="$FUZZ_DIR/corpus/$t"
    seed "$t" "$corpus"
    log="$FUZZ_DIR/$t.log"
    rm -f "$log" "$FUZZ_DIR"/fuzz-*.log
    # -timeout: a hang is a bug; -rss_limit_mb: so is memory growing without bound. A single
    # allocation past 2 GB gets NULL (max_allocation_size_mb), which the library must handle as
    # it handles any failed malloc: a model may ask for a big arena; it must not crash on a no.
    opts="-max_total_time=$SECS -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
          -artifact_prefix=$FUZZ_DIR/crashes/$t- -max_len=1048576"
    # FUZZ_SEED fixes libFuzzer's random choices: make test's smoke run walks the same inputs on
    # every machine, so what it finds is reproducible and not a coin toss at landing time
    [ -n "${FUZZ_SEED:-}" ] && opts="$opts -seed=$FUZZ_SEED"
    start=$(date +%s)
    if [ "$JOBS" -gt 1 ]; then
        (cd "$FUZZ_DIR" && ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2048 "./fuzz_$t" $opts -artifact_prefix=crashes/$t- \
            -jobs="$JOBS" -workers="$JOBS" "corpus/$t" > "$t.log" 2>&1)
        rc=$?
        cat "$FUZZ_DIR"/fuzz-*.log >> "$log" 2>/dev/null
    else
        ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2048 "$exe" $opts "$corpus" > "$log" 2>&1
        rc=$?
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    crashes=$(grep -c -E '^==[0-9]+==ERROR|^SUMMARY: (Address|Undefined)|ALARM: working on the last Unit|out-of-memory|deadly signal' "$log")
    result=ok
    [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ] && { result="FAILED (exit $rc; see $log)"; status=1; }
    printf 'fuzz %-7s %5ss x %2s workers  %10s executions  %s\n' "$t" "$secs" "$JOBS" "$execs" "$result"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$secs" "$JOBS" "$execs" "$result" >> "$FUZZ_DIR/stats.tsv"
done
exit $status
