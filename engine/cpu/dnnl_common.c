/*
 * dnnl_common.c - what the oneDNN kernels share (declared in dnnl_int.h): the engine and stream,
 * errors, thread scoping, plain layouts, activations as post-ops, steps and weight packing.
 * oneDNN is Debian's libdnnl (2.6 on Debian 12), built on the same OpenMP runtime (libgomp) as
 * inferlab, so its parallel regions run on our thread pool rather than a second one.
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <strings.h>

#if __has_include(<oneapi/dnnl/dnnl_debug.h>)
#include <oneapi/dnnl/dnnl_debug.h>
#else
#include <dnnl_debug.h>
#endif

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_engine(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        engine = NULL;
        return;
    }
    if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) stream = NULL;
}

dnnl_engine_t il_dnnl_engine(void) {
    pthread_once(&once, make_engine);
    return engine;
}

dnnl_stream_t il_dnnl_stream(void) {
    pthread_once(&once, make_engine);
    return stream;
}

il_status il_dnnl_err(const il_kctx *c, dnnl_status_t s, const char *what) {
    il_status st = s == dnnl_out_of_memory ? IL_ERR_OOM : s == dnnl_unimplemented ? IL_ERR_UNSUPPORTED : IL_ERR_INTERNAL;
    /* the call as written, up to its first '(' : "dnnl_primitive_desc_create" */
    int len = 0;
    while (what[len] && what[len] != '(') len++;
    return il_kerr(c, st, "oneDNN %.*s failed: %s", len, what, dnnl_status2str(s));
}

int il_dnnl_threads_enter(int want) {
    int saved = omp_get_max_threads();
    if (want > 0 && want != saved) omp_set_num_threads(want);
    return saved;
}

/* The bound of il_dnnl_use_threads (dnnl_int.h says how it was chosen): IL_DNNL_SERIAL_MACS
 * where OpenMP's idle threads sleep (OMP_WAIT_POLICY=passive: waking one is a futex call),
 * IL_DNNL_SERIAL_MACS_SPIN where they spin (libgomp's default, and `--wait spin`). The
 * environment's INFERLAB_DNNL_SERIAL_MACS replaces both, to measure another (and, read at each
 * prepare, lets a test thread every node). */
double il_dnnl_serial_macs(void) {
    const char *e = getenv("INFERLAB_DNNL_SERIAL_MACS"), *pol = getenv("OMP_WAIT_POLICY");
    return e && *e ? atof(e) : pol && !strcasecmp(pol, "passive") ? IL_DNNL_SERIAL_MACS : IL_DNNL_SERIAL_MACS_SPIN;
}

int il_dnnl_env_on(const char *name) {
    const char *e = getenv(name);
    return !(e && *e == '0');
}

void il_dnnl_use_threads(const il_kctx *c, il_dnnl_state *s, double macs) {
    s->threads = c->threads > 1 && macs < il_dnnl_serial_macs() ? 1 : c->threads;
    if (s->threads > 0) omp_set_num_threads(s->threads);
}

void il_dnnl_threads_leave(int saved) {
    if (omp_get_max_threads() != saved) omp_set_num_threads(saved);
}

dnnl_format_tag_t il_dnnl_plain_tag(int rank) {
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    return rank >= 1 && rank <= 6 ? tags[rank] : dnnl_format_tag_undef;
}

il_status il_dnnl_plain_md(const il_kctx *c, dnnl_memory_desc_t *md, int rank, const int64_t *dims) {
    if (rank < 1 || rank > 6) return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN kernels take ranks 1 to 6, not %d", rank);
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    IL_DNNL(c, dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, il_dnnl_plain_tag(rank)));
    return IL_OK;
}

int il_dnnl_act_post_ops(const il_act *a, dnnl_post_ops_t po) {
    dnnl_status_t s = dnnl_success;
    switch (a->kind) {
    case IL_ACT_NONE: return 1;
    case IL_ACT_RELU: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f); break;
    case IL_ACT_LEAKY: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, a->a, 0.0f); break;
    case IL_ACT_CLIP: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, a->a, a->b); break;
    case IL_ACT_SIGMOID: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f); break;
    case IL_ACT_HSWISH: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_hardswish, 0.0f, 0.0f); break;
    case IL_ACT_HSIGMOID: /* oneDNN 2.6 has no hardsigmoid: clip(alpha*x + beta, 0, 1) */
        s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, a->a, a->b);
        if (s == dnnl_success) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 1.0f);
        break;
    case IL_ACT_GELU: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f); break;
    case IL_ACT_GELU_TANH: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f); break;
    case IL_ACT_TANH: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_tanh, 0.0f, 0.0f); break;
    case IL_ACT_SILU: s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f); break;
    default: return 0;
    }
    return s == dnnl_success;
}

il_status il_dnnl_step_make(const il_kctx *c, il_dnnl_step *st, const_dnnl_primitive_desc_t pd) {
    memset(st, 0, sizeof *st);
    IL_DNNL(c, dnnl_primitive_create(&st->prim, pd));
    return IL_OK;
}

il_status il_dnnl_step_arg(const il_kctx *c, il_dnnl_step *st, int arg, const dnnl_memory_desc_t *md) {
    if (st->n == IL_DNNL_MAX_ARGS) return il_kerr(c, IL_ERR_INTERNAL, "oneDNN step: too many arguments");
    dnnl_memory_t m;
    IL_DNNL(c, dnnl_memory_create(&m, md, il_dnnl_engine(), DNNL_MEMORY_NONE));
    st->args[st->n++] = (dnnl_exec_arg_t){arg, m};
    return IL_OK;
}

void il_dnnl_step_set(il_dnnl_step *st, int arg, void *ptr) {
    for (int i = 0; i < st->n; i++)
        if (st->args[i].arg == arg)
            dnnl_memory_set_data_handle_v2(st->args[i].memory, ptr, st->stream ? st->stream : il_dnnl_stream());
}

il_status il_dnnl_step_run(const il_kctx *c, il_dnnl_step *st) {
    IL_DNNL(c, dnnl_primitive_execute(st->prim, st->stream ? st->stream : il_dnnl_stream(), st->n, st->args));
    return IL_OK;
}

il_status il_dnnl_exec(const il_kctx *c, il_dnnl_step *st) {
    int saved = il_dnnl_threads_enter(((const il_dnnl_state *)c->state)->threads);
    il_status s = il_dnnl_step_run(c, st);
    il_dnnl_threads_leave(saved);
    return s;
}

void il_dnnl_release(void *state) {
    il_dnnl_state *s = state;
    if (!s) return;
    for (int i = 0; s->more && i < s->workers - 1; i++) {
        il_dnnl_state *m = &s->more[i];
        dnnl_stream_t own = m->main.stream;
        il_dnnl_step_free(&m->main);
        il_dnnl_step_free(&m->src_in);
        il_dnnl_step_free(&m->dst_out);
        il_dnnl_step_free(&m->z_in);
        il_dnnl_step_free(&m->sc.w_re);
        if (own) dnnl_stream_destroy(own);
    }
    free(s->more);
    il_dnnl_step_free(&s->main);
    il_dnnl_step_free(&s->src_in);
    il_dnnl_step_free(&s->dst_out);
    il_dnnl_step_free(&s->z_in);
    il_dnnl_step_free(&s->sc.w_re);
    free(s->w);
    free(s->bias);
    free(s->pw.u);
    il_cpu_wsmall_free(s->wsm);
    free(s);
}

il_status il_dnnl_prepare(il_kctx *c, void **state, size_t *workspace, il_dnnl_fill_fn fill, int arg) {
    il_dnnl_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    if (!il_dnnl_engine()) {
        free(s);
        return il_kerr(c, IL_ERR_UNSUPPORTED, "oneDNN has no CPU engine here");
    }
    s->threads = c->threads;
    int saved = il_dnnl_threads_enter(c->threads);
    il_status st = fill(c, s, workspace, arg);
    il_dnnl_threads_leave(saved);
    if (st) {
        il_dnnl_release(s);
        return st;
    }
    *state = s;
    return IL_OK;
}

il_status il_dnnl_pd(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const il_act *act,
                     dnnl_primitive_desc_t *pd, const char *what) {
    return il_dnnl_pd_add(c, desc, sum, NULL, act, pd, what);
}

il_status il_dnnl_pd_add(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const dnnl_memory_desc_t *add,
                         const il_act *act, dnnl_primitive_desc_t *pd, const char *what) {
    return il_dnnl_pd_pick(c, desc, sum, add, act, NULL, pd, what);
}

/* oneDNN's first implementation for desc, or the first whose name holds prefer where it has one. */
static dnnl_status_t pd_pick(dnnl_primitive_desc_t *pd, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                             const char *prefer) {
    if (!prefer) return dnnl_primitive_desc_create(pd, desc, attr, il_dnnl_engine(), NULL);
    dnnl_primitive_desc_iterator_t it;
    dnnl_status_t s = dnnl_primitive_desc_iterator_create(&it, desc, attr, il_dnnl_engine(), NULL);
    if (s != dnnl_success) return s;
    *pd = dnnl_primitive_desc_iterator_fetch(it);
    while (*pd && !strstr(il_dnnl_impl(*pd), prefer) && dnnl_primitive_desc_iterator_next(it) == dnnl_success) {
        dnnl_primitive_desc_t next = dnnl_primitive_desc_iterator_fetch(it);
        if (next && strstr(il_dnnl_impl(next), prefer)) {
            dnnl_primitive_desc_destroy(*pd);
            *pd = next;
        } else if (next) {
            dnnl_primitive_desc_destroy(next);
        }
    }
    dnnl_primitive_desc_iterator_destroy(it);
    return *pd ? dnnl_success : dnnl_unimplemented;
}

il_status il_dnnl_pd_pick(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const dnnl_memory_desc_t *add,
                          const il_act *act, const char *prefer, dnnl_primitive_desc_t *pd, const char *what) {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    IL_DNNL(c, dnnl_primitive_attr_create(&attr));
    dnnl_status_t s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success) s = dnnl_post_ops_create(&po);
    if (s == dnnl_success) {
        if (sum) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success && add) s = dnnl_post_ops_append_binary(po, dnnl_binary_add, add);
        if (s == dnnl_success && act && !il_dnnl_act_post_ops(act, po)) s = dnnl_unimplemented;
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    if (s == dnnl_success) s = pd_pick(pd, desc, attr, prefer);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return il_kerr(c, s == dnnl_unimplemented ? IL_ERR_UNSUPPORTED : IL_ERR_INTERNAL,
                                          "oneDNN has no %s primitive for this node: %s", what, dnnl_status2str(s));
    return IL_OK;
}

int il_dnnl_act_ok(const il_kctx *c) {
    il_act act;
    dnnl_post_ops_t po;
    if (il_act_parse(c, &act)) {
        il_error_clear();
        return 0;
    }
    if (dnnl_post_ops_create(&po) != dnnl_success) return 0;
    int ok = il_dnnl_act_post_ops(&act, po);
    dnnl_post_ops_destroy(po);
    return ok;
}

void il_dnnl_step_free(il_dnnl_step *st) {
    for (int i = 0; i < st->n; i++) dnnl_memory_destroy(st->args[i].memory);
    if (st->prim) dnnl_primitive_destroy(st->prim);
    memset(st, 0, sizeof *st);
}

il_status il_dnnl_reorder_make(const il_kctx *c, il_dnnl_step *st, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst) {
    dnnl_primitive_desc_t pd;
    IL_DNNL(c, dnnl_reorder_primitive_desc_create(&pd, src, il_dnnl_engine(), dst, il_dnnl_engine(), NULL));
    il_status s = il_dnnl_step_make(c, st, pd);
    dnnl_primitive_desc_destroy(pd);
    if (!s) s = il_dnnl_step_arg(c, st, DNNL_ARG_SRC, src);
    if (!s) s = il_dnnl_step_arg(c, st, DNNL_ARG_DST, dst);
    if (s) il_dnnl_step_free(st);
    return s;
}

il_status il_dnnl_pack(const il_kctx *c, const dnnl_memory_desc_t *src, const void *from,
                       const dnnl_memory_desc_t *dst, void **out) {
    size_t n = dnnl_memory_desc_get_size(dst);
    *out = aligned_alloc(64, il_dnnl_align(n ? n : 1));
    if (!*out) return il_kerr(c, IL_ERR_OOM, "out of memory for packed weights (%zu bytes)", n);
    il_dnnl_step st;
    il_status s = il_dnnl_reorder_make(c, &st, src, dst);
    if (!s) {
        il_dnnl_step_set(&st, DNNL_ARG_SRC, (void *)from);
        il_dnnl_step_set(&st, DNNL_ARG_DST, *out);
        s = il_dnnl_step_run(c, &st);
        il_dnnl_step_free(&st);
    }
    if (s) {
        free(*out);
        *out = NULL;
    }
    return s;
}

const char *il_dnnl_impl(const_dnnl_primitive_desc_t pd) {
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name) return "?";
    return name;
}

#endif
