/*
 * memplan.h - internal: the arena planner used by plan.c (and tested directly).
 */
#ifndef IL_MEMPLAN_H
#define IL_MEMPLAN_H

#include <stdint.h>

/* n buffers, each of size[i] bytes (0: not placed), alive over steps [first[i], last[i]].
 * Writes offset[i] (-1 when not placed) so that no two buffers alive at the same step overlap.
 * Returns the arena size (the peak). */
int64_t il_memplan(int n, const int64_t *size, const int64_t *first, const int64_t *last, int64_t *offset);
/* The same, also reporting in *work how many search-tree nodes it visited: the tests check the
 * planner stays O(n log n) on long chains by counting work, not by timing it. */
int64_t il_memplan_counted(int n, const int64_t *size, const int64_t *first, const int64_t *last, int64_t *offset,
                           int64_t *work);

#endif
