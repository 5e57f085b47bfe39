/* Shared helpers for the libFuzzer targets: scratch directories on tmpfs,
 * writing the input to a file, and emptiness checks used as sentinels. */
#ifndef KILN_FUZZ_COMMON_H
#define KILN_FUZZ_COMMON_H

#include "kiln/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Failing to set up the harness is not a finding in the code under test,
 * but it must stop the run loudly rather than fuzz nothing. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "fuzz harness: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        abort();
}

/* A fresh directory on tmpfs when there is one: unpacking thousands of
 * inputs per second onto a disk-backed /tmp is what slows these targets. */
static inline char *fuzz_mkdtemp(const char *tag)
{
        const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
        for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
                if (!bases[i] || !*bases[i] || access(bases[i], W_OK) != 0)
                        continue;
                char *p = kiln_xasprintf("%s/kiln-fuzz-%s-XXXXXX", bases[i], tag);
                if (mkdtemp(p))
                        return p;
                free(p);
        }
        fuzz_die("cannot create a scratch directory: %s", strerror(errno));
}

static inline void fuzz_mkdir(const char *path)
{
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                fuzz_die("mkdir %s: %s", path, strerror(errno));
}

static int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Unpacked trees may hold directories without write or search permission
 * for their owner; open them up so their children can go. */
static int fuzz_chmod_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)ftw;
        if (flag == FTW_D)
                chmod(path, (st->st_mode & 07777) | 0700);
        return 0;
}

/* rm -rf path (path itself included). */
static inline void fuzz_rm_rf(const char *path)
{
        nftw(path, fuzz_chmod_one, 32, FTW_PHYS);
        if (nftw(path, fuzz_rm_one, 32, FTW_PHYS | FTW_DEPTH) < 0 && errno != ENOENT)
                fuzz_die("rm -rf %s: %s", path, strerror(errno));
}

static char *fuzz_scratch_dirs[4];

static void fuzz_scratch_cleanup(void)
{
        for (size_t i = 0; i < sizeof(fuzz_scratch_dirs) / sizeof(fuzz_scratch_dirs[0]); i++)
                if (fuzz_scratch_dirs[i])
                        fuzz_rm_rf(fuzz_scratch_dirs[i]);
}

/* A scratch directory removed when the fuzzer exits normally (a crash
 * leaves it for inspection). */
static inline char *fuzz_scratch(const char *tag)
{
        size_t i = 0;
        while (i < sizeof(fuzz_scratch_dirs) / sizeof(fuzz_scratch_dirs[0]) && fuzz_scratch_dirs[i])
                i++;
        if (i == sizeof(fuzz_scratch_dirs) / sizeof(fuzz_scratch_dirs[0]))
                fuzz_die("too many scratch directories");
        if (i == 0)
                atexit(fuzz_scratch_cleanup);
        fuzz_scratch_dirs[i] = fuzz_mkdtemp(tag);
        return fuzz_scratch_dirs[i];
}

/* Names the first entry of dir, or returns false when it is empty. */
static inline bool fuzz_dir_first_entry(const char *dir, char *name, size_t n)
{
        DIR *d = opendir(dir);
        if (!d)
                fuzz_die("opendir %s: %s", dir, strerror(errno));
        struct dirent *e;
        bool found = false;
        while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                snprintf(name, n, "%s", e->d_name);
                found = true;
                break;
        }
        closedir(d);
        return found;
}

/* Aborts (a finding) when dir is not empty: something wrote where it must
 * not have. */
static inline void fuzz_assert_empty(const char *dir, const char *why)
{
        char name[256];
        if (fuzz_dir_first_entry(dir, name, sizeof(name))) {
                fprintf(stderr, "fuzz: %s: found %s/%s\n", why, dir, name);
                abort();
        }
}

/* KILN_FUZZ_DEBUG=1 prints why each input was refused: handy when checking
 * that seeds get past the first check, too noisy while fuzzing. */
static inline void fuzz_debug_err(const char *what, const struct kiln_err *err)
{
        static int on = -1;
        if (on < 0)
                on = getenv("KILN_FUZZ_DEBUG") != NULL;
        if (on)
                fprintf(stderr, "%s: %s\n", what, err && err->msg ? err->msg : "ok");
}

static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                fuzz_die("create %s: %s", path, strerror(errno));
        size_t off = 0;
        while (off < size) {
                ssize_t w = write(fd, data + off, size - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        fuzz_die("write %s: %s", path, strerror(errno));
                off += (size_t)w;
        }
        close(fd);
}

/* The input as a C string: a copy with a NUL appended. Embedded NULs just
 * end the string early, as they would when the text came from argv or a
 * header. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
        char *s = kiln_xmalloc(size + 1);
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

#endif
