/* kiln_pull: resolve a reference to the platform's image (or the whole
 * index), keep the exact manifest bytes in the store, then fetch every blob
 * they name. */
#include "client-internal.h"

#include <string.h>

/* Blobs still to fetch, gathered over every manifest of the pull so they
 * download together. */
struct blob_list {
        struct kiln_descriptor *v;
        size_t n;
};

static void blob_list_add(struct blob_list *l, const struct kiln_descriptor *d)
{
        l->v = kiln_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        kiln_descriptor_copy(&l->v[l->n++], d);
}

static void blob_list_release(struct blob_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                kiln_descriptor_release(&l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}
#define _cleanup_blob_list_ _cleanup_(blob_list_release)

/* Fetches a manifest, stores its exact bytes and parses it. */
static int fetch_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                          const char *declared_mt, struct kiln_store *store,
                          struct kiln_manifest *m, struct kiln_descriptor *desc,
                          struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_free_ char *mt = NULL;
        char digest[KILN_DIGEST_MAX];
        if (kiln_registry_get_manifest(r, repo, reference, &body, &mt, digest, err) < 0)
                return -1;
        /* A registry's Content-Type is advisory (some send text/plain); the
         * descriptor that led here or the document itself is authoritative. */
        const char *declared = declared_mt;
        if (!declared && mt && (kiln_mt_is_index(mt) || kiln_mt_is_manifest(mt)))
                declared = mt;
        if (kiln_manifest_parse(body.data, body.len, declared, m, err) < 0)
                return kiln_err_prefix(err, "manifest %s/%s@%s", r->domain, repo, digest);
        if (kiln_store_put(store, body.data, body.len, NULL, err) < 0)
                return -1;
        memset(desc, 0, sizeof(*desc));
        desc->media_type = kiln_xstrdup(m->media_type);
        desc->digest = kiln_xstrdup(digest);
        desc->size = (int64_t)body.len;
        return 0;
}

static void add_image_blobs(struct blob_list *l, const struct kiln_manifest *m, bool config)
{
        if (config)
                blob_list_add(l, &m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                blob_list_add(l, &m->layers[i]);
}

/* With --all-platforms every child manifest is kept, and nested indexes are
 * followed one level further. */
static int collect_index(struct kiln_registry *r, const char *repo, const struct kiln_manifest *idx,
                         struct kiln_store *store, struct blob_list *blobs, int depth,
                         struct kiln_err **err)
{
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct kiln_descriptor *c = &idx->manifests[i];
                if (!kiln_mt_is_index(c->media_type) && !kiln_mt_is_manifest(c->media_type)) {
                        /* Artifacts and signatures ride along as opaque blobs. */
                        blob_list_add(blobs, c);
                        continue;
                }
                _cleanup_manifest_ struct kiln_manifest m = {0};
                _cleanup_descriptor_ struct kiln_descriptor d = {0};
                if (fetch_manifest(r, repo, c->digest, c->media_type, store, &m, &d, err) < 0)
                        return -1;
                if (!m.is_index) {
                        add_image_blobs(blobs, &m, true);
                        continue;
                }
                if (depth >= 2)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "index %s nests indexes too deeply", c->digest);
                if (collect_index(r, repo, &m, store, blobs, depth + 1, err) < 0)
                        return -1;
        }
        return 0;
}

/* A single-platform image must be for the platform asked for: running an
 * arm64 base on amd64 fails much later and more confusingly. */
static int check_config_platform(struct kiln_store *store, const struct kiln_manifest *m,
                                 const struct kiln_platform *want, const char *name,
                                 struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf cfg = {0};
        if (kiln_store_read(store, m->config.digest, KILN_CONFIG_MAX, &cfg, err) < 0)
                return -1;
        _cleanup_config_summary_ struct kiln_config_summary s = {0};
        if (kiln_config_summary_parse(cfg.data, cfg.len, &s, err) < 0)
                return kiln_err_prefix(err, "config of %s", name);
        if (s.platform.os && s.platform.architecture && !kiln_platform_matches(want, &s.platform)) {
                _cleanup_free_ char *w = kiln_platform_string(want);
                _cleanup_free_ char *g = kiln_platform_string(&s.platform);
                return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                    "%s is a single-platform image for %s, not %s", name, g, w);
        }
        return 0;
}

/* The manifest (or index) the reference names, resolved to the platform's
 * image unless every platform is wanted; the blobs to fetch go to blobs. */
static int resolve(struct kiln_registry *r, const struct kiln_ref *ref,
                   const struct kiln_pull_opts *opts, const struct kiln_platform *want,
                   struct kiln_store *store, struct kiln_manifest *m, struct kiln_descriptor *d,
                   struct blob_list *blobs, struct kiln_err **err)
{
        if (fetch_manifest(r, ref->path, kiln_ref_object(ref), NULL, store, m, d, err) < 0)
                return -1;
        if (!m->is_index) {
                add_image_blobs(blobs, m, false);
                return 0;
        }
        if (opts->all_platforms)
                return collect_index(r, ref->path, m, store, blobs, 1, err);
        const struct kiln_descriptor *pick = NULL;
        if (kiln_index_select(m, want, &pick, err) < 0)
                return -1;
        _cleanup_descriptor_ struct kiln_descriptor child = {0};
        kiln_descriptor_copy(&child, pick);
        kiln_manifest_release(m);
        kiln_descriptor_release(d);
        if (fetch_manifest(r, ref->path, child.digest, child.media_type, store, m, d, err) < 0)
                return -1;
        if (m->is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "index entry %s for %s is itself an index", child.digest,
                                    child.platform ? "platform" : "?");
        if (child.platform) {
                d->platform = kiln_xcalloc(1, sizeof(*d->platform));
                kiln_platform_copy(d->platform, child.platform);
        }
        add_image_blobs(blobs, m, false);
        return 0;
}

int kiln_pull(struct kiln_registry *r, const struct kiln_ref *ref,
              const struct kiln_pull_opts *opts, struct kiln_store *store,
              struct kiln_progress *progress, struct kiln_descriptor *top, struct kiln_err **err)
{
        _cleanup_free_ char *name = kiln_ref_string(ref);
        _cleanup_platform_ struct kiln_platform want = {0};
        if (opts->platform.os)
                kiln_platform_copy(&want, &opts->platform);
        else
                kiln_platform_host(&want);

        _cleanup_manifest_ struct kiln_manifest m = {0};
        _cleanup_descriptor_ struct kiln_descriptor d = {0};
        _cleanup_blob_list_ struct blob_list blobs = {0};
        if (resolve(r, ref, opts, &want, store, &m, &d, &blobs, err) < 0)
                return kiln_err_prefix(err, "pull %s", name);
        /* The config first: it is small, and a wrong platform stops the pull
         * before any layer moves. */
        if (!m.is_index) {
                if (kiln_registry_fetch_blobs(r, ref->path, &m.config, 1, store, progress, err) < 0)
                        return -1;
                if (opts->platform.os && check_config_platform(store, &m, &want, name, err) < 0)
                        return -1;
        }
        if (!opts->manifest_only &&
            kiln_registry_fetch_blobs(r, ref->path, blobs.v, blobs.n, store, progress, err) < 0)
                return -1;
        *top = d;
        d = (struct kiln_descriptor){0};
        return 0;
}
