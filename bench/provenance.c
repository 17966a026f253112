/*
 * provenance.c - what produced a figure: SHA-256 of model files, and the build, machine and
 * library versions recorded with every run.
 *
 * The git commit and build flags are baked in by the Makefile (-DIL_GIT_COMMIT, -DIL_BUILD_FLAGS
 * on this file); a binary built without them says "unknown" rather than guessing from the
 * working tree, which may have moved on since the build.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- SHA-256 (FIPS 180-4), small and self-contained: one hash per model file. */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} sha_ctx;

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha_ctx *c, const unsigned char *p) {
    uint32_t w[64], a, b, d, e, f, g, h, cc;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
    c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha_init(sha_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->len = 0;
    c->nbuf = 0;
}

static void sha_update(sha_ctx *c, const unsigned char *p, size_t n) {
    c->len += n;
    while (n) {
        size_t k = 64 - c->nbuf < n ? 64 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k, p += k, n -= k;
        if (c->nbuf == 64) {
            sha_block(c, c->buf);
            c->nbuf = 0;
        }
    }
}

static void sha_final(sha_ctx *c, unsigned char out[32]) {
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, z = 0, lb[8];
    sha_update(c, &pad, 1);
    while (c->nbuf != 56) sha_update(c, &z, 1);
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(c, lb, 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

void il_sha256(const void *data, size_t len, unsigned char out[32]) {
    sha_ctx c;
    sha_init(&c);
    sha_update(&c, data, len);
    sha_final(&c, out);
}

il_status il_sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return il_error(IL_ERR_IO, "%s: cannot open for hashing", path);
    sha_ctx c;
    unsigned char buf[65536], out[32];
    size_t n;
    sha_init(&c);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha_update(&c, buf, n);
    int err = ferror(f);
    fclose(f);
    if (err) return il_error(IL_ERR_IO, "%s: read error while hashing", path);
    sha_final(&c, out);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", out[i]);
    return IL_OK;
}

/* ---- machine and build facts */

#ifndef IL_GIT_COMMIT
#define IL_GIT_COMMIT "unknown (built without -DIL_GIT_COMMIT)"
#endif
#ifndef IL_BUILD_FLAGS
#define IL_BUILD_FLAGS "unknown (built without -DIL_BUILD_FLAGS)"
#endif

static void add(char *kv, size_t n, const char *k, const char *v) {
    size_t used = strlen(kv);
    if (!v || !v[0] || used >= n) return;
    char clean[512];
    size_t j = 0;
    for (size_t i = 0; v[i] && j + 1 < sizeof clean; i++) clean[j++] = (v[i] == '\t' || v[i] == '\n') ? ' ' : v[i];
    while (j && clean[j - 1] == ' ') j--;
    clean[j] = 0;
    snprintf(kv + used, n - used, "%s\t%s\n", k, clean);
}

/* First line of a command's output (the commands here are fixed strings, not user input). */
static int first_line(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    out[0] = 0;
    if (!p) return 0;
    if (!fgets(out, (int)n, p)) out[0] = 0;
    pclose(p);
    out[strcspn(out, "\n")] = 0;
    return out[0] != 0;
}

static void cpu_model(char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    out[0] = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) snprintf(out, n, "%s", c + 2);
            break;
        }
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

void il_provenance_collect(char *kv, size_t n) {
    char b[512];
    struct utsname u;
    kv[0] = 0;
    add(kv, n, "inferlab_version", IL_VERSION);
    add(kv, n, "git_commit", IL_GIT_COMMIT);
    add(kv, n, "build_flags", IL_BUILD_FLAGS);
#ifdef __VERSION__
    add(kv, n, "compiler", "gcc " __VERSION__);
#endif
#ifdef IL_HAVE_CUDA
    add(kv, n, "cuda_build", "yes");
#else
    add(kv, n, "cuda_build", "no");
#endif
    cpu_model(b, sizeof b);
    add(kv, n, "cpu", b);
    snprintf(b, sizeof b, "%d", il_num_cores());
    add(kv, n, "cores", b);
    if (!uname(&u)) {
        snprintf(b, sizeof b, "%s %s %s", u.sysname, u.release, u.machine);
        add(kv, n, "os", b);
        add(kv, n, "host", u.nodename);
    }
    /* GPU facts only when a driver answers; absent keys mean "no GPU here". */
    if (first_line("nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null", b,
                   sizeof b)) {
        add(kv, n, "gpu", b);
        if (first_line("nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\\([0-9.]*\\).*/\\1/p'", b, sizeof b))
            add(kv, n, "cuda_driver_api", b);
    }
    if (first_line("grep -o '\"version\" *: *\"[0-9.]*\"' /usr/local/cuda/version.json 2>/dev/null | head -1 | "
                   "grep -o '[0-9][0-9.]*'", b, sizeof b))
        add(kv, n, "cuda_toolkit", b);
    /* Library versions from the file names the dynamic loader knows (libcublas.so.12.4.5.8). */
    if (first_line("for l in $(ldconfig -p 2>/dev/null | awk '/libcublas\\.so\\./{print $NF}'); do readlink -f $l; "
                   "done | sed -n 's/.*libcublas\\.so\\.//p' | sort -V | tail -1", b, sizeof b))
        add(kv, n, "cublas", b);
    if (first_line("for l in $(ldconfig -p 2>/dev/null | awk '/libcudnn\\.so\\./{print $NF}'); do readlink -f $l; "
                   "done | sed -n 's/.*libcudnn\\.so\\.//p' | sort -V | tail -1", b, sizeof b))
        add(kv, n, "cudnn", b);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    add(kv, n, "date", b);
}
