/*
 * memplan.c - the liveness-based memory planner.
 *
 * Each activation lives from the step that writes it to the last step that reads it. Two
 * activations whose lifetimes overlap must not share bytes; others may. Placement is greedy
 * by size (largest first, each at the lowest offset that fits between the already-placed
 * buffers it overlaps in time), the scheme TFLite's arena planner uses: simple, and within a
 * few percent of optimal on real networks.
 *
 * Finding the placed buffers that overlap one in time is what costs: scanning all of them made
 * a 100k-node chain take 6 s. Here the buffers sit in a max-tree ordered by their first step,
 * each leaf holding its last step once placed; a query walks only into subtrees whose latest
 * last step reaches the new buffer's first, so it costs O((k + 1) log n) for k overlapping
 * buffers, and a whole plan O(n log n) when lifetimes are short, as in real networks.
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

static int by_first(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->id - y->id;
}

static int by_offset(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The tree: leaves are the buffers in order of first step (leaf i <-> byfirst[i]); a node holds
 * the largest last step among the placed buffers below it (INT64_MIN: none placed). */
typedef struct {
    int64_t *mx;
    int size; /* leaves, a power of two */
    const item *byfirst;
    int64_t work; /* tree nodes visited, for the tests */
} tree;

static void tree_place(tree *t, int leaf, int64_t last) {
    int i = leaf + t->size;
    t->mx[i] = last;
    for (i /= 2; i >= 1; i /= 2) t->mx[i] = t->mx[2 * i] > t->mx[2 * i + 1] ? t->mx[2 * i] : t->mx[2 * i + 1];
}

/* Append to out[] the placed buffers among leaves [lo, hi) of node `node` (covering [nlo, nhi))
 * whose last step is at least `from`. */
static void tree_query(tree *t, int node, int nlo, int nhi, int hi, int64_t from, const int64_t *offset,
                       int64_t (*out)[2], int *nout) {
    t->work++;
    if (nlo >= hi || t->mx[node] < from) return;
    if (node >= t->size) {
        const item *b = &t->byfirst[node - t->size];
        out[*nout][0] = offset[b->id];
        out[*nout][1] = offset[b->id] + b->size;
        (*nout)++;
        return;
    }
    int mid = (nlo + nhi) / 2;
    tree_query(t, 2 * node, nlo, mid, hi, from, offset, out, nout);
    tree_query(t, 2 * node + 1, mid, nhi, hi, from, offset, out, nout);
}

int64_t il_memplan_counted(int n, const int64_t *size, const int64_t *first, const int64_t *last, int64_t *offset,
                           int64_t *work) {
    item *it = malloc((size_t)(n + 1) * sizeof *it), *byfirst = malloc((size_t)(n + 1) * sizeof *byfirst);
    int m = 0;
    for (int i = 0; i < n; i++) {
        offset[i] = -1;
        if (size[i] > 0) it[m++] = (item){i, (size[i] + ALIGN - 1) / ALIGN * ALIGN, first[i], last[i]};
    }
    for (int i = 0; i < m; i++) byfirst[i] = it[i];
    qsort(byfirst, (size_t)m, sizeof *byfirst, by_first);
    int *leaf = malloc((size_t)(n + 1) * sizeof *leaf); /* buffer id -> leaf */
    for (int i = 0; i < m; i++) leaf[byfirst[i].id] = i;
    tree t = {NULL, 1, byfirst, 0};
    while (t.size < m) t.size *= 2;
    t.mx = malloc((size_t)(2 * t.size) * sizeof *t.mx);
    for (int i = 0; i < 2 * t.size; i++) t.mx[i] = INT64_MIN;
    qsort(it, (size_t)m, sizeof *it, by_size_desc);
    int64_t peak = 0;
    int64_t(*busy)[2] = malloc((size_t)(m + 1) * sizeof *busy);
    for (int a = 0; a < m; a++) {
        /* placed buffers overlapping [first, last]: those starting by `last` that end from `first` */
        int lo = 0, hi = m;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (byfirst[mid].first <= it[a].last) lo = mid + 1;
            else hi = mid;
        }
        int nb = 0;
        tree_query(&t, 1, 0, t.size, lo, it[a].first, offset, busy, &nb);
        qsort(busy, (size_t)nb, sizeof *busy, by_offset);
        int64_t off = 0;
        for (int j = 0; j < nb; j++) {
            if (busy[j][0] - off >= it[a].size) break;
            if (busy[j][1] > off) off = busy[j][1];
        }
        offset[it[a].id] = off;
        tree_place(&t, leaf[it[a].id], it[a].last);
        if (off + it[a].size > peak) peak = off + it[a].size;
    }
    if (work) *work = t.work;
    free(busy);
    free(t.mx);
    free(leaf);
    free(byfirst);
    free(it);
    return peak;
}

int64_t il_memplan(int n, const int64_t *size, const int64_t *first, const int64_t *last, int64_t *offset) {
    return il_memplan_counted(n, size, first, last, offset, NULL);
}
