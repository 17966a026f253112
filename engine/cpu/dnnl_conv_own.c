/*
 * dnnl_conv_own.c - where the oneDNN convolution kernel hands a node to inferlab's own products
 * instead of building its primitive: SqueezeNet's expands, whose results go into a Concat's
 * channels, written there directly (pw_last.c, wino_small.c) where oneDNN's primitive wrote a
 * workspace and a loop copied it. The node keeps the dnnl kernel's name, state and run; only
 * prepare's fill differs (the run side is dnnl_conv.c's dconv_run).
 */
#ifdef IL_HAVE_DNNL

#include "dnnl_int.h"

/* A 1x1 stride-1 convolution from channels-last X into a Concat's channels (c->out_cstride),
 * bias and Relu at most: pw_last.c's product writes the slice itself, where oneDNN's primitive
 * wrote the workspace and a loop copied that into the slice (SqueezeNet's 1x1 expands; figures
 * there). INFERLAB_DNNL_PW=0 keeps the primitive, to compare. */
static int pw_fits(const il_kctx *c, const il_dnnl_state *s, const il_conv_geom *g, const il_act *act) {
    if (!c->out_cstride || !(c->blocked_in & 1) || !(c->blocked_out & 1) || !il_dnnl_native_last() || s->has_z ||
        c->n_in > 4 || c->n_out != 1 || g->nsp != 2 || g->group != 1 || !il_cpu_pw_ok() || !il_dnnl_env_on("INFERLAB_DNNL_PW"))
        return 0;
    if (act->kind != IL_ACT_NONE && act->kind != IL_ACT_RELU) return 0;
    for (int d = 0; d < 2; d++)
        if (g->k[d] != 1 || g->stride[d] != 1 || g->dil[d] != 1 || g->pad[d] || g->pad_end[d]) return 0;
    return 1;
}

static il_status pw_fill(il_kctx *c, il_dnnl_state *s, const il_conv_geom *g, const il_act *act, size_t *workspace) {
    s->pw = (il_pw){.c = g->c, .m = g->m, .cs = c->out_cstride, .relu = act->kind == IL_ACT_RELU};
    s->pw.u = il_cpu_pw_pack(c->in[1]->data, g->m, g->c);
    if (!s->pw.u) return il_kerr(c, IL_ERR_OOM, "out of memory for a packed 1x1 weight");
    il_dnnl_use_threads(c, s, (double)g->n * g->m * g->out_sp * g->c);
    s->images = 1;
    *workspace = 64;
    return IL_OK;
}

/* A Winograd node of few input channels (at most IL_WSMALL_MAX_C), stride 1, pads of 1, X and Y
 * channels-last (Y dense or a Concat's slice), no residual, bias and Relu at most: wino_small.c
 * writes Y itself, where oneDNN's primitive computed in nChw16c and a loop copied that into Y
 * (figures there). INFERLAB_DNNL_WSMALL=0 keeps the primitive, to compare. */
static int wsmall_fits(const il_kctx *c, const il_dnnl_state *s, const il_conv_geom *g, const il_act *act) {
    if (!(c->blocked_in & 1) || !(c->blocked_out & 1) || !il_dnnl_native_last() || s->has_z || c->n_in > 4 ||
        c->n_out != 1 || g->nsp != 2 || g->group != 1 || g->c > IL_WSMALL_MAX_C || !il_cpu_pw_ok() ||
        !il_dnnl_env_on("INFERLAB_DNNL_WSMALL"))
        return 0;
    if (act->kind != IL_ACT_NONE && act->kind != IL_ACT_RELU) return 0;
    for (int d = 0; d < 2; d++)
        if (g->k[d] != 3 || g->stride[d] != 1 || g->dil[d] != 1 || g->pad[d] != 1 || g->pad_end[d] != 1) return 0;
    return 1;
}

static il_status wsmall_fill(il_kctx *c, il_dnnl_state *s, const il_conv_geom *g, const il_act *act, size_t *workspace) {
    s->wsm = il_cpu_wsmall_new(c->in[1]->data, g->m, g->c, g->in[0], g->in[1], act->kind == IL_ACT_RELU);
    if (!s->wsm) return il_kerr(c, IL_ERR_OOM, "out of memory for a Winograd weight");
    s->pw.cs = c->out_cstride ? c->out_cstride : g->m;
    il_dnnl_use_threads(c, s, (double)g->n * g->m * g->out_sp * g->c * 9);
    s->images = 1;
    *workspace = il_cpu_wsmall_ws(s->wsm, s->threads);
    return IL_OK;
}

int il_dnnl_conv_own(il_kctx *c, il_dnnl_state *s, int wino, const il_conv_geom *g, const il_act *act,
                     size_t *workspace, il_status *st) {
    if (!wino && pw_fits(c, s, g, act)) return *st = pw_fill(c, s, g, act, workspace), 1;
    if (wino && wsmall_fits(c, s, g, act)) return *st = wsmall_fill(c, s, g, act, workspace), 1;
    return 0;
}

#endif
