/*
 * onnx_tensor.c - TensorProto <-> il_tensor (see onnx_tensor.h for the contract).
 *
 * A TensorProto carries its data in one of three places: raw_data (little-endian bytes, what
 * every modern exporter writes), the typed repeated fields (older exporters and small
 * constants: int32_data holds every type narrower than 32 bits, including the bit patterns of
 * float16/bfloat16, and uint64_data holds uint32 and uint64), or an external file next to the
 * model (models over protobuf's 2 GB limit). Whichever it is, the element count must agree
 * with dims, or the tensor is rejected: a silently short weight is worse than an error.
 */
#include "onnx_tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian and is copied as is: a big-endian host needs byte swapping here"
#endif

const char *il_onnx_type_name(int32_t dt) { return il_dtype_name((il_dtype)dt); }

/* "float32[2,3]" for messages. */
static const char *describe(int32_t dt, int rank, const int64_t *dims, char *buf, size_t n) {
    char s[160];
    snprintf(buf, n, "%s%s", il_onnx_type_name(dt), il_shape_str(rank, dims, s, sizeof s));
    return buf;
}

static const char *ext_entry(const Onnx__TensorProto *p, const char *key) {
    for (size_t i = 0; i < p->n_external_data; i++)
        if (p->external_data[i]->key && !strcmp(p->external_data[i]->key, key)) return p->external_data[i]->value;
    return NULL;
}

static int parse_i64(const char *s, int64_t *v) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < 0) return 0;
    *v = x;
    return 1;
}

/* A location must stay inside the model's directory: an absolute path or a ".." component
 * would let a downloaded model read any file the user can read. */
static int safe_relative(const char *loc) {
    if (!loc[0] || loc[0] == '/') return 0;
    for (const char *c = loc; *c;) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.') return 0;
        c += n;
        if (*c) c++;
    }
    return 1;
}

/* The resolved path must lie inside the resolved model directory: a symlink (w.bin -> /etc/passwd)
 * is followed before the test, not after. */
static int inside(const char *real, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return real[0] == '/';
    return !strncmp(real, dir, n) && real[n] == '/';
}

/* Open external data for reading `want` bytes at the offset it names: resolved inside base_dir, a
 * regular file (a FIFO would block forever; O_NONBLOCK keeps open() itself from blocking on one)
 * and long enough, all checked before the caller allocates. *fd is open on IL_OK. */
static il_status open_external(const Onnx__TensorProto *p, const char *base_dir, const char *what, size_t want,
                               int *fd, int64_t *off) {
    const char *loc = ext_entry(p, "location");
    int64_t len = -1;
    *fd = -1;
    *off = 0;
    if (!loc) return il_error(IL_ERR_PARSE, "%s: external data without a 'location'", what);
    if (!safe_relative(loc))
        return il_error(IL_ERR_INVALID, "%s: external data location '%s' must be a relative path inside the model's directory",
                        what, loc);
    if (ext_entry(p, "offset") && !parse_i64(ext_entry(p, "offset"), off))
        return il_error(IL_ERR_PARSE, "%s: external data offset '%s' is not a number", what, ext_entry(p, "offset"));
    if (ext_entry(p, "length") && !parse_i64(ext_entry(p, "length"), &len))
        return il_error(IL_ERR_PARSE, "%s: external data length '%s' is not a number", what, ext_entry(p, "length"));
    if (!base_dir)
        return il_error(IL_ERR_INVALID, "%s: external data '%s' needs the model's directory (load from a file)", what, loc);
    if (len >= 0 && (uint64_t)len != want)
        return il_error(IL_ERR_PARSE, "%s: external data length %lld, but its dims need %zu bytes", what, (long long)len, want);
    size_t pn = strlen(base_dir) + strlen(loc) + 2;
    char *path = malloc(pn), *real = NULL, *dir = realpath(base_dir, NULL);
    il_status st = IL_OK;
    if (!path || !dir) {
        st = path ? il_error(IL_ERR_IO, "%s: model directory '%s': %s", what, base_dir, strerror(errno))
                  : il_error(IL_ERR_OOM, "out of memory");
        goto done;
    }
    snprintf(path, pn, "%s/%s", base_dir, loc);
    if (!(real = realpath(path, NULL))) {
        st = il_error(IL_ERR_IO, "%s: cannot open external data '%s': %s", what, path, strerror(errno));
        goto done;
    }
    if (!inside(real, dir)) {
        st = il_error(IL_ERR_INVALID, "%s: external data '%s' resolves to '%s', outside the model's directory", what,
                      path, real);
        goto done;
    }
    struct stat sb;
    if ((*fd = open(real, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(*fd, &sb) != 0) {
        st = il_error(IL_ERR_IO, "%s: cannot open external data '%s': %s", what, path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = il_error(IL_ERR_INVALID, "%s: external data '%s' is not a regular file", what, path);
    } else if (*off > (int64_t)sb.st_size || want > (uint64_t)((int64_t)sb.st_size - *off)) {
        st = il_error(IL_ERR_PARSE, "%s: external data '%s' has %lld bytes; %zu at offset %lld do not fit", what, path,
                      (long long)sb.st_size, want, (long long)*off);
    }
    if (st && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
done:
    free(path);
    free(real);
    free(dir);
    return st;
}

static il_status read_external(int fd, const char *what, int64_t off, size_t want, void *dst) {
    for (size_t got = 0; got < want;) {
        ssize_t r = pread(fd, (char *)dst + got, want - got, (off_t)(off + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return il_error(IL_ERR_IO, "%s: reading external data: %s", what, r ? strerror(errno) : "file shrank");
        got += (size_t)r;
    }
    return IL_OK;
}

/* Copy n elements from the typed field that holds this dtype; 0 when that field's count is
 * not n (the caller reports the mismatch). */
static int copy_typed(const Onnx__TensorProto *p, il_tensor *t, size_t n) {
    void *d = t->data;
    switch (t->dtype) {
    case IL_F32:
        if (p->n_float_data != n) return 0;
        if (n) memcpy(d, p->float_data, n * 4);
        return 1;
    case IL_F64:
        if (p->n_double_data != n) return 0;
        if (n) memcpy(d, p->double_data, n * 8);
        return 1;
    case IL_I64:
        if (p->n_int64_data != n) return 0;
        if (n) memcpy(d, p->int64_data, n * 8);
        return 1;
    case IL_I32:
        if (p->n_int32_data != n) return 0;
        if (n) memcpy(d, p->int32_data, n * 4);
        return 1;
    case IL_U32:
        if (p->n_uint64_data != n) return 0;
        for (size_t i = 0; i < n; i++) ((uint32_t *)d)[i] = (uint32_t)p->uint64_data[i];
        return 1;
    case IL_U64:
        if (p->n_uint64_data != n) return 0;
        if (n) memcpy(d, p->uint64_data, n * 8);
        return 1;
    case IL_I8: case IL_U8: case IL_BOOL:
        if (p->n_int32_data != n) return 0;
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)d)[i] = t->dtype == IL_BOOL ? p->int32_data[i] != 0 : (uint8_t)p->int32_data[i];
        return 1;
    case IL_I16: case IL_U16: case IL_F16: case IL_BF16:
        if (p->n_int32_data != n) return 0;
        for (size_t i = 0; i < n; i++) ((uint16_t *)d)[i] = (uint16_t)p->int32_data[i];
        return 1;
    default:
        return 0;
    }
}

/* Elements in the first typed field that has any, to name in a mismatch message. */
static size_t typed_count(const Onnx__TensorProto *p) {
    size_t c[] = {p->n_float_data, p->n_int32_data, p->n_int64_data, p->n_double_data, p->n_uint64_data, p->n_string_data};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (c[i]) return c[i];
    return 0;
}

il_status il_onnx_tensor_from_proto(const Onnx__TensorProto *p, const char *base_dir, const char *what,
                                    il_tensor **out) {
    char desc[200];
    *out = NULL;
    il_dtype dt = (il_dtype)(p->has_data_type ? p->data_type : 0);
    if (!p->has_data_type || dt == IL_UNDEFINED)
        return il_error(IL_ERR_PARSE, "%s: tensor has no data_type", what);
    if (!il_dtype_is_supported(dt))
        return il_error(IL_ERR_UNSUPPORTED, "%s: unsupported dtype %s", what, il_onnx_type_name(p->data_type));
    if (p->segment) return il_error(IL_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
    if (p->n_dims > IL_MAX_RANK)
        return il_error(IL_ERR_UNSUPPORTED, "%s: rank %zu (at most %d supported)", what, p->n_dims, IL_MAX_RANK);
    int rank = (int)p->n_dims;
    size_t numel = 1, esize = il_dtype_size(dt), bytes;
    for (int i = 0; i < rank; i++) {
        if (p->dims[i] < 0) return il_error(IL_ERR_PARSE, "%s: negative dimension %lld", what, (long long)p->dims[i]);
        if (__builtin_mul_overflow(numel, (size_t)p->dims[i], &numel))
            return il_error(IL_ERR_PARSE, "%s: dims overflow", what);
    }
    if (__builtin_mul_overflow(numel, esize, &bytes)) return il_error(IL_ERR_PARSE, "%s: dims overflow", what);
    describe(p->data_type, rank, p->dims, desc, sizeof desc);

    int external = p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* Check the byte count before allocating, so a corrupt dims field cannot ask for terabytes. */
    if (!external) {
        if (p->has_raw_data) {
            if (p->raw_data.len != bytes)
                return il_error(IL_ERR_PARSE, "%s: raw_data holds %zu bytes, but %s needs %zu", what, p->raw_data.len, desc, bytes);
        } else if (typed_count(p) != numel) {
            return il_error(IL_ERR_PARSE, "%s: holds %zu elements, but %s needs %zu", what, typed_count(p), desc, numel);
        }
    }
    int fd = -1;
    int64_t off = 0;
    il_status st = external ? open_external(p, base_dir, what, bytes, &fd, &off) : IL_OK;
    if (st) return st;
    il_tensor *t = il_tensor_new(dt, rank, p->dims);
    if (!t) {
        if (fd >= 0) close(fd);
        return il_error_wrap(IL_ERR_OOM, "%s: ", what); /* dims were checked: only size can fail */
    }
    if (external) {
        st = read_external(fd, what, off, bytes, t->data);
        close(fd);
    } else if (p->has_raw_data) {
        if (bytes) memcpy(t->data, p->raw_data.data, bytes);
    } else if (!copy_typed(p, t, numel)) {
        st = il_error(IL_ERR_PARSE, "%s: %s data is not in the field ONNX keeps it in", what, desc);
    }
    if (st) {
        il_tensor_free(t);
        return st;
    }
    *out = t;
    return IL_OK;
}

void il_onnx_tensor_to_proto(const il_tensor *t, const char *name, Onnx__TensorProto *p) {
    onnx__tensor_proto__init(p);
    p->name = (char *)name;
    p->n_dims = (size_t)t->rank;
    p->dims = (int64_t *)t->dims;
    p->has_data_type = 1;
    p->data_type = (int32_t)t->dtype;
    p->has_raw_data = 1;
    p->raw_data.len = il_tensor_bytes(t);
    p->raw_data.data = (uint8_t *)t->data;
}

il_status il_onnx_read_file(const char *path, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    /* read in growing chunks rather than trusting a size from fseek: works for pipes too */
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = realloc(b, cap *= 2);
        if (!nb) { free(b); b = NULL; }
        else b = nb;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!b) return il_error(IL_ERR_OOM, "%s: out of memory reading the file", path);
    if (err) {
        free(b);
        return il_error(IL_ERR_IO, "%s: %s", path, strerror(err));
    }
    *buf = b;
    *len = n;
    return IL_OK;
}

char *il_onnx_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

il_status il_onnx_write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return il_error(IL_ERR_IO, "%s: %s", path, strerror(errno));
    size_t w = len ? fwrite(buf, 1, len, f) : 0;
    int bad = w != len || fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) { bad = 1; e = errno; }
    if (bad) return il_error(IL_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return IL_OK;
}
