/* The compile cache's support layer: SHA-256 against the FIPS 180-4 / NIST test vectors (whole
 * and fed in pieces), key fields that cannot run together, the store's round trip, and entries
 * that must not validate (truncated, a flipped payload or header byte, another key's entry). */
#include "support/alloc.h"
#include "support/cache.h"
#include "support/sha256.h"
#include "tests/unit/check.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex_of(const void *data, size_t n, char out[65])
{
    uint8_t d[SUP_SHA256_BYTES];
    sup_sha256(data, n, d);
    sup_sha256_hex(d, out);
}

static void test_vectors(void)
{
    char hex[65];
    hex_of("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    hex_of(m896, strlen(m896), hex);
    CHECK_EQ_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* A million 'a', whole and in pieces of every size from 1 to 130 bytes (crossing the 64-byte
     * block and the 56-byte padding boundary in every phase). */
    size_t n = 1000000;
    char *a = malloc(n);
    CHECK(a != NULL);
    if (!a)
        return;
    memset(a, 'a', n);
    hex_of(a, n, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    sup_sha256_ctx s;
    sup_sha256_init(&s);
    for (size_t at = 0, step = 1; at < n; at += step, step = step % 130 + 1)
        sup_sha256_update(&s, a + at, step < n - at ? step : n - at);
    uint8_t d[SUP_SHA256_BYTES];
    sup_sha256_final(&s, d);
    sup_sha256_hex(d, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void digest_of_fields(const char *x, const char *y, uint8_t out[SUP_SHA256_BYTES])
{
    sup_sha256_ctx s;
    sup_sha256_init(&s);
    sup_sha256_str(&s, x);
    sup_sha256_str(&s, y);
    sup_sha256_final(&s, out);
}

static void test_fields(void)
{
    uint8_t a[SUP_SHA256_BYTES], b[SUP_SHA256_BYTES], c[SUP_SHA256_BYTES], d[SUP_SHA256_BYTES];
    digest_of_fields("ab", "c", a);
    digest_of_fields("a", "bc", b);
    digest_of_fields("", "abc", c);
    digest_of_fields(NULL, "abc", d);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(memcmp(c, d, sizeof c) != 0);
    /* A key's start is the same within one build, and differs between domains. */
    sup_sha256_ctx s;
    sup_cache_key_begin(&s, "jit object");
    sup_sha256_final(&s, a);
    sup_cache_key_begin(&s, "jit object");
    sup_sha256_final(&s, b);
    sup_cache_key_begin(&s, "aot object");
    sup_sha256_final(&s, c);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
}

static void key_of(const char *what, uint8_t key[SUP_SHA256_BYTES]) { sup_sha256(what, strlen(what), key); }

/* Whether dir holds key's entry with exactly `want`. */
static bool holds(const char *dir, const uint8_t key[SUP_SHA256_BYTES], const char *want)
{
    void *data = NULL;
    size_t len = 0;
    if (!sup_cache_get(dir, key, &data, &len))
        return false;
    bool same = len == strlen(want) && !memcmp(data, want, len);
    sup_free(data);
    return same;
}

/* Rewrites byte `at` of the file (negative: from the end) as its complement. */
static void flip(const char *path, long at)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    off_t off = at < 0 ? st.st_size + at : at;
    unsigned char c = 0;
    CHECK(pread(fd, &c, 1, off) == 1);
    c = (unsigned char)~c;
    CHECK(pwrite(fd, &c, 1, off) == 1);
    close(fd);
}

static void copy_file(const char *from, const char *to)
{
    size_t n = 0;
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[4096];
    CHECK(in && out);
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static void test_store(void)
{
    char root[] = "/tmp/dlc-test-cache-XXXXXX", dir[256], path[512], other[512];
    CHECK(mkdtemp(root) != NULL);
    snprintf(dir, sizeof dir, "%s/a/b", root);     /* made by the first store */
    uint8_t k1[SUP_SHA256_BYTES], k2[SUP_SHA256_BYTES];
    key_of("one", k1);
    key_of("two", k2);
    const char *payload = "an object file, or so";

    CHECK(!holds(dir, k1, payload));
    CHECK(sup_cache_put(dir, k1, payload, strlen(payload)));
    CHECK(holds(dir, k1, payload));
    CHECK(!holds(dir, k2, payload));
    CHECK(sup_cache_put(dir, k2, "", 0));          /* an empty payload is an entry too */
    CHECK(holds(dir, k2, ""));
    CHECK(sup_cache_entry_path(dir, k1, path, sizeof path));
    CHECK(sup_cache_entry_path(dir, k2, other, sizeof other));
    struct stat st;
    CHECK(!stat(path, &st) && st.st_size == 96 + (off_t)strlen(payload));

    /* Truncated by one byte, or to the header alone, or to nothing. */
    CHECK(!truncate(path, st.st_size - 1));
    CHECK(!holds(dir, k1, payload));
    CHECK(!truncate(path, 96));
    CHECK(!holds(dir, k1, payload));
    CHECK(!truncate(path, 0));
    CHECK(!holds(dir, k1, payload));
    /* Rewritten whole; then one flipped byte in the payload, the checksum, the length, the magic. */
    static const long bytes[] = {-1, -5, 60, 48, 0, 8, 16};
    for (size_t i = 0; i < sizeof bytes / sizeof *bytes; i++) {
        CHECK(sup_cache_put(dir, k1, payload, strlen(payload)));
        CHECK(holds(dir, k1, payload));
        flip(path, bytes[i]);
        CHECK(!holds(dir, k1, payload));
    }
    /* Another key's entry under this key's name. */
    CHECK(sup_cache_put(dir, k1, payload, strlen(payload)));
    copy_file(path, other);
    CHECK(!holds(dir, k2, payload));
    CHECK(holds(dir, k1, payload));

    /* No temporary files are left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 2", dir);
    CHECK(system(cmd) == 0);

    /* A directory that cannot be made: the store says so and never crashes. */
    char file[300], under[400];
    snprintf(file, sizeof file, "%s/file", root);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(under, sizeof under, "%s/dlc", file);
    CHECK(!sup_cache_put(under, k1, payload, strlen(payload)));
    CHECK(!holds(under, k1, payload));
    CHECK(!holds(NULL, k1, payload));

    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
}

static void test_dir(void)
{
    char *d = sup_cache_dir("/explicit", false);
    CHECK_EQ_STR(d, "/explicit");
    free(d);
    CHECK(sup_cache_dir("/explicit", true) == NULL);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    d = sup_cache_dir(NULL, false);
    CHECK_EQ_STR(d, "/xdg/dlc");
    free(d);
    setenv("XDG_CACHE_HOME", "relative", 1);      /* not absolute: ignored, as the XDG spec says */
    d = sup_cache_dir(NULL, false);
    CHECK_EQ_STR(d, "/home/u/.cache/dlc");
    free(d);
    unsetenv("XDG_CACHE_HOME");
    d = sup_cache_dir(NULL, false);
    CHECK_EQ_STR(d, "/home/u/.cache/dlc");
    free(d);
    unsetenv("HOME");
    CHECK(sup_cache_dir(NULL, false) == NULL);
}

int main(void)
{
    test_vectors();
    test_fields();
    test_store();
    test_dir();
    return check_result("test_cache");
}
