/* Parallel gzip: what it writes inflates (by zlib and by GNU gzip) to what
 * went in, for sizes around the block boundaries; the bytes are the same
 * for 1, 2, 3 and 8 threads; the ratio stays within 1% of one zlib stream
 * at the same level (blocks of 256 KiB, each compressed on its own). */
#include "archive/archive-internal.h"
#include "test.h"

#include <zlib.h>

struct out {
        struct kiln_buf b;
};

static int collect(void *ud, const void *p, size_t n)
{
        kiln_buf_append(&((struct out *)ud)->b, p, n);
        return 0;
}

static int refuse(void *ud, const void *p, size_t n)
{
        (void)ud;
        (void)p;
        (void)n;
        return -1;
}

/* Compressible text mixed with random runs, as layers are. */
static void fill(unsigned char *p, size_t n, uint64_t seed)
{
        static const char words[] = "lib/python3.11/site-packages/__init__.py def return None ";
        for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                bool random_run = ((i >> 14) & 3) == 3;
                p[i] = random_run
                           ? (unsigned char)(seed >> 56)
                           : (unsigned char)words[(i * 7 + (seed >> 60)) % (sizeof(words) - 1)];
        }
}

static struct kiln_buf compress_with(const unsigned char *in, size_t n, int level, int threads,
                                     size_t chunk)
{
        struct out o = {0};
        struct kiln_pgzip *p = kiln_pgzip_new(level, threads, collect, &o);
        int rc = 0;
        for (size_t off = 0; off < n && rc == 0; off += chunk)
                rc = kiln_pgzip_write(p, in + off, n - off < chunk ? n - off : chunk);
        if (rc == 0)
                rc = kiln_pgzip_finish(p);
        kiln_pgzip_free(p);
        CHECK(rc == 0, "pgzip of %zu bytes with %d threads", n, threads);
        return o.b;
}

/* zlib's inflate, member after member, as every gzip reader does. */
static bool inflates_to(const struct kiln_buf *gz, const unsigned char *want, size_t n)
{
        z_stream z = {0};
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return false;
        unsigned char *got = kiln_xmalloc(n + 1);
        z.next_in = (Bytef *)gz->data;
        z.avail_in = (uInt)gz->len;
        z.next_out = got;
        z.avail_out = (uInt)(n + 1);
        int zr;
        size_t members = 0;
        while ((zr = inflate(&z, Z_FINISH)) == Z_STREAM_END) {
                members++;
                if (z.avail_in == 0 || inflateReset(&z) != Z_OK)
                        break;
        }
        size_t out = n + 1 - z.avail_out; /* total_out starts again with each member */
        bool ok = zr == Z_STREAM_END && members > 0 && out == n && z.avail_in == 0 &&
                  (n == 0 || memcmp(got, want, n) == 0);
        inflateEnd(&z);
        free(got);
        return ok;
}

/* GNU gzip, a decoder nobody here wrote, checks the CRC and length too. */
static bool gzip_accepts(const struct kiln_buf *gz)
{
        char path[] = "/tmp/kiln-pgzip-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return false;
        bool ok = kiln_write_all(fd, gz->data, gz->len) == 0;
        close(fd);
        _cleanup_free_ char *cmd = kiln_xasprintf("gzip -t < %s 2>/dev/null", path);
        ok = ok && system(cmd) == 0;
        unlink(path);
        return ok;
}

static size_t zlib_size(const unsigned char *in, size_t n, int level)
{
        uLongf cap = compressBound((uLong)n) + 64;
        unsigned char *out = kiln_xmalloc(cap);
        z_stream z = {0};
        deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        deflate(&z, Z_FINISH);
        size_t got = z.total_out;
        deflateEnd(&z);
        free(out);
        return got;
}

int main(void)
{
        const size_t block = (size_t)256 << 10;
        const size_t sizes[] = {0,         1,         100,           block - 1,         block,
                                block + 1, 2 * block, 5 * block + 7, 40 * block + 12345};
        const size_t big = sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
        unsigned char *in = kiln_xmalloc(big);
        fill(in, big, 42);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                struct kiln_buf one = compress_with(in, n, -1, 1, 4096);
                CHECK(inflates_to(&one, in, n), "%zu bytes: inflates to the input", n);
                CHECK(gzip_accepts(&one), "%zu bytes: gzip -t accepts it", n);
                const int threads[] = {2, 3, 8};
                for (size_t t = 0; t < 3; t++) {
                        /* odd write sizes: blocks cut where the data says, not the caller */
                        struct kiln_buf many = compress_with(in, n, -1, threads[t], 77777);
                        CHECK(many.len == one.len && !memcmp(many.data, one.data, one.len),
                              "%zu bytes: %d threads give the bytes of one", n, threads[t]);
                        kiln_buf_release(&many);
                }
                kiln_buf_release(&one);
        }

        /* the ratio of one stream, within 1%, at levels 1, 6, 9 */
        const int levels[] = {1, 6, 9};
        for (size_t l = 0; l < 3; l++) {
                struct kiln_buf p = compress_with(in, big, levels[l], 2, 1 << 16);
                size_t z = zlib_size(in, big, levels[l]);
                CHECK(p.len <= z + z / 100, "level %d: %zu bytes against zlib's %zu", levels[l],
                      p.len, z);
                CHECK(inflates_to(&p, in, big), "level %d inflates", levels[l]);
                kiln_buf_release(&p);
        }

        /* a failing sink fails the stream, with or without threads */
        for (int t = 1; t <= 2; t++) {
                struct kiln_pgzip *p = kiln_pgzip_new(-1, t, refuse, NULL);
                int rc = 0;
                for (int k = 0; k < 8 && rc == 0; k++)
                        rc = kiln_pgzip_write(p, in, block);
                if (rc == 0)
                        rc = kiln_pgzip_finish(p);
                CHECK(rc < 0, "a refusing sink is an error (%d threads)", t);
                kiln_pgzip_free(p);
        }
        CHECK(kiln_cpu_count() >= 1, "cpu count");
        free(in);
        TEST_DONE();
}
