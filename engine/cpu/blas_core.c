/*
 * blas_core.c - OpenBLAS's kernels on CPUs newer than the library.
 *
 * Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels from the CPU model when it is
 * loaded, and a model it does not know falls back to "Prescott", SSE3 code: on the Xeons here
 * (family 6 model 207, AVX-512) its sgemm then runs at a fifth of the SkylakeX kernels' rate
 * (30 against 155 GFLOP/s, measured), and with it every im2col convolution, the products
 * oneDNN does not take, and the trainer. The choice is made in the library's constructor,
 * before main runs, and OPENBLAS_CORETYPE is the only way to override it; so a program that
 * finds the fallback on a CPU with AVX2 or AVX-512 sets that variable and executes itself again.
 * OPENBLAS_CORETYPE set by the user (any value) is left alone, and INFERLAB_BLAS_CORE=keep
 * turns the check off.
 */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

void il_blas_fix_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("INFERLAB_BLAS_CORE") || !argv || !argv[0]) return;
    static const char *generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Banias",
                                    "Katmai", "Coppermine", "Northwood", "Unknown"};
    const char *core = openblas_get_corename();
    int fallback = 0;
    for (size_t i = 0; core && i < sizeof generic / sizeof *generic; i++) fallback |= !strcmp(core, generic[i]);
    if (!fallback) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : NULL;
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("INFERLAB_BLAS_CORE", "set", 1); /* once: never an exec loop */
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the library's own choice */
}
