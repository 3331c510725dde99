/* The compile cache's store on disk (see cache.h): naming the directory, reading and validating
 * entries, writing them atomically, and the build identity every key starts with. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* dl_iterate_phdr */
#endif
#include "support/cache.h"

#include "dlc/dlc.h"
#include "support/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header, little-endian: magic, format, header size, key, payload length, payload SHA-256,
 * and 8 bytes reserved (zero). */
enum { MAGIC_AT = 0, FORMAT_AT = 8, HSIZE_AT = 12, KEY_AT = 16, LEN_AT = 48, SUM_AT = 56, HEADER = 96 };
static const char MAGIC[8] = "DLCCACHE";

const char *sup_cache_outcome_name(sup_cache_outcome o)
{
    return o == SUP_CACHE_HIT ? "hit" : o == SUP_CACHE_MISS ? "miss" : "off";
}

char *sup_cache_dir(const char *dir, bool disabled)
{
    if (disabled)
        return NULL;
    if (dir && *dir)
        return strdup(dir);
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    const char *base = xdg && xdg[0] == '/' ? xdg : home && *home ? home : NULL;
    if (!base)
        return NULL;
    const char *sub = base == xdg ? "/dlc" : "/.cache/dlc";
    size_t n = strlen(base) + strlen(sub) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", base, sub);
    return out;
}

/* ---- the build identity ------------------------------------------------------------------- */

static struct {
    uint8_t id[64];
    size_t  n;
} build;
static pthread_once_t build_once = PTHREAD_ONCE_INIT;

/* The NT_GNU_BUILD_ID note of the loaded object whose segments hold `want`. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *want)
{
    (void)size;
    uintptr_t addr = (uintptr_t)want;
    bool here = false;
    for (int i = 0; i < info->dlpi_phnum && !here; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + p->p_vaddr;
        here = p->p_type == PT_LOAD && addr >= lo && addr - lo < p->p_memsz;
    }
    if (!here)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_NOTE)
            continue;
        size_t align = p->p_align == 8 ? 8 : 4;
        const uint8_t *at = (const uint8_t *)(info->dlpi_addr + p->p_vaddr), *end = at + p->p_memsz;
        while ((size_t)(end - at) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)at;
            size_t name = (nh->n_namesz + align - 1) & ~(align - 1), desc = (nh->n_descsz + align - 1) & ~(align - 1);
            const uint8_t *d = at + sizeof *nh + name;
            if (name > (size_t)(end - at) || desc > (size_t)(end - d))
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(at + sizeof *nh, "GNU", 4) &&
                nh->n_descsz <= sizeof build.id) {
                memcpy(build.id, d, nh->n_descsz);
                build.n = nh->n_descsz;
                return 1;
            }
            at = d + desc;
        }
    }
    return 1;
}

static void read_build_id(void)
{
    dl_iterate_phdr(find_build_id, (void *)(uintptr_t)&sup_cache_key_begin);
    if (build.n)
        return;
    /* Linked without --build-id: the executable's size and modification time stand in. */
    struct stat st;
    if (!stat("/proc/self/exe", &st)) {
        int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
        memcpy(build.id, v, sizeof v);
        build.n = sizeof v;
    }
}

void sup_cache_key_begin(sup_sha256_ctx *s, const char *domain)
{
    pthread_once(&build_once, read_build_id);
    sup_sha256_init(s);
    sup_sha256_str(s, "dlc compile cache");
    sup_sha256_str(s, domain);
    sup_sha256_u64(s, SUP_CACHE_FORMAT);
    sup_sha256_u64(s, (uint64_t)DLC_VERSION_MAJOR << 32 | (uint64_t)DLC_VERSION_MINOR << 16 | DLC_VERSION_PATCH);
    sup_sha256_field(s, build.id, build.n);
}

/* ---- entries ------------------------------------------------------------------------------ */

bool sup_cache_entry_path(const char *dir, const uint8_t key[SUP_SHA256_BYTES], char *buf, size_t n)
{
    char hex[2 * SUP_SHA256_BYTES + 1];
    sup_sha256_hex(key, hex);
    int k = snprintf(buf, n, "%s/%s.dlcache", dir, hex);
    return k > 0 && (size_t)k < n;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads exactly n bytes (false on an error or an early end). */
static bool read_all(int fd, void *buf, size_t n)
{
    for (uint8_t *p = buf; n;) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static bool write_all(int fd, const void *buf, size_t n)
{
    for (const uint8_t *p = buf; n;) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return false;
        p += put;
        n -= (size_t)put;
    }
    return true;
}

bool sup_cache_get(const char *dir, const uint8_t key[SUP_SHA256_BYTES], void **data, size_t *len)
{
    char path[4096];
    if (!dir || !sup_cache_entry_path(dir, key, path, sizeof path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    uint8_t h[HEADER];
    uint8_t *buf = NULL;
    bool ok = !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size >= HEADER && read_all(fd, h, HEADER) &&
              !memcmp(h + MAGIC_AT, MAGIC, sizeof MAGIC) && get32(h + FORMAT_AT) == SUP_CACHE_FORMAT &&
              get32(h + HSIZE_AT) == HEADER && !memcmp(h + KEY_AT, key, SUP_SHA256_BYTES) &&
              get64(h + LEN_AT) == (uint64_t)st.st_size - HEADER && get64(h + LEN_AT) < SIZE_MAX;
    size_t n = ok ? (size_t)get64(h + LEN_AT) : 0;
    ok = ok && (buf = sup_malloc(n ? n : 1)) && read_all(fd, buf, n);
    close(fd);
    uint8_t sum[SUP_SHA256_BYTES];
    if (ok)
        sup_sha256(buf, n, sum);
    if (!ok || memcmp(sum, h + SUM_AT, sizeof sum)) {
        sup_free(buf);
        return false;
    }
    *data = buf;
    *len = n;
    return true;
}

/* mkdir -p */
static bool make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n >= sizeof path)
        return false;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (path[i] == '/' || path[i] == 0) {
            char c = path[i];
            path[i] = 0;
            if (mkdir(path, 0777) && errno != EEXIST)
                return false;
            path[i] = c;
        }
    struct stat st;
    return !stat(dir, &st) && S_ISDIR(st.st_mode);
}

static atomic_flag warned = ATOMIC_FLAG_INIT;

bool sup_cache_put(const char *dir, const uint8_t key[SUP_SHA256_BYTES], const void *data, size_t len)
{
    char path[4096], tmp[4096];
    if (!dir || !sup_cache_entry_path(dir, key, path, sizeof path) ||
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return false;
    uint8_t h[HEADER] = {0};
    memcpy(h + MAGIC_AT, MAGIC, sizeof MAGIC);
    put32(h + FORMAT_AT, SUP_CACHE_FORMAT);
    put32(h + HSIZE_AT, HEADER);
    memcpy(h + KEY_AT, key, SUP_SHA256_BYTES);
    put64(h + LEN_AT, len);
    sup_sha256(data, len, h + SUM_AT);
    /* A private temporary name in the same directory, made whole and durable before the rename
     * publishes it: a reader sees the old entry, the new one or none, never a part. */
    int fd = make_dirs(dir) ? mkstemp(tmp) : -1;
    bool ok = fd >= 0 && write_all(fd, h, HEADER) && write_all(fd, data, len) && !fsync(fd);
    int err = errno;
    if (fd >= 0 && close(fd))
        ok = false;
    if (ok && rename(tmp, path)) {
        ok = false;
        err = errno;
    }
    if (!ok && fd >= 0)
        unlink(tmp);
    if (!ok && !atomic_flag_test_and_set(&warned))
        fprintf(stderr, "dlc: warning: cannot write to the compile cache %s: %s (compiling without it)\n", dir,
                strerror(err ? err : EIO));
    return ok;
}
