#include "layer-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

void kiln_chain_id(char *const *diff_ids, size_t n, char out[KILN_DIGEST_MAX])
{
        out[0] = '\0';
        if (n == 0)
                return;
        snprintf(out, KILN_DIGEST_MAX, "%s", diff_ids[0]);
        for (size_t i = 1; i < n; i++) {
                _cleanup_free_ char *s = kiln_xasprintf("%s %s", out, diff_ids[i]);
                kiln_sha256_digest(s, strlen(s), out);
        }
}

static int unpack_all(struct kiln_store *store, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t n, const char *dir, struct kiln_err **err)
{
        _cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return kiln_err_sys(err, "open %s", dir);
        struct kiln_unpack_stats total = {0};
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = -1;
                uint64_t size;
                _cleanup_free_ char *what =
                    kiln_xasprintf("layer %zu (%s)", i + 1, layers[i].digest);
                if (kiln_store_open_blob(store, layers[i].digest, &fd, &size, err) < 0)
                        return kiln_err_prefix(err, "%s", what);
                struct kiln_unpack_stats st = {0};
                uint64_t t0 = kiln_now_ns();
                if (kiln_layer_unpack(rootfd, fd, layers[i].media_type, diff_ids[i], what, &st,
                                      err) < 0)
                        return -1;
                kiln_debug("%s: %" PRIu64 " entries unpacked in %.1fs", what, st.entries,
                           (double)(kiln_now_ns() - t0) / 1e9);
                total.skipped_devices += st.skipped_devices;
                total.ownership_lost += st.ownership_lost;
        }
        if (total.skipped_devices)
                kiln_warn("%" PRIu64 " device nodes of the base image were skipped (not "
                          "permitted here; the sandbox provides /dev)",
                          total.skipped_devices);
        /* the rename below publishes the snapshot as complete */
        if (syncfs(rootfd) < 0)
                return kiln_err_sys(err, "sync %s", dir);
        return 0;
}

static char *snapshot_path(struct kiln_store *store, char *const *diff_ids, size_t n,
                           struct kiln_err **err)
{
        char chain[KILN_DIGEST_MAX];
        kiln_chain_id(diff_ids, n, chain);
        if (n > 0 && kiln_digest_validate(chain, err) < 0) {
                kiln_err_prefix(err, "chain id of the base layers");
                return NULL;
        }
        return kiln_xasprintf("%s/snapshots/%s", kiln_store_root(store),
                              n ? kiln_digest_hex(chain) : "empty");
}

bool kiln_snapshot_has(struct kiln_store *store, char *const *diff_ids, size_t n)
{
        struct kiln_err *ignored = NULL;
        _cleanup_free_ char *p = snapshot_path(store, diff_ids, n, &ignored);
        kiln_err_free(ignored);
        struct stat st;
        return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int kiln_snapshot_get(struct kiln_store *store, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t n, char **path, struct kiln_err **err)
{
        _cleanup_free_ char *final = snapshot_path(store, diff_ids, n, err);
        if (!final)
                return -1;
        _cleanup_free_ char *base = kiln_xasprintf("%s/snapshots", kiln_store_root(store));
        struct stat st;
        if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
                utimensat(AT_FDCWD, final, NULL, 0); /* last use, for prune */
                *path = steal_pointer(&final);
                return 0;
        }
        if (kiln_mkdir_p(base, 0755, err) < 0)
                return -1;
        /* Builds running side by side over one base unpack it once: the
         * others wait here and find it done. */
        _cleanup_free_ char *lock_path = kiln_xasprintf("%s.lock", final);
        _cleanup_close_ int lock = -1;
        if (kiln_lock_file(lock_path, &lock, err) < 0)
                return -1;
        if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
                *path = steal_pointer(&final);
                return 0;
        }
        _cleanup_free_ char *tmp = kiln_xasprintf("%s/tmp-XXXXXX", base);
        if (!mkdtemp(tmp))
                return kiln_err_sys(err, "create %s", tmp);
        if (chmod(tmp, 0755) < 0 || unpack_all(store, layers, diff_ids, n, tmp, err) < 0) {
                if (!*err)
                        kiln_err_sys(err, "chmod %s", tmp);
                struct kiln_err *ignored = NULL;
                kiln_rm_rf(tmp, &ignored);
                kiln_err_free(ignored);
                return -1;
        }
        if (rename(tmp, final) < 0) {
                if (errno != EEXIST && errno != ENOTEMPTY) {
                        kiln_err_sys(err, "rename %s to %s", tmp, final);
                        struct kiln_err *ignored = NULL;
                        kiln_rm_rf(tmp, &ignored);
                        kiln_err_free(ignored);
                        return -1;
                }
                /* another builder finished first; its snapshot is the same */
                struct kiln_err *ignored = NULL;
                kiln_rm_rf(tmp, &ignored);
                kiln_err_free(ignored);
        }
        *path = steal_pointer(&final);
        return 0;
}
