#!/bin/sh
# device.sh - fuzz on a bigger machine that has none of inferlab's libraries (the GPU machine:
# 16 cores, no protobuf-c/SQLite/libyaml): pack here, run there, bring the figures back.
#
#   here:  make fuzz FUZZ_SECONDS=1 && tests/fuzz/device.sh pack [TARGET...]   (default: onnx)
#          -> .dev/fuzzpack.tar.xz (git-ignored, ~20 MB): the targets, their shared libraries,
#             the corpora and these scripts
#   there: (carry .dev/fuzzpack.tar.xz)
#          mkdir -p /tmp/f && tar -C /tmp/f -xJf .dev/fuzzpack.tar.xz && sh /tmp/f/fuzz/device.sh run SECONDS JOBS [TARGET...]
#          -> runs fuzz.sh with JOBS libFuzzer workers per target; copies stats.tsv, the logs'
#             tails, the grown corpora (tar) and any crash inputs into $OUT
set -eu
cmd=${1:?usage: device.sh pack [TARGET...] | run SECONDS JOBS [TARGET...]}
shift
if [ "$cmd" = pack ]; then
    targets=${*:-onnx}
    P=.dev/fuzz
    rm -rf "$P" && mkdir -p "$P/lib" "$P/build/fuzz/corpus"
    for t in $targets; do
        cp "build/fuzz/fuzz_$t" "$P/build/fuzz/"
        # the libraries outside glibc that the target needs
        ldd "build/fuzz/fuzz_$t" | awk '$3 ~ /^\// {print $3}' | grep -v -E '/(libc|libm|libpthread|libdl|librt)\.so' |
            while read -r lib; do cp -L "$lib" "$P/lib/"; done
        [ -d "build/fuzz/corpus/$t" ] && cp -r "build/fuzz/corpus/$t" "$P/build/fuzz/corpus/"
    done
    cp tests/fuzz/fuzz.sh tests/fuzz/device.sh "$P/"
    cp -r tests/fuzz/seeds tests/fuzz/regress "$P/" # beside fuzz.sh, where it looks
    tar -C .dev -cJf .dev/fuzzpack.tar.xz fuzz
    rm -rf "$P"
    ls -la .dev/fuzzpack.tar.xz
    exit 0
fi
[ "$cmd" = run ] || { echo "device.sh: pack or run"; exit 2; }
secs=${1:?seconds}; jobs=${2:?jobs}; shift 2
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export LD_LIBRARY_PATH="$here/lib:${LD_LIBRARY_PATH:-}"
out=${OUT:-$here/out}
mkdir -p "$out"
rc=0
FUZZ_DIR=build/fuzz FUZZ_JOBS=$jobs sh ./fuzz.sh "$secs" ${*:-onnx} || rc=$?
cp build/fuzz/stats.tsv "$out/"
for t in ${*:-onnx}; do
    tail -c 200000 "build/fuzz/$t.log" > "$out/$t.log.tail" 2>/dev/null || true
    tar -C build/fuzz/corpus -czf "$out/corpus_$t.tgz" "$t"
done
if [ -n "$(ls build/fuzz/crashes 2>/dev/null)" ]; then tar -C build/fuzz -czf "$out/crashes.tgz" crashes; fi
exit $rc
