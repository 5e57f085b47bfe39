/* The rootfs of sandboxed steps, and the blobs it is made of.
 *
 * The rootfs a sandboxed step sees is an overlay of, top-most first, the
 * upper directories of earlier sandboxed steps, the unpacked layers of
 * earlier host-file steps, and the base snapshot (unpacked once per base and
 * cached). Everything is prepared lazily: a copy-only spec never unpacks
 * the base, never needs a sandbox, and so never needs emulation. The
 * base's layers, and the layers of the registry cache, are fetched when
 * something first needs their bytes. */
#include "builder-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static void pending_release(struct builder_pending_layer *p)
{
        kiln_descriptor_release(&p->d);
        free(p->diff_id);
        *p = (struct builder_pending_layer){0};
}

void builder_push_lower(struct kiln_step_ctx *c, char *dir)
{
        c->lowers = kiln_xrealloc(c->lowers, (c->n_lowers + 1) * sizeof(char *));
        memmove(c->lowers + 1, c->lowers, c->n_lowers * sizeof(char *));
        c->lowers[0] = dir;
        c->n_lowers++;
}

static int fetch_layers(struct kiln_step_ctx *c, const struct kiln_descriptor *ls, size_t n,
                        bool from_cache, struct kiln_err **err);

/* Host-file layers and layers of the registry cache become visible to
 * later sandboxed steps by unpacking them, from the store (fetched first
 * when only the cache has them), into a lower of their own. */
static int unpack_pending(struct kiln_step_ctx *c, struct kiln_err **err)
{
        for (size_t i = 0; i < c->n_pending; i++) {
                struct builder_pending_layer *p = &c->pending[i];
                if (fetch_layers(c, &p->d, 1, false, err) < 0)
                        return -1;
                _cleanup_free_ char *dir =
                    kiln_xasprintf("%s/layer-%.19s", c->build_dir, kiln_digest_hex(p->d.digest));
                if (kiln_mkdir_p(dir, 0755, err) < 0)
                        return -1;
                _cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int blobfd = -1;
                if (rootfd < 0)
                        return kiln_err_sys(err, "open %s", dir);
                if (kiln_store_open_blob(c->store, p->d.digest, &blobfd, NULL, err) < 0)
                        return -1;
                struct kiln_unpack_stats st = {0};
                if (kiln_archive_unpack(rootfd, blobfd, p->d.media_type, p->diff_id, p->d.digest,
                                        &st, err) < 0)
                        return -1;
                builder_push_lower(c, steal_pointer(&dir));
                pending_release(p);
        }
        c->n_pending = 0;
        return 0;
}

/* ---------- blobs fetched on first need ---------- */

/* An image manifest of the store, parsed. */
static int read_manifest(struct kiln_store *store, const char *digest, struct kiln_manifest *m,
                         struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_store_read(store, digest, KILN_MANIFEST_MAX, &b, err) < 0)
                return -1;
        return kiln_manifest_parse(b.data, b.len, NULL, m, err);
}

static bool is_base_layer(const struct kiln_step_ctx *c, const char *digest)
{
        for (size_t i = 0; i < c->n_base; i++)
                if (!strcmp(c->base_layers[i].digest, digest))
                        return true;
        return false;
}

/* Layers of the base from its registry, each told to watches[i] (NULL:
 * none) as it is written. */
static int fetch_from_base(struct kiln_step_ctx *c, const struct kiln_descriptor *ls, size_t n,
                           struct kiln_blob_watch *const *watches, struct kiln_err **err)
{
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        if (kiln_registry_new(c->base_ref.domain, &c->o->reg, &reg, err) < 0)
                return kiln_err_prefix(err, "base image");
        struct kiln_progress *p = kiln_progress_new("pull", c->o->reg.quiet);
        int rc = kiln_registry_fetch_blobs_watched(reg, c->base_ref.path, ls, n, c->store, p,
                                                   watches, err);
        kiln_progress_free(p);
        return rc < 0 ? kiln_err_prefix(err, "base image") : 0;
}

/* The layers among ls that the store lacks: the base's from the base's
 * repository, the rest (results of the registry cache) from the cache;
 * with from_cache everything from the cache (an image it holds whole). */
static int fetch_layers(struct kiln_step_ctx *c, const struct kiln_descriptor *ls, size_t n,
                        bool from_cache, struct kiln_err **err)
{
        _cleanup_free_ struct kiln_descriptor *base = kiln_xcalloc(n + 1, sizeof(*base));
        _cleanup_free_ struct kiln_descriptor *cached = kiln_xcalloc(n + 1, sizeof(*cached));
        size_t nb = 0, nc = 0;
        for (size_t i = 0; i < n; i++) {
                if (kiln_store_has(c->store, ls[i].digest, ls[i].size))
                        continue;
                kiln_debug("fetching layer %s on first need", ls[i].digest);
                if (!from_cache && is_base_layer(c, ls[i].digest) && c->base_ref.domain)
                        base[nb++] = ls[i];
                else if (c->remote)
                        cached[nc++] = ls[i];
                else
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                            "layer %s is in neither the local cache nor the base "
                                            "image",
                                            ls[i].digest);
        }
        if (nb && fetch_from_base(c, base, nb, NULL, err) < 0)
                return -1;
        if (nc && kiln_remote_cache_fetch(c->remote, c->store, cached, nc, err) < 0)
                return -1;
        return 0;
}

/* The base's layers for its snapshot (called only when there is none yet):
 * from its registry, told to the watches as they arrive, so they unpack
 * while they download; from elsewhere (the registry cache) whole, first. */
static int fetch_base_for_snapshot(void *ud, struct kiln_blob_watch *const *watches,
                                   struct kiln_err **err)
{
        struct kiln_step_ctx *c = ud;
        if (c->base_ref.domain)
                return fetch_from_base(c, c->base_layers, c->n_base, watches, err);
        /* Every watch hears the outcome, whichever it is: an unpack waits
         * on each of them. */
        bool fetched = fetch_layers(c, c->base_layers, c->n_base, false, err) == 0;
        for (size_t i = 0; i < c->n_base; i++) {
                if (fetched)
                        kiln_blob_watch_done(watches[i]);
                else
                        kiln_blob_watch_failed(watches[i]);
        }
        return fetched ? 0 : -1;
}

/* What writing the image to dest_domain needs locally: every layer, less
 * those a registry there can mount (NULL: an output, which needs all). */
int builder_fetch_for(struct kiln_step_ctx *c, const struct kiln_descriptor *image,
                      const char *dest_domain, struct kiln_err **err)
{
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (read_manifest(c->store, image->digest, &m, err) < 0)
                return -1;
        _cleanup_free_ struct kiln_descriptor *need = kiln_xcalloc(m.n_layers + 1, sizeof(*need));
        size_t n = 0;
        for (size_t i = 0; i < m.n_layers; i++) {
                _cleanup_free_ char *at =
                    dest_domain
                        ? kiln_store_blob_location(c->store, dest_domain, m.layers[i].digest)
                        : NULL;
                if (!at)
                        need[n++] = m.layers[i];
        }
        return fetch_layers(c, need, n, c->image_remote, err);
}

int builder_ensure_rootfs(struct kiln_step_ctx *c, struct kiln_err **err)
{
        if (!c->rootfs_ready) {
                char *snap = NULL;
                bool local = true;
                for (size_t i = 0; local && i < c->n_base; i++)
                        local = kiln_store_has(c->store, c->base_layers[i].digest,
                                               c->base_layers[i].size);
                if (kiln_snapshot_get_fetching(c->store, c->base_layers, c->base_diff_ids,
                                               c->n_base, local ? NULL : fetch_base_for_snapshot, c,
                                               &snap, err) < 0)
                        return kiln_err_prefix(err, "unpack base image");
                /* The snapshot goes under everything built so far. */
                c->lowers = kiln_xrealloc(c->lowers, (c->n_lowers + 1) * sizeof(char *));
                c->lowers[c->n_lowers++] = snap;
                c->rootfs_ready = true;
        }
        return unpack_pending(c, err);
}

static const char *binfmt_name(const char *arch)
{
        static const struct {
                const char *arch, *qemu;
        } map[] = {{"arm64", "aarch64"}, {"arm", "arm"},         {"ppc64le", "ppc64le"},
                   {"s390x", "s390x"},   {"riscv64", "riscv64"}, {"386", "i386"},
                   {"amd64", "x86_64"}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (!strcmp(map[i].arch, arch))
                        return map[i].qemu;
        return arch;
}

/* Running programs of another architecture needs the kernel's binfmt_misc
 * to hand them to qemu-user; say exactly what is missing otherwise. */
int builder_check_can_run(const struct kiln_step_ctx *c, struct kiln_err **err)
{
        _cleanup_platform_ struct kiln_platform host = {0};
        kiln_platform_host(&host);
        bool same = kiln_platform_matches(&c->platform, &host) ||
                    !strcmp(c->platform.architecture, host.architecture);
        _cleanup_free_ char *want = kiln_platform_string(&c->platform);
        _cleanup_free_ char *have = kiln_platform_string(&host);
        if (same)
                return 0;
        _cleanup_free_ char *path = kiln_xasprintf("/proc/sys/fs/binfmt_misc/qemu-%s",
                                                   binfmt_name(c->platform.architecture));
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_read_file(path, 65536, &b, NULL) == 0 && kiln_str_has_prefix(b.data, "enabled"))
                return 0;
        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                            "the spec's platform %s differs from this host's (%s) and its steps "
                            "run programs, which needs binfmt_misc emulation: %s is not "
                            "registered (install qemu-user-static and register its binfmt "
                            "handlers); specs that only copy files need no emulation",
                            want, have, path);
}

/* A layer later sandboxed steps see by unpacking it from the store. */
void builder_add_pending(struct kiln_step_ctx *c, const char *digest, const char *media_type,
                         const char *diff_id, int64_t size)
{
        c->pending = kiln_xrealloc(c->pending, (c->n_pending + 1) * sizeof(*c->pending));
        c->pending[c->n_pending++] = (struct builder_pending_layer){
            .d = {.digest = kiln_xstrdup(digest),
                  .media_type = kiln_xstrdup(media_type),
                  .size = size},
            .diff_id = kiln_xstrdup(diff_id),
        };
}

/* The manifest and its config are in the store, and every layer too but
 * the base's, which are fetched when needed (prune may have taken any). */
bool builder_image_usable(struct kiln_step_ctx *c, const char *digest)
{
        _cleanup_err_ struct kiln_err *e = NULL;
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (read_manifest(c->store, digest, &m, &e) < 0)
                return false;
        bool ok = !m.is_index && kiln_store_has(c->store, m.config.digest, m.config.size);
        for (size_t i = 0; ok && i < m.n_layers; i++)
                ok = kiln_store_has(c->store, m.layers[i].digest, m.layers[i].size) ||
                     is_base_layer(c, m.layers[i].digest);
        return ok;
}

/* ---------- the base ---------- */

int kiln_build_pull_base(const struct kiln_build_opts *o, const char *base,
                         const struct kiln_platform *platform, bool manifest_only,
                         struct kiln_store *store, struct kiln_ref *base_ref,
                         struct kiln_descriptor *top, struct kiln_err **err)
{
        if (kiln_ref_parse(base, base_ref, err) < 0)
                return kiln_err_prefix(err, "base_image");
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        if (kiln_registry_new(base_ref->domain, &o->reg, &reg, err) < 0)
                return -1;
        struct kiln_progress *p = kiln_progress_new("pull", o->reg.quiet);
        struct kiln_pull_opts po = {.platform = *platform, .manifest_only = manifest_only};
        int rc = kiln_pull(reg, base_ref, &po, store, p, top, err);
        kiln_progress_free(p);
        if (rc < 0)
                return kiln_err_prefix(err, "base image");
        if (!manifest_only)
                return 0;
        /* Where the layers are, for the fetch on first need and for pushes
         * to that registry, which mount them. */
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (read_manifest(store, top->digest, &m, err) < 0)
                return kiln_err_prefix(err, "base image");
        kiln_store_note_missing(store, base_ref->domain, base_ref->path, m.layers, m.n_layers);
        return 0;
}

int builder_capture_base(struct kiln_step_ctx *c, struct kiln_err **err)
{
        c->n_base = c->img.n_layers;
        c->base_layers = kiln_xcalloc(c->n_base ? c->n_base : 1, sizeof(*c->base_layers));
        for (size_t i = 0; i < c->n_base; i++)
                kiln_descriptor_copy(&c->base_layers[i], &c->img.layers[i]);
        json_t *ids = json_object_get(json_object_get(c->img.config, "rootfs"), "diff_ids");
        c->base_diff_ids = kiln_xcalloc(c->n_base + 1, sizeof(char *));
        for (size_t i = 0; i < c->n_base; i++) {
                const char *d = json_string_value(json_array_get(ids, i));
                if (!d)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "base image: rootfs.diff_ids[%zu] is missing", i);
                c->base_diff_ids[i] = kiln_xstrdup(d);
        }
        return 0;
}

/* Memory only: the lowers' directories go with the build directory, or
 * are snapshots, which the store keeps for the next build. */
void builder_rootfs_release(struct kiln_step_ctx *c)
{
        for (size_t i = 0; i < c->n_base; i++)
                kiln_descriptor_release(&c->base_layers[i]);
        free(c->base_layers);
        kiln_strv_free(c->base_diff_ids);
        for (size_t i = 0; i < c->n_lowers; i++)
                free(c->lowers[i]);
        free(c->lowers);
        for (size_t i = 0; i < c->n_pending; i++)
                pending_release(&c->pending[i]);
        free(c->pending);
}
