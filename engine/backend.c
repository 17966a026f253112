/*
 * backend.c - the backends behind one interface (as ggml-backend or ONNX Runtime's execution
 * providers): a name that kernels register under, whether the machine can use it, the device it
 * runs on, memory for its arena, copies to and from the host, and synchronization. The cpu is
 * the host itself. The cuda backend's context is the process's one stream and library handles
 * (engine/cuda/runtime.cu creates them on first use); its threads are the GPU's.
 *
 * The planner (plan.c, plan_device.c) asks for the backend a plan targets, places each node on
 * it where one of its kernels supports the node and on the cpu otherwise, and copies values
 * across where placements change.
 */
#include "plan_int.h"

#ifdef IL_HAVE_CUDA
#include "cuda/cuda.h"
#endif

/* ---------------------------------------------------------------- cpu */

static int cpu_available(const char **why) { return 1; }
static const char *cpu_device(void) { return il_cpu_signature(); }
static void *cpu_alloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) il_error(IL_ERR_OOM, "out of memory for %zu bytes", n);
    return p;
}
static il_status host_copy(void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
    return IL_OK;
}
static il_status cpu_sync(void) { return IL_OK; }

static const il_backend_iface cpu_backend = {"cpu", cpu_available, cpu_device, cpu_alloc, free, host_copy, host_copy,
                                             cpu_sync, 1};

/* ---------------------------------------------------------------- cuda */

#ifdef IL_HAVE_CUDA
static int cuda_available(const char **why) { return il_cuda_available(why) && il_cuda_init() == IL_OK; }
static const char *cuda_device(void) { return il_cuda_device_name(); }
static void *cuda_alloc(size_t n) { return il_cuda_malloc(n ? n : 4); }
static const il_backend_iface cuda_backend = {"cuda",           cuda_available,        cuda_device,
                                              cuda_alloc,       il_cuda_free,          il_cuda_upload,
                                              il_cuda_download, il_cuda_sync,          0,
                                              il_cuda_capture_begin, il_cuda_capture_end, il_cuda_replay,
                                              il_cuda_graph_free};
#endif

static const il_backend_iface *backends[8] = {&cpu_backend,
#ifdef IL_HAVE_CUDA
                                              &cuda_backend,
#endif
};

const il_backend_iface *il_backend_find(const char *name) {
    for (int i = 0; i < 8 && backends[i]; i++)
        if (!strcmp(backends[i]->name, name)) return backends[i];
    return NULL;
}

il_status il_backend_register(const il_backend_iface *b) {
    if (!b || !b->name || !b->alloc || !b->free || !b->upload || !b->download || !b->sync || !b->available)
        return il_error(IL_ERR_INVALID, "a backend needs a name, memory, copies, sync and availability");
    for (int i = 0; i < 8; i++) {
        if (backends[i] && !strcmp(backends[i]->name, b->name))
            return il_error(IL_ERR_INVALID, "backend '%s' is already registered", b->name);
        if (!backends[i]) {
            backends[i] = b;
            return IL_OK;
        }
    }
    return il_error(IL_ERR_INVALID, "too many backends");
}

const char *il_backend_name(il_backend b) { return b == IL_BACKEND_CUDA ? "cuda" : "cpu"; }

static const char *const prec_names[] = {"fp32", "tf32", "fp16", "bf16"};

const char *il_precision_name(int precision) {
    return precision >= 0 && precision < 4 ? prec_names[precision] : "?";
}

int il_precision_parse(const char *s) {
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, prec_names[i])) return i;
    return -1;
}
