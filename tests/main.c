/*
 * main.c - runs every CUnit suite that a tests/test_*.c file registered.
 * Usage: build/test_inferlab [SUITE...]   (no names: all suites)
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

typedef struct {
    const char *name;
    const il_test_case *cases;
    int n;
} suite;

static suite suites[128];
static int n_suites;

void il_test_add_suite(const char *name, const il_test_case *cases, int n) {
    if (n_suites < 128) suites[n_suites++] = (suite){name, cases, n};
}

static int by_name(const void *a, const void *b) { return strcmp(((const suite *)a)->name, ((const suite *)b)->name); }

/* Whether this run takes every suite (no names given): the registry coverage test needs all. */
int il_test_all_suites;

int main(int argc, char **argv) {
    il_blas_fix_core(argv);
    il_test_all_suites = argc < 2;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    qsort(suites, (size_t)n_suites, sizeof *suites, by_name);
    for (int s = 0; s < n_suites; s++) {
        int want = argc < 2;
        for (int i = 1; i < argc; i++) want |= !strcmp(argv[i], suites[s].name);
        if (!want) continue;
        CU_pSuite su = CU_add_suite(suites[s].name, NULL, NULL);
        for (int i = 0; i < suites[s].n; i++) CU_add_test(su, suites[s].cases[i].name, suites[s].cases[i].fn);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
