/* Layers: unpacking tar layers onto a directory (hostile-input safe), cached
 * base snapshots, and writing new layers — from an overlay upper directory or
 * from host files — compressed and hashed in one streaming pass straight into
 * the blob store. */
#ifndef KILN_ARCHIVE_H
#define KILN_ARCHIVE_H

#include "kiln/oci.h"
#include "kiln/store.h"

#include <sys/types.h>

/* ---------- unpack ---------- */

struct kiln_unpack_stats {
        uint64_t entries;
        uint64_t skipped_devices; /* device nodes, never created */
        uint64_t ownership_lost;  /* chown refused (single-id user namespace) */
};

/* Applies one layer onto the directory rootfd (flattening: `.wh.NAME`
 * removes NAME below, `.wh..wh..opq` empties the directory of what earlier
 * layers put there). Every path is resolved inside rootfd (openat2
 * RESOLVE_IN_ROOT): entries with "..", absolute paths, or paths that lead
 * through a symlink out of the root are refused with an error naming the
 * entry and the layer. Hardlinks, symlinks, modes, owners, mtimes and xattrs
 * are kept; device nodes (and hard links to them) are never created: the
 * directory holds no entry there, whatever the mode.
 * blobfd is the layer as stored (compression by media type, checked against
 * the magic bytes); when diff_id is given the uncompressed stream must hash
 * to it. `what` names the layer in messages. */
int kiln_archive_unpack(int rootfd, int blobfd, const char *media_type, const char *diff_id,
                        const char *what, struct kiln_unpack_stats *stats, struct kiln_err **err);

/* chain id of diff_ids[0..n) as the OCI image spec defines it. */
void kiln_chain_id(char *const *diff_ids, size_t n, char out[KILN_DIGEST_MAX]);

/* Is the snapshot of these layers made already (their blobs are then not
 * needed to use it)? */
bool kiln_snapshot_has(struct kiln_store *store, char *const *diff_ids, size_t n);
/* The flattened rootfs of layers[0..n) (blobs in the store, diff_ids from
 * the config), cached at STORE_ROOT/snapshots/<chain id hex>. Unpacked once
 * into a temp dir and renamed into place, so a snapshot is complete or
 * absent; concurrent builders both succeed. *path is allocated. */
int kiln_snapshot_get(struct kiln_store *store, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t n, char **path, struct kiln_err **err);

/* Fetches the layers into the store (on a thread of its own), telling
 * watches[i] about layer i as it is written (kiln_registry_fetch_blobs_watched). */
typedef int (*kiln_snapshot_fetch_fn)(void *ud, struct kiln_blob_watch *const *watches,
                                      struct kiln_err **err);
/* kiln_snapshot_get for layers not yet in the store: fetch brings them, and
 * each is unpacked as its bytes arrive rather than after the last download.
 * Nothing of an unverified download stays: the snapshot is published only
 * once every blob matched its digest; a download that started over makes
 * the unpack start over, from the store. NULL fetch: kiln_snapshot_get. */
int kiln_snapshot_get_fetching(struct kiln_store *store, const struct kiln_descriptor *layers,
                               char *const *diff_ids, size_t n, kiln_snapshot_fetch_fn fetch,
                               void *fetch_ud, char **path, struct kiln_err **err);

/* ---------- write ---------- */

struct kiln_archive_opts {
        enum kiln_compression compression; /* GZIP, ZSTD or NONE */
        int level;                         /* <0: the library's default level */
        int64_t source_date_epoch;         /* <0: unset; else mtimes are clamped to it */
        int threads;                       /* compression threads; 0: every CPU we may use */
};
/* gzip at the default level, SOURCE_DATE_EPOCH from the environment (an
 * invalid value is an error naming it). */
int kiln_archive_opts_init(struct kiln_archive_opts *o, struct kiln_err **err);

struct kiln_archive_result {
        bool empty;                    /* nothing changed: no blob was written */
        char digest[KILN_DIGEST_MAX];  /* of the compressed blob, now in the store */
        char diff_id[KILN_DIGEST_MAX]; /* of the uncompressed tar */
        int64_t size;                  /* compressed size */
        const char *media_type;        /* static string: KILN_MT_OCI_LAYER_GZIP ... */
        uint64_t entries;
};

/* Turns an overlay upper directory into a layer: whiteouts (char 0/0, or the
 * overlay.whiteout xattr) become `.wh.NAME`; opaque directories
 * (trusted.overlay.opaque / user.overlay.opaque = "y") get `.wh..wh..opq`;
 * overlay's own xattrs are dropped. PAX tar, entries sorted by path, parents
 * before children, hardlinks as links, owners, modes and xattrs
 * (security.capability, user.*) kept, mtimes clamped. */
int kiln_archive_from_upper(int upperfd, const char *what, struct kiln_store *store,
                            const struct kiln_archive_opts *opts, struct kiln_archive_result *out,
                            struct kiln_err **err);

/* The same, in a process of its own (the caller goes on: the next step's
 * programs run while this layer compresses). upper must stay unchanged
 * until the job is finished. */
struct kiln_archive_job;
int kiln_archive_job_start(const char *upper, const char *what, struct kiln_store *store,
                           const struct kiln_archive_opts *opts, struct kiln_archive_job **job,
                           struct kiln_err **err);
/* Waits for the job and frees it: its result, or its error as the writer
 * gave it; *ns (may be NULL) is the time the writer took. */
int kiln_archive_job_finish(struct kiln_archive_job *job, struct kiln_archive_result *out,
                            uint64_t *ns, struct kiln_err **err);
/* Waits for the job and frees it, its result unwanted (NULL: nothing). */
void kiln_archive_job_abandon(struct kiln_archive_job *job);

/* One host file or directory copied into the image at dest (relative to /,
 * e.g. "root/src/pkg"). */
struct kiln_copy_entry {
        const char *src;
        const char *dest;
};
/* Writes host files as a layer with normalised metadata (owner uid:gid,
 * modes 0644/0755 by the owner-execute bit, directories 0755, mtime fixed),
 * so identical inputs give a bit-identical layer whatever the host's
 * metadata (mtime is SOURCE_DATE_EPOCH when set, else 0). Parent
 * directories of each dest are included, owned by uid:gid, mode 0755.
 * Symlinks are kept as symlinks; sockets, fifos and devices are refused. */
int kiln_archive_from_host(const struct kiln_copy_entry *entries, size_t n, uid_t uid, gid_t gid,
                           struct kiln_store *store, const struct kiln_archive_opts *opts,
                           struct kiln_archive_result *out, struct kiln_err **err);

/* A digest of what kiln_archive_from_host would write for entries, owners
 * and mtimes aside: every path, type, normalised mode, link target and
 * file content. Equal digests mean equal layers (for the same owner and
 * SOURCE_DATE_EPOCH); the build cache keys host-file steps by it. */
int kiln_archive_host_digest(const struct kiln_copy_entry *entries, size_t n,
                             char out[KILN_DIGEST_MAX], struct kiln_err **err);

#endif
