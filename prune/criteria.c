/*
 * criteria.c - the registry of pruning criteria and the built-in ones.
 *
 * A criterion only scores; the scope (prune.c) decides which scores fall. So one criterion
 * serves uniform, global and N:M pruning alike, and a lab's criterion in a plugin gets all
 * three for free. Built-ins:
 *   magnitude   |w| per element (Han et al. 2015)
 *   l1-filter   sum |w| over a row: a whole filter / output unit (Li et al. 2017)
 *   l2-filter   sqrt(sum w^2) over a row
 */
#include "prune.h"

#include <math.h>
#include <string.h>

static il_status magnitude(const il_prune_criterion *c, const il_prune_layer *l, const il_tensor *w, double *s) {
    int64_t n = il_tensor_numel(w);
    for (int64_t i = 0; i < n; i++) s[i] = fabs(il_tensor_get(w, i));
    return IL_OK;
}

/* Row norms; user is (void *)1 for L1, (void *)2 for L2. */
static il_status filter_norm(const il_prune_criterion *c, const il_prune_layer *l, const il_tensor *w, double *s) {
    int p = c->user == (void *)1 ? 1 : 2;
    for (int64_t r = 0; r < l->rows; r++) {
        double acc = 0;
        for (int64_t k = 0; k < l->cols; k++) {
            double v = il_tensor_get(w, r * l->rs + k * l->cs);
            acc += p == 1 ? fabs(v) : v * v;
        }
        s[r] = p == 1 ? acc : sqrt(acc);
    }
    return IL_OK;
}

static const il_prune_criterion builtin[] = {
    {IL_PRUNE_ABI, "magnitude", "|w| of each weight (unstructured)", IL_PRUNE_PER_ELEMENT, magnitude, NULL},
    {IL_PRUNE_ABI, "l1-filter", "L1 norm of each filter / output unit (whole rows zeroed)", IL_PRUNE_PER_ROW,
     filter_norm, (void *)1},
    {IL_PRUNE_ABI, "l2-filter", "L2 norm of each filter / output unit (whole rows zeroed)", IL_PRUNE_PER_ROW,
     filter_norm, (void *)2},
};

#define MAX_CRITERIA 64
static const il_prune_criterion *registry[MAX_CRITERIA];
static int n_registry;

static void init_builtins(void) {
    if (n_registry) return;
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++) registry[n_registry++] = &builtin[i];
}

il_status il_prune_register_criterion(const il_prune_criterion *c) {
    init_builtins();
    if (!c || c->abi != IL_PRUNE_ABI)
        return il_error(IL_ERR_UNSUPPORTED, "pruning criterion built for ABI %d, inferlab has %d", c ? c->abi : -1,
                        IL_PRUNE_ABI);
    if (!c->name || !c->name[0] || strspn(c->name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->name))
        return il_error(IL_ERR_INVALID, "pruning criterion name '%s' must be lower-case-with-dashes",
                        c->name ? c->name : "");
    if (!c->score) return il_error(IL_ERR_INVALID, "pruning criterion '%s' has no score function", c->name);
    if (c->unit != IL_PRUNE_PER_ELEMENT && c->unit != IL_PRUNE_PER_ROW)
        return il_error(IL_ERR_INVALID, "pruning criterion '%s': unit must be per element or per row", c->name);
    if (il_prune_find_criterion(c->name))
        return il_error(IL_ERR_INVALID, "a pruning criterion named '%s' is already registered", c->name);
    if (n_registry == MAX_CRITERIA) return il_error(IL_ERR_INVALID, "too many pruning criteria (%d)", MAX_CRITERIA);
    registry[n_registry++] = c;
    return IL_OK;
}

const il_prune_criterion *il_prune_find_criterion(const char *name) {
    init_builtins();
    for (int i = 0; name && i < n_registry; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

const il_prune_criterion *const *il_prune_criteria(int *n) {
    init_builtins();
    *n = n_registry;
    return registry;
}
