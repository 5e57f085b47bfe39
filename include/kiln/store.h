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

#include "kiln/oci.h"
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
/* Marks the blob used now: its mtime is its last use (prune). */
void kiln_store_touch(const struct kiln_store *s, const char *digest);
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

/* Following a blob while it is written (an unpack that starts with a
 * download's first bytes). The writer tells the watch how far it got and
 * whether it committed; whoever fetches says done (the blob is in the
 * store, fetched by another maybe) or failed. Thread-safe. */
struct kiln_blob_watch;
struct kiln_blob_watch *kiln_blob_watch_new(void);
void kiln_blob_watch_free(struct kiln_blob_watch *w);
void kiln_blob_writer_watch(struct kiln_blob_writer *writer, struct kiln_blob_watch *w);
/* Done and failed are final; the first one said holds. NULL: nothing. */
void kiln_blob_watch_done(struct kiln_blob_watch *w);
void kiln_blob_watch_failed(struct kiln_blob_watch *w);
/* Ends a follow early (its consumer gave up). */
void kiln_blob_watch_cancel(struct kiln_blob_watch *w);
/* Sends the blob's bytes to the socket out as they are written and
 * returns 0 once the blob is committed (verified) and all of it sent.
 * When the download failed or started over after bytes were sent, *restart
 * is set: what was sent is void, and the blob must be read again once in
 * the store (if it gets there). */
int kiln_blob_watch_follow(struct kiln_blob_watch *w, struct kiln_store *store, const char *digest,
                           int out, bool *restart, struct kiln_err **err);

/* ---------- step results ----------
 *
 * What a build step produced, kept under its cache key (64 hex digits,
 * see src/builder/step_cache.c) in ROOT/steps/<key>.json, so an unchanged
 * step is not run again. The layer blob itself lives in the blob store. */
struct kiln_step_entry {
        char key[KILN_HEX_MAX];
        char *kind;
        char *created_by;
        bool has_layer; /* false: the step changed no file */
        char digest[KILN_DIGEST_MAX];
        char diff_id[KILN_DIGEST_MAX];
        char *media_type;
        int64_t size;
        /* the blob file as last hashed: another inode, mtime or size means
         * it must be hashed again before it is trusted */
        uint64_t stamp_ino;
        int64_t stamp_mtime_ns, stamp_size;
        char **facts;      /* "name=value" the step recorded (e.g. a user's ids); may be NULL */
        int64_t last_used; /* seconds since 1970 (the entry's mtime); set by get */
};
void kiln_step_entry_release(struct kiln_step_entry *e);
/* The value of the fact name the step recorded, or NULL. */
const char *kiln_step_entry_fact(const struct kiln_step_entry *e, const char *name);
#define _cleanup_step_entry_ _cleanup_(kiln_step_entry_release)
/* The entry as JSON (what ROOT/steps/<key>.json and a registry cache hold;
 * sorted keys, so equal entries give equal bytes); caller frees. */
char *kiln_step_entry_dump(const struct kiln_step_entry *e);
/* Parses text; false (and nothing to release) when it is not an entry. */
bool kiln_step_entry_load(const char *key, const char *text, size_t len, struct kiln_step_entry *e);

/* A missing or unreadable entry is *found = false, never an error. */
int kiln_store_step_get(struct kiln_store *s, const char *key, struct kiln_step_entry *e,
                        bool *found, struct kiln_err **err);
/* Writes (replaces) the entry atomically. */
int kiln_store_step_put(struct kiln_store *s, const struct kiln_step_entry *e,
                        struct kiln_err **err);
/* Marks the entry used now (prune keeps what was used last). */
int kiln_store_step_touch(struct kiln_store *s, const char *key);
int kiln_store_step_remove(struct kiln_store *s, const char *key, struct kiln_err **err);
/* Every entry, in no particular order; caller releases each and frees. */
int kiln_store_step_list(struct kiln_store *s, struct kiln_step_entry **out, size_t *n,
                         struct kiln_err **err);
/* What kiln_store_step_list gives, owned as one value:
 * kiln_store_step_list(s, &l.v, &l.n, err). */
struct kiln_step_entries {
        struct kiln_step_entry *v;
        size_t n;
};
void kiln_step_entries_release(struct kiln_step_entries *l);
#define _cleanup_step_entries_ _cleanup_(kiln_step_entries_release)
/* An exclusive lock for building the step with this key: a second builder
 * of the same step waits, then finds the first one's result. *fd is the
 * lock; closing it releases. */
int kiln_store_step_lock(struct kiln_store *s, const char *key, int *fd, struct kiln_err **err);

/* The blob file's identity now (-1 when absent). */
int kiln_store_stamp(const struct kiln_store *s, const char *digest, uint64_t *ino,
                     int64_t *mtime_ns, int64_t *size);
/* Hashes the blob: *ok when present and its content matches its name. */
int kiln_store_verify_blob(struct kiln_store *s, const char *digest, bool *ok,
                           struct kiln_err **err);
int kiln_store_remove_blob(struct kiln_store *s, const char *digest, struct kiln_err **err);

/* ---------- where blobs live on registries ----------
 *
 * A blob pulled from or pushed to a repository is noted under its registry,
 * so a later push to another repository there mounts it (no bytes sent)
 * instead of uploading it. A note gone stale (the blob was deleted there)
 * costs one mount the registry declines, then the upload. */

/* The repository noted for digest on domain, or NULL. Caller frees. */
char *kiln_store_blob_location(const struct kiln_store *s, const char *domain, const char *digest);
/* Best effort: a note that cannot be written is only a missed mount. */
void kiln_store_note_blob_location(const struct kiln_store *s, const char *domain,
                                   const char *digest, const char *repo);
/* Notes domain/repo for each of the n layers the store lacks: the bytes
 * stay in the registry until something needs them. */
void kiln_store_note_missing(const struct kiln_store *s, const char *domain, const char *repo,
                             const struct kiln_descriptor *layers, size_t n);
/* Held while pushing digest to domain, so builds running side by side
 * upload a layer they share once: the second finds it there. */
int kiln_store_push_lock(const struct kiln_store *s, const char *domain, const char *digest,
                         int *fd, struct kiln_err **err);

/* Held while downloading digest: processes fetching the same blob side by
 * side (several builds on one base) download it once; the second finds it
 * in the store. */
int kiln_store_fetch_lock(const struct kiln_store *s, const char *digest, int *fd,
                          struct kiln_err **err);

/* ---------- maintenance ---------- */

/* Waits until no other process has the store open, then holds it alone
 * (builds and pulls wait meanwhile). */
int kiln_store_lock_exclusive(struct kiln_store *s, struct kiln_err **err);

/* Installer caches (apt lists and .debs, pip's cache) live in
 * cache/KIND/KEY, KEY this many hex digits of the hash of the base image
 * chain and the sources the installer trusts (kiln_step_cache_dir). Other
 * entries of cache/ are "unkeyed": the shared layout of kiln before
 * version 1, which any build could write into; never mounted again. */
#define KILN_INSTALLER_CACHE_KEY_LEN 32
#define KILN_INSTALLER_CACHE_VERSION 1

struct kiln_cache_usage {
        uint64_t n_blobs, blob_bytes;
        uint64_t n_snapshots, snapshot_bytes;  /* unpacked base images */
        uint64_t n_installer, installer_bytes; /* keyed installer caches */
        uint64_t n_unkeyed, unkeyed_bytes;     /* the old shared ones */
        uint64_t n_steps;
};
int kiln_store_usage(struct kiln_store *s, struct kiln_cache_usage *u, struct kiln_err **err);

struct kiln_prune_opts {
        int64_t keep_bytes;   /* <0: no bound; else drop least recently used first */
        int64_t older_than_s; /* <0: no bound; else drop what was not used for this long */
};
struct kiln_prune_report {
        uint64_t removed_bytes, removed_blobs, removed_dirs, removed_steps;
        uint64_t kept_bytes;
};
/* Blobs, snapshots and installer caches go least recently used first (a
 * layer's use is its step entries' use); entries whose layer went go with
 * it. Unkeyed installer caches go first, whatever the bounds. Unfinished
 * builds and downloads older than a day are removed too. */
int kiln_store_prune(struct kiln_store *s, const struct kiln_prune_opts *o,
                     struct kiln_prune_report *r, struct kiln_err **err);

struct kiln_verify_report {
        uint64_t blobs, bytes;
        char **bad;             /* digests that did not match their content (removed) */
        uint64_t dropped_steps; /* entries whose layer was bad or missing (removed) */
        char **unkeyed;         /* installer caches of the old shared layout (removed) */
};
/* Hashes every blob; removes the bad ones and the entries that used them,
 * and the unkeyed installer caches (anything could have written them). */
int kiln_store_verify(struct kiln_store *s, struct kiln_verify_report *r, struct kiln_err **err);
void kiln_verify_report_release(struct kiln_verify_report *r);
#define _cleanup_verify_report_ _cleanup_(kiln_verify_report_release)

#endif
