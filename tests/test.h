/*
 * test.h - CUnit glue: each tests/test_*.c registers its suite from a constructor, so adding a
 * test file needs no edit elsewhere. tests/test_main.c runs every suite registered.
 *
 *   static void test_foo(void) { CU_ASSERT_EQUAL(1, 1); }
 *   IL_SUITE("graph", {"foo", test_foo}, {"bar", test_bar})
 */
#ifndef IL_TEST_H
#define IL_TEST_H

#include <CUnit/CUnit.h>

#include "../engine/engine.h"

typedef struct il_test_case {
    const char *name;
    void (*fn)(void);
} il_test_case;

void il_test_add_suite(const char *name, const il_test_case *cases, int n);

#define IL_SUITE(NAME, ...)                                                        \
    static const il_test_case il_suite_cases_[] = {__VA_ARGS__};                  \
    __attribute__((constructor)) static void il_suite_register_(void) {           \
        il_test_add_suite(NAME, il_suite_cases_, (int)(sizeof il_suite_cases_ /   \
                                                       sizeof il_suite_cases_[0])); \
    }

/* Assert a status is IL_OK, printing the engine's message when it is not. */
#define IL_ASSERT_OK(expr)                                                          \
    do {                                                                            \
        il_status st_ = (expr);                                                     \
        if (st_ != IL_OK) fprintf(stderr, "\n  %s: %s\n", #expr, il_errmsg());      \
        CU_ASSERT_EQUAL_FATAL(st_, IL_OK);                                          \
    } while (0)

/* Helpers from tests/util.c. il_test_tmp: a path in a scratch directory removed at exit
 * (the last eight returned stay valid). */
#define IL_PY "/usr/bin/python3"
const char *il_test_tmp(const char *name);
void il_test_write_bytes(const char *path, const void *b, size_t n);
int il_test_have_python(const char *modules); /* prints "skipped: ..." when missing */
void il_test_write_msg(const char *path, const void *protobuf_c_message); /* pack and write */
int il_test_tensors_equal(const il_tensor *a, const il_tensor *b);      /* same dtype, shape, bytes */
void il_test_plans_agree(il_plan *p, il_plan *q, il_tensor *x); /* both run on x (freed): outputs equal */

/* Graphs built in C: a float32 graph input of the given shape, and a float32 constant filled
 * uniformly in [lo, hi) from *rng; each returns the value index. */
int il_test_input(il_graph *g, const char *name, int rank, const int64_t *dims);
int il_test_const(il_graph *g, const char *name, int rank, const int64_t *dims, uint64_t *rng, double lo, double hi);

/* Node k of g as a plan shows it to a kernel's supports() and prepare(): the value info of
 * shapes s, data for constants and plan-time values (const_mask set for them), at an
 * accelerator precision. inb (n_inputs) and outb (n_outputs) hold the tensors in and out point
 * at; returns 0 when the node has more than 32 inputs or 8 outputs. */
int il_test_node_view(const il_graph *g, const il_shapes *s, int k, int precision, il_tensor *inb, il_tensor **in,
                      il_tensor *outb, il_tensor **out, il_kctx *c);

/* `$IL_BIN ARGS` (default build/inferlab) under a 60 s timeout; stdout+stderr into out. Returns
 * the exit code, -1 when it died of a signal (124: it timed out). */
int il_test_cli(const char *args, char *out, size_t n);
/* The example plugin NAME (passes/examples/NAME.c) as the Makefile built it beside this test
 * binary (build/ or build/san/). */
const char *il_test_plugin(const char *name);
/* The first column of the first row of sql on the database file at path (-1 when none). */
long long il_test_db_scalar(const char *path, const char *sql);
/* A run record for store and report tests - made-up figures, never a measurement: q queries
 * around base_ms per trial (2 trials), provenance of one machine. Free with il_record_free. */
struct il_run_record;
void il_test_record(struct il_run_record *r, const char *model, const char *pipeline, int batch,
                    const char *scenario, double base_ms, int q);

/* Path of a file under tests/data, or of the ONNX test data. */
#define IL_TESTDATA "tests/data"
#define IL_ONNX_NODE_DIR "/usr/share/libonnx-testdata/data/node"

#endif
