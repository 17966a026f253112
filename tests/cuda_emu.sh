#!/bin/sh
# tests/cuda_emu.sh - the cuda-ops suite (tests/test_cuda_ops.c) without a GPU: the kernels of
# engine/cuda (the .cu files compiled for the host, the kernel files as they are) run on an
# emulated device layer (tests/cuda_emu.c) under ASan/UBSan, against the cpu reference; also
# cuda-sparse24 (the 2:4 kernel, on tests/cusparselt_emu.c's stand-in for cuSPARSELt).
# Builds a CUDA-less library in build/emu first (a full build the first time).
#   usage: tests/cuda_emu.sh [SUITE...]     (default: cuda-ops cuda-sparse24)
set -e
B=build/emu
CUDA_INC=/usr/local/cuda/include
make --no-print-directory -s -j2 CUDA=0 BUILD=$B $B/libinferlab.a
mkdir -p $B/emu
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
CFL="-std=c11 -O1 -g -Wno-format-truncation -D_GNU_SOURCE -I. -I$B/gen -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $SAN"
for f in eltwise rows sparselt; do
    g++ -x c++ -std=c++17 -O1 -g -I. -I$CUDA_INC -DIL_HAVE_CUDA -include tests/cuda_emu_host.h $SAN \
        -c engine/cuda/$f.cu -o $B/emu/$f.o
done
for f in kernels_cuda ops_cuda matmul_cuda sparse24; do
    gcc $CFL -DIL_HAVE_CUDA -c engine/cuda/$f.c -o $B/emu/$f.o
done
gcc $CFL -DIL_HAVE_CUDA -c tests/cuda_emu.c -o $B/emu/cuda_emu.o
gcc $CFL -DIL_CUDA_EMU -c tests/test_cuda_ops.c -o $B/emu/test_cuda_ops.o
gcc $CFL -DIL_CUDA_EMU -DIL_HAVE_CUDA -c tests/test_cuda_sparse24.c -o $B/emu/test_cuda_sparse24.o
# cuSPARSELt's documented contract on the host, opened by sparselt.cu as the real one would be
gcc $CFL -I$CUDA_INC -shared -fPIC tests/cusparselt_emu.c -o $B/libcusparseLt_emu.so
export INFERLAB_CUSPARSELT=$PWD/$B/libcusparseLt_emu.so
for f in main util op_harness; do gcc $CFL -c tests/$f.c -o $B/emu/$f.o; done
OB=$(ls -d /usr/lib/x86_64-linux-gnu/openblas-openmp 2>/dev/null || true)
gcc -fopenmp $SAN $B/emu/*.o $B/libinferlab.a ${OB:+-L$OB -Wl,-rpath,$OB} -lprotobuf-c -lopenblas -lsqlite3 \
    -lyaml -lz -lm -lpthread -ldl $( [ -f /usr/include/oneapi/dnnl/dnnl.h ] && echo -ldnnl ) -lcunit -lstdc++ \
    -o $B/test_cuda_emu
[ $# -gt 0 ] || set -- cuda-ops cuda-sparse24
exec $B/test_cuda_emu "$@"
