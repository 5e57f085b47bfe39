#include "output-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define OCI_LAYOUT_CONTENT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define OCI_LAYOUT_MAX     ((size_t)64 << 10)

static int dir_is_empty(const char *dir, bool *empty, struct kiln_err **err)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return kiln_err_sys(err, "open %s", dir);
        struct dirent *de;
        *empty = true;
        errno = 0;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                        *empty = false;
                        break;
                }
        }
        return 0;
}

/* An existing layout must say it is one; anything else in a non-empty
 * directory belongs to someone and is not overwritten. */
static int prepare_dir(const char *dir, struct kiln_err **err)
{
        struct stat st;
        if (stat(dir, &st) < 0) {
                if (errno != ENOENT)
                        return kiln_err_sys(err, "stat %s", dir);
                return kiln_mkdir_p(dir, 0755, err);
        }
        if (!S_ISDIR(st.st_mode))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "%s exists and is not a directory (an OCI layout is a "
                                    "directory; use oci-archive: for a file)",
                                    dir);
        _cleanup_free_ char *marker = kiln_xasprintf("%s/oci-layout", dir);
        _cleanup_buf_ struct kiln_buf buf = {0};
        if (kiln_read_file(marker, OCI_LAYOUT_MAX, &buf, err) < 0) {
                if (!*err || (*err)->domain != KILN_ERR_SYSTEM || (*err)->code != ENOENT)
                        return -1;
                kiln_err_clear(err);
                bool empty = false;
                if (dir_is_empty(dir, &empty, err) < 0)
                        return -1;
                if (!empty)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "%s is not empty and is not an OCI layout (it has no "
                                            "oci-layout file); refusing to write into it",
                                            dir);
                return 0;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *j = json_loadb(buf.data, buf.len, 0, &jerr);
        const char *v = json_string_value(json_object_get(j, "imageLayoutVersion"));
        if (!v)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: not a valid oci-layout file (no imageLayoutVersion)",
                                    marker);
        if (strcmp(v, "1.0.0") != 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: unsupported imageLayoutVersion %s (kiln writes 1.0.0)",
                                    marker, v);
        return 0;
}

/* A temp file next to its destination: unlinked on the way out unless it
 * was renamed into place (then stolen). */
static void tmp_file_removep(char **path)
{
        if (*path)
                unlink(*path);
        free(*path);
        *path = NULL;
}

static int copy_blob(struct kiln_store *store, const char *digest, const char *dst,
                     struct kiln_err **err)
{
        _cleanup_close_ int in = -1;
        uint64_t size = 0;
        if (kiln_store_open_blob(store, digest, &in, &size, err) < 0)
                return -1;
        _cleanup_free_ char *tmpl = kiln_tmp_sibling(dst);
        _cleanup_close_ int out = mkostemp(tmpl, O_CLOEXEC);
        if (out < 0)
                return kiln_err_sys(err, "create temporary file for %s", dst);
        _cleanup_(tmp_file_removep) char *tmp = steal_pointer(&tmpl);
        _cleanup_sha256_ struct kiln_sha256 *h = kiln_sha256_new();
        _cleanup_free_ char *buf = kiln_xmalloc(1 << 16);
        for (;;) {
                ssize_t n = read(in, buf, 1 << 16);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "read cached blob %s", digest);
                if (n == 0)
                        break;
                kiln_sha256_update(h, buf, (size_t)n);
                if (kiln_write_all(out, buf, (size_t)n) < 0)
                        return kiln_err_sys(err, "write %s", dst);
        }
        char got[KILN_DIGEST_MAX];
        kiln_sha256_final(h, got);
        if (strcmp(got, digest) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "cached blob %s is corrupt (content hashes to %s)", digest,
                                    got);
        if (fchmod(out, 0644) < 0 || fsync(out) < 0)
                return kiln_err_sys(err, "write %s", dst);
        if (rename(tmp, dst) < 0)
                return kiln_err_sys(err, "rename %s into place", dst);
        free(steal_pointer(&tmp)); /* in place: nothing to remove */
        return 0;
}

/* A hardlink shares the store's read-only inode: no copy, no extra space.
 * skopeo and umoci read blobs, and write configs and layers to a temp file
 * renamed into place, so the 0444 mode is harmless for those. */
static int link_blob(struct kiln_store *store, const char *digest, const char *dst,
                     struct kiln_err **err)
{
        _cleanup_free_ char *src = kiln_store_blob_path(store, digest);
        _cleanup_free_ char *tmp = kiln_tmp_sibling(dst);
        /* link(2) has no "pick a unique name"; derive one from mkstemp. */
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "create temporary file for %s", dst);
        unlink(tmp);
        if (link(src, tmp) < 0)
                return 1; /* not linkable here: copy */
        if (rename(tmp, dst) < 0) {
                kiln_err_sys(err, "rename %s into place", dst);
                unlink(tmp);
                return -1;
        }
        return 0;
}

static int write_blob(struct kiln_store *store, const char *dir, const struct kiln_output_blob *b,
                      struct kiln_err **err)
{
        _cleanup_free_ char *dst =
            kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(b->digest));
        struct stat st;
        /* Blobs are content-addressed: the right size under the right name is
         * the blob (a layout we or skopeo wrote earlier). */
        if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == b->size)
                return 0;
        /* Manifests and indexes are copied: skopeo (containers/image) rewrites
         * an existing manifest in place when it copies an image into a layout
         * that has it, which fails on a read-only file and, as root, would
         * write through the link into the store. They are small. */
        if (!b->document) {
                int r = link_blob(store, b->digest, dst, err);
                if (r <= 0)
                        return r;
        }
        return copy_blob(store, b->digest, dst, err);
}

static bool listed(json_t *entries, const char *digest)
{
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
        {
                const char *d = json_string_value(json_object_get(e, "digest"));
                if (d && digest && !strcmp(d, digest))
                        return true;
        }
        return false;
}

/* Existing entries are kept in order, minus any with the same ref name,
 * and minus referrers written again (refs: the same digest). */
static int merged_manifests(const char *dir, const char *tag, json_t *entry, json_t *refs,
                            json_t **out, struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/index.json", dir);
        _cleanup_buf_ struct kiln_buf buf = {0};
        _cleanup_json_ json_t *list = json_array();
        if (kiln_read_file(path, KILN_MANIFEST_MAX, &buf, err) < 0) {
                if (!*err || (*err)->domain != KILN_ERR_SYSTEM || (*err)->code != ENOENT)
                        return -1;
                kiln_err_clear(err);
        } else {
                json_error_t jerr;
                _cleanup_json_ json_t *idx = json_loadb(buf.data, buf.len, 0, &jerr);
                if (!idx)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: invalid JSON: %s (line %d); not overwriting it",
                                            path, jerr.text, jerr.line);
                json_t *old = json_object_get(idx, "manifests");
                if (old && !json_is_array(old))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: manifests is not an array; not overwriting it",
                                            path);
                size_t i;
                json_t *e;
                json_array_foreach(old, i, e)
                {
                        const char *name =
                            json_string_value(json_object_get(json_object_get(e, "annotations"),
                                                              "org.opencontainers.image.ref.name"));
                        if (name && !strcmp(name, tag))
                                continue;
                        if (!name && listed(refs, json_string_value(json_object_get(e, "digest"))))
                                continue;
                        json_array_append(list, e);
                }
        }
        json_array_append(list, entry);
        json_array_extend(list, refs);
        *out = steal_pointer(&list);
        return 0;
}

int kiln_output_write_oci(const struct kiln_image_loc *dest, struct kiln_store *store,
                          const struct kiln_descriptor *top, const struct kiln_descriptor *refs,
                          size_t n_refs, struct kiln_err **err)
{
        const char *dir = dest->path;
        const char *tag = dest->tag ? dest->tag : KILN_OUTPUT_DEFAULT_TAG;
        if (!dir || !*dir)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "no directory given");
        _cleanup_output_blobs_ struct kiln_output_blobs blobs = {0};
        if (kiln_output_collect(store, top, &blobs, err) < 0 ||
            kiln_output_collect_referrers(store, refs, n_refs, &blobs, err) < 0)
                return -1;
        if (prepare_dir(dir, err) < 0)
                return -1;
        _cleanup_free_ char *marker = kiln_xasprintf("%s/oci-layout", dir);
        _cleanup_free_ char *blobdir = kiln_xasprintf("%s/blobs/sha256", dir);
        if (access(marker, F_OK) < 0 &&
            kiln_write_file_atomic(marker, OCI_LAYOUT_CONTENT, strlen(OCI_LAYOUT_CONTENT), 0644,
                                   err) < 0)
                return -1;
        if (kiln_mkdir_p(blobdir, 0755, err) < 0)
                return -1;
        for (size_t i = 0; i < blobs.n; i++)
                if (write_blob(store, dir, &blobs.v[i], err) < 0)
                        return -1;
        /* Two kiln processes tagging into one layout must not lose each
         * other's entry: the read-merge-write of index.json is serialised. */
        _cleanup_close_ int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lock < 0 || flock(lock, LOCK_EX) < 0)
                return kiln_err_sys(err, "lock %s", dir);
        _cleanup_json_ json_t *entry =
            kiln_output_index_entry(top, blobs.top_media_type, blobs.top_size, tag);
        _cleanup_json_ json_t *rl = kiln_output_referrers_entries(refs, n_refs);
        _cleanup_json_ json_t *list = NULL;
        if (merged_manifests(dir, tag, entry, rl, &list, err) < 0)
                return -1;
        _cleanup_free_ char *text = kiln_output_index_dump(list);
        _cleanup_free_ char *path = kiln_xasprintf("%s/index.json", dir);
        return kiln_write_file_atomic(path, text, strlen(text), 0644, err);
}
