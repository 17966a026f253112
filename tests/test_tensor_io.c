/*
 * test_tensor_io.c - tensor files: ONNX TensorProto (.pb) and NumPy (.npy).
 *
 * Real models come from Debian's ONNX backend test data; the Python side (python3-onnx and NumPy of
 * /usr/bin/python3) checks what we write. Tests that need Python print "skipped" and pass
 * when it is missing, so the suite still runs on a bare machine.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "test.h"

#define PY IL_PY
#define tmp il_test_tmp
#define write_bytes il_test_write_bytes
#define have_python il_test_have_python
#define write_msg il_test_write_msg
#define tensors_equal il_test_tensors_equal

/* The scratch directory itself, for scripts that read several files from it. */
static const char *scratch_dir(void) {
    static char d[512];
    snprintf(d, sizeof d, "%s", il_test_tmp(""));
    d[strlen(d) - 1] = 0;
    return d;
}

/* ---------------------------------------------------------------- tensor files */

static const il_dtype all_dtypes[] = {IL_F32, IL_U8,  IL_I8,  IL_U16, IL_I16, IL_I32, IL_I64,
                                      IL_BOOL, IL_F16, IL_F64, IL_U32, IL_U64, IL_BF16};
#define N_DTYPES (int)(sizeof all_dtypes / sizeof all_dtypes[0])

/* Random bytes (valid bools) in four shapes: [2,3,4], a scalar, [5] and the empty [7,0]. */
static il_tensor *sample(il_dtype dt, int shape, uint64_t *rng) {
    static const int64_t dims[4][3] = {{2, 3, 4}, {0}, {5}, {7, 0}};
    static const int ranks[4] = {3, 0, 1, 2};
    il_tensor *t = il_tensor_new(dt, ranks[shape], dims[shape]);
    size_t n = il_tensor_bytes(t);
    for (size_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = dt == IL_BOOL ? il_rand_u64(rng) & 1 : (uint8_t)il_rand_u64(rng);
    return t;
}

static void test_pb_round_trip(void) {
    uint64_t rng = 3;
    for (int d = 0; d < N_DTYPES; d++)
        for (int s = 0; s < 4; s++) {
            il_tensor *t = sample(all_dtypes[d], s, &rng), *u = NULL;
            char *name = NULL;
            IL_ASSERT_OK(il_tensor_save_pb(t, "tensor_name", tmp("t.pb")));
            IL_ASSERT_OK(il_tensor_load_pb(tmp("t.pb"), &u, &name));
            if (!tensors_equal(t, u)) printf("\n  .pb round trip differs: %s shape %d\n", il_dtype_name(all_dtypes[d]), s);
            CU_ASSERT(tensors_equal(t, u));
            CU_ASSERT_STRING_EQUAL(name, "tensor_name");
            il_tensor_free(t);
            il_tensor_free(u);
            free(name);
        }
}

/* Data in the typed fields: narrow types (and float16 bit patterns) in int32_data, unsigned
 * 32/64-bit in uint64_data. */
static void test_pb_typed_fields(void) {
    int32_t i32[3] = {-128, 0, 127}, h16[3] = {0x3c00, 0xc000, 0x7c00}, b[3] = {0, 1, 5};
    uint64_t u64[3] = {1, 4000000000u, 3};
    double f64[3] = {0.5, -1e300, 3};
    int64_t dims[1] = {3};
    struct { il_dtype dt; double want[3]; } cases[] = {
        {IL_I8, {-128, 0, 127}}, {IL_F16, {1, -2, INFINITY}}, {IL_BOOL, {0, 1, 1}}, {IL_U32, {1, 4000000000.0, 3}},
        {IL_F64, {0.5, -1e300, 3}}, {IL_I16, {-128, 0, 127}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Onnx__TensorProto p = ONNX__TENSOR_PROTO__INIT;
        p.n_dims = 1, p.dims = dims, p.has_data_type = 1, p.data_type = cases[c].dt;
        switch (cases[c].dt) {
        case IL_F16: p.n_int32_data = 3, p.int32_data = h16; break;
        case IL_BOOL: p.n_int32_data = 3, p.int32_data = b; break;
        case IL_U32: p.n_uint64_data = 3, p.uint64_data = u64; break;
        case IL_F64: p.n_double_data = 3, p.double_data = f64; break;
        default: p.n_int32_data = 3, p.int32_data = i32; break;
        }
        write_msg(tmp("typed.pb"), &p.base);
        il_tensor *t;
        IL_ASSERT_OK(il_tensor_load(tmp("typed.pb"), &t));
        CU_ASSERT_EQUAL(t->dtype, cases[c].dt);
        for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(il_tensor_get(t, i), cases[c].want[i]);
        il_tensor_free(t);
    }
}

/* Sequences and optionals in the test data are not tensors; tensors next to them are. */
static void test_pb_not_tensor(void) {
    const char *seq[] = {"test_sequence_insert_at_back/test_data_set_0/input_0.pb",
                         "test_sequence_map_add_2_sequences/test_data_set_0/input_0.pb",
                         "test_optional_get_element_sequence/test_data_set_0/input_0.pb",
                         "test_optional_has_element_empty/test_data_set_0/input_0.pb"};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", IL_ONNX_NODE_DIR, seq[i]);
        il_tensor *t = (il_tensor *)1;
        il_status st = il_tensor_load_pb(path, &t, NULL);
        if (st != IL_ERR_UNSUPPORTED) printf("\n  %s: %s %s\n", seq[i], il_status_str(st), il_errmsg());
        CU_ASSERT_EQUAL(st, IL_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NULL(t);
        CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "not a tensor"));
    }
    il_tensor *t;
    IL_ASSERT_OK(il_tensor_load_pb(IL_ONNX_NODE_DIR "/test_sequence_insert_at_back/test_data_set_0/input_1.pb", &t, NULL));
    il_tensor_free(t);
    CU_ASSERT_EQUAL(il_tensor_load_pb(tmp("no.pb"), &t, NULL), IL_ERR_IO);
    CU_ASSERT_EQUAL(il_tensor_load(tmp("t.txt"), &t), IL_ERR_INVALID);
}

static void test_npy_round_trip(void) {
    uint64_t rng = 5;
    for (int d = 0; d < N_DTYPES; d++)
        for (int s = 0; s < 4; s++) {
            il_tensor *t = sample(all_dtypes[d], s, &rng), *u = NULL;
            il_status st = il_tensor_save_npy(t, tmp("t.npy"));
            if (all_dtypes[d] == IL_BF16) { /* NumPy has no bfloat16 */
                CU_ASSERT_EQUAL(st, IL_ERR_UNSUPPORTED);
                il_tensor_free(t);
                continue;
            }
            IL_ASSERT_OK(st);
            struct stat sb;
            CU_ASSERT_EQUAL(stat(tmp("t.npy"), &sb), 0);
            CU_ASSERT_EQUAL(((size_t)sb.st_size - il_tensor_bytes(t)) % 64, 0); /* data 64-byte aligned, as NumPy writes */
            IL_ASSERT_OK(il_tensor_load(tmp("t.npy"), &u));
            CU_ASSERT(tensors_equal(t, u));
            il_tensor_free(t);
            il_tensor_free(u);
        }
}

/* Files NumPy wrote load with the right values, and files we write load in NumPy. */
static void test_npy_numpy(void) {
    if (!have_python("numpy")) return;
    static const char *codes[] = {"f4", "f8", "f2", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "?"};
    static const il_dtype dts[] = {IL_F32, IL_F64, IL_F16, IL_I8, IL_U8, IL_I16, IL_U16, IL_I32, IL_U32, IL_I64, IL_U64, IL_BOOL};
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             PY " -c 'import numpy as np, sys\n"
                "d = sys.argv[1]\n"
                "for c in \"f4 f8 f2 i1 u1 i2 u2 i4 u4 i8 u8 ?\".split():\n"
                "    a = (np.arange(24) %% 2 if c == \"?\" else np.arange(24)).astype(c).reshape(2, 3, 4)\n"
                "    np.save(d + \"/np_\" + c + \".npy\", a)\n"
                "    np.save(d + \"/back_\" + c + \".npy\", a)\n"
                "np.save(d + \"/scalar.npy\", np.float32(2.5))\n"
                "np.save(d + \"/fortran.npy\", np.asfortranarray(np.ones((2, 3), \"f4\")))\n"
                "np.save(d + \"/big.npy\", np.ones(3, \">i4\"))\n"
                "with open(d + \"/v2.npy\", \"wb\") as f: np.lib.format.write_array(f, np.arange(5, dtype=\"i8\"), version=(2, 0))\n"
                "' %s",
             scratch_dir());
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    for (int c = 0; c < 12; c++) {
        char name[64];
        snprintf(name, sizeof name, "np_%s.npy", codes[c]);
        il_tensor *t;
        IL_ASSERT_OK(il_tensor_load_npy(tmp(name), &t));
        CU_ASSERT(t->dtype == dts[c] && t->rank == 3 && t->dims[0] == 2 && t->dims[1] == 3 && t->dims[2] == 4);
        int bad = 0;
        for (int i = 0; i < 24; i++) bad += il_tensor_get(t, i) != (dts[c] == IL_BOOL ? i % 2 : i);
        CU_ASSERT_EQUAL(bad, 0);
        /* write it back over NumPy's copy; NumPy checks it below */
        snprintf(name, sizeof name, "back_%s.npy", codes[c]);
        IL_ASSERT_OK(il_tensor_save_npy(t, tmp(name)));
        il_tensor_free(t);
    }
    snprintf(cmd, sizeof cmd,
             PY " -c 'import numpy as np, sys\n"
                "for c in \"f4 f8 f2 i1 u1 i2 u2 i4 u4 i8 u8 ?\".split():\n"
                "    a = np.load(sys.argv[1] + \"/back_\" + c + \".npy\")\n"
                "    b = np.load(sys.argv[1] + \"/np_\" + c + \".npy\")\n"
                "    assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all(), c\n"
                "' %s",
             scratch_dir());
    CU_ASSERT_EQUAL(system(cmd), 0);
    il_tensor *t = NULL;
    IL_ASSERT_OK(il_tensor_load_npy(tmp("scalar.npy"), &t));
    CU_ASSERT(t->rank == 0 && t->dtype == IL_F32 && *(float *)t->data == 2.5f);
    il_tensor_free(t);
    IL_ASSERT_OK(il_tensor_load_npy(tmp("v2.npy"), &t));
    CU_ASSERT(t->rank == 1 && t->dims[0] == 5 && ((int64_t *)t->data)[4] == 4);
    il_tensor_free(t);
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("fortran.npy"), &t), IL_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("big.npy"), &t), IL_ERR_UNSUPPORTED);
}

/* A v1.0 .npy header with no data after it. */
static void write_npy_header(const char *path, const char *dict) {
    char b[256];
    size_t n = strlen(dict);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (char)n, b[9] = 0;
    memcpy(b + 10, dict, n);
    write_bytes(path, b, 10 + n);
}

static void test_npy_errors(void) {
    il_tensor *t;
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("missing.npy"), &t), IL_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "missing.npy"));
    write_bytes(tmp("bad.npy"), "\x93NUMPZ\x01\x00\x10\x00{}              ", 24);
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("bad.npy"), &t), IL_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "magic"));
    il_tensor *u = il_tensor_new(IL_F32, 2, (const int64_t[]){4, 4});
    IL_ASSERT_OK(il_tensor_save_npy(u, tmp("cut.npy")));
    il_tensor_free(u);
    CU_ASSERT_EQUAL(truncate(tmp("cut.npy"), 64 + 30), 0);
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("cut.npy"), &t), IL_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_errmsg(), "truncated"));
    write_npy_header(tmp("complex.npy"), "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n");
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("complex.npy"), &t), IL_ERR_UNSUPPORTED);
    write_npy_header(tmp("garbled.npy"), "{'descr': '<f4', 'shape': (1, }\n");
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("garbled.npy"), &t), IL_ERR_PARSE);
    write_npy_header(tmp("nodescr.npy"), "{'fortran_order': False, 'shape': (1,), }\n");
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("nodescr.npy"), &t), IL_ERR_PARSE);
    write_npy_header(tmp("rank9.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n");
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("rank9.npy"), &t), IL_ERR_UNSUPPORTED);
    write_npy_header(tmp("hdrcut.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n");
    CU_ASSERT_EQUAL(truncate(tmp("hdrcut.npy"), 30), 0);
    CU_ASSERT_EQUAL(il_tensor_load_npy(tmp("hdrcut.npy"), &t), IL_ERR_PARSE);
}

IL_SUITE("tensor_io",
         {".pb round trip, every dtype", test_pb_round_trip},
         {".pb typed fields", test_pb_typed_fields},
         {".pb sequences and optionals", test_pb_not_tensor},
         {".npy round trip, every dtype", test_npy_round_trip},
         {".npy with NumPy", test_npy_numpy},
         {".npy errors", test_npy_errors})
