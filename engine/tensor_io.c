/*
 * tensor_io.c - tensors in files: ONNX TensorProto (.pb, the format of the ONNX backend test
 * data) and NumPy .npy (what Python tools hand us).
 *
 * .pb files go through the same TensorProto conversion as initializers (onnx_tensor.c). The
 * backend test data also keeps SequenceProto and OptionalProto values in .pb files, with no
 * marker of which message a file holds; their bytes either fail to decode as a TensorProto or
 * decode into fields that disagree (dims made of name bytes, data counts that do not match),
 * so any such failure is reported as IL_ERR_UNSUPPORTED "not a tensor" for callers to skip.
 *
 * .npy: format versions 1.0, 2.0 and 3.0, little-endian numeric dtypes and bool, C order.
 */
#include "onnx_tensor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- .pb */

/* Whether the decoded fields could be a tensor: a known data_type and exactly as much data
 * as dims ask for. A SequenceProto read as a TensorProto turns its name into dims, its
 * elem_type into data_type and its elements into a "segment", and fails this. */
static int looks_like_tensor(const Onnx__TensorProto *p) {
    if (p->segment || !p->has_data_type || p->data_type <= 0 || p->data_type > 22) return 0;
    uint64_t numel = 1;
    for (size_t i = 0; i < p->n_dims; i++)
        if (p->dims[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)p->dims[i], &numel)) return 0;
    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) return p->n_external_data > 0;
    size_t esize = il_dtype_size((il_dtype)p->data_type);
    if (p->has_raw_data) return !esize || p->raw_data.len == numel * esize;
    return p->n_float_data + p->n_int32_data + p->n_int64_data + p->n_double_data + p->n_uint64_data + p->n_string_data == numel;
}

il_status il_tensor_load_pb(const char *path, il_tensor **out, char **name) {
    *out = NULL;
    if (name) *name = NULL;
    uint8_t *buf;
    size_t len;
    il_status st = il_onnx_read_file(path, &buf, &len);
    if (st) return st;
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!p) return il_error(IL_ERR_UNSUPPORTED, "%s: not a tensor (sequence/optional?): does not decode as a TensorProto", path);
    if (!looks_like_tensor(p)) {
        onnx__tensor_proto__free_unpacked(p, NULL);
        return il_error(IL_ERR_UNSUPPORTED, "%s: not a tensor (sequence/optional?): its fields do not form a TensorProto", path);
    }
    char *dir = il_onnx_dirname(path);
    st = il_onnx_tensor_from_proto(p, dir, "TensorProto", out);
    free(dir);
    if (st) il_error_wrap(st, "%s: ", path);
    if (!st && name && !(*name = strdup(p->name ? p->name : ""))) {
        il_tensor_free(*out);
        *out = NULL;
        st = il_error(IL_ERR_OOM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(p, NULL);
    return st;
}

il_status il_tensor_save_pb(const il_tensor *t, const char *name, const char *path) {
    if (!il_dtype_is_supported(t->dtype))
        return il_error(IL_ERR_UNSUPPORTED, "%s: cannot write dtype %s", path, il_dtype_name(t->dtype));
    if (!t->data && il_tensor_bytes(t)) return il_error(IL_ERR_INVALID, "%s: tensor has no data", path);
    Onnx__TensorProto p;
    il_onnx_tensor_to_proto(t, name, &p);
    size_t n = onnx__tensor_proto__get_packed_size(&p);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return il_error(IL_ERR_OOM, "%s: out of memory", path);
    n = onnx__tensor_proto__pack(&p, buf);
    il_status st = il_onnx_write_file(path, buf, n);
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- .npy */

static const struct {
    const char *descr; /* as NumPy writes it */
    il_dtype dtype;
} npy_types[] = {
    {"<f4", IL_F32}, {"<f8", IL_F64}, {"<f2", IL_F16}, {"|i1", IL_I8},  {"|u1", IL_U8},  {"<i2", IL_I16},
    {"<u2", IL_U16}, {"<i4", IL_I32}, {"<u4", IL_U32}, {"<i8", IL_I64}, {"<u8", IL_U64}, {"|b1", IL_BOOL},
};
#define N_NPY_TYPES (sizeof npy_types / sizeof npy_types[0])

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* A cursor over the header, a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                         */
typedef struct {
    const char *s;
} cur;

static void ws(cur *c) { while (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r') c->s++; }

static int eat(cur *c, char ch) {
    ws(c);
    if (*c->s != ch) return 0;
    c->s++;
    return 1;
}

static int quoted(cur *c, char *out, size_t n) {
    ws(c);
    char q = *c->s;
    if (q != '\'' && q != '"') return 0;
    const char *e = strchr(c->s + 1, q);
    if (!e || (size_t)(e - c->s - 1) >= n) return 0;
    memcpy(out, c->s + 1, (size_t)(e - c->s - 1));
    out[e - c->s - 1] = 0;
    c->s = e + 1;
    return 1;
}

static int word(cur *c, const char *w) {
    ws(c);
    size_t n = strlen(w);
    if (strncmp(c->s, w, n)) return 0;
    c->s += n;
    return 1;
}

static il_dtype npy_dtype(const char *d) {
    /* '=' (native) and '|' / '<' for one-byte types are all little-endian here */
    char norm[4];
    if (strlen(d) != 3) return IL_UNDEFINED;
    memcpy(norm, d, 4);
    if (norm[0] == '=') norm[0] = '<';
    if (norm[2] == '1' && norm[0] == '<') norm[0] = '|';
    for (size_t i = 0; i < N_NPY_TYPES; i++)
        if (!strcmp(norm, npy_types[i].descr)) return npy_types[i].dtype;
    return IL_UNDEFINED;
}

static il_status parse_header(const char *h, const char *path, il_dtype *dt, int *rank, int64_t *dims) {
    cur c = {h};
    char key[32], descr[32] = "";
    int have_descr = 0, have_shape = 0, fortran = 0;
    if (!eat(&c, '{')) return il_error(IL_ERR_PARSE, "%s: .npy header is not a dict", path);
    while (!eat(&c, '}')) {
        if (!quoted(&c, key, sizeof key) || !eat(&c, ':'))
            return il_error(IL_ERR_PARSE, "%s: malformed .npy header", path);
        if (!strcmp(key, "descr")) {
            if (!quoted(&c, descr, sizeof descr)) return il_error(IL_ERR_UNSUPPORTED, "%s: structured NumPy dtypes are not supported", path);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (word(&c, "True")) fortran = 1;
            else if (!word(&c, "False")) return il_error(IL_ERR_PARSE, "%s: malformed fortran_order in .npy header", path);
        } else if (!strcmp(key, "shape")) {
            if (!eat(&c, '(')) return il_error(IL_ERR_PARSE, "%s: malformed shape in .npy header", path);
            *rank = 0;
            while (!eat(&c, ')')) {
                ws(&c);
                char *end;
                errno = 0;
                long long d = strtoll(c.s, &end, 10);
                if (end == c.s || errno || d < 0) return il_error(IL_ERR_PARSE, "%s: malformed shape in .npy header", path);
                if (*rank == IL_MAX_RANK) return il_error(IL_ERR_UNSUPPORTED, "%s: rank above %d", path, IL_MAX_RANK);
                dims[(*rank)++] = d;
                c.s = end;
                if (*c.s == 'L') c.s++; /* Python 2 longs */
                if (!eat(&c, ',')) {
                    ws(&c);
                    if (*c.s != ')') return il_error(IL_ERR_PARSE, "%s: malformed shape in .npy header", path);
                }
            }
            have_shape = 1;
        } else {
            return il_error(IL_ERR_PARSE, "%s: unknown key '%s' in .npy header", path, key);
        }
        eat(&c, ',');
    }
    if (!have_descr || !have_shape) return il_error(IL_ERR_PARSE, "%s: .npy header lacks descr or shape", path);
    if (fortran) return il_error(IL_ERR_UNSUPPORTED, "%s: Fortran-order .npy arrays are not supported", path);
    if (descr[0] == '>' && descr[2] != '1')
        return il_error(IL_ERR_UNSUPPORTED, "%s: big-endian NumPy dtype '%s' is not supported", path, descr);
    if ((*dt = npy_dtype(descr)) == IL_UNDEFINED)
        return il_error(IL_ERR_UNSUPPORTED, "%s: NumPy dtype '%s' is not supported", path, descr);
    return IL_OK;
}

static uint32_t le16(const uint8_t *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8; }
static uint32_t le32(const uint8_t *b) { return le16(b) | le16(b + 2) << 16; }

/* Read the header and data straight from the file, so a large array is never held twice. */
static il_status load_npy(FILE *f, const char *path, il_tensor **out) {
    uint8_t pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, NPY_MAGIC, 6))
        return il_error(IL_ERR_PARSE, "%s: not a .npy file (bad magic)", path);
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) return il_error(IL_ERR_PARSE, "%s: truncated .npy header", path);
        hlen = le16(pre + 8);
    } else if (major == 2 || major == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) return il_error(IL_ERR_PARSE, "%s: truncated .npy header", path);
        hlen = le32(pre + 8);
        if (hlen > (1u << 20)) return il_error(IL_ERR_PARSE, "%s: .npy header of %zu bytes", path, hlen);
    } else {
        return il_error(IL_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported", path, major, pre[7]);
    }
    char *h = malloc(hlen + 1);
    if (!h) return il_error(IL_ERR_OOM, "out of memory");
    if (fread(h, 1, hlen, f) != hlen) {
        free(h);
        return il_error(IL_ERR_PARSE, "%s: truncated .npy header", path);
    }
    h[hlen] = 0;
    il_dtype dt;
    int rank = 0;
    int64_t dims[IL_MAX_RANK];
    il_status st = parse_header(h, path, &dt, &rank, dims);
    free(h);
    if (st) return st;
    if ((st = il_shape_check(rank, dims))) return il_error_wrap(st, "%s: ", path);
    /* a header may claim terabytes: check the file holds them before allocating */
    struct stat sb;
    long pos = ftell(f);
    uint64_t need = (uint64_t)il_shape_numel(rank, dims) * il_dtype_size(dt);
    if (pos >= 0 && !fstat(fileno(f), &sb) && S_ISREG(sb.st_mode) && (uint64_t)(sb.st_size - pos) < need)
        return il_error(IL_ERR_PARSE, "%s: truncated .npy data (%llu bytes expected, %lld in the file)", path,
                        (unsigned long long)need, (long long)(sb.st_size - pos));
    il_tensor *t = il_tensor_new(dt, rank, dims);
    if (!t) return il_error_wrap(IL_ERR_OOM, "%s: ", path);
    size_t n = il_tensor_bytes(t);
    if (fread(t->data, 1, n, f) != n) {
        il_tensor_free(t);
        return il_error(IL_ERR_PARSE, "%s: truncated .npy data (%zu bytes expected)", path, n);
    }
    *out = t;
    return IL_OK;
}

il_status il_tensor_load_npy(const char *path, il_tensor **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    il_status st = load_npy(f, path, out);
    fclose(f);
    return st;
}

il_status il_tensor_save_npy(const il_tensor *t, const char *path) {
    const char *descr = NULL;
    for (size_t i = 0; i < N_NPY_TYPES; i++)
        if (npy_types[i].dtype == t->dtype) descr = npy_types[i].descr;
    if (!descr) return il_error(IL_ERR_UNSUPPORTED, "%s: %s has no NumPy dtype", path, il_dtype_name(t->dtype));
    if (!t->data && il_tensor_bytes(t)) return il_error(IL_ERR_INVALID, "%s: tensor has no data", path);
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++) n += snprintf(h + n, sizeof h - (size_t)n, "%lld, ", (long long)t->dims[i]);
    if (t->rank) n -= t->rank == 1 ? 1 : 2; /* (3,) for one dim, (2, 3) for more: NumPy's repr */
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    /* NumPy pads with spaces and a final newline so the data starts 64-byte aligned */
    int total = (10 + n + 1 + 63) / 64 * 64;
    while (10 + n + 1 < total) h[n++] = ' ';
    h[n++] = '\n';
    uint8_t pre[10];
    memcpy(pre, NPY_MAGIC, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (uint8_t)(n & 0xff);
    pre[9] = (uint8_t)(n >> 8);
    FILE *f = fopen(path, "wb");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    size_t bytes = il_tensor_bytes(t);
    int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(h, 1, (size_t)n, f) != (size_t)n ||
              (bytes && fwrite(t->data, 1, bytes, f) != bytes);
    bad |= fclose(f) != 0;
    if (bad) return il_error(IL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return IL_OK;
}

/* ---------------------------------------------------------------- by extension */

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

il_status il_tensor_load(const char *path, il_tensor **out) {
    if (ends_with(path, ".pb")) return il_tensor_load_pb(path, out, NULL);
    if (ends_with(path, ".npy")) return il_tensor_load_npy(path, out);
    *out = NULL;
    return il_error(IL_ERR_INVALID, "%s: unknown tensor file type (expected .pb or .npy)", path);
}
