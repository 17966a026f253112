/*
 * status.c - the error convention: a status code returned, a message kept per thread.
 * Callers add context on the way up with il_error_wrap, so the CLI prints one line like
 * "model.onnx: node 'conv_12' (Conv): input 1 has 3 channels, weight expects 64".
 */
#include "engine.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char errbuf[1024];

const char *il_status_str(il_status s) {
    switch (s) {
    case IL_OK: return "ok";
    case IL_ERR_PARSE: return "parse error";
    case IL_ERR_UNSUPPORTED: return "unsupported";
    case IL_ERR_SHAPE: return "shape error";
    case IL_ERR_TYPE: return "type error";
    case IL_ERR_GRAPH: return "graph error";
    case IL_ERR_INVALID: return "invalid argument";
    case IL_ERR_IO: return "I/O error";
    case IL_ERR_OOM: return "out of memory";
    case IL_ERR_CUDA: return "CUDA error";
    case IL_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *il_errmsg(void) { return errbuf; }

void il_error_clear(void) { errbuf[0] = 0; }

il_status il_error(il_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return s;
}

il_status il_error_wrap(il_status s, const char *fmt, ...) {
    char old[sizeof errbuf];
    memcpy(old, errbuf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof errbuf)
        snprintf(errbuf + n, sizeof errbuf - (size_t)n, "%s", old[0] ? old : il_status_str(s));
    return s;
}

double il_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int il_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
