/*
 * plan_file.c - plans as files: the seed notes' build -> serialize -> run.
 *
 * `inferlab build` optimizes a model, builds a plan (kernels chosen, state prepared, memory
 * laid out) and writes it; `run`/`bench` load it without choosing or timing again. The file:
 *
 *   "ILPLAN\n" + NUL          8 bytes of magic
 *   u32 format version        IL_PLAN_FORMAT
 *   sections, each            u32 tag, u64 length, bytes:
 *     HEAD  text, "key=value\n" lines: inferlab (version), backend, machine (CPU model and ISA
 *           from il_cpu_signature: packed state and timings are only valid there), batch,
 *           threads, tactics, kernels (the forced spec), nodes, values; a cuda plan adds
 *           precision, graphs, gpu (name), cc (compute capability), cuda (the library versions
 *           il_cuda_versions and il_cudnn_version name), driver (informative) and fallback (nodes
 *           on the cpu)
 *     GRPH  the graph after passes, as ONNX bytes (initializers inline)
 *     KERN  per live node in file order: u16 length + the kernel's name
 *     MEMP  i64 arena bytes, then per live node output in file order: i64 offset, i64 size
 *     STAT  per node whose kernel saves state: u32 node, u64 length, the bytes
 *   u32 CRC-32 (zlib) of everything before it
 *
 * Integers are little-endian. Loading checks, in this order, that nothing can crash on a
 * truncated or corrupt file: size, magic, format version, CRC, section bounds, then the header
 * against this binary and machine (a plan from another version or CPU is refused, saying what
 * differs; a cuda plan from another GPU or CUDA library version too, and the CPU only matters
 * to it when some node falls back there), then the graph (the importer's own checks), the node count, every kernel name, and
 * every arena offset against the arena's size.
 */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#define IL_PLAN_FORMAT 1
#define MAGIC "ILPLAN\n"
#define MAX_PLAN_BYTES ((uint64_t)1 << 34)

#ifdef IL_HAVE_CUDA
#include "cuda/cuda.h"
#endif

/* ---------------------------------------------------------------- the GPU a cuda plan is for
 *
 * A cuda plan's kernels were chosen and prepared for one GPU and one set of CUDA libraries (as
 * a TensorRT engine is), so it records them and is refused elsewhere. The driver is recorded
 * but not compared: a newer driver runs what an older one ran. */

typedef struct {
    char gpu[128];
    int cc;           /* major * 10 + minor */
    char libs[256];   /* il_cuda_versions() and il_cudnn_version():
                         "driver 13.0, runtime 13.0, cuBLAS 130100, sm_90, cuDNN 9.19.0" */
} gpu_facts;

/* This machine's GPU; 0 and why when there is none. INFERLAB_TEST_DEVICE="NAME|CC|LIBS" stands
 * in for it (tests of the refusals on machines without a GPU; nothing else reads it). */
static int gpu_here(gpu_facts *f, const char **why) {
    const char *fake = getenv("INFERLAB_TEST_DEVICE");
    memset(f, 0, sizeof *f);
    if (fake && *fake) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", fake);
        char *a = strchr(tmp, '|'), *b = a ? strchr(a + 1, '|') : NULL;
        if (!a || !b) { *why = "INFERLAB_TEST_DEVICE is not NAME|CC|LIBS"; return 0; }
        *a = *b = 0;
        snprintf(f->gpu, sizeof f->gpu, "%.127s", tmp);
        f->cc = atoi(a + 1);
        snprintf(f->libs, sizeof f->libs, "%s", b + 1);
        return 1;
    }
#ifdef IL_HAVE_CUDA
    if (!il_cuda_available(why)) return 0;
    snprintf(f->gpu, sizeof f->gpu, "%s", il_cuda_device_name());
    f->cc = il_cuda_cc();
    const char *dnn = il_cudnn_version(); /* "" where cuDNN is missing: its kernels are not offered then */
    snprintf(f->libs, sizeof f->libs, "%s%s%.60s", il_cuda_versions(), dnn[0] ? ", " : "", dnn);
    return 1;
#else
    *why = "this binary was built without CUDA (nvcc was not found when it was built)";
    return 0;
#endif
}

/* Item `key` ("runtime", "cuBLAS", ...) of a ", "-separated version list: its value, or "". */
static const char *lib_item(const char *libs, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    out[0] = 0;
    for (const char *s = libs; s && *s;) {
        while (*s == ' ' || *s == ',') s++;
        size_t len = strcspn(s, ",");
        if (len > kl && !strncmp(s, key, kl) && s[kl] == ' ') {
            snprintf(out, n, "%.*s", (int)(len - kl - 1), s + kl + 1);
            return out;
        }
        s += len;
    }
    return out;
}

/* What differs between the GPU a plan was built for and this one, as "; "-joined phrases
 * ("" when nothing that matters does). Every library of either list is compared except the
 * driver. */
static void gpu_differences(const gpu_facts *plan, const gpu_facts *here, char *out, size_t n) {
    out[0] = 0;
#define ADD(...) snprintf(out + strlen(out), n - strlen(out), "%s", out[0] ? "; " : ""), \
                 snprintf(out + strlen(out), n - strlen(out), __VA_ARGS__)
    if (strcmp(plan->gpu, here->gpu)) ADD("GPU '%s' (plan) vs '%s' (here)", plan->gpu, here->gpu);
    if (plan->cc != here->cc)
        ADD("compute capability %d.%d vs %d.%d", plan->cc / 10, plan->cc % 10, here->cc / 10, here->cc % 10);
    const gpu_facts *side[2] = {plan, here};
    for (int w = 0; w < 2; w++)
        for (const char *s = side[w]->libs; *s;) {
            while (*s == ' ' || *s == ',') s++;
            size_t len = strcspn(s, ","), kl = strcspn(s, " ");
            char key[64], a[96], b[96];
            if (kl < len && kl < sizeof key && strncmp(s, "driver ", 7) && strncmp(s, "sm_", 3)) {
                snprintf(key, sizeof key, "%.*s", (int)kl, s);
                lib_item(plan->libs, key, a, sizeof a);
                lib_item(here->libs, key, b, sizeof b);
                /* each differing library once: from the plan's list, or here's when the plan lacks it */
                if (strcmp(a, b) && (w == 0 || !a[0])) ADD("%s %s vs %s", key, a[0] ? a : "(none)", b[0] ? b : "(none)");
            }
            s += len;
        }
#undef ADD
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *w, const void *p, size_t n) {
    if (w->oom || !n) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 1 << 16;
        while (cap < w->n + n) cap *= 2;
        unsigned char *nb = realloc(w->b, cap);
        if (!nb) { w->oom = 1; return; }
        w->b = nb, w->cap = cap;
    }
    if (n) memcpy(w->b + w->n, p, n); /* p may be NULL for an empty field */
    w->n += n;
}
static void put_u16(buf *w, uint16_t v) { unsigned char b[2] = {v & 255, v >> 8}; put(w, b, 2); }
static void put_u32(buf *w, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 4);
}
static void put_u64(buf *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}
static void section(buf *w, const char *tag, const buf *body) {
    put(w, tag, 4);
    put_u64(w, body->n);
    put(w, body->b, body->n);
}

/* Export position of every live node (-1 for dead ones): the order the ONNX writer uses. */
static int *live_positions(const il_graph *g, int *n_live) {
    int *pos = malloc((size_t)(g->n_nodes + 1) * sizeof *pos), n = 0;
    for (int k = 0; k < g->n_nodes; k++) pos[k] = g->nodes[k].dead ? -1 : n++;
    *n_live = n;
    return pos;
}

il_status il_plan_save(const il_plan *p, const char *path) {
    const il_graph *g = p->g;
    gpu_facts gf;
    const char *why = "";
    if (p->acc && strcmp(p->acc->name, "cuda"))
        return il_error(IL_ERR_UNSUPPORTED, "plan files for the %s backend are not implemented (cpu and cuda plans are)",
                        p->acc->name);
    if (p->acc && !gpu_here(&gf, &why)) return il_error(IL_ERR_CUDA, "saving a cuda plan: %s", why);
    buf w = {0}, head = {0}, kern = {0}, memp = {0}, stat = {0};
    void *onnx = NULL;
    size_t onnx_len = 0;
    il_status st = il_onnx_save_buffer(g, &onnx, &onnx_len);
    if (st) return st;
    int n_live;
    int *pos = live_positions(g, &n_live);
    char h[4096], drv[64];
    int hn = snprintf(h, sizeof h,
                      "inferlab=%s\nbackend=%s\nmachine=%s\nbatch=%lld\nthreads=%d\ntactics=%s\nkernels=%s\nnodes=%d\n"
                      "dims=%s\n",
                      IL_VERSION, p->acc ? p->acc->name : "cpu", il_cpu_signature(),
                      (long long)(p->o.batch > 0 ? p->o.batch : 1), p->o.threads,
                      p->o.tactics == IL_TACTICS_TIMED ? "timed" : "heuristic", p->o.kernels ? p->o.kernels : "", n_live,
                      p->dims_spec ? p->dims_spec : "");
    if (p->acc && hn > 0 && hn < (int)sizeof h)
        hn += snprintf(h + hn, sizeof h - (size_t)hn, "precision=%s\ngraphs=%d\ngpu=%s\ncc=%d\ncuda=%s\ndriver=%s\nfallback=%d\n",
                       il_precision_name(p->o.precision), p->o.graphs ? 1 : 0, gf.gpu, gf.cc, gf.libs,
                       lib_item(gf.libs, "driver", drv, sizeof drv), p->n_fallback);
    if (hn < 0 || hn >= (int)sizeof h) st = il_error(IL_ERR_INVALID, "plan header too long (a long --kernel list?)");
    else put(&head, h, (size_t)hn);
    put_u64(&memp, (uint64_t)p->arena_bytes);
    for (int k = 0; k < g->n_nodes && !st; k++) {
        const il_node *n = &g->nodes[k];
        if (pos[k] < 0) continue;
        const char *name = p->kern[k] ? p->kern[k]->name : "";
        put_u16(&kern, (uint16_t)strlen(name));
        put(&kern, name, strlen(name));
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            put_u64(&memp, (uint64_t)(v >= 0 ? p->offset[v] : -1));
            put_u64(&memp, (uint64_t)(v >= 0 ? p->size[v] : 0));
        }
        if (p->kern[k] && p->kern[k]->save && p->state[k]) {
            void *sb = NULL;
            size_t sl = 0;
            if ((st = p->kern[k]->save(p->state[k], &sb, &sl))) break;
            put_u32(&stat, (uint32_t)pos[k]);
            put_u64(&stat, sl);
            put(&stat, sb, sl);
            free(sb);
        }
    }
    put(&w, MAGIC, 8);
    put_u32(&w, IL_PLAN_FORMAT);
    section(&w, "HEAD", &head);
    section(&w, "GRPH", &(buf){.b = onnx, .n = onnx_len});
    section(&w, "KERN", &kern);
    section(&w, "MEMP", &memp);
    section(&w, "STAT", &stat);
    put_u32(&w, (uint32_t)crc32(0, w.b, (uInt)w.n));
    if (!st && (w.oom || head.oom || kern.oom || memp.oom || stat.oom)) st = il_error(IL_ERR_OOM, "out of memory writing a plan");
    if (!st) {
        FILE *f = fopen(path, "wb");
        if (!f) st = il_error(IL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        else {
            size_t wr = fwrite(w.b, 1, w.n, f);
            if (fclose(f) || wr != w.n) st = il_error(IL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        }
    }
    free(onnx), free(pos), free(w.b), free(head.b), free(kern.b), free(memp.b), free(stat.b);
    return st;
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rd;

static const void *take(rd *r, size_t n) {
    if (r->bad || n > r->n - r->at) { r->bad = 1; return NULL; }
    const void *p = r->p + r->at;
    r->at += n;
    return p;
}
static uint64_t get_le(rd *r, int bytes) {
    const unsigned char *b = take(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; b && i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* The value of "key=" in the header text, copied into out; "" when missing. */
static const char *head_get(const char *head, size_t n, const char *key, char *out, size_t on) {
    size_t kl = strlen(key);
    out[0] = 0;
    for (size_t i = 0; i < n;) {
        const char *line = head + i, *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        if (len > kl && !strncmp(line, key, kl) && line[kl] == '=') {
            size_t vl = len - kl - 1 < on - 1 ? len - kl - 1 : on - 1;
            memcpy(out, line + kl + 1, vl);
            out[vl] = 0;
            return out;
        }
        i += len + 1;
    }
    return out;
}

static il_status read_file(const char *path, unsigned char **data, size_t *len) {
    struct stat sb;
    if (stat(path, &sb)) return il_error(IL_ERR_IO, "cannot open plan %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return il_error(IL_ERR_IO, "plan %s is not a regular file", path);
    if ((uint64_t)sb.st_size > MAX_PLAN_BYTES) return il_error(IL_ERR_PARSE, "plan %s: too large", path);
    FILE *f = fopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "cannot open plan %s: %s", path, strerror(errno));
    *data = malloc((size_t)sb.st_size + 1);
    *len = *data ? fread(*data, 1, (size_t)sb.st_size, f) : 0;
    fclose(f);
    if (!*data) return il_error(IL_ERR_OOM, "out of memory reading plan %s", path);
    if (*len != (size_t)sb.st_size) {
        free(*data);
        return il_error(IL_ERR_IO, "plan %s: short read", path);
    }
    return IL_OK;
}

int il_plan_file_is(const char *path) {
    FILE *f = fopen(path, "rb");
    char m[8] = {0};
    int yes = f && fread(m, 1, 8, f) == 8 && !memcmp(m, MAGIC, 8);
    if (f) fclose(f);
    return yes;
}

/* The file read and its container checked (magic, format, checksum, section bounds): sec/sl get
 * the five sections (STAT may be missing); *data is the caller's to free. */
enum { S_HEAD, S_GRPH, S_KERN, S_MEMP, S_STAT, N_SEC };
static il_status open_sections(const char *path, unsigned char **data, const unsigned char *sec[N_SEC],
                               size_t sl[N_SEC]) {
    size_t len = 0;
    il_status st = read_file(path, data, &len);
    if (st) return st;
    rd r = {*data, len, 0, 0};
    const void *magic = take(&r, 8);
    if (!magic || memcmp(magic, MAGIC, 8)) return il_error(IL_ERR_PARSE, "%s is not an inferlab plan (no ILPLAN magic)", path);
    uint32_t fmt = (uint32_t)get_le(&r, 4);
    if (fmt != IL_PLAN_FORMAT)
        return il_error(IL_ERR_UNSUPPORTED, "plan %s has format %u, this inferlab reads format %d: rebuild it with "
                                            "inferlab build", path, fmt, IL_PLAN_FORMAT);
    const unsigned char *d = *data;
    if (len < 16 || crc32(0, d, (uInt)(len - 4)) != (uint32_t)(d[len - 4] | d[len - 3] << 8 | d[len - 2] << 16 |
                                                               (uint32_t)d[len - 1] << 24))
        return il_error(IL_ERR_PARSE, "plan %s is truncated or corrupt (checksum mismatch)", path);
    r.n = len - 4;
    static const char *tags[N_SEC] = {"HEAD", "GRPH", "KERN", "MEMP", "STAT"};
    for (int i = 0; i < N_SEC; i++) sec[i] = NULL, sl[i] = 0;
    while (r.at < r.n && !r.bad) {
        const char *tag = take(&r, 4);
        uint64_t n = get_le(&r, 8);
        const unsigned char *body = n <= r.n - r.at ? take(&r, (size_t)n) : (r.bad = 1, NULL);
        for (int i = 0; tag && body && i < N_SEC; i++)
            if (!memcmp(tag, tags[i], 4)) sec[i] = body, sl[i] = (size_t)n;
    }
    for (int i = 0; i < N_SEC && !r.bad; i++)
        if (!sec[i] && i != S_STAT) r.bad = 1;
    return r.bad ? il_error(IL_ERR_PARSE, "plan %s: malformed sections", path) : IL_OK;
}

/* A cuda plan against this machine's GPU: refused without one, or when the GPU or a CUDA
 * library differs, saying what. */
static il_status check_gpu(const char *path, const char *head, size_t hl) {
    gpu_facts plan, here;
    char tmp[64];
    const char *why = "unknown";
    memset(&plan, 0, sizeof plan);
    head_get(head, hl, "gpu", plan.gpu, sizeof plan.gpu);
    plan.cc = atoi(head_get(head, hl, "cc", tmp, sizeof tmp));
    head_get(head, hl, "cuda", plan.libs, sizeof plan.libs);
    if (!gpu_here(&here, &why))
        return il_error(IL_ERR_UNSUPPORTED, "plan %s is for the cuda backend (built on '%s', compute capability %d.%d), "
                        "and this machine has no usable GPU: %s", path, plan.gpu, plan.cc / 10, plan.cc % 10, why);
    char diff[1024];
    gpu_differences(&plan, &here, diff, sizeof diff);
    if (diff[0])
        return il_error(IL_ERR_UNSUPPORTED, "plan %s was built for another GPU or CUDA libraries (%s): rebuild it here "
                        "with inferlab build --backend cuda", path, diff);
    return IL_OK;
}

/* The header against this binary and machine; po gets what the header fixes (backend,
 * precision, graphs, batch, threads unless given, dims into binds/bnames). */
static il_status check_head(const char *path, const char *head, size_t hl, il_plan_opts *po) {
    char v[512], tmp[512];
    if (strcmp(head_get(head, hl, "inferlab", v, sizeof v), IL_VERSION))
        return il_error(IL_ERR_UNSUPPORTED, "plan %s was built by inferlab %s, this is inferlab %s: rebuild it", path,
                        v[0] ? v : "(unknown)", IL_VERSION);
    head_get(head, hl, "backend", v, sizeof v);
    int cuda = !strcmp(v, "cuda");
    if (strcmp(v, "cpu") && !cuda)
        return il_error(IL_ERR_UNSUPPORTED, "plan %s is for backend '%s', which this binary cannot load", path, v);
    il_status st = cuda ? check_gpu(path, head, hl) : IL_OK;
    if (st) return st;
    /* cpu kernels' packed state and ISA: a cuda plan with every node on the GPU has none */
    int cpu_nodes = !cuda || atoi(head_get(head, hl, "fallback", tmp, sizeof tmp)) > 0;
    if (cpu_nodes && strcmp(head_get(head, hl, "machine", v, sizeof v), il_cpu_signature()))
        return il_error(IL_ERR_UNSUPPORTED, "plan %s was built for another machine (%s); this one is %s: rebuild it here",
                        path, v, il_cpu_signature());
    po->backend = cuda ? IL_BACKEND_CUDA : IL_BACKEND_CPU;
    po->precision = IL_PREC_FP32;
    po->graphs = 0;
    if (cuda) {
        int prec = il_precision_parse(head_get(head, hl, "precision", tmp, sizeof tmp));
        if (prec < 0) return il_error(IL_ERR_PARSE, "plan %s: unknown precision '%s'", path, tmp);
        po->precision = prec;
        po->graphs = atoi(head_get(head, hl, "graphs", tmp, sizeof tmp)) != 0;
    }
    return IL_OK;
}

il_status il_plan_file_read(const char *path, char *head, size_t n, il_graph **g) {
    unsigned char *data = NULL;
    const unsigned char *sec[N_SEC];
    size_t sl[N_SEC];
    if (g) *g = NULL;
    il_status st = open_sections(path, &data, sec, sl);
    if (!st && head && n) snprintf(head, n, "%.*s", (int)(sl[S_HEAD] < n ? sl[S_HEAD] : n - 1), (const char *)sec[S_HEAD]);
    if (!st && g && (st = il_onnx_load_buffer(sec[S_GRPH], sl[S_GRPH], NULL, g))) il_error_wrap(st, "plan %s: ", path);
    free(data);
    return st;
}

il_status il_plan_load(const char *path, const il_plan_opts *o, il_plan **out) {
    *out = NULL;
    unsigned char *data = NULL;
    const unsigned char *sec[N_SEC];
    size_t sl[N_SEC];
    il_plan_opts po = o ? *o : (il_plan_opts){0};
    il_status st = open_sections(path, &data, sec, sl);
    const char *head = (const char *)sec[S_HEAD];
    if (!st) st = check_head(path, head, sl[S_HEAD], &po);
    if (st) {
        free(data);
        return st;
    }
    char tmp[512];
    il_graph *g;
    if ((st = il_onnx_load_buffer(sec[1], sl[1], NULL, &g))) {
        free(data);
        return il_error_wrap(st, "plan %s: ", path);
    }
    long long nodes = atoll(head_get(head, sl[0], "nodes", tmp, sizeof tmp));
    const char **names = calloc((size_t)g->n_nodes + 1, sizeof *names);
    char *namebuf = calloc(sl[2] + (size_t)g->n_nodes + 1, 1), *nb = namebuf;
    rd kr = {sec[2], sl[2], 0, 0};
    for (int k = 0; k < g->n_nodes && !kr.bad; k++) {
        size_t n = (size_t)get_le(&kr, 2);
        const char *s = take(&kr, n);
        if (!s) break;
        memcpy(nb, s, n);
        names[k] = nb;
        nb += n + 1;
    }
    if (nodes != g->n_nodes || kr.bad || kr.at != kr.n) { /* an imported graph has no dead nodes */
        st = il_error(IL_ERR_PARSE, "plan %s: its kernel list does not match its graph", path);
        goto fail;
    }
    po.batch = atoll(head_get(head, sl[0], "batch", tmp, sizeof tmp));
    if (!po.threads) po.threads = atoi(head_get(head, sl[0], "threads", tmp, sizeof tmp));
    /* symbolic dims bound at build ("name=v,..."): the same shapes, so the stored layout fits */
    il_bind binds[16];
    static char bnames[16][64];
    head_get(head, sl[0], "dims", tmp, sizeof tmp);
    po.n_binds = il_plan_parse_dims(tmp, binds, bnames, 16);
    po.binds = binds;
    po.tactics = IL_TACTICS_HEURISTIC;
    po.kernels = NULL;
    po.reference = 0;
    il_plan *p;
    if ((st = il_plan_create_named(g, &po, names, sec[3], sl[3], &p))) {
        il_error_wrap(st, "plan %s: ", path);
        goto fail;
    }
    p->own_graph = g;
    g = NULL;
    /* saved state replaces what prepare made at create */
    rd sr = {sec[4], sl[4], 0, 0};
    while (sec[4] && sr.at < sr.n && !sr.bad && !st) {
        uint32_t k = (uint32_t)get_le(&sr, 4);
        uint64_t n = get_le(&sr, 8);
        const void *b = n <= sr.n - sr.at ? take(&sr, (size_t)n) : (sr.bad = 1, NULL);
        if (!b || k >= (uint32_t)p->g->n_nodes || !p->kern[k] || !p->kern[k]->load) { sr.bad = 1; break; }
        il_tensor inb[64], *in[64], outb[16], *outp[16];
        il_kctx c;
        il_plan_node_view(p, (int)k, inb, in, outb, outp, &c);
        void *state = NULL;
        if ((st = p->kern[k]->load(&c, b, (size_t)n, &state))) break;
        if (p->state[k] && p->kern[k]->release) p->kern[k]->release(p->state[k]);
        p->state[k] = state;
    }
    if (sr.bad && !st) st = il_error(IL_ERR_PARSE, "plan %s: malformed kernel state", path);
    if (st) {
        il_plan_free(p);
        goto fail;
    }
    free(names), free(namebuf), free(data);
    *out = p;
    return IL_OK;
fail:
    il_graph_free(g);
    free(names), free(namebuf), free(data);
    return st;
}

/* ---------------------------------------------------------------- memory plan */

il_status il_plan_apply_memplan(il_plan *p, const void *mp, size_t len) {
    const il_graph *g = p->g;
    rd r = {mp, len, 0, 0};
    int64_t arena = (int64_t)get_le(&r, 8);
    if (r.bad || arena < 0 || (uint64_t)arena > MAX_PLAN_BYTES) return il_error(IL_ERR_PARSE, "bad arena size");
    for (int v = 0; v < g->n_values; v++) p->offset[v] = -1;
    for (int k = 0; k < g->n_nodes && !r.bad; k++) {
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_outputs && !r.bad; i++) {
            int64_t off = (int64_t)get_le(&r, 8), size = (int64_t)get_le(&r, 8);
            int vi = n->outputs[i];
            if (vi < 0) continue;
            /* the planned size must be what this shape needs, and the slot inside the arena */
            if (off >= 0 && (size != p->size[vi] || size < 0 || off > arena || size > arena - off)) r.bad = 1;
            p->offset[vi] = off >= 0 ? off : -1;
        }
    }
    if (r.bad || r.at != r.n) return il_error(IL_ERR_PARSE, "its memory plan does not match its graph");
    p->arena_bytes = arena;
    return IL_OK;
}

int il_plan_parse_dims(const char *spec, il_bind *binds, char (*names)[64], int max) {
    int n = 0;
    for (const char *s = spec ? spec : "", *e; *s && n < max; s = e + (*e ? 1 : 0)) {
        e = s + strcspn(s, ",");
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq || eq - s >= 64) break;
        memcpy(names[n], s, (size_t)(eq - s));
        names[n][eq - s] = 0;
        binds[n] = (il_bind){names[n], atoll(eq + 1)};
        n++;
    }
    return n;
}
