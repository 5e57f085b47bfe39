/* Content-addressed blob store under $KILN_CACHE (default
 * $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).
 *
 *   ROOT/blobs/sha256/<hex>   immutable blobs, read-only mode
 *   ROOT/tmp/                 in-flight writes (same filesystem, so rename is atomic)
 *
 * A blob appears under its name only after its bytes were hashed and found
 * equal to the name, fsynced, and renamed into place; an interrupted writer
 * leaves at most a temp file. Two processes writing the same blob both
 * succeed: rename is atomic and the content is identical by construction. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include "kiln/util.h"

struct kiln_store;

/* root NULL: $KILN_CACHE, then $XDG_CACHE_HOME/kiln, then $HOME/.cache/kiln. */
int kiln_store_open(const char *root, struct kiln_store **out, struct kiln_err **err);
void kiln_store_free(struct kiln_store *s);
void kiln_store_freep(struct kiln_store **s);
#define _cleanup_store_ _cleanup_(kiln_store_freep)
const char *kiln_store_root(const struct kiln_store *s);

/* Path of the blob file (whether or not it exists). Caller frees. The
 * digest must be valid (kiln_digest_validate). */
char *kiln_store_blob_path(const struct kiln_store *s, const char *digest);
/* True when the blob is present (and, if size >= 0, has that size). */
bool kiln_store_has(const struct kiln_store *s, const char *digest, int64_t size);
/* Opens a blob for reading. */
int kiln_store_open_blob(const struct kiln_store *s, const char *digest, int *fd, uint64_t *size,
                         struct kiln_err **err);
/* Reads a small blob (manifest, config) into memory with a size bound. */
int kiln_store_read(const struct kiln_store *s, const char *digest, size_t max,
                    struct kiln_buf *out, struct kiln_err **err);
/* Stores bytes held in memory; out receives the sha256 digest. */
int kiln_store_put(struct kiln_store *s, const void *data, size_t len, char out[KILN_DIGEST_MAX],
                   struct kiln_err **err);

/* Streaming writer: bytes are hashed as they are written. */
struct kiln_blob_writer;
/* expected: digest the content must have (NULL: whatever it hashes to).
 * expected_size < 0: unknown. */
int kiln_blob_writer_new(struct kiln_store *s, const char *expected, int64_t expected_size,
                         struct kiln_blob_writer **out, struct kiln_err **err);
int kiln_blob_writer_write(struct kiln_blob_writer *w, const void *p, size_t n,
                           struct kiln_err **err);
uint64_t kiln_blob_writer_size(const struct kiln_blob_writer *w);
/* Discards what was written so far (a retried download starts over). */
int kiln_blob_writer_reset(struct kiln_blob_writer *w, struct kiln_err **err);
/* Verifies digest and size, then publishes. On a mismatch the temp file is
 * removed and the error (KILN_ERR_DIGEST) names both digests. out may be NULL. */
int kiln_blob_writer_commit(struct kiln_blob_writer *w, char out[KILN_DIGEST_MAX],
                            struct kiln_err **err);
/* Frees the writer; removes the temp file unless committed. */
void kiln_blob_writer_free(struct kiln_blob_writer *w);
void kiln_blob_writer_freep(struct kiln_blob_writer **w);
#define _cleanup_blob_writer_ _cleanup_(kiln_blob_writer_freep)

#endif
