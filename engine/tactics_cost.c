/*
 * tactics_cost.c - what a timed kernel choice costs in its plan, not alone.
 *
 * The per-node timer (tactics.c) runs each candidate by itself, with the layouts it would like
 * around it. What it cannot see is what its pick does to the nodes around it: a plain kernel
 * between two native ones makes its neighbours reorder their outputs and inputs (the value
 * leaves the native layout, plan_layout.c), and a Concat kernel that cannot be written in place
 * makes its producers write buffers of their own and itself copy them. On SqueezeNet the timer
 * kept the plain `fast` Concat in every Fire module, about 0.2x faster alone and 1.1-1.3x slower
 * in the plan (docs/cpu_speed_sessions.md, session 9).
 *
 * So every pick that differs from the heuristic's is charged in the plan:
 *  - the segments: each differing node with every node that shares a value with it (the
 *    producer and the readers of its inputs and outputs, whose layouts its kernel decides), and
 *    a Concat that may be written in place with its producers; overlapping sets are one segment.
 *    Outside its segment a pick changes no node's layouts or slots;
 *  - up to three plans are built, the heuristic's (H), the alone picks (T) and the alone picks
 *    that keep the heuristic kernel's layouts (L: e.g. one native conv for another; those need
 *    no charge), and run in turn on random inputs of the real shapes (a few rounds, interleaved
 *    so the machine's load falls on all alike), keeping each node's fastest time in its plan,
 *    reorders and in-place writes included (they run inside the kernels);
 *  - each segment takes the plan whose nodes there cost least, the heuristic's unless another
 *    is 2% cheaper (noise flipped near-ties), and the whole plan so combined is kept only if it
 *    is not slower than the heuristic's (run again, interleaved with it, where it is a new plan).
 * The result is keyed in the timing cache by the whole context it depends on (every node's
 * alone key with both picks and its wiring, hashed), so a second build runs nothing.
 */
#include "tactics_int.h"

#include <stdarg.h>
#include <stdio.h>

/* The options per segment: the heuristic's picks, the alone picks, the alone picks that keep
 * the heuristic kernel's layouts, and the heuristic's with one alone pick (the i-th of the
 * segment's differing nodes: each flip plan tries one per segment, segments being independent) */
#define MAX_FLIPS 6
enum { OPT_H, OPT_T, OPT_L, OPT_F0, N_OPT = OPT_F0 + MAX_FLIPS };
static const char *opt_name(int o) {
    static const char *const names[] = {"heuristic", "timed", "same-layout"};
    return o < OPT_F0 ? names[o] : "one timed pick";
}

static il_tactic_timer g_timer;
static int g_timer_set;

void il_tactics_set_timer(const il_tactic_timer *t) {
    g_timer_set = t != NULL;
    g_timer = t ? *t : (il_tactic_timer){0};
}

const il_tactic_timer *il_tactics_timer(void) { return g_timer_set ? &g_timer : NULL; }

const char *il_plan_kernel_why(const il_plan *p, int k) {
    if (!p->tinfo || k < 0 || k >= p->g->n_nodes || !p->tinfo[k].why[0]) return NULL;
    return p->tinfo[k].why;
}

void il_plan_segment_stats(const il_plan *p, int *segments, int *timed, int *cached) {
    if (segments) *segments = p->n_segments;
    if (timed) *timed = p->seg_timed;
    if (cached) *cached = p->seg_cached;
}

static void why_add(struct il_tactic_info *ti, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_add(struct il_tactic_info *ti, const char *fmt, ...) {
    size_t o = strlen(ti->why);
    va_list ap;
    va_start(ap, fmt);
    if (o < sizeof ti->why) vsnprintf(ti->why + o, sizeof ti->why - o, fmt, ap);
    va_end(ap);
}

static int live(const il_plan *p, int k) {
    return k >= 0 && !p->g->nodes[k].dead && !p->s->folded[k] && p->kern[k];
}

/* Whether kernel b reads and writes node k in the layouts a does (so swapping them changes no
 * neighbour) */
static int same_layouts(const il_plan *p, int k, const il_kernel *a, const il_kernel *b) {
    if (a->strided_out != b->strided_out || !a->in_place != !b->in_place || !a->layouts != !b->layouts) return 0;
    if (!a->layouts) return 1;
    il_tensor inb[64], *in[64], outb[16], *out[16];
    il_kctx c;
    il_plan_node_view(p, k, inb, in, outb, out, &c);
    uint32_t ai = 0, ao = 0, bi = 0, bo = 0;
    a->layouts(&c, &ai, &ao);
    b->layouts(&c, &bi, &bo);
    return ai == bi && ao == bo;
}

/* A value whose layout the plan chooses (not a graph input, output or constant) */
static int laid_out(const il_plan *p, int v) {
    const il_value *x = &p->g->values[v];
    return v >= 0 && !x->constant && !x->is_input && !x->is_output && !p->s->known[v];
}

static int find(int *up, int a) {
    while (up[a] != a) a = up[a] = up[up[a]];
    return a;
}

static void unite(int *up, int a, int b) { up[find(up, a)] = find(up, b); }

/* The segment stage's cache key: every live node's alone key, both picks and its wiring, hashed
 * (FNV-1a, 64 bits), with the count of differing nodes. */
static void context_key(const il_plan *p, const il_kernel *const *pick[N_OPT], int nd, char *key, size_t n) {
    uint64_t h = 1469598103934665603ull;
    char nk[2048];
    il_tensor inb[64], *in[64], outb[16], *out[16];
    for (int j = 0; j < p->n_order; j++) {
        int k = p->order[j];
        const il_node *nd_ = &p->g->nodes[k];
        if (!live(p, k) || nd_->n_inputs > 64 || nd_->n_outputs > 16) continue;
        il_kctx c;
        il_plan_node_view(p, k, inb, in, outb, out, &c);
        il_tactics_node_key(&c, "cpu", nk, sizeof nk);
        size_t o = strlen(nk);
        o += (size_t)snprintf(nk + o, o < sizeof nk ? sizeof nk - o : 0, "|%s|%s|", pick[OPT_H][k]->name,
                              pick[OPT_T][k]->name);
        for (int i = 0; i < nd_->n_inputs; i++) o += (size_t)snprintf(nk + o, o < sizeof nk ? sizeof nk - o : 0, "%d,", nd_->inputs[i]);
        for (int i = 0; i < nd_->n_outputs; i++) o += (size_t)snprintf(nk + o, o < sizeof nk ? sizeof nk - o : 0, ">%d", nd_->outputs[i]);
        for (const char *s = nk; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    snprintf(key, n, "segments %016llx d%d", (unsigned long long)h, nd);
}

/* Apply a cached choice ("name,name,..." for the differing nodes in order); 0 when it does not
 * fit (the entry is then ignored and the plans run). */
static int apply_cached(il_plan *p, const char *val, const il_kernel *const *pick[N_OPT]) {
    const char *s = val;
    const il_kernel **got = calloc((size_t)p->g->n_nodes + 1, sizeof *got);
    int ok = got != NULL;
    for (int j = 0; j < p->n_order && ok; j++) {
        int k = p->order[j];
        if (!live(p, k) || pick[OPT_H][k] == pick[OPT_T][k]) continue;
        size_t len = strcspn(s, ",");
        for (int o = OPT_H; o <= OPT_T && !got[k]; o++)
            if (strlen(pick[o][k]->name) == len && !strncmp(pick[o][k]->name, s, len)) got[k] = pick[o][k];
        ok = got[k] != NULL;
        s += len + (s[len] == ',');
    }
    ok = ok && !*s;
    for (int k = 0; k < p->g->n_nodes && ok; k++)
        if (got[k]) {
            p->kern[k] = got[k];
            why_add(&p->tinfo[k], "; charged in its segment: %s (timing cache)", got[k]->name);
        }
    free(got);
    return ok;
}

/* A plan of p's graph with the kernel pick[k] at every node, built as p was, with per-node times */
static il_status build_named(const il_plan *p, const il_kernel *const *pick, il_plan **q) {
    int nn = p->g->n_nodes;
    const char **names = calloc((size_t)nn + 1, sizeof *names);
    if (!names) return il_error(IL_ERR_OOM, "out of memory");
    for (int k = 0; k < nn; k++) names[k] = live(p, k) ? pick[k]->name : "";
    il_plan_opts o = p->o;
    il_bind binds[16];
    char bnames[16][64];
    o.n_binds = il_plan_parse_dims(p->dims_spec, binds, bnames, 16);
    o.binds = binds;
    o.tactics = IL_TACTICS_HEURISTIC;
    o.timing_cache = NULL;
    o.kernels = NULL;
    o.profile = 1;
    il_status st = il_plan_create_named(p->g, &o, names, NULL, 0, q);
    free(names);
    return st;
}

static int run_in_plan(il_plan *q, il_tensor *const *in, int n, double *times, void *user) {
    (void)user;
    q->o.profile = 1;
    if (il_plan_run(q, in, n)) return 1;
    memcpy(times, q->times, (size_t)q->g->n_nodes * sizeof *times);
    return 0;
}

/* Run plans q[0..nq) in turn (a warm-up each, then rounds until about 0.1 s per plan, 3 to 15),
 * keeping each node's fastest time per plan in best[i][k]; *wall: the mean seconds of a run
 * (on a loaded machine far above the fastest). 0 on success. */
static int time_plans(il_plan **q, int nq, il_tensor *const *in, int n_in, double **best, int nn, double *wall) {
    const il_tactic_timer *tm = il_tactics_timer();
    int (*run)(il_plan *, il_tensor *const *, int, double *, void *) = tm && tm->in_plan ? tm->in_plan : run_in_plan;
    void *user = tm ? tm->user : NULL;
    double *t = malloc((size_t)(nn + 1) * sizeof *t);
    int bad = !t, runs = nq;
    double w0 = il_now();
    for (int i = 0; i < nq && !bad; i++) {
        bad = run(q[i], in, n_in, t, user);
        for (int k = 0; k < nn; k++) best[i][k] = -1;
    }
    double t0 = il_now();
    for (int r = 0; !bad && r < 15 && (r < 3 || il_now() - t0 < 0.1 * nq); r++, runs += nq)
        for (int i = 0; i < nq && !bad; i++) {
            bad = run(q[i], in, n_in, t, user);
            for (int k = 0; k < nn && !bad; k++)
                if (best[i][k] < 0 || t[k] < best[i][k]) best[i][k] = t[k];
        }
    free(t);
    if (wall) *wall = (il_now() - w0) / runs;
    return bad;
}

static double plan_cost(const il_plan *p, const double *best) {
    double s = 0;
    for (int k = 0; k < p->g->n_nodes; k++)
        if (live(p, k)) s += best[k];
    return s;
}

/* Random inputs of the plan's shapes (ints in 0..2: valid token ids and indices) */
static int make_inputs(const il_plan *p, il_tensor **in) {
    uint64_t rng = 0x5EED5EEDull;
    for (int i = 0; i < p->g->n_inputs; i++) {
        const il_tensor *v = &p->s->info[p->g->inputs[i]];
        in[i] = NULL;
        if (!il_shape_known(v) || !il_dtype_size(v->dtype) || !(in[i] = il_tensor_new(v->dtype, v->rank, v->dims)))
            return 1;
        il_tensor_fill_input(in[i], &rng);
    }
    return 0;
}

typedef struct {
    const il_graph *g;
    int nn;
    const il_kernel **pick[N_OPT]; /* per option, per node (NULL: option not used) */
    il_plan *q[N_OPT + 1];         /* built plans per option, and the combined one last */
    double *best[N_OPT + 1];       /* their nodes' fastest times in them */
    il_tensor **in;
    int *up, *cons, *cstart;       /* segments (union-find) and readers per value */
    int *rank, *nd;                /* per differing node: its rank in its segment; per root: count */
    double *ratio;                 /* per root and option: its cost over the heuristic's there */
    double *cost;                  /* per root: H, T, L costs of the first round (for why) */
    double wall;                   /* the first round's mean seconds per run */
    int spills[N_OPT];             /* the option's plan slowed nodes outside every segment */
} stage;

static void stage_free(stage *s) {
    for (int i = 0; i <= N_OPT; i++) il_plan_free(s->q[i]), free(s->best[i]);
    for (int o = 0; o < N_OPT; o++) free(s->pick[o]);
    for (int i = 0; s->in && i < s->g->n_inputs; i++) il_tensor_free(s->in[i]);
    free(s->in), free(s->up), free(s->cons), free(s->cstart), free(s->rank), free(s->nd), free(s->ratio), free(s->cost);
}

static int differs(const stage *s, int k) { return s->pick[OPT_H][k] != s->pick[OPT_T][k]; }

/* Union the nodes whose times a differing pick can change: segments (see the top). */
static il_status segments(il_plan *p, stage *s) {
    const il_graph *g = p->g;
    int nn = g->n_nodes, nv = g->n_values;
    for (int k = 0; k < nn; k++) s->up[k] = k;
    /* readers per value, as one array (cstart: offsets) */
    for (int k = 0; k < nn; k++)
        for (int i = 0; live(p, k) && i < g->nodes[k].n_inputs; i++)
            if (g->nodes[k].inputs[i] >= 0) s->cstart[g->nodes[k].inputs[i] + 1]++;
    for (int v = 0; v < nv; v++) s->cstart[v + 1] += s->cstart[v];
    int *fill = calloc((size_t)nv + 1, sizeof *fill);
    s->cons = malloc((size_t)(s->cstart[nv] + 1) * sizeof *s->cons);
    if (!fill || !s->cons) {
        free(fill);
        return il_error(IL_ERR_OOM, "out of memory charging the timed picks");
    }
    for (int k = 0; k < nn; k++)
        for (int i = 0; live(p, k) && i < g->nodes[k].n_inputs; i++) {
            int v = g->nodes[k].inputs[i];
            if (v >= 0) s->cons[s->cstart[v] + fill[v]++] = k;
        }
    free(fill);
    for (int k = 0; k < nn; k++) {
        if (!live(p, k)) continue;
        const il_node *n = &g->nodes[k];
        int d = differs(s, k), cat = 0;
        for (int o = OPT_H; o <= OPT_L; o++) cat |= s->pick[o][k]->in_place != NULL;
        for (int i = 0; i < n->n_inputs + n->n_outputs; i++) {
            int v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
            if (v < 0 || !laid_out(p, v)) continue;
            int pr = g->values[v].producer;
            if ((d || (cat && i < n->n_inputs)) && live(p, pr)) unite(s->up, k, pr);
            for (int c = s->cstart[v]; d && c < s->cstart[v + 1]; c++) unite(s->up, k, s->cons[c]);
        }
    }
    for (int j = 0; j < p->n_order; j++) { /* ranks in order */
        int k = p->order[j];
        if (live(p, k) && differs(s, k)) s->rank[k] = s->nd[find(s->up, k)]++;
    }
    return IL_OK;
}

/* Build the plans of options opts[0..n) (opts[0] the heuristic's, built already or not) and time
 * them interleaved; then each segment's cost of option o over the heuristic's, in ratio. 0 on
 * success. */
static int charge_round(il_plan *p, stage *s, const int *opts, int n) {
    il_plan *q[N_OPT];
    double *b[N_OPT];
    for (int i = 0; i < n; i++) {
        int o = opts[i];
        if (!s->best[o] && !(s->best[o] = malloc((size_t)(s->nn + 1) * sizeof **s->best))) return 1;
        if (!s->q[o] && build_named(p, s->pick[o], &s->q[o])) return 1;
        q[i] = s->q[o], b[i] = s->best[o];
    }
    if (time_plans(q, n, s->in, s->g->n_inputs, b, s->nn, opts[1] == OPT_T ? &s->wall : NULL)) return 1;
    double *c = calloc((size_t)(s->nn + 1) * N_OPT, sizeof *c);
    if (!c) return 1;
    double out[N_OPT] = {0};
    for (int k = 0; k < s->nn; k++)
        for (int i = 0; live(p, k) && i < n; i++) {
            c[find(s->up, k) * N_OPT + i] += b[i][k];
            if (!s->nd[find(s->up, k)]) out[i] += b[i][k];
        }
    /* The nodes outside every segment run the same kernels on the same layouts in every plan:
     * an option under which they are slower (beyond 5% and noise) costs more than its segments
     * show (a kernel whose threads keep spinning after it, say), and is not taken anywhere */
    for (int i = 1; i < n; i++) s->spills[opts[i]] = out[i] > 1.05 * out[0] + 20e-6;
    for (int r = 0; r < s->nn; r++)
        for (int i = 0; s->nd[r] && i < n; i++) {
            s->ratio[r * N_OPT + opts[i]] = c[r * N_OPT] > 0 ? c[r * N_OPT + i] / c[r * N_OPT] : 1;
            if (opts[1] == OPT_T && opts[i] <= OPT_L) s->cost[r * 3 + opts[i]] = c[r * N_OPT + i]; /* round 1 */
        }
    free(c);
    return 0;
}

/* How many flip plans: up to the largest segment's differing nodes (segments of one have their
 * flip in T already), within about 2 s of runs (each plan runs at least 4 times; ResNet-50 at
 * batch 1 on this loaded 2-core machine: 28 ms at best, 0.7 s per run on average) */
static int flips_wanted(const stage *s) {
    int nf = 0;
    for (int r = 0; r < s->nn; r++)
        if (s->nd[r] >= 2 && s->nd[r] > nf) nf = s->nd[r];
    int afford = s->wall > 0 ? (int)(2.0 / (4 * s->wall)) - 1 : MAX_FLIPS;
    nf = nf < MAX_FLIPS ? nf : MAX_FLIPS;
    return nf < afford ? nf : afford > 0 ? afford : 0;
}

static void cache_choice(const il_plan *p, const stage *s, il_tcache *cache, const char *key) {
    size_t cap = 64, len = 0;
    char *val = malloc(cap);
    for (int j = 0; j < p->n_order && val; j++) {
        int k = p->order[j];
        if (!live(p, k) || !differs(s, k)) continue;
        size_t w = strlen(p->kern[k]->name) + 2;
        if (len + w >= cap) {
            char *v2 = realloc(val, cap = 2 * cap + w);
            if (!v2) { free(val); val = NULL; break; }
            val = v2;
        }
        len += (size_t)sprintf(val + len, "%s%s", len ? "," : "", p->kern[k]->name);
    }
    if (val && len) il_tcache_put(cache, key, val);
    free(val);
}

/* The combined picks m against the heuristic's, whole, run interleaved once more (m's plan built
 * unless an option's is the same). Sets *cm, *ch (cm < 0: could not be timed). */
static void whole_check(il_plan *p, stage *s, const il_kernel **m, double *cm, double *ch) {
    *cm = *ch = -1;
    il_plan *qm = NULL;
    for (int o = OPT_T; o < N_OPT && !qm; o++)
        if (s->q[o] && !memcmp(m, s->pick[o], (size_t)s->nn * sizeof *m)) qm = s->q[o];
    if (!qm && build_named(p, m, &s->q[N_OPT])) return;
    il_plan *two[2] = {s->q[OPT_H], qm ? qm : s->q[N_OPT]};
    double *b2[2] = {malloc((size_t)(s->nn + 1) * sizeof **s->best), malloc((size_t)(s->nn + 1) * sizeof **s->best)};
    if (b2[0] && b2[1] && !time_plans(two, 2, s->in, s->g->n_inputs, b2, s->nn, NULL))
        *ch = plan_cost(p, b2[0]), *cm = plan_cost(p, b2[1]);
    free(b2[0]), free(b2[1]);
}

il_status il_tactics_charge(il_plan *p, il_tcache *cache) {
    const il_graph *g = p->g;
    int nn = g->n_nodes, nd = 0;
    if (p->acc) return IL_OK; /* accelerator plans: only their cpu fallbacks were timed */
    stage s = {.g = g, .nn = nn, .in = calloc((size_t)g->n_inputs + 1, sizeof *s.in),
               .up = malloc((size_t)(nn + 1) * sizeof *s.up), .cstart = calloc((size_t)g->n_values + 2, sizeof *s.cstart),
               .rank = calloc((size_t)nn + 1, sizeof *s.rank), .nd = calloc((size_t)nn + 1, sizeof *s.nd),
               .ratio = calloc((size_t)(nn + 1) * N_OPT, sizeof *s.ratio),
               .cost = calloc((size_t)(nn + 1) * 3, sizeof *s.cost)};
    for (int o = OPT_H; o <= OPT_L; o++) s.pick[o] = calloc((size_t)nn + 1, sizeof **s.pick);
    const il_kernel **m = calloc((size_t)nn + 1, sizeof *m);
    int *choice = malloc((size_t)(nn + 1) * sizeof *choice), *seg_id = calloc((size_t)nn + 1, sizeof *seg_id);
    il_status st = IL_OK;
    if (!s.pick[OPT_H] || !s.pick[OPT_T] || !s.pick[OPT_L] || !s.in || !s.up || !s.cstart || !s.rank || !s.nd ||
        !s.ratio || !s.cost || !m || !choice || !seg_id) {
        st = il_error(IL_ERR_OOM, "out of memory charging the timed picks");
        goto done;
    }
    for (int k = 0; k < nn; k++) {
        if (!live(p, k)) continue;
        const il_kernel *h = p->tinfo[k].heur ? p->tinfo[k].heur : p->kern[k];
        s.pick[OPT_H][k] = h;
        s.pick[OPT_T][k] = p->kern[k];
        s.pick[OPT_L][k] = h != p->kern[k] && same_layouts(p, k, h, p->kern[k]) ? p->kern[k] : h;
        nd += h != p->kern[k];
    }
    if (!nd) goto done;
    char key[96];
    context_key(p, (const il_kernel *const **)s.pick, nd, key, sizeof key);
    const char *hit = il_tcache_get(cache, key);
    if (hit && apply_cached(p, hit, (const il_kernel *const **)s.pick)) {
        p->seg_cached = 1;
        goto done;
    }
    if ((st = segments(p, &s))) goto done;
    /* round 1: H, T, and L where it differs from both */
    int opts[N_OPT] = {OPT_H, OPT_T, OPT_L}, no = 2;
    if (memcmp(s.pick[OPT_L], s.pick[OPT_H], (size_t)nn * sizeof *m) &&
        memcmp(s.pick[OPT_L], s.pick[OPT_T], (size_t)nn * sizeof *m))
        no = 3;
    const char *fail = make_inputs(p, s.in) ? "an input of unknown shape" : NULL;
    if (!fail && charge_round(p, &s, opts, no)) fail = "a plan could not be built or run";
    for (int r = 0; r < nn && !fail; r++)
        for (int o = no; o <= OPT_L && s.nd[r]; o++) s.ratio[r * N_OPT + o] = 9; /* L equal to H or T: tried */
    /* round 2: the flips, against the heuristic's plan again */
    int nf = fail ? 0 : flips_wanted(&s);
    for (int i = 0; i < nf && !fail; i++) {
        const il_kernel **f = s.pick[OPT_F0 + i] = calloc((size_t)nn + 1, sizeof *f);
        if (!f) fail = "out of memory";
        for (int k = 0; f && k < nn; k++)
            f[k] = live(p, k) && differs(&s, k) && s.rank[k] == i && s.nd[find(s.up, k)] >= 2 ? s.pick[OPT_T][k]
                                                                                           : s.pick[OPT_H][k];
        opts[1 + i] = OPT_F0 + i;
    }
    if (nf && !fail && charge_round(p, &s, opts, 1 + nf)) nf = 0; /* then without flips */
    il_error_clear();
    if (fail) { /* no charge possible: keep only the picks that change no layout */
        il_error_clear();
        for (int k = 0; k < nn; k++)
            if (live(p, k) && differs(&s, k)) {
                p->kern[k] = s.pick[OPT_L][k];
                why_add(&p->tinfo[k], "; not charged (%s): %s", fail, p->kern[k]->name);
            }
        goto done;
    }
    p->seg_timed = 1;
    /* per segment, the option of least cost (the heuristic's unless another is 2% cheaper) among
     * those that change something there and slow nothing elsewhere */
    unsigned char *distinct = calloc((size_t)(nn + 1) * N_OPT, 1);
    if (!distinct) {
        st = il_error(IL_ERR_OOM, "out of memory charging the timed picks");
        goto done;
    }
    for (int k = 0; k < nn; k++)
        for (int o = OPT_T; o < OPT_F0 + nf && live(p, k) && differs(&s, k); o++)
            if (s.pick[o][k] != s.pick[OPT_H][k]) distinct[find(s.up, k) * N_OPT + o] = 1;
    for (int k = 0; k < nn; k++) choice[k] = -1;
    for (int j = 0; j < p->n_order; j++) {
        int k = p->order[j], r = find(s.up, k);
        if (!live(p, k)) continue;
        if (differs(&s, k) && choice[r] < 0) {
            const double *c = &s.ratio[r * N_OPT];
            int b = OPT_H;
            for (int o = OPT_T; o < OPT_F0 + nf; o++)
                if (distinct[r * N_OPT + o] && !s.spills[o] && c[o] < 0.98 && c[o] < c[b]) b = o;
            choice[r] = b;
            seg_id[r] = ++p->n_segments;
        }
        m[k] = choice[r] >= 0 ? s.pick[choice[r]][k] : s.pick[OPT_H][k];
    }
    free(distinct);
    double cm = 0, ch = 0;
    int same_h = !memcmp(m, s.pick[OPT_H], (size_t)nn * sizeof *m);
    if (!same_h) whole_check(p, &s, m, &cm, &ch);
    il_error_clear();
    int keep = same_h || (cm >= 0 && cm <= ch);
    for (int j = 0; j < p->n_order; j++) {
        int k = p->order[j], r = find(s.up, k);
        if (!live(p, k) || !differs(&s, k)) continue;
        const double *c = &s.cost[r * 3];
        p->kern[k] = keep ? m[k] : s.pick[OPT_H][k];
        why_add(&p->tinfo[k], "; charged in segment %d (%d picks): heuristic %.3f, timed %.3f", seg_id[r], s.nd[r],
                c[OPT_H] * 1e3, c[OPT_T] * 1e3);
        if (no == 3) why_add(&p->tinfo[k], ", same-layout %.3f", c[OPT_L] * 1e3);
        why_add(&p->tinfo[k], " ms");
        if (s.nd[r] >= 2 && s.rank[k] < nf)
            why_add(&p->tinfo[k], ", this pick alone %.2fx", s.ratio[r * N_OPT + OPT_F0 + s.rank[k]]);
        why_add(&p->tinfo[k], ": %s", opt_name(choice[r]));
        if (!keep && cm < 0)
            why_add(&p->tinfo[k], "; the combined plan could not be timed: heuristic kept");
        else if (!keep)
            why_add(&p->tinfo[k], "; whole plan %.3f ms vs heuristic %.3f ms: heuristic kept", cm * 1e3, ch * 1e3);
    }
    cache_choice(p, &s, cache, key);
done:
    stage_free(&s);
    free(m), free(choice), free(seg_id);
    return st;
}
