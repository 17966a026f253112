/*
 * elementwise.h - private helpers shared by unary.c and binary.c: dtype classes, a switch that
 * instantiates one loop body per C type, and a threaded loop with a grain size.
 *
 * A loop body is written once with the element type named T:
 *
 *     EW_NUMERIC(t->dtype, { const T *x = t->data; ... })
 *
 * expands to a switch with one case per dtype, each with `typedef <ctype> T;` in front of the
 * body. Cases missing from a class fall through to nothing: the op's infer function has already
 * rejected dtypes the op does not take.
 */
#ifndef IL_ELEMENTWISE_H
#define IL_ELEMENTWISE_H

#include "kernel.h"

/* Integer kernels compare values of possibly unsigned T with 0 (x < 0 ? ...); that is correct
 * for every T, but gcc warns that it is always false for the unsigned instantiations. */
#pragma GCC diagnostic ignored "-Wtype-limits"

#define EW_IS_SIGNED(T) ((T)-1 < (T)0)

#define EW_CASE(E, CT, ...)   \
    case E: {                 \
        typedef CT T;         \
        __VA_ARGS__;          \
        break;                \
    }

#define EW_FLOAT_CASES(...) EW_CASE(IL_F32, float, __VA_ARGS__) EW_CASE(IL_F64, double, __VA_ARGS__)
#define EW_INT_CASES(...)                                                                             \
    EW_CASE(IL_I8, int8_t, __VA_ARGS__) EW_CASE(IL_I16, int16_t, __VA_ARGS__)                         \
    EW_CASE(IL_I32, int32_t, __VA_ARGS__) EW_CASE(IL_I64, int64_t, __VA_ARGS__)                       \
    EW_CASE(IL_U8, uint8_t, __VA_ARGS__) EW_CASE(IL_U16, uint16_t, __VA_ARGS__)                       \
    EW_CASE(IL_U32, uint32_t, __VA_ARGS__) EW_CASE(IL_U64, uint64_t, __VA_ARGS__)

/* One body for float32/float64, the integers, every numeric type, or numeric plus bool. */
#define EW_FLOATS(dt, ...)  switch (dt) { EW_FLOAT_CASES(__VA_ARGS__) default: break; }
#define EW_INTS(dt, ...)    switch (dt) { EW_INT_CASES(__VA_ARGS__) default: break; }
#define EW_NUMERIC(dt, ...) switch (dt) { EW_FLOAT_CASES(__VA_ARGS__) EW_INT_CASES(__VA_ARGS__) default: break; }
#define EW_ALL(dt, ...)                                                                                          \
    switch (dt) {                                                                                                \
        EW_FLOAT_CASES(__VA_ARGS__) EW_INT_CASES(__VA_ARGS__) EW_CASE(IL_BOOL, uint8_t, __VA_ARGS__) default: \
        break;                                                                                                   \
    }

static inline int ew_is_float(il_dtype t) { return t == IL_F32 || t == IL_F64; }
static inline int ew_is_int(il_dtype t) {
    return t == IL_I8 || t == IL_I16 || t == IL_I32 || t == IL_I64 || t == IL_U8 || t == IL_U16 || t == IL_U32 ||
           t == IL_U64;
}
static inline int ew_is_signed_int(il_dtype t) { return t == IL_I8 || t == IL_I16 || t == IL_I32 || t == IL_I64; }
static inline int ew_is_numeric(il_dtype t) { return ew_is_float(t) || ew_is_int(t); }

/* dtype classes an op accepts, as a mask for ew_allowed. */
enum { ALLOW_FLOAT = 1, ALLOW_SIGNED = 2, ALLOW_UNSIGNED = 4, ALLOW_BOOL = 8, ALLOW_INT = ALLOW_SIGNED | ALLOW_UNSIGNED,
       ALLOW_NUM = ALLOW_FLOAT | ALLOW_INT };
static inline int ew_allowed(il_dtype t, int mask) {
    return ((mask & ALLOW_FLOAT) && ew_is_float(t)) || ((mask & ALLOW_SIGNED) && ew_is_signed_int(t)) ||
           ((mask & ALLOW_UNSIGNED) && ew_is_int(t) && !ew_is_signed_int(t)) || ((mask & ALLOW_BOOL) && t == IL_BOOL);
}

/* Threads worth using for n cheap elements: one below the grain, where waking threads costs
 * more than the loop. */
#define EW_GRAIN 32768
static inline int ew_threads(const il_kctx *c, int64_t n) { return n >= EW_GRAIN && c->threads > 1 ? c->threads : 1; }

/* IL_PAR_FOR with a precomputed thread count nt (from ew_threads). */
#define EW_PAR_FOR(nt, var, n)                                                  \
    _Pragma("omp parallel for num_threads(nt) if (nt > 1) schedule(static)") \
        for (int64_t var = 0; var < (n); var++)

#endif
