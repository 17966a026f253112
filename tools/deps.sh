#!/bin/sh
# deps.sh - install what inferlab needs and the machine lacks (Debian 12). Fast when all is there.
set -e
PKGS="gcc make libprotobuf-c-dev protobuf-c-compiler libonnx-dev libsqlite3-dev libcunit1-dev
libopenblas-dev libopenblas-openmp-dev gnuplot-nox libonnx-testdata dataset-fashion-mnist python3-onnx python3-numpy libyaml-dev zlib1g-dev
libdnnl-dev clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi

# ---- bench and reports (issue 4): headless Chromium prints report.pdf and the tests open the
# page in it; poppler-utils renders the PDF's pages for the tests; Node runs the ONNX Runtime peer.
EXTRA=""
for p in chromium poppler-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || EXTRA="$EXTRA $p"
done
command -v node >/dev/null 2>&1 || EXTRA="$EXTRA nodejs"
command -v npm >/dev/null 2>&1 || EXTRA="$EXTRA npm"
if [ -n "$EXTRA" ]; then
    echo "deps: installing$EXTRA"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $EXTRA
fi
# onnxruntime-node ships libonnxruntime.so for linux-x64 in the package itself, so its install
# script (a download) is not needed; node_modules/ is git-ignored. Skipped when already there.
cd "$(dirname "$0")/.."
if [ ! -f node_modules/onnxruntime-node/package.json ]; then
    echo "deps: npm install onnxruntime-node"
    npm install --ignore-scripts --no-save --no-audit --no-fund onnxruntime-node
fi
