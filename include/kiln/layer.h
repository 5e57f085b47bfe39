/* Layers: unpacking tar layers onto a directory (hostile-input safe), cached
 * base snapshots, and writing new layers — from an overlay upper directory or
 * from host files — compressed and hashed in one streaming pass straight into
 * the blob store. */
#ifndef KILN_LAYER_H
#define KILN_LAYER_H

#include "kiln/oci.h"
#include "kiln/store.h"

#include <sys/types.h>

/* ---------- unpack ---------- */

struct kiln_unpack_stats {
        uint64_t entries;
        uint64_t skipped_devices; /* device nodes that could not be created (rootless) */
        uint64_t ownership_lost;  /* chown refused (single-id user namespace) */
};

/* Applies one layer onto the directory rootfd (flattening: `.wh.NAME`
 * removes NAME below, `.wh..wh..opq` empties the directory of what earlier
 * layers put there). Every path is resolved inside rootfd (openat2
 * RESOLVE_IN_ROOT): entries with "..", absolute paths, or paths that lead
 * through a symlink out of the root are refused with an error naming the
 * entry and the layer. Hardlinks, symlinks, modes, owners, mtimes and xattrs
 * are kept; device nodes that cannot be created are skipped with a warning.
 * blobfd is the layer as stored (compression by media type, checked against
 * the magic bytes); when diff_id is given the uncompressed stream must hash
 * to it. `what` names the layer in messages. */
int kiln_layer_unpack(int rootfd, int blobfd, const char *media_type, const char *diff_id,
                      const char *what, struct kiln_unpack_stats *stats, struct kiln_err **err);

/* chain id of diff_ids[0..n) as the OCI image spec defines it. */
void kiln_chain_id(char *const *diff_ids, size_t n, char out[KILN_DIGEST_MAX]);

/* The flattened rootfs of layers[0..n) (blobs in the store, diff_ids from
 * the config), cached at STORE_ROOT/snapshots/<chain id hex>. Unpacked once
 * into a temp dir and renamed into place, so a snapshot is complete or
 * absent; concurrent builders both succeed. *path is allocated. */
int kiln_snapshot_get(struct kiln_store *store, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t n, char **path, struct kiln_err **err);

/* ---------- write ---------- */

struct kiln_layer_opts {
        enum kiln_compression compression; /* GZIP, ZSTD or NONE */
        int level;                         /* <0: the library's default level */
        int64_t source_date_epoch;         /* <0: unset; else mtimes are clamped to it */
};
/* gzip at the default level, SOURCE_DATE_EPOCH from the environment (an
 * invalid value is an error naming it). */
int kiln_layer_opts_init(struct kiln_layer_opts *o, struct kiln_err **err);

struct kiln_layer_result {
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
int kiln_layer_from_upper(int upperfd, const char *what, struct kiln_store *store,
                          const struct kiln_layer_opts *opts, struct kiln_layer_result *out,
                          struct kiln_err **err);

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
int kiln_layer_from_host(const struct kiln_copy_entry *entries, size_t n, uid_t uid, gid_t gid,
                         struct kiln_store *store, const struct kiln_layer_opts *opts,
                         struct kiln_layer_result *out, struct kiln_err **err);

/* ---------- source trees ---------- */

/* Ignore patterns, in one of two syntaxes:
 * - GIT, gitignore(5): `#` comments, unescaped trailing spaces dropped,
 *   `\` escapes, `!` re-includes, a trailing `/` matches directories only,
 *   a `/` at the start or middle anchors to the file's directory (else the
 *   pattern matches a name at any depth below it), `*` `?` `[...]` never
 *   match '/', `**` as git's wildmatch has it. The last match wins.
 * - DOCKER, moby's patternmatcher: lines trimmed and cleaned as Go's
 *   filepath.Clean does (a leading '/' dropped), filepath.Match syntax plus
 *   `**` for any number of directories, `!` exceptions, the last match
 *   wins, and a pattern that matches a directory matches all below it. */
enum kiln_ignore_syntax {
        KILN_IGNORE_GIT,
        KILN_IGNORE_DOCKER,
};

/* An ordered list of patterns of one syntax. */
struct kiln_ignore;
struct kiln_ignore *kiln_ignore_new(enum kiln_ignore_syntax syntax);
void kiln_ignore_free(struct kiln_ignore *ig);
void kiln_ignore_freep(struct kiln_ignore **ig);
#define _cleanup_ignore_ _cleanup_(kiln_ignore_freep)

/* Appends the patterns of one ignore file: text[0..len) (NUL-terminated
 * or not). base is the directory holding the file, relative to the tree's
 * root ("" for the root, "a/b"); git patterns apply only below it, and
 * later (deeper) files override earlier ones. Docker patterns take base
 * "". origin names the file in errors: a malformed docker pattern (or a
 * lone "!") is an error "ORIGIN:LINE: ..."; git patterns never fail. */
int kiln_ignore_add(struct kiln_ignore *ig, const char *base, const char *text, size_t len,
                    const char *origin, struct kiln_err **err);

/* Whether relpath (relative to the root, '/'-separated, clean) is
 * excluded. Parents count: under GIT nothing below an excluded directory
 * comes back; under DOCKER a pattern matching a parent matches the path.
 * is_dir is for git's directory-only patterns. */
bool kiln_ignore_match(const struct kiln_ignore *ig, const char *relpath, bool is_dir);

/* The files of a source tree that a build copies (ImageSpec source_root):
 * every regular file and symlink under root, minus what root's
 * .dockerignore (DOCKER), every .gitignore at or below root (GIT, each for
 * its subtree), and flytekit's STANDARD_IGNORE_PATTERNS (read as GIT
 * patterns: *.pyc files, .cache and __pycache__ at any depth) exclude; a
 * file is copied only when none of the three excludes it. `.git` is never
 * copied, at any depth. The ignore files themselves are listed unless a
 * pattern excludes them (.dockerignore cannot exclude itself, as in
 * docker-py). A directory excluded by a GIT pattern is not entered; one
 * excluded by .dockerignore is entered only when an exception could
 * re-include something below it. Symlinks are entries, never followed (a
 * symlinked directory is one entry); empty directories are not listed.
 * Errors: a fifo, socket or device that is not excluded (the layer writer
 * could not store it), an ignore file that is a symlink, not a regular
 * file or larger than 1 MiB, a malformed .dockerignore pattern, and more
 * than 256 nested directories, each naming the path.
 * *paths: relative to root, sorted bytewise, NULL-terminated
 * (kiln_strv_free). */
int kiln_source_list(const char *root, char ***paths, struct kiln_err **err);

#endif
