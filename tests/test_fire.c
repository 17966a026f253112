/*
 * test_fire.c - SqueezeNet's Fire modules on the oneDNN kernels (engine/cpu/dnnl_conv.c,
 * dnnl_layout.c): a squeeze conv, its 1x1 and Winograd 3x3 expands written into their Concat,
 * the next conv, against the reference kernels on fresh random inputs (op_rng(): seeded from the
 * clock, the seed printed; IL_TEST_SEED repeats a run) within |got - want| <= 1e-4 + 1e-4 |want|,
 * batch 1 and 3, 1 and 2 threads; and which Winograd oneDNN ran, read from its verbose lines.
 */
#include "layout_chain.h"

#include <fcntl.h>
#include <unistd.h>
#ifdef IL_HAVE_DNNL
#include <dnnl.h>
#endif

/* Runs p on x with oneDNN's verbose lines (one per primitive run) sent to a file instead of
 * stdout, and returns that file's text (caller frees); NULL where this build has no oneDNN. */
static char *dnnl_lines_of_run(il_plan *p, il_tensor *x) {
#ifdef IL_HAVE_DNNL
    const char *path = il_test_tmp("fire_verbose.txt");
    fflush(stdout);
    int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    dnnl_set_verbose(1);
    il_status st = il_plan_run(p, &x, 1);
    dnnl_set_verbose(0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    IL_ASSERT_OK(st);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_EQUAL(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
#else
    (void)p;
    (void)x;
    return NULL;
#endif
}

/* Whether a verbose line names both impl and shape (e.g. "jit_wino_4x3", "ic16oc64"). */
static int ran(const char *text, const char *impl, const char *shape) {
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        if (strstr(line, "exec") && strstr(line, impl) && strstr(line, shape)) return 1;
        l = e ? e + 1 : NULL;
    }
    return 0;
}

/* Two Fire modules on a 30x30 plane (over IL_DNNL_WINO4_PIXELS), with INFERLAB_DNNL_WSMALL=0
 * (oneDNN's Winograd, not wino_small.c's): the first squeezes to 16
 * channels, whose 3x3 expand takes F(2x2,3x3) at batch 1 (F(4x4,3x3) loses with so few input
 * channels, IL_DNNL_WINO4_MIN_C; oneDNN has only 4x3 for a batch in one call) and reads its 16-channel input where it lies (nChw16c of one block is
 * channels-last); the second squeezes to 32, whose expand takes F(4x4,3x3) as before. Batch 1
 * and 3, 1 and 2 threads, against the reference; the Concats' inputs at their channel offsets. */
static void test_fire_winograd(void) {
    setenv("INFERLAB_DNNL_WSMALL", "0", 1);
    for (int run = 0; run < 4; run++) {
        int threads = 1 + (run & 1);
        int64_t batch = run & 2 ? 3 : 1;
        chain b = chain_new(2, batch, 24, 30);
        int sq1 = conv(&b, b.g->inputs[0], 24, 16, 1, 1, 0, 1, "Relu", -1);
        int e11 = conv(&b, sq1, 16, 32, 1, 1, 0, 1, "Relu", -1), e13 = conv(&b, sq1, 16, 48, 3, 1, 1, 1, "Relu", -1);
        int cat1 = node2(&b, "Concat", e11, e13);
        int sq2 = conv(&b, cat1, 80, 32, 1, 1, 0, 1, "Relu", -1);
        int e21 = conv(&b, sq2, 32, 16, 1, 1, 0, 1, "Relu", -1), e23 = conv(&b, sq2, 32, 32, 3, 1, 1, 1, "Relu", -1);
        int cat2 = node2(&b, "Concat", e21, e23);
        il_graph_add_output(b.g, conv(&b, cat2, 48, 8, 1, 1, 0, 1, NULL, -1));
        char what[80];
        snprintf(what, sizeof what, "Fire Winograd, batch %lld, %d threads", (long long)batch, threads);
        il_plan_opts o = {.threads = threads};
        il_plan *p = plan_checked(b.g, &o, batch, what);
        int64_t sz;
        if (have_blocked_kernels()) {
            CU_ASSERT_EQUAL(il_plan_value_offset(p, e13, &sz), il_plan_value_offset(p, cat1, &sz) + 32 * 4);
            CU_ASSERT_EQUAL(il_plan_value_offset(p, e23, &sz), il_plan_value_offset(p, cat2, &sz) + 16 * 4);
        }
        const il_kernel *wk = il_kernel_find("ai.inferlab", "FusedConv", "cpu", "dnnl-wino");
        il_tensor *x = random_input(b.g, batch);
        char *text = dnnl_lines_of_run(p, x);
        if (text && wk && ran(text, "wino", "ic16oc48")) {
            /* oneDNN's 2x3 takes one image a call; a batch of 3 in one call keeps its 4x3 */
            CU_ASSERT_EQUAL(ran(text, "wino_4x3", "ic16oc48"), batch > 1);
            CU_ASSERT_EQUAL(ran(text, "wino_2x3", "ic16oc48"), batch == 1);
            CU_ASSERT_TRUE(ran(text, "wino_4x3", "ic32oc32"));
        } else if (text && wk) {
            fprintf(stderr, "\n  %s: no Winograd here (oneDNN has none for this CPU?)\n", what);
        }
        free(text);
        check_outputs(p, b.g, x, what); /* again, after the verbose run */
        il_tensor_free(x);
        il_plan_free(p);
        il_graph_free(b.g);
    }
    unsetenv("INFERLAB_DNNL_WSMALL");
}

/* pw_last.c's product alone against a plain loop, within 1e-4 + 1e-4 |want|: pixel counts that
 * leave a tail of the 8-pixel tiles, input channels of no whole vector, output channels of no
 * whole block of 32 (masked lanes), the slice at an offset inside wider pixels (the floats around
 * it must stay as they were), bias or none, Relu or none, 1 and 2 threads. */
static void test_pw_product(void) {
    if (!il_cpu_pw_ok()) return;
    static const int64_t cases[][5] = {/* pixels, C, m, pixel stride, the slice's offset */
                                       {37, 5, 40, 51, 7}, {3025, 16, 64, 128, 0}, {1, 24, 16, 16, 0},
                                       {169, 48, 192, 384, 192}, {29, 64, 33, 70, 37}, {15, 3, 8, 9, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int v = 0; v < 8; v++) {
            int64_t px = cases[k][0], C = cases[k][1], m = cases[k][2], cs = cases[k][3], off = cases[k][4];
            int relu = v & 1, with_bias = v >> 1 & 1, threads = 1 + (v >> 2);
            il_tensor *x = il_tensor_new(IL_F32, 2, (int64_t[]){px, C}), *w = il_tensor_new(IL_F32, 2, (int64_t[]){m, C});
            il_tensor *b = il_tensor_new(IL_F32, 1, (int64_t[]){m}), *y = il_tensor_new(IL_F32, 2, (int64_t[]){px, cs});
            il_tensor_fill_random(x, op_rng(), -2, 2);
            il_tensor_fill_random(w, op_rng(), -1, 1);
            il_tensor_fill_random(b, op_rng(), -1, 1);
            float *xd = x->data, *wd = w->data, *bd = b->data, *yd = y->data;
            for (int64_t i = 0; i < px * cs; i++) yd[i] = 1234.5f;
            il_pw pw = {.c = C, .m = m, .cs = cs, .relu = relu, .u = il_cpu_pw_pack(wd, m, C)};
            CU_ASSERT_FATAL(pw.u != NULL);
            il_cpu_pw_run(&pw, xd, with_bias ? bd : NULL, yd + off, px, threads);
            int bad = 0;
            for (int64_t p = 0; p < px; p++)
                for (int64_t j = 0; j < cs; j++) {
                    double want = 1234.5;
                    if (j >= off && j < off + m) {
                        want = with_bias ? bd[j - off] : 0;
                        for (int64_t ch = 0; ch < C; ch++) want += (double)xd[p * C + ch] * wd[(j - off) * C + ch];
                        if (relu && want < 0) want = 0;
                    }
                    if (fabs(yd[p * cs + j] - want) > 1e-4 + 1e-4 * fabs(want) && !bad++)
                        fprintf(stderr, "\n  pw case %zu/%d: pixel %lld lane %lld got %g want %g (seed %llu)\n", k, v,
                                (long long)p, (long long)j, yd[p * cs + j], want, (unsigned long long)op_seed());
                }
            CU_ASSERT_EQUAL(bad, 0);
            free(pw.u);
            il_tensor_free(x);
            il_tensor_free(w);
            il_tensor_free(b);
            il_tensor_free(y);
        }
}

/* wino_small.c alone against a direct convolution in double, within 1e-4 + 1e-4 |want|: odd and
 * non-square planes (partial 4x4 tiles on the bottom and right), rows of more than 8 tiles (a second
 * group), a single pixel, input channels of no whole vector, output channels of no whole block of
 * 32, the result at an offset inside wider pixels (the floats around it must stay as they were),
 * batch 1 and 3, bias or none, Relu or none, 1 and 2 threads. */
static void test_wsmall_alone(void) {
    if (!il_cpu_pw_ok()) return;
    static const int64_t cases[][6] = {/* h, w, C, m, pixel stride, offset */
                                       {7, 9, 5, 40, 51, 7},  {1, 1, 3, 8, 8, 0},       {5, 37, 17, 33, 33, 0},
                                       {15, 15, 16, 48, 80, 32}, {27, 27, 32, 128, 256, 0}, {6, 45, 24, 16, 20, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int v = 0; v < 8; v++) {
            int64_t h = cases[k][0], w = cases[k][1], C = cases[k][2], m = cases[k][3], cs = cases[k][4], off = cases[k][5];
            int relu = v & 1, with_bias = v >> 1 & 1, threads = 1 + (v >> 2);
            int64_t n = v == 3 || v == 6 ? 3 : 1, sp = h * w;
            il_tensor *x = il_tensor_new(IL_F32, 2, (int64_t[]){n * sp, C}), *wt = il_tensor_new(IL_F32, 2, (int64_t[]){m, C * 9});
            il_tensor *b = il_tensor_new(IL_F32, 1, (int64_t[]){m}), *y = il_tensor_new(IL_F32, 2, (int64_t[]){n * sp, cs});
            double r = 1 / sqrt(9.0 * C);
            il_tensor_fill_random(x, op_rng(), -2, 2);
            il_tensor_fill_random(wt, op_rng(), -r, r);
            il_tensor_fill_random(b, op_rng(), -1, 1);
            float *xd = x->data, *wd = wt->data, *bd = b->data, *yd = y->data;
            for (int64_t i = 0; i < n * sp * cs; i++) yd[i] = 1234.5f;
            il_wsmall *ws = il_cpu_wsmall_new(wd, m, C, h, w, relu);
            CU_ASSERT_FATAL(ws != NULL);
            void *scratch = malloc(il_cpu_wsmall_ws(ws, threads));
            CU_ASSERT_FATAL(scratch != NULL);
            il_cpu_wsmall_run(ws, xd, n, with_bias ? bd : NULL, yd + off, cs, scratch, threads);
            int bad = 0;
            for (int64_t q = 0; q < n * sp; q++)
                for (int64_t j = 0; j < cs; j++) {
                    double want = 1234.5;
                    if (j >= off && j < off + m) {
                        int64_t img = q / sp, oy = q % sp / w, ox = q % w, o = j - off;
                        want = with_bias ? bd[o] : 0;
                        for (int64_t ch = 0; ch < C; ch++)
                            for (int a = 0; a < 3; a++)
                                for (int e = 0; e < 3; e++) {
                                    int64_t iy = oy + a - 1, ix = ox + e - 1;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                        want += (double)xd[(img * sp + iy * w + ix) * C + ch] * wd[(o * C + ch) * 9 + a * 3 + e];
                                }
                        if (relu && want < 0) want = 0;
                    }
                    if (fabs(yd[q * cs + j] - want) > 1e-4 + 1e-4 * fabs(want) && !bad++)
                        fprintf(stderr, "\n  wino_small case %zu/%d: pixel %lld lane %lld got %g want %g (seed %llu)\n", k, v,
                                (long long)q, (long long)j, yd[q * cs + j], want, (unsigned long long)op_seed());
                }
            CU_ASSERT_EQUAL(bad, 0);
            free(scratch);
            il_cpu_wsmall_free(ws);
            il_tensor_free(x);
            il_tensor_free(wt);
            il_tensor_free(b);
            il_tensor_free(y);
        }
}

/* Fire modules whose 1x1 expands write their Concat's channels through pw_last.c and whose 3x3
 * expands run wino_small.c: 30x30, then 15x15 after a ceil_mode max pool; squeezes of 16 and 24
 * channels (no whole vector), 1x1 expands of 40 and 24 channels (no whole block of 32; the second
 * a plain Conv without Relu), 3x3 expands of 16 -> 48 and 24 -> 64; a 3x3 of 16 channels into a
 * dense Y (a plain Conv); what they must leave to oneDNN: a stride-2 1x1 and a stride-2 3x3 into
 * a Concat, a 48-channel 3x3 (over IL_WSMALL_MAX_C). Batch 1 and 3, 1 and 2 threads, against the
 * reference, the plan through a plan file; where the Concats are written in place, oneDNN's
 * verbose lines show which primitives ran, and with INFERLAB_DNNL_PW=0 or INFERLAB_DNNL_WSMALL=0
 * (read at prepare) that oneDNN's ran instead. */
static void test_fire_own(void) {
    for (int run = 0; run < 6; run++) {
        int threads = 1 + (run & 1), pw_off = run == 4, ws_off = run == 5;
        int64_t batch = run & 2 ? 3 : 1;
        if (pw_off) setenv("INFERLAB_DNNL_PW", "0", 1);
        if (ws_off) setenv("INFERLAB_DNNL_WSMALL", "0", 1);
        chain b = chain_new(2, batch, 20, 30);
        int sq1 = conv(&b, b.g->inputs[0], 20, 16, 1, 1, 0, 1, "Relu", -1);
        int e11 = conv(&b, sq1, 16, 40, 1, 1, 0, 1, "Relu", -1), e13 = conv(&b, sq1, 16, 48, 3, 1, 1, 1, "Relu", -1);
        int cat1 = node2(&b, "Concat", e11, e13);
        int mp = pool(&b, "MaxPool", cat1, 3, 2, 0, 1);
        int sq2 = conv(&b, mp, 88, 24, 1, 1, 0, 1, "Relu", -1);
        int e21 = conv(&b, sq2, 24, 24, 1, 1, 0, 1, NULL, -1), e23 = conv(&b, sq2, 24, 64, 3, 1, 1, 1, "Relu", -1);
        int cat2 = node2(&b, "Concat", e21, e23);
        int s21 = conv(&b, sq2, 24, 8, 1, 2, 0, 1, "Relu", -1), s23 = conv(&b, sq2, 24, 16, 3, 2, 1, 1, "Relu", -1);
        int cat3 = node2(&b, "Concat", s21, s23);
        int d1 = conv(&b, sq1, 16, 40, 3, 1, 1, 1, NULL, -1);
        int w48 = conv(&b, cat2, 88, 48, 1, 1, 0, 1, "Relu", -1);
        il_graph_add_output(b.g, conv(&b, w48, 48, 32, 3, 1, 1, 1, "Relu", -1));
        il_graph_add_output(b.g, conv(&b, d1, 40, 8, 1, 1, 0, 1, NULL, -1));
        il_graph_add_output(b.g, conv(&b, cat3, 24, 8, 1, 1, 0, 1, NULL, -1));
        char what[96];
        snprintf(what, sizeof what, "Fire modules, batch %lld, %d threads%s", (long long)batch, threads,
                 pw_off ? ", INFERLAB_DNNL_PW=0" : ws_off ? ", INFERLAB_DNNL_WSMALL=0" : "");
        il_plan_opts o = {.threads = threads};
        il_plan *p = plan_checked(b.g, &o, batch, what);
        int64_t sz;
        int in_place = have_blocked_kernels() && il_plan_value_offset(p, e11, &sz) == il_plan_value_offset(p, cat1, &sz) &&
                       il_plan_value_offset(p, e13, &sz) == il_plan_value_offset(p, cat1, &sz) + 40 * 4 &&
                       il_plan_value_offset(p, e23, &sz) == il_plan_value_offset(p, cat2, &sz) + 24 * 4;
        il_tensor *x = random_input(b.g, batch);
        char *text = dnnl_lines_of_run(p, x);
        if (text && in_place && il_cpu_pw_ok() && ran(text, "wino", "ic48oc32")) {
            CU_ASSERT_EQUAL(ran(text, "convolution", "ic16oc40_ih30oh30kh1"), pw_off);
            CU_ASSERT_EQUAL(ran(text, "convolution", "ic24oc24_ih15oh15kh1"), pw_off);
            CU_ASSERT_TRUE(ran(text, "convolution", "ic24oc8_ih15oh8kh1"));
            CU_ASSERT_EQUAL(ran(text, "wino", "ic16oc48_ih30"), ws_off);
            CU_ASSERT_EQUAL(ran(text, "wino", "ic24oc64_ih15"), ws_off);
            CU_ASSERT_EQUAL(ran(text, "wino", "ic16oc40_ih30"), ws_off);
        } else if (text) {
            fprintf(stderr, "\n  %s: no Winograd or no Concat in place here\n", what);
        }
        free(text);
        check_outputs(p, b.g, x, what);
        il_tensor_free(x);
        plan_file_agrees(p, b.g, &o, batch, "fire_own.ilp");
        il_graph_free(b.g);
        unsetenv("INFERLAB_DNNL_PW");
        unsetenv("INFERLAB_DNNL_WSMALL");
    }
}

IL_SUITE("fire", {"Winograd of 16 and 32 channels", test_fire_winograd}, {"1x1 product alone", test_pw_product},
         {"small Winograd alone", test_wsmall_alone}, {"Fire modules on pw_last and wino_small", test_fire_own})
