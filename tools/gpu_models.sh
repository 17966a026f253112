#!/bin/sh
# gpu_models.sh - on the GPU machine (which has PyTorch and ONNX Runtime): export the test
# networks with both exporters, then check inferlab against ONNX Runtime on each, and time
# inferlab and ONNX Runtime on the same files. The binary and the shared libraries it needs
# are carried in .dev/ (built on Debian; see the README's GPU section).
#   OUT=dir sh tools/gpu_models.sh [--only a,b] [--small]
set -u
OUT=${OUT:-/tmp/gpu_out}
M=${MODELS:-/tmp/models}
mkdir -p "$OUT" "$M"
export LD_LIBRARY_PATH="$PWD/.dev/lib:${LD_LIBRARY_PATH:-}"
BIN=.dev/inferlab
python3 tools/export_models.py "$M" "$@" 2>"$OUT/export.err" | tee "$OUT/export.log"
for d in "$M"/*/; do
    timeout 300 $BIN check "$d" 2>&1 | head -n 1
done | tee "$OUT/check.log"
grep -c '^PASS' "$OUT/check.log" | sed 's/$/ models passed/'
# the small models travel back for tests/data
(cd "$M" && tar czf "$OUT/tiny_models.tgz" tiny_* 2>/dev/null)
