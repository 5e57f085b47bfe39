#include "archive-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Layer i of layers from fd (the stored blob, or a stream of it). */
static int unpack_one(int rootfd, int fd, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t i, struct kiln_unpack_stats *total,
                      struct kiln_err **err)
{
        _cleanup_free_ char *what = kiln_xasprintf("layer %zu (%s)", i + 1, layers[i].digest);
        struct kiln_unpack_stats st = {0};
        uint64_t t0 = kiln_now_ns();
        if (kiln_archive_unpack(rootfd, fd, layers[i].media_type, diff_ids[i], what, &st, err) < 0)
                return -1;
        kiln_debug("%s: %" PRIu64 " entries unpacked in %.1fs", what, st.entries,
                   (double)(kiln_now_ns() - t0) / 1e9);
        total->skipped_devices += st.skipped_devices;
        total->ownership_lost += st.ownership_lost;
        return 0;
}

static int unpack_done(int rootfd, const char *dir, const struct kiln_unpack_stats *total,
                       struct kiln_err **err)
{
        if (total->skipped_devices)
                kiln_debug("%" PRIu64 " device nodes of the base image left out (the sandbox "
                           "provides /dev)",
                           total->skipped_devices);
        /* the rename after this publishes the snapshot as complete */
        if (syncfs(rootfd) < 0)
                return kiln_err_sys(err, "sync %s", dir);
        return 0;
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
                if (kiln_store_open_blob(store, layers[i].digest, &fd, &size, err) < 0)
                        return kiln_err_prefix(err, "layer %zu (%s)", i + 1, layers[i].digest);
                if (unpack_one(rootfd, fd, layers, diff_ids, i, &total, err) < 0)
                        return -1;
        }
        return unpack_done(rootfd, dir, &total, err);
}

/* ---------- unpacked as they arrive ----------
 *
 * Three threads: the fetch (its own downloads side by side), a follower
 * passing each layer's bytes on as they land, in layer order, one socket
 * per layer, and this one unpacking from those sockets. A download that
 * fails or starts over voids what was passed on: the layers are then
 * unpacked again from the store once the fetch is done. */

struct streaming {
        struct kiln_store *store;
        const struct kiln_descriptor *layers;
        size_t n;
        struct kiln_blob_watch **watches;
        int (*socks)[2];
        size_t made; /* socket pairs and watches made so far */
        kiln_snapshot_fetch_fn fetch;
        void *fetch_ud;
        int fetch_rc;
        struct kiln_err *fetch_err;
        int follow_rc;
        bool follow_void; /* what was passed on does not count */
        struct kiln_err *follow_err;
};

static void *fetch_thread(void *arg)
{
        struct streaming *s = arg;
        s->fetch_rc = s->fetch(s->fetch_ud, s->watches, &s->fetch_err);
        return NULL;
}

static void close_write_end(struct streaming *s, size_t i)
{
        if (s->socks[i][1] >= 0)
                close(s->socks[i][1]);
        s->socks[i][1] = -1;
}

/* Passes the layers on in order until one fails; the unpack of layer i
 * sees the end of its stream once it is passed on. */
static int follow_layers(struct streaming *s)
{
        for (size_t i = 0; i < s->n; i++) {
                int rc = kiln_blob_watch_follow(s->watches[i], s->store, s->layers[i].digest,
                                                s->socks[i][1], &s->follow_void, &s->follow_err);
                if (rc < 0 && !s->follow_void)
                        kiln_debug("%s", s->follow_err->msg);
                close_write_end(s, i);
                if (rc < 0)
                        return -1;
        }
        return 0;
}

static void *follow_thread(void *arg)
{
        struct streaming *s = arg;
        s->follow_rc = follow_layers(s);
        /* after a failure the later layers' streams end at once */
        for (size_t i = 0; i < s->n; i++)
                close_write_end(s, i);
        return NULL;
}

static void wipe_dir(const char *dir)
{
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_rm_rf(dir, &e) < 0 || kiln_mkdir_p(dir, 0755, &e) < 0)
                kiln_warn("%s", e->msg);
}

/* Unpacks the layers from their sockets in order, up to the first failure. */
static int unpack_sockets(struct streaming *s, int rootfd, char *const *diff_ids,
                          struct kiln_unpack_stats *total, struct kiln_err **err)
{
        for (size_t i = 0; i < s->n; i++)
                if (unpack_one(rootfd, s->socks[i][0], s->layers, diff_ids, i, total, err) < 0)
                        return -1;
        return 0;
}

static int unpack_streaming(struct streaming *s, char *const *diff_ids, const char *dir,
                            struct kiln_err **err)
{
        _cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return kiln_err_sys(err, "open %s", dir);
        pthread_t fetcher, follower;
        if (pthread_create(&fetcher, NULL, fetch_thread, s) != 0)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "start the base's download");
        if (pthread_create(&follower, NULL, follow_thread, s) != 0) {
                for (size_t i = 0; i < s->n; i++)
                        kiln_blob_watch_cancel(s->watches[i]);
                pthread_join(fetcher, NULL);
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "start the base's unpack");
        }
        struct kiln_unpack_stats total = {0};
        _cleanup_err_ struct kiln_err *uerr = NULL;
        int urc = unpack_sockets(s, rootfd, diff_ids, &total, &uerr);
        if (urc < 0)
                for (size_t i = 0; i < s->n; i++)
                        kiln_blob_watch_cancel(s->watches[i]);
        /* a follower blocked on a socket nobody reads any more gives up */
        for (size_t i = 0; i < s->n; i++) {
                close(s->socks[i][0]);
                s->socks[i][0] = -1;
        }
        pthread_join(follower, NULL);
        pthread_join(fetcher, NULL);
        if (s->fetch_rc < 0) {
                *err = steal_pointer(&s->fetch_err);
                return -1;
        }
        if (s->follow_rc < 0 && s->follow_void) {
                kiln_debug("the base's layers are unpacked again from the cache: %s",
                           s->follow_err->msg);
                wipe_dir(dir);
                return unpack_all(s->store, s->layers, diff_ids, s->n, dir, err);
        }
        if (urc < 0) {
                *err = steal_pointer(&uerr);
                return -1;
        }
        if (s->follow_rc < 0) {
                *err = steal_pointer(&s->follow_err);
                return -1;
        }
        return unpack_done(rootfd, dir, &total, err);
}

static void streaming_release(struct streaming *s)
{
        for (size_t i = 0; i < s->made; i++) {
                for (int k = 0; k < 2; k++)
                        if (s->socks[i][k] >= 0)
                                close(s->socks[i][k]);
                kiln_blob_watch_free(s->watches[i]);
        }
        kiln_err_free(s->fetch_err);
        kiln_err_free(s->follow_err);
        free(s->watches);
        free(s->socks);
        *s = (struct streaming){0};
}
#define _cleanup_streaming_ _cleanup_(streaming_release)

static int unpack_fetching(struct kiln_store *store, const struct kiln_descriptor *layers,
                           char *const *diff_ids, size_t n, kiln_snapshot_fetch_fn fetch, void *ud,
                           const char *dir, struct kiln_err **err)
{
        _cleanup_streaming_ struct streaming s = {
            .store = store, .layers = layers, .n = n, .fetch = fetch, .fetch_ud = ud};
        s.watches = kiln_xcalloc(n + 1, sizeof(*s.watches));
        s.socks = kiln_xcalloc(n + 1, sizeof(*s.socks));
        for (; s.made < n; s.made++) {
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.socks[s.made]) < 0)
                        return kiln_err_sys(err, "socketpair");
                s.watches[s.made] = kiln_blob_watch_new();
        }
        return unpack_streaming(&s, diff_ids, dir, err);
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

/* An unfinished snapshot directory: removed, whatever is in it, unless
 * stolen (renamed into place). */
static void tmp_dir_removep(char **dir)
{
        if (*dir) {
                _cleanup_err_ struct kiln_err *ignored = NULL;
                kiln_rm_rf(*dir, &ignored);
        }
        free(*dir);
        *dir = NULL;
}

bool kiln_snapshot_has(struct kiln_store *store, char *const *diff_ids, size_t n)
{
        _cleanup_err_ struct kiln_err *ignored = NULL;
        _cleanup_free_ char *p = snapshot_path(store, diff_ids, n, &ignored);
        struct stat st;
        return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int kiln_snapshot_get(struct kiln_store *store, const struct kiln_descriptor *layers,
                      char *const *diff_ids, size_t n, char **path, struct kiln_err **err)
{
        return kiln_snapshot_get_fetching(store, layers, diff_ids, n, NULL, NULL, path, err);
}

int kiln_snapshot_get_fetching(struct kiln_store *store, const struct kiln_descriptor *layers,
                               char *const *diff_ids, size_t n, kiln_snapshot_fetch_fn fetch,
                               void *fetch_ud, char **path, struct kiln_err **err)
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
        kiln_info("unpacking the base image (%zu layers, cached for later builds)", n);
        _cleanup_free_ char *tmpl = kiln_xasprintf("%s/tmp-XXXXXX", base);
        if (!mkdtemp(tmpl))
                return kiln_err_sys(err, "create %s", tmpl);
        /* removed on every way out but the rename into place */
        _cleanup_(tmp_dir_removep) char *tmp = steal_pointer(&tmpl);
        if (chmod(tmp, 0755) < 0)
                return kiln_err_sys(err, "chmod %s", tmp);
        if ((fetch ? unpack_fetching(store, layers, diff_ids, n, fetch, fetch_ud, tmp, err)
                   : unpack_all(store, layers, diff_ids, n, tmp, err)) < 0)
                return -1;
        if (rename(tmp, final) < 0) {
                if (errno != EEXIST && errno != ENOTEMPTY)
                        return kiln_err_sys(err, "rename %s to %s", tmp, final);
                /* another builder finished first; its snapshot is the same
                 * (tmp is removed on the way out) */
        } else {
                free(steal_pointer(&tmp)); /* in place: nothing to remove */
        }
        *path = steal_pointer(&final);
        return 0;
}
