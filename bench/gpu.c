/*
 * gpu.c - what a GPU run records beside its timings: the GPU and the software it ran with,
 * the device memory it took, and the arithmetic a plan file was built for.
 *
 * Device memory of inferlab's runs is measured, not summed from the plan: cudaMemGetInfo's
 * used bytes before the plan is built (after the CUDA context and library handles exist) and
 * after, plus what each trial adds (cuBLAS/cuDNN workspaces and a CUDA graph appear at the first
 * run). The windows are ones where no other variant of the sweep runs (sweep.c: children open
 * and measure one at a time), so what another process of the sweep holds is not counted; a
 * process outside the sweep allocating on the same GPU meanwhile would be. It counts what the
 * plan really holds (arena, weights in their precision, workspaces, staging buffers, library
 * memory) in the driver's 2 MiB granules; the PyTorch peer reports
 * torch.cuda.max_memory_allocated, its caching allocator's peak of live tensors (workspaces
 * included in recent versions), which is the nearer figure to an arena but leaves out what the
 * allocator keeps cached.
 */
#include "bench_int.h"

#include <stdlib.h>
#include <string.h>

#ifdef IL_HAVE_CUDA
#include "../engine/cuda/cuda.h"
#endif

const char *const il_gpu_memory_how =
    "cudaMemGetInfo growth over the plan's build and its trials (arena, weights, workspaces, staging, library "
    "memory; not the CUDA context)";

int64_t il_gpu_mem_used(void) {
#ifdef IL_HAVE_CUDA
    size_t used = 0;
    /* no error set when there is no GPU: the plan's own message says so */
    if (!il_cuda_available(NULL) || il_cuda_init() || il_cuda_mem_info(&used, NULL)) return -1;
    return (int64_t)used;
#else
    return -1;
#endif
}

/* "runtime 13.0" out of "driver 13.0, runtime 13.0, cuBLAS 130100, sm_90": the word after key. */
static void version_of(const char *list, const char *key, char *out, size_t n) {
    char pat[32];
    snprintf(pat, sizeof pat, "%s ", key);
    const char *at = strstr(list, pat);
    out[0] = 0;
    if (at) snprintf(out, n, "%.*s", (int)strcspn(at + strlen(pat), ","), at + strlen(pat));
}

/* The driver as nvidia-smi gave it in the provenance ("gpu\tNVIDIA H200, 570.124.06, 143771 MiB"). */
static void driver_from_provenance(const char *prov, char *out, size_t n) {
    const char *at = strstr(prov, "gpu\t");
    if (at && (at == prov || at[-1] == '\n')) {
        const char *c = strchr(at, ',');
        if (c && c < at + strcspn(at, "\n")) {
            c++;
            while (*c == ' ') c++;
            snprintf(out, n, "%.*s", (int)strcspn(c, ",\n"), c);
        }
    }
}

void il_gpu_facts(il_run_record *r, const il_peer *peer) {
    if (peer) {
        snprintf(r->gpu, sizeof r->gpu, "%s", peer->gpu);
        snprintf(r->gpu_cc, sizeof r->gpu_cc, "%s", peer->gpu_cc);
        snprintf(r->cuda_version, sizeof r->cuda_version, "%s", peer->cuda_version);
        snprintf(r->cudnn_version, sizeof r->cudnn_version, "%s", peer->cudnn_version);
        if (r->peak_device_bytes >= 0)
            snprintf(r->device_memory_how, sizeof r->device_memory_how,
                     "torch.cuda.max_memory_allocated (the caching allocator's peak of live tensors)");
    } else {
#ifdef IL_HAVE_CUDA
        const char *libs = il_cuda_versions();
        int cc = il_cuda_cc();
        snprintf(r->gpu, sizeof r->gpu, "%s", il_cuda_device_name());
        if (cc > 0) snprintf(r->gpu_cc, sizeof r->gpu_cc, "%d.%d", cc / 10, cc % 10);
        version_of(libs, "runtime", r->cuda_version, sizeof r->cuda_version);
        version_of(libs, "cuBLAS", r->cublas_version, sizeof r->cublas_version);
        version_of(il_cudnn_version(), "cuDNN", r->cudnn_version, sizeof r->cudnn_version);
        version_of(libs, "driver", r->gpu_driver, sizeof r->gpu_driver);
        if (r->gpu_driver[0]) { /* the CUDA API level the driver offers, until nvidia-smi says more */
            char api[64];
            snprintf(api, sizeof api, "CUDA %.50s", r->gpu_driver);
            snprintf(r->gpu_driver, sizeof r->gpu_driver, "%s", api);
        }
#endif
        if (r->peak_device_bytes >= 0) snprintf(r->device_memory_how, sizeof r->device_memory_how, "%s", il_gpu_memory_how);
    }
    driver_from_provenance(r->provenance, r->gpu_driver, sizeof r->gpu_driver);
}

/* The value of key in a plan header's "key=value" lines, "" when missing. */
static void head_value(const char *head, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    out[0] = 0;
    for (const char *l = head; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] ? 1 : 0))
        if (!strncmp(l, key, kl) && l[kl] == '=') {
            snprintf(out, n, "%.*s", (int)strcspn(l + kl + 1, "\n"), l + kl + 1);
            return;
        }
}

il_status il_bench_plan_target(const char *path, il_variant *v) {
    char head[8192], val[64];
    il_status st = il_plan_file_read(path, head, sizeof head, NULL);
    if (st) return st;
    head_value(head, "backend", val, sizeof val);
    snprintf(v->backend, sizeof v->backend, "%.15s", val[0] ? val : "cpu");
    head_value(head, "precision", val, sizeof val);
    snprintf(v->precision, sizeof v->precision, "%.7s", val);
    head_value(head, "graphs", val, sizeof val);
    v->graphs = atoi(val) != 0;
    return IL_OK;
}
