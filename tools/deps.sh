#!/bin/sh
# deps.sh - install what inferlab needs and the machine lacks (Debian 12). Fast when all is there.
set -e
PKGS="gcc make libprotobuf-c-dev protobuf-c-compiler libonnx-dev libsqlite3-dev libcunit1-dev
libopenblas-dev gnuplot-nox libonnx-testdata dataset-fashion-mnist python3-onnx python3-numpy libyaml-dev zlib1g-dev"
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
