/*
 * tactics.c - which kernel runs each node of a plan (TensorRT calls the candidates tactics).
 *
 * Per live node, in this order:
 *  1. a kernel forced by name (il_plan_opts.kernels "Conv=ref,FusedConv=im2col-blas", or "*=NAME"
 *     for every node that has such a kernel; `reference` forces "ref" everywhere);
 *  2. IL_TACTICS_HEURISTIC: the supported candidate with the highest priority;
 *  3. IL_TACTICS_TIMED: every supported candidate but "ref" is prepared and run on the node's real shapes
 *     (its constant inputs, random data for the rest) and the fastest kept. A timing cache file
 *     remembers the winner per (op, opset, backend, threads, input dtypes and shapes, constant
 *     inputs, attributes) for the machine it was measured on (CPU model and ISA in its first
 *     line): a second build of the same model times nothing, and a cache from another machine
 *     is ignored (and rewritten for this one).
 */
#include "tactics_int.h"

#include <errno.h>
#include <unistd.h>
#include <stdio.h>

#define MAX_CAND 32

/* ---------------------------------------------------------------- machine */

const char *il_cpu_signature(void) {
    static char sig[512];
    if (sig[0]) return sig;
    char model[256] = "unknown", line[4096];
    int avx2 = 0, avx512f = 0, vnni = 0, amx = 0, fma = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown")) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = 0;
            }
        } else if (!strncmp(line, "flags", 5)) {
            avx2 = strstr(line, " avx2") != NULL;
            fma = strstr(line, " fma") != NULL;
            avx512f = strstr(line, " avx512f") != NULL;
            vnni = strstr(line, " avx512_vnni") != NULL || strstr(line, " avx_vnni") != NULL;
            amx = strstr(line, " amx_tile") != NULL;
        }
    }
    if (f) fclose(f);
    snprintf(sig, sizeof sig, "cpu:%s|%s%s%s%s%s", model, fma ? "fma," : "", avx2 ? "avx2," : "",
             avx512f ? "avx512f," : "", vnni ? "vnni," : "", amx ? "amx," : "");
    return sig;
}

/* ---------------------------------------------------------------- forced kernels */

/* The name forced for op type `op` by spec ("A=x,B=y", "*=x"), copied into buf; NULL if none.
 * *wild tells whether it came from "*". */
static const char *forced_name(const char *spec, const char *op, char *buf, size_t n, int *wild) {
    *wild = 0;
    if (!spec) return NULL;
    const char *found = NULL;
    size_t oplen = strlen(op);
    for (const char *s = spec; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq) {
            size_t kl = (size_t)(eq - s);
            int exact = kl == oplen && !strncmp(s, op, kl), star = kl == 1 && *s == '*';
            if (exact || (star && !found)) {
                size_t vl = len - kl - 1 < n - 1 ? len - kl - 1 : n - 1;
                memcpy(buf, eq + 1, vl);
                buf[vl] = 0;
                found = buf;
                *wild = !exact;
                if (exact) return found;
            }
        }
        s += len + (end ? 1 : 0);
    }
    return found;
}

il_status il_kernel_spec_check(const char *spec) {
    for (const char *s = spec ? spec : ""; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (!eq || eq == s || eq == s + len - 1)
            return il_error(IL_ERR_INVALID, "--kernel '%.*s': expected OP=NAME (or *=NAME)", (int)len, s);
        char op[128];
        snprintf(op, sizeof op, "%.*s", (int)(eq - s), s);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len - (size_t)(eq - s) - 1), eq + 1);
        if (strcmp(op, "*")) {
            /* the op may live in any domain: accept it when some domain has it */
            int n, ok = 0;
            const il_kernel *const *all = il_kernel_all(&n);
            for (int i = 0; i < n && !ok; i++) ok = !strcmp(all[i]->op, op) && !strcmp(all[i]->name, name);
            if (!ok) {
                char names[512] = "";
                for (int i = 0; i < n; i++)
                    if (!strcmp(all[i]->op, op) && !strstr(names, all[i]->name) && strlen(names) < 400)
                        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "",
                                 all[i]->name);
                return il_error(IL_ERR_INVALID, "--kernel %s=%s: %s", op, name,
                                names[0] ? "no kernel of that name for the op" : "no such op");
            }
        }
        s += len + (end ? 1 : 0);
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- timing cache */

typedef il_tcache tcache;

void il_tcache_put(tcache *c, const char *key, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) {
            free(c->names[i]);
            c->names[i] = strdup(name);
            c->dirty = 1;
            return;
        }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->keys = realloc(c->keys, (size_t)c->cap * sizeof *c->keys);
        c->names = realloc(c->names, (size_t)c->cap * sizeof *c->names);
    }
    c->keys[c->n] = strdup(key);
    c->names[c->n++] = strdup(name);
    c->dirty = 1;
}

const char *il_tcache_get(const tcache *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) return c->names[i];
    return NULL;
}

int il_tcache_from_file(const tcache *c, const char *key) {
    for (int i = 0; i < c->loaded; i++)
        if (!strcmp(c->keys[i], key)) return 1;
    return 0;
}

static void cache_free(tcache *c) {
    for (int i = 0; i < c->n; i++) free(c->keys[i]), free(c->names[i]);
    free(c->keys);
    free(c->names);
}

#define CACHE_MAGIC "inferlab-timing-cache 1"

/* Lines after the header: KEY \t KERNEL. A file for another machine (or garbage) loads nothing. */
static void cache_load(tcache *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    char want[640];
    snprintf(want, sizeof want, "%s %s\n", CACHE_MAGIC, il_cpu_signature());
    if (len > 0 && !strcmp(line, want)) {
        while ((len = getline(&line, &cap, f)) > 0) {
            line[strcspn(line, "\n")] = 0;
            char *tab = strrchr(line, '\t');
            if (!tab || tab == line || !tab[1]) continue;
            *tab = 0;
            il_tcache_put(c, line, tab + 1);
        }
    }
    c->dirty = 0;
    c->loaded = c->n;
    free(line);
    fclose(f);
}

static il_status cache_save(const tcache *c, const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return il_error(IL_ERR_IO, "timing cache %s: %s", tmp, strerror(errno));
    fprintf(f, "%s %s\n", CACHE_MAGIC, il_cpu_signature());
    for (int i = 0; i < c->n; i++) fprintf(f, "%s\t%s\n", c->keys[i], c->names[i]);
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return il_error(IL_ERR_IO, "timing cache %s: %s", path, strerror(errno));
    }
    return IL_OK;
}

/* What makes two nodes time alike: op, opset, backend, threads, inputs (dtype, shape, constant or
 * not) and attributes. No tabs or newlines (the file's separators). */
void il_tactics_node_key(const il_kctx *c, const char *backend, char *key, size_t n) {
    const il_node *nd = c->node;
    size_t o = 0;
#define PUT(...) (o += (size_t)snprintf(key + o, o < n ? n - o : 0, __VA_ARGS__))
    PUT("%s:%s/%lld %s t%d", nd->domain, nd->op_type, (long long)c->opset, backend, c->threads);
    for (int i = 0; i < c->n_in; i++) {
        const il_tensor *t = c->in[i];
        if (!t) { PUT(" -"); continue; }
        char b[160];
        PUT(" %s%s", il_shape_str(t->rank, t->dims, b, sizeof b), (c->const_mask >> i) & 1 ? "c" : "");
    }
    for (int a = 0; a < nd->n_attrs; a++) {
        const il_attr *at = &nd->attrs[a];
        PUT(" %s=", at->name);
        switch (at->type) {
        case IL_ATTR_INT: PUT("%lld", (long long)at->i); break;
        case IL_ATTR_FLOAT: PUT("%.9g", at->f); break;
        case IL_ATTR_STRING: PUT("%.40s", at->s ? at->s : ""); break;
        case IL_ATTR_INTS:
            for (int j = 0; j < at->n; j++) PUT("%s%lld", j ? "." : "", (long long)at->ints[j]);
            break;
        case IL_ATTR_FLOATS:
            for (int j = 0; j < at->n; j++) PUT("%s%.9g", j ? "_" : "", at->floats[j]);
            break;
        default: PUT("?%d", (int)at->type); break;
        }
    }
#undef PUT
    for (char *s = key; *s; s++)
        if (*s == '\t' || *s == '\n' || *s == '\r') *s = ' ';
}

/* ---------------------------------------------------------------- timing */

/* A tensor of v's shape whose buffer can hold it in the native layout (il_blocked_bytes, more
 * than the plain bytes where channels are padded). Only for timing: the random fill may land in
 * padding that a native layout wants zero, and the outputs are thrown away. */
static il_tensor *native_tensor(const il_tensor *v, int native) {
    size_t plain = il_tensor_bytes(v);
    if (!native || il_blocked_bytes(v) <= plain) return il_tensor_new(v->dtype, v->rank, v->dims);
    int64_t one = (int64_t)((il_blocked_bytes(v) + il_dtype_size(v->dtype) - 1) / il_dtype_size(v->dtype));
    il_tensor *t = il_tensor_new(v->dtype, 1, &one);
    if (!t) return NULL;
    t->rank = v->rank; /* the logical shape over the larger buffer: numel only shrinks */
    memcpy(t->dims, v->dims, sizeof t->dims);
    return t;
}

/* Seconds per run of kernel kn on node k (the minimum of a few runs after one warm-up), or a
 * negative value when it cannot be timed here (unknown shapes, data-dependent outputs, the
 * kernel failing on random data). */
static double time_kernel(il_plan *p, int k, const il_kernel *kn, const il_kctx *view) {
    const il_node *n = &p->g->nodes[k];
    if (p->ops[k]->flags & IL_OPF_DYNAMIC_OUT) return -1;
    il_tensor *in[64] = {0}, *out[16] = {0}, *mine[64] = {0};
    double best = -1;
    void *state = NULL, *ws = NULL;
    size_t wsb = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)k;
    /* a kernel that can keep its activations in the native layout is timed as it runs inside a
     * chain of such kernels (plan_layout.c), without the reorders a plain neighbour would cost it:
     * timed in plain layouts, it lost every cheap conv to a plain kernel, which broke the chains */
    uint32_t bin = 0, bout = 0;
    if (kn->layouts) kn->layouts(view, &bin, &bout);
    bin &= ~(uint32_t)view->const_mask;
    for (int i = 0; i < n->n_inputs; i++) {
        const il_tensor *v = view->in[i];
        if (!v) continue;
        if (!il_shape_known(v) || !il_dtype_size(v->dtype)) goto out;
        if (v->data) { in[i] = (il_tensor *)v; continue; }
        if (!(mine[i] = native_tensor(v, i < 32 && (bin >> i & 1)))) goto out;
        il_tensor_fill_input(mine[i], &rng);
        in[i] = mine[i];
    }
    for (int i = 0; i < n->n_outputs; i++) {
        const il_tensor *v = view->out[i];
        if (!v) continue;
        if (!il_shape_known(v) || !il_dtype_size(v->dtype) || !(out[i] = native_tensor(v, i < 32 && (bout >> i & 1))))
            goto out;
    }
    il_kctx c = *view;
    c.blocked_in = bin;
    c.blocked_out = bout;
    c.in = in;
    c.out = out;
    if (kn->prepare && kn->prepare(&c, &state, &wsb)) goto out;
    if (wsb && !(ws = aligned_alloc(64, (wsb + 63) / 64 * 64))) goto out;
    c.state = state;
    c.workspace = ws;
    c.workspace_bytes = wsb;
    il_set_threads(p->o.threads);
    if (kn->run(&c)) goto out;
    double total = 0;
    for (int r = 0; r < 20 && (r < 3 || total < 0.02); r++) {
        double t0 = il_now();
        if (kn->run(&c)) { best = -1; goto out; }
        double dt = il_now() - t0;
        total += dt;
        if (best < 0 || dt < best) best = dt;
    }
out:
    il_error_clear();
    if (state && kn->release) kn->release(state);
    free(ws);
    for (int i = 0; i < n->n_inputs; i++) il_tensor_free(mine[i]);
    for (int i = 0; i < n->n_outputs; i++) il_tensor_free(out[i]);
    return best;
}

/* ---------------------------------------------------------------- choice */

static il_status choose(il_plan *p, int k, tcache *cache) {
    const il_node *n = &p->g->nodes[k];
    il_tensor inb[64], *in[64], outb[16], *out[16];
    if (n->n_inputs > 64 || n->n_outputs > 16)
        return il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): more than 64 inputs or 16 outputs", n->name, n->op_type);
    il_kctx c;
    il_plan_node_view(p, k, inb, in, outb, out, &c);
    /* the plan's accelerator first (when it has one); the cpu takes what it cannot */
    const char *backend = "cpu";
    const il_kernel *cand[MAX_CAND], *ok[MAX_CAND];
    int nc = 0, nok = 0;
    if (p->acc && !p->s->folded[k] && !p->o.reference) {
        nc = il_kernels_of(n->domain, n->op_type, p->acc->name, c.opset, cand, MAX_CAND);
        for (int i = 0; i < nc; i++)
            if (il_kernel_accepts(cand[i], &c)) ok[nok++] = cand[i];
        if (nok) backend = p->acc->name, p->on_acc[k] = 1, p->n_acc_nodes++;
        else p->n_fallback++;
    }
    if (!nok) {
        nc = il_kernels_of(n->domain, n->op_type, backend, c.opset, cand, MAX_CAND);
        for (int i = 0; i < nc; i++)
            if (il_kernel_accepts(cand[i], &c)) ok[nok++] = cand[i];
    }
    if (p->names && p->names[k] && p->names[k][0]) { /* a plan file's choice */
        const il_kernel *kn = il_kernel_find(n->domain, n->op_type, backend, p->names[k]);
        if (!kn && p->on_acc[k] && (kn = il_kernel_find(n->domain, n->op_type, "cpu", p->names[k])))
            p->on_acc[k] = 0, p->n_acc_nodes--, p->n_fallback++; /* built with a cpu kernel forced by name */
        if (!kn)
            return il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s) runs kernel '%s', which this build does not have",
                            n->name, n->op_type, p->names[k]);
        p->kern[k] = kn;
        return IL_OK;
    }
    char buf[128];
    int wild = 0;
    const char *want = p->o.reference ? "ref" : forced_name(p->o.kernels, n->op_type, buf, sizeof buf, &wild);
    if (want) {
        const il_kernel *kn = il_kernel_find(n->domain, n->op_type, backend, want);
        if (kn && il_kernel_accepts(kn, &c)) {
            p->kern[k] = kn;
            return IL_OK;
        }
        if (p->on_acc[k]) { /* a cpu kernel forced by name moves the node back to the cpu */
            const il_kernel *kc = il_kernel_find(n->domain, n->op_type, "cpu", want);
            if (kc && il_kernel_accepts(kc, &c)) {
                p->on_acc[k] = 0, p->n_acc_nodes--, p->n_fallback++;
                p->kern[k] = kc;
                return IL_OK;
            }
        }
        if (!wild && !p->o.reference)
            return il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): kernel '%s' %s", n->name, n->op_type, want,
                            kn ? "does not support this node (dtype or shape)" : "does not exist for this op");
    }
    if (!nok)
        return il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): no %s kernel supports it (%d registered)", n->name,
                        n->op_type, backend, nc);
    const il_kernel *best = ok[0];
    for (int i = 1; i < nok; i++)
        if (ok[i]->priority >= best->priority) best = ok[i];
    p->kern[k] = best;
    /* accelerator kernels are not timed here (their data would have to live on the device) */
    if (p->o.tactics != IL_TACTICS_TIMED || nok < 2 || p->s->folded[k] || p->on_acc[k]) return IL_OK;

    struct il_tactic_info *ti = &p->tinfo[k];
    *ti = (struct il_tactic_info){.heur = best, .alone = -1, .heur_alone = -1};
    char key[2048];
    il_tactics_node_key(&c, backend, key, sizeof key);
    const char *hit = il_tcache_get(cache, key);
    if (hit)
        for (int i = 0; i < nok; i++)
            if (!strcmp(ok[i]->name, hit)) {
                p->kern[k] = ok[i];
                p->n_cached++;
                ti->cached = 1;
                snprintf(ti->why, sizeof ti->why, "alone: %s (%s)", hit,
                         il_tcache_from_file(cache, key) ? "timing cache" : "as an identical node before");
                return IL_OK;
            }
    double tbest = -1, tprio = -1;
    const il_tactic_timer *tm = il_tactics_timer();
    for (int i = 0; i < nok; i++) {
        /* the reference is the readable oracle, never the fast choice, and timing it on a big layer
         * cost most of a build (ResNet-18: 90 s of timed build, nearly all of it in ref) */
        if (!strcmp(ok[i]->name, "ref")) continue;
        double t = tm && tm->alone ? tm->alone(p, k, ok[i], tm->user) : time_kernel(p, k, ok[i], &c);
        if (ok[i] == best) tprio = t;
        if (t >= 0 && (tbest < 0 || t < tbest)) tbest = t, p->kern[k] = ok[i];
    }
    /* the heuristic's pick stays unless another kernel is more than 5% faster: noise on a shared
     * machine flipped near-ties (ResNet-18 INT8 at batch 32: half the residual Adds went to the
     * plain "int8" kernel, as fast as the channels-last "dnnl" one, and broke the chains there) */
    if (tprio >= 0 && tbest >= 0.95 * tprio) p->kern[k] = best, tbest = tprio;
    p->n_timed++;
    ti->alone = tbest;
    ti->heur_alone = tprio;
    if (p->kern[k] == best)
        snprintf(ti->why, sizeof ti->why, "alone: %s %.3f ms (the heuristic's pick; none 5%% faster)", best->name,
                 tbest * 1e3);
    else
        snprintf(ti->why, sizeof ti->why, "alone: %s %.3f ms < %s %.3f ms", p->kern[k]->name, tbest * 1e3, best->name,
                 tprio * 1e3);
    if (tbest >= 0) il_tcache_put(cache, key, p->kern[k]->name);
    return IL_OK;
}

il_status il_plan_choose_kernels(il_plan *p) {
    il_status st = il_kernel_spec_check(p->o.kernels);
    if (st) return st;
    tcache cache = {0};
    int timed = p->o.tactics == IL_TACTICS_TIMED && !p->names;
    free(p->tinfo);
    p->tinfo = timed ? calloc((size_t)p->g->n_nodes + 1, sizeof *p->tinfo) : NULL;
    if (timed && !p->tinfo) return il_error(IL_ERR_OOM, "out of memory choosing kernels");
    if (timed && p->o.timing_cache) cache_load(&cache, p->o.timing_cache);
    for (int j = 0; j < p->n_order && !st; j++) st = choose(p, p->order[j], &cache);
    if (!st && timed) st = il_tactics_charge(p, &cache);
    if (!st && cache.dirty && p->o.timing_cache) st = cache_save(&cache, p->o.timing_cache);
    cache_free(&cache);
    return st;
}
