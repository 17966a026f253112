/*
 * sparse24_fixture.h - what the 2:4 suites share (tests/test_sparse24.c, test_cuda_sparse24.c):
 * random 2:4 weights, and whether this process has a GPU.
 */
#ifndef IL_TEST_SPARSE24_FIXTURE_H
#define IL_TEST_SPARSE24_FIXTURE_H

#include <stdlib.h>

#include "../engine/cuda/sparselt.h"
#include "test.h"

/* [rows, k] row-major, each group of 4 with `keep` nonzeros at random places */
static inline float *random_nm(int64_t rows, int64_t k, int keep, uint64_t *rng) {
    float *w = calloc((size_t)(rows * k), sizeof *w);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < k; g += 4) {
            int placed = 0;
            while (placed < keep) {
                int j = (int)(il_rand_u64(rng) % 4);
                float *x = &w[r * k + g + j];
                if (*x != 0) continue;
                *x = (float)(0.1 + il_rand_uniform(rng)) * (il_rand_u64(rng) & 1 ? 1 : -1);
                placed++;
            }
        }
    return w;
}

static inline int gpu_here(const char **why) {
    const il_backend_iface *b = il_backend_find("cuda");
    *why = "not built with CUDA";
    return b && b->available(why);
}

#endif
