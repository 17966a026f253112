#!/bin/sh
# conformance.sh - run the ONNX backend tests Debian ships (libonnx-testdata) through
# `inferlab check`: the node suite, pytorch-converted and pytorch-operator. Each suite prints
# one line per test and ends with "N passed, N failed, N skipped"; the last line sums them.
# Exit non-zero when any test failed.
BIN=${1:-build/inferlab}
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
LOG=${CONFORMANCE_LOG:-build/conformance.log}
mkdir -p "$(dirname "$LOG")"
: > "$LOG"
tp=0; tf=0; ts=0; rc=0
# tests/data: small torchvision/transformers exports with ONNX Runtime's outputs (tools/export_models.py)
for suite in node pytorch-converted pytorch-operator tests/data; do
    dir="$DATA/$suite"
    [ "$suite" = tests/data ] && dir=tests/data
    [ -d "$dir" ] || { echo "conformance: $dir is missing (make deps installs libonnx-testdata)"; exit 1; }
    out=$("$BIN" check "$dir")
    st=$?
    echo "$out" >> "$LOG"
    echo "$out" | grep -E '^FAIL' | head -50
    last=$(echo "$out" | tail -n 1)
    echo "conformance $suite: $last"
    set -- $(echo "$last" | tr -dc '0-9 ')
    tp=$((tp + ${1:-0})); tf=$((tf + ${2:-0})); ts=$((ts + ${3:-0}))
    [ $st -ne 0 ] && rc=1
done
echo "(full log: $LOG)"
echo "$tp passed, $tf failed, $ts skipped"
exit $rc
