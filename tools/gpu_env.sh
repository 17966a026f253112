#!/bin/sh
# gpu_env.sh - source on the GPU machine: the shared libraries the Debian-built binaries need
# (carried as .dev/pack/devlib.tar.xz), the binaries in .dev/bin, Fashion-MNIST in .dev/fmnist.
#   . tools/gpu_env.sh   (then: $IL train ... --device cuda)
# Making the pack here: see "On the GPU machine" in distill/README.md.
mkdir -p /tmp/ildev && tar -C /tmp/ildev -xJf .dev/pack/devlib.tar.xz
export LD_LIBRARY_PATH="/tmp/ildev/lib:${LD_LIBRARY_PATH:-}"
export INFERLAB_FASHION_MNIST="$PWD/.dev/fmnist"
export IL="$PWD/.dev/bin/inferlab" IL_TEST="$PWD/.dev/bin/test_inferlab"
