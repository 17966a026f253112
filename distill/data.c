/*
 * data.c - labelled data sets: IDX (Fashion-MNIST, MNIST; gzip read directly with zlib),
 * CIFAR-10 binary batches, and folders of .npy/.pb tensors with a labels file.
 *
 * Every loader checks what it reads (magic numbers, declared sizes against the bytes present,
 * label ranges, image counts against label counts) and reports the file and the problem, so
 * a wrong or truncated download is a clear message, never a silently short data set.
 */
#include "distill.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
static const char *fmnist_labels = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";
static const char *cifar_labels = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck";

void il_data_free(il_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    free(d);
}

static il_dataset *data_new(const char *name, int64_t n, int c, int h, int w) {
    il_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->n = n, d->c = c, d->h = h, d->w = w;
    d->x = malloc((size_t)(n * c * h * w + 1) * sizeof(float));
    d->y = malloc((size_t)(n + 1) * sizeof(int32_t));
    d->scale = 1.0;
    if (!d->x || !d->y) {
        il_data_free(d);
        il_error(IL_ERR_OOM, "out of memory for %lld samples of %dx%dx%d", (long long)n, c, h, w);
        return NULL;
    }
    return d;
}

il_dataset *il_data_subset(const il_dataset *d, const int64_t *idx, int64_t n) {
    il_dataset *s = data_new(d->name, n, d->c, d->h, d->w);
    if (!s) return NULL;
    int64_t sz = (int64_t)d->c * d->h * d->w;
    for (int64_t i = 0; i < n; i++) {
        memcpy(s->x + i * sz, d->x + idx[i] * sz, (size_t)sz * sizeof(float));
        s->y[i] = d->y[idx[i]];
    }
    s->n_classes = d->n_classes;
    s->scale = d->scale;
    memcpy(s->labels, d->labels, sizeof s->labels);
    return s;
}

/* ---------------------------------------------------------------- IDX */

/* Read exactly n bytes or fail naming the file: gzread also reads plain files, so one path
 * serves .gz and uncompressed copies. */
static il_status gz_read_all(gzFile f, const char *path, void *buf, size_t n, const char *what) {
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(f, (char *)buf + got, chunk);
        if (r < 0) {
            int e;
            const char *m = gzerror(f, &e);
            return il_error(IL_ERR_IO, "%s: cannot read %s: %s", path, what, m);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got < n)
        return il_error(IL_ERR_PARSE, "%s: truncated file: %s needs %zu bytes, only %zu present", path, what, n, got);
    return IL_OK;
}

il_status il_idx_load(const char *path, int want_rank, il_tensor **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return il_error(IL_ERR_IO, "%s: no such file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "%s: cannot open", path);
    unsigned char hdr[4];
    il_status st = gz_read_all(f, path, hdr, 4, "the IDX header");
    if (st) goto done;
    /* magic: 0, 0, type (0x08 = unsigned byte), rank */
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != want_rank) {
        st = il_error(IL_ERR_PARSE, "%s: wrong magic number 0x%02x%02x%02x%02x, expected 0x%08x (IDX uint8, rank %d)",
                      path, hdr[0], hdr[1], hdr[2], hdr[3], 0x800 + want_rank, want_rank);
        goto done;
    }
    int64_t dims[4];
    for (int i = 0; i < want_rank; i++) {
        unsigned char b[4];
        if ((st = gz_read_all(f, path, b, 4, "the IDX dimensions"))) goto done;
        dims[i] = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        if (dims[i] <= 0 || dims[i] > (1 << 26)) {
            st = il_error(IL_ERR_PARSE, "%s: dimension %d is %lld", path, i, (long long)dims[i]);
            goto done;
        }
    }
    il_tensor *t = il_tensor_new(IL_U8, want_rank, dims);
    if (!t) { st = IL_ERR_OOM; goto done; }
    if ((st = gz_read_all(f, path, t->data, il_tensor_bytes(t), "the data"))) {
        il_tensor_free(t);
        goto done;
    }
    *out = t;
done:
    gzclose(f);
    return st;
}

/* Images DIR/PREFIX-images-idx3-ubyte[.gz] and labels DIR/PREFIX-labels-idx1-ubyte[.gz]. */
static il_status load_idx_pair(const char *dir, const char *prefix, const char *name, il_dataset **out) {
    char ip[1024], lp[1024];
    struct stat sb;
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    if (stat(ip, &sb)) snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (stat(lp, &sb)) snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, prefix);
    il_tensor *im, *lb;
    il_status st = il_idx_load(ip, 3, &im);
    if (st) {
        if (!strcmp(name, "fashion-mnist") && st == IL_ERR_IO)
            il_error_wrap(st, "Fashion-MNIST is missing (install Debian's dataset-fashion-mnist, or run `make deps`): ");
        return st;
    }
    if ((st = il_idx_load(lp, 1, &lb))) {
        il_tensor_free(im);
        return st;
    }
    if (lb->dims[0] != im->dims[0]) {
        st = il_error(IL_ERR_PARSE, "%s has %lld images but %s has %lld labels", ip, (long long)im->dims[0], lp,
                      (long long)lb->dims[0]);
        goto done;
    }
    il_dataset *d = data_new(name, im->dims[0], 1, (int)im->dims[1], (int)im->dims[2]);
    if (!d) { st = IL_ERR_OOM; goto done; }
    const uint8_t *p = im->data, *l = lb->data;
    int64_t n = il_tensor_numel(im);
    for (int64_t i = 0; i < n; i++) d->x[i] = p[i] / 255.0f;
    int maxl = 0;
    for (int64_t i = 0; i < d->n; i++) {
        d->y[i] = l[i];
        if (l[i] > maxl) maxl = l[i];
    }
    d->n_classes = maxl + 1 > 10 ? maxl + 1 : 10;
    d->scale = 1.0 / 255.0;
    *out = d;
done:
    il_tensor_free(im);
    il_tensor_free(lb);
    return st;
}

/* ---------------------------------------------------------------- CIFAR-10 */

static il_status load_cifar(const char *dir, il_split split, il_dataset **out) {
    enum { REC = 1 + 3072 };
    const char *files[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                            "data_batch_5.bin"};
    int nf = split == IL_SPLIT_TRAIN ? 5 : 1;
    int64_t counts[5], total = 0;
    char path[1024];
    for (int i = 0; i < nf; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, split == IL_SPLIT_TRAIN ? files[i] : "test_batch.bin");
        if (stat(path, &sb)) return il_error(IL_ERR_IO, "%s: no such file (CIFAR-10 binary version)", path);
        if (sb.st_size == 0 || sb.st_size % REC)
            return il_error(IL_ERR_PARSE, "%s: truncated file: %lld bytes is not a whole number of %d-byte records",
                            path, (long long)sb.st_size, REC);
        counts[i] = sb.st_size / REC;
        total += counts[i];
    }
    il_dataset *d = data_new("cifar10", total, 3, 32, 32);
    if (!d) return IL_ERR_OOM;
    unsigned char *rec = malloc(REC);
    int64_t k = 0;
    for (int i = 0; i < nf; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, split == IL_SPLIT_TRAIN ? files[i] : "test_batch.bin");
        FILE *f = fopen(path, "rb");
        if (!f) {
            free(rec);
            il_data_free(d);
            return il_error(IL_ERR_IO, "%s: cannot open", path);
        }
        for (int64_t r = 0; r < counts[i]; r++, k++) {
            if (fread(rec, 1, REC, f) != REC || rec[0] > 9) {
                int lab = rec[0];
                fclose(f);
                free(rec);
                il_data_free(d);
                return il_error(IL_ERR_PARSE, "%s: record %lld is short or has label %d (expected 0..9)", path,
                                (long long)r, lab);
            }
            d->y[k] = rec[0];
            for (int j = 0; j < 3072; j++) d->x[k * 3072 + j] = rec[1 + j] / 255.0f;
        }
        fclose(f);
    }
    free(rec);
    d->n_classes = 10;
    d->scale = 1.0 / 255.0;
    snprintf(d->labels, sizeof d->labels, "%s", cifar_labels);
    *out = d;
    return IL_OK;
}

/* ---------------------------------------------------------------- tensor folders */

static int has_ext(const char *s, const char *e) {
    size_t a = strlen(s), b = strlen(e);
    return a > b && !strcmp(s + a - b, e);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static il_status load_folder(const char *dir0, il_split split, il_dataset **out) {
    char dir[1024];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/%s", dir0, split == IL_SPLIT_TRAIN ? "train" : "test");
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) snprintf(dir, sizeof dir, "%s", dir0);
    DIR *dp = opendir(dir);
    if (!dp) return il_error(IL_ERR_IO, "%s: no such folder", dir);
    char **names = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (!has_ext(e->d_name, ".npy") && !has_ext(e->d_name, ".pb")) continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    il_status st = IL_OK;
    il_dataset *d = NULL;
    FILE *lf = NULL;
    if (!n) { st = il_error(IL_ERR_IO, "%s: no .npy or .pb tensors", dir); goto done; }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    char path[1400];
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    if (!(lf = fopen(path, "r"))) { st = il_error(IL_ERR_IO, "%s: no such file (one label per line)", path); goto done; }
    for (int64_t i = 0; i < n; i++) {
        il_tensor *t;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if ((st = il_tensor_load(path, &t))) goto done;
        int r = t->rank;
        const int64_t *dm = t->dims;
        if (r == 4 && dm[0] == 1) r = 3, dm++;
        int c = r == 3 ? (int)dm[0] : 1, h = (int)dm[r - 2], w = (int)dm[r - 1];
        if (r < 2 || r > 3 || (t->dtype != IL_F32 && t->dtype != IL_U8 && t->dtype != IL_F64)) {
            char sh[96];
            st = il_error(IL_ERR_SHAPE, "%s: %s %s is not one image ([C,H,W], [H,W], [1,C,H,W]; float or uint8)",
                          path, il_dtype_name(t->dtype), il_shape_str(t->rank, t->dims, sh, sizeof sh));
            il_tensor_free(t);
            goto done;
        }
        if (!d) {
            if (!(d = data_new("folder", n, c, h, w))) { il_tensor_free(t); st = IL_ERR_OOM; goto done; }
            d->scale = t->dtype == IL_U8 ? 1.0 / 255.0 : 1.0;
        } else if (c != d->c || h != d->h || w != d->w) {
            st = il_error(IL_ERR_SHAPE, "%s: sample is %dx%dx%d, the first one was %dx%dx%d", path, c, h, w, d->c, d->h,
                          d->w);
            il_tensor_free(t);
            goto done;
        }
        int64_t sz = (int64_t)c * h * w;
        for (int64_t j = 0; j < sz; j++) d->x[i * sz + j] = (float)(il_tensor_get(t, j) * d->scale);
        il_tensor_free(t);
        long lab;
        if (fscanf(lf, "%ld", &lab) != 1 || lab < 0 || lab > 100000) {
            st = il_error(IL_ERR_PARSE, "%s/labels.txt: line %lld is missing or not a label (%lld samples)", dir,
                          (long long)i + 1, (long long)n);
            goto done;
        }
        d->y[i] = (int32_t)lab;
        if (lab + 1 > d->n_classes) d->n_classes = (int)lab + 1;
    }
    *out = d;
    d = NULL;
done:
    if (lf) fclose(lf);
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
    il_data_free(d);
    return st;
}

/* ---------------------------------------------------------------- spec */

il_status il_data_load(const char *spec, il_split split, il_dataset **out) {
    *out = NULL;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec ? spec : "");
    long long limit = -1;
    /* Parse from the right, so paths may hold ':' elsewhere: [:N] then [:train|:test]. */
    for (int pass = 0; pass < 2; pass++) {
        char *colon = strrchr(buf, ':');
        if (!colon) break;
        char *tok = colon + 1;
        if (!strcmp(tok, "train")) split = IL_SPLIT_TRAIN, *colon = 0;
        else if (!strcmp(tok, "test")) split = IL_SPLIT_TEST, *colon = 0;
        else if (*tok && strspn(tok, "0123456789") == strlen(tok) && limit < 0) limit = atoll(tok), *colon = 0;
        else break;
    }
    il_dataset *d = NULL;
    il_status st;
    char *colon = strchr(buf, ':');
    const char *arg = colon ? colon + 1 : NULL;
    if (colon) *colon = 0;
    if (!strcmp(buf, "fashion-mnist") && !arg) {
        /* INFERLAB_FASHION_MNIST relocates the files (machines without the Debian package) */
        const char *dir = getenv("INFERLAB_FASHION_MNIST");
        st = load_idx_pair(dir && *dir ? dir : FMNIST_DIR, split == IL_SPLIT_TRAIN ? "train" : "t10k", "fashion-mnist", &d);
        if (!st) snprintf(d->labels, sizeof d->labels, "%s", fmnist_labels);
    } else if (!strcmp(buf, "mnist") && arg) {
        st = load_idx_pair(arg, split == IL_SPLIT_TRAIN ? "train" : "t10k", "mnist", &d);
        if (!st) snprintf(d->labels, sizeof d->labels, "0,1,2,3,4,5,6,7,8,9");
    } else if (!strcmp(buf, "cifar10") && arg) {
        st = load_cifar(arg, split, &d);
    } else if (!strcmp(buf, "folder") && arg) {
        st = load_folder(arg, split, &d);
    } else {
        return il_error(IL_ERR_INVALID,
                        "unknown data set '%s' (fashion-mnist, mnist:DIR, cifar10:DIR, folder:DIR; then :train|:test "
                        "and :N)", spec ? spec : "");
    }
    if (st) return st;
    if (limit == 0) {
        il_data_free(d);
        return il_error(IL_ERR_INVALID, "%s: a data set of 0 samples", spec);
    }
    if (limit > 0 && limit < d->n) d->n = limit; /* the arrays keep their size; only n shrinks */
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= d->n_classes) {
            int64_t bad = d->y[i];
            il_data_free(d);
            return il_error(IL_ERR_PARSE, "%s: label %lld of sample %lld is out of range", spec, (long long)bad,
                            (long long)i);
        }
    *out = d;
    return IL_OK;
}
