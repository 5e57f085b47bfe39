/* Throughput of kiln_archive_from_upper (and of unpacking its result) on one
 * large file, half zeros and half random bytes, or on a directory of real
 * files (KILN_LAYER_BENCH_UPPER=DIR, taken as an upper as it is; the rate
 * counts its regular files' bytes). Size in MiB via KILN_LAYER_BENCH_MIB,
 * default 1024. tools/bench/build.sh runs it; it is not a test. */
#include "kiln/archive.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* A benchmark that cannot do its work stops: a number from half a run
 * would mislead. */
#define NEED(cond, ...)                                                                            \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "layer_commit: %s failed: ", #cond);                       \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fputc('\n', stderr);                                                       \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

static uint64_t xorshift(uint64_t *s)
{
        uint64_t x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}

static uint64_t file_bytes;

static int count(const char *path, const struct stat *st, int type, struct FTW *f)
{
        (void)path;
        (void)f;
        if (type == FTW_F && S_ISREG(st->st_mode))
                file_bytes += (uint64_t)st->st_size;
        return 0;
}

int main(void)
{
        const char *mib_env = getenv("KILN_LAYER_BENCH_MIB");
        uint64_t mib = mib_env ? strtoull(mib_env, NULL, 10) : 1024;
        char dir[] = "/var/tmp/kiln-layer-bench-XXXXXX";
        NEED(mkdtemp(dir) != NULL, "mkdtemp");
        _cleanup_free_ char *upper = kiln_xasprintf("%s/upper", dir);
        _cleanup_free_ char *root = kiln_xasprintf("%s/root", dir);
        _cleanup_free_ char *file = kiln_xasprintf("%s/big", upper);
        mkdir(upper, 0755);
        mkdir(root, 0755);
        const char *real = getenv("KILN_LAYER_BENCH_UPPER");
        uint64_t bytes = mib << 20;
        if (real) {
                free(upper);
                upper = kiln_xstrdup(real);
                nftw(real, count, 64, FTW_PHYS);
                bytes = file_bytes;
                mib = bytes >> 20;
        } else {
                int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                static uint64_t buf[1 << 17]; /* 1 MiB */
                uint64_t seed = 0x9E3779B97F4A7C15ULL;
                for (uint64_t i = 0; i < mib; i++) {
                        if (i < mib / 2)
                                memset(buf, 0, sizeof(buf));
                        else
                                for (size_t j = 0; j < sizeof(buf) / sizeof(buf[0]); j++)
                                        buf[j] = xorshift(&seed);
                        NEED(kiln_write_all(fd, buf, sizeof(buf)) == 0, "write");
                }
                close(fd);
        }

        struct kiln_store *store = NULL;
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_free_ char *sr = kiln_xasprintf("%s/store", dir);
        NEED(kiln_store_open(sr, &store, &err) == 0, "store");
        struct kiln_archive_opts o = {KILN_COMP_GZIP, -1, -1, 0};
        const char *threads = getenv("KILN_LAYER_BENCH_THREADS");
        if (threads)
                o.threads = atoi(threads);
        const char *comp = getenv("KILN_LAYER_BENCH_COMP");
        if (comp && !strcmp(comp, "zstd"))
                o.compression = KILN_COMP_ZSTD;
        struct kiln_archive_result res = {0};
        int ufd = open(upper, O_RDONLY | O_DIRECTORY);
        uint64_t t0 = kiln_now_ns();
        NEED(kiln_archive_from_upper(ufd, "bench", store, &o, &res, &err) == 0, "from_upper: %s",
             err ? err->msg : "");
        double s = (double)(kiln_now_ns() - t0) / 1e9;
        close(ufd);
        printf("from_upper %s, %s threads: %" PRIu64
               " MiB in %.2fs = %.1f MB/s (compressed %.1f MiB)\n",
               o.compression == KILN_COMP_ZSTD ? "zstd" : "gzip", threads ? threads : "all", mib, s,
               (double)bytes / 1e6 / s, (double)res.size / 1048576.0);

        int bfd = -1;
        uint64_t bsize;
        NEED(kiln_store_open_blob(store, res.digest, &bfd, &bsize, &err) == 0, "open blob");
        int rfd = open(root, O_RDONLY | O_DIRECTORY);
        t0 = kiln_now_ns();
        NEED(kiln_archive_unpack(rfd, bfd, res.media_type, res.diff_id, "bench", NULL, &err) == 0,
             "unpack: %s", err ? err->msg : "");
        s = (double)(kiln_now_ns() - t0) / 1e9;
        printf("unpack: %" PRIu64 " MiB in %.2fs = %.1f MB/s\n", mib, s, (double)bytes / 1e6 / s);
        close(rfd);
        close(bfd);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("peak RSS %ld KiB\n", ru.ru_maxrss);
        kiln_store_free(store);
        kiln_rm_rf(dir, &err);
        return 0;
}
