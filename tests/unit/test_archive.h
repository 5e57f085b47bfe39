/* Shared by the archive module's unit tests (test_archive_unpack.c and
 * test_archive_write.c): each run's temp directory and blob store, and
 * the helpers both use. */
#ifndef KILN_TEST_ARCHIVE_H
#define KILN_TEST_ARCHIVE_H

#include "kiln/archive.h"
#include "archive/archive-internal.h"
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

static char tmp[] = "/tmp/kiln-test-layer-XXXXXX";
static struct kiln_store *store;
static bool is_root;

static inline const char *mt_of(enum kiln_compression c)
{
        return c == KILN_COMP_GZIP   ? KILN_MT_OCI_LAYER_GZIP
               : c == KILN_COMP_ZSTD ? KILN_MT_OCI_LAYER_ZSTD
                                     : KILN_MT_OCI_LAYER;
}

static inline char *mkroot(const char *name)
{
        char *p = kiln_xasprintf("%s/%s", tmp, name);
        struct kiln_err *e = NULL;
        kiln_rm_rf(p, &e);
        kiln_err_free(e);
        mkdir(p, 0755);
        return p;
}

static inline bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

/* main's first step: the temp directory and its store. Non-zero on
 * failure. */
static inline int archive_test_setup(void)
{
        is_root = geteuid() == 0;
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        _cleanup_free_ char *sr = kiln_xasprintf("%s/store", tmp);
        struct kiln_err *err = NULL;
        if (kiln_store_open(sr, &store, &err) < 0) {
                fprintf(stderr, "%s\n", err->msg);
                return 1;
        }
        return 0;
}

/* main's last step before TEST_DONE. */
static inline void archive_test_teardown(void)
{
        struct kiln_err *err = NULL;
        kiln_store_free(store);
        if (!getenv("KILN_TEST_KEEP"))
                kiln_rm_rf(tmp, &err);
        kiln_err_free(err);
}

#endif
