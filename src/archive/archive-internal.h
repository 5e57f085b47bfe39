/* Private helpers shared by the layer module's files (and its tests). */
#ifndef KILN_ARCHIVE_INTERNAL_H
#define KILN_ARCHIVE_INTERNAL_H

#include "kiln/archive.h"

/* Tests set this to exercise the component-by-component resolver that is
 * used when the kernel has no openat2(2). */
extern bool kiln_archive_force_no_openat2;

/* Opens the directory at rel (a normalised relative path, "" for the root)
 * resolved as if rootfd were "/": symlinks and ".." cannot leave it.
 * Returns an O_PATH fd or -1 with errno set. */
int kiln_archive_open_in_root(int rootfd, const char *rel);

/* Removes name below dirfd recursively without following symlinks. ENOENT
 * is not an error. Returns 0 or -1 with errno set. */
int kiln_archive_rm_rf_at(int parent, const char *name);

/* Orders paths so that a directory comes right before its children and the
 * children before the directory's following siblings ("a", "a/x", "a-b"). */
int kiln_archive_path_cmp(const char *a, const char *b);

/* Parallel gzip (pgzip.c): bytes in, a gzip file (a member per 256 KiB
 * block) out through sink, the same bytes whatever the number of threads. */
typedef int (*kiln_pgzip_sink)(void *ud, const void *data, size_t n);
struct kiln_pgzip;
/* level <0: gzip's default (6); threads <= 1: all in the caller's thread. */
struct kiln_pgzip *kiln_pgzip_new(int level, int threads, kiln_pgzip_sink sink, void *ud);
int kiln_pgzip_write(struct kiln_pgzip *p, const void *data, size_t n);
int kiln_pgzip_finish(struct kiln_pgzip *p);
void kiln_pgzip_free(struct kiln_pgzip *p);

#endif
