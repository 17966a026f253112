/*
 * memplan.c - the liveness-based memory planner.
 *
 * Each activation lives from the step that writes it to the last step that reads it. Two
 * activations whose lifetimes overlap must not share bytes; others may. Placement is greedy
 * by size (largest first, each at the lowest offset that fits between the already-placed
 * buffers it overlaps in time), the scheme TFLite's arena planner uses: simple, and within a
 * few percent of optimal on real networks.
 */
#include "memplan.h"

#include <stdlib.h>

#define ALIGN 64

typedef struct {
    int id;
    int64_t size, first, last;
} item;

static int by_size_desc(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

static int by_offset(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

int64_t il_memplan(int n, const int64_t *size, const int64_t *first, const int64_t *last, int64_t *offset) {
    item *it = malloc((size_t)(n + 1) * sizeof *it);
    int m = 0;
    for (int i = 0; i < n; i++) {
        offset[i] = -1;
        if (size[i] > 0) it[m++] = (item){i, (size[i] + ALIGN - 1) / ALIGN * ALIGN, first[i], last[i]};
    }
    qsort(it, (size_t)m, sizeof *it, by_size_desc);
    int64_t peak = 0;
    int64_t(*busy)[2] = malloc((size_t)(m + 1) * sizeof *busy);
    for (int a = 0; a < m; a++) {
        int nb = 0;
        for (int b = 0; b < a; b++)
            if (it[b].first <= it[a].last && it[a].first <= it[b].last) {
                busy[nb][0] = offset[it[b].id];
                busy[nb][1] = offset[it[b].id] + it[b].size;
                nb++;
            }
        qsort(busy, (size_t)nb, sizeof *busy, by_offset);
        int64_t off = 0;
        for (int j = 0; j < nb; j++) {
            if (busy[j][0] - off >= it[a].size) break;
            if (busy[j][1] > off) off = busy[j][1];
        }
        offset[it[a].id] = off;
        if (off + it[a].size > peak) peak = off + it[a].size;
    }
    free(busy);
    free(it);
    return peak;
}
