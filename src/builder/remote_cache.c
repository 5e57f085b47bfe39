/* The step cache in a registry (--cache-repo REF, KILN_CACHE_REPO): build
 * pods and CI runners that share nothing but a registry share each other's
 * step results.
 *
 * A step's result is a small OCI manifest tagged "step-<key>" in the cache
 * repository: its config blob is the step entry (the JSON of the local
 * cache, media type KILN_MT_STEP), its one layer (if any) the step's layer
 * as built. A lookup that finds the tag fetches both into the local store,
 * where the layer is verified against its digest like any pulled blob. */
#include "builder-internal.h"

#include <string.h>

#define KILN_MT_STEP "application/vnd.kiln.step.v1+json"
#define STEP_TAG_FMT "step-%s"
#define ENTRY_MAX    ((size_t)64 << 10)

struct kiln_remote_cache {
        struct kiln_ref ref;
        struct kiln_registry *reg;
        char *name; /* for messages */
};

int kiln_remote_cache_open(const char *refstr, const struct kiln_registry_opts *ro,
                           struct kiln_remote_cache **out, struct kiln_err **err)
{
        *out = NULL;
        _cleanup_remote_cache_ struct kiln_remote_cache *rc = kiln_xcalloc(1, sizeof(*rc));
        /* A cache is worth little time: one retry, not five. Its
         * credentials come from the auth files: --creds is for the image's
         * registry and must not travel to another host. */
        struct kiln_registry_opts o = *ro;
        o.max_attempts = 2;
        o.creds = NULL;
        o.quiet = true;
        if (kiln_ref_parse(refstr, &rc->ref, err) < 0 ||
            kiln_registry_new(rc->ref.domain, &o, &rc->reg, err) < 0)
                return kiln_err_prefix(err, "--cache-repo %s", refstr);
        rc->name = kiln_xasprintf("%s/%s", rc->ref.domain, rc->ref.path);
        *out = steal_pointer(&rc);
        return 0;
}

void kiln_remote_cache_free(struct kiln_remote_cache *rc)
{
        if (!rc)
                return;
        kiln_registry_free(rc->reg);
        kiln_ref_release(&rc->ref);
        free(rc->name);
        free(rc);
}

void kiln_remote_cache_freep(struct kiln_remote_cache **rc)
{
        kiln_remote_cache_free(*rc);
        *rc = NULL;
}

const char *kiln_remote_cache_name(const struct kiln_remote_cache *rc)
{
        return rc->name;
}

const char *kiln_remote_cache_domain(const struct kiln_remote_cache *rc)
{
        return rc->ref.domain;
}

/* The cache repository, tagged tag (taken). */
static void tagged_ref(const struct kiln_remote_cache *rc, char *tag, struct kiln_ref *dest)
{
        kiln_ref_copy(dest, &rc->ref);
        free(dest->tag);
        free(dest->digest);
        dest->digest = NULL;
        dest->tag = tag;
}

/* The manifest of a result (body), checked, and its config fetched. */
static int check_result(struct kiln_remote_cache *rc, struct kiln_store *store, const char *tag,
                        const char *config_type, const struct kiln_buf *body,
                        struct kiln_manifest *m, struct kiln_err **err)
{
        if (kiln_manifest_parse(body->data, body->len, NULL, m, err) < 0)
                return -1;
        if (m->is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s:%s is an index", rc->name, tag);
        if (config_type && (!m->config.media_type || strcmp(m->config.media_type, config_type)))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s:%s is not a kiln step result",
                                    rc->name, tag);
        return kiln_registry_fetch_blobs(rc->reg, rc->ref.path, &m->config, 1, store, NULL, err);
}

/* The result under tag: its manifest (parsed, not an index) and its
 * config, whose media type must be config_type when given, fetched into
 * the store. A missing tag is *found false, not an error. */
static int fetch_result(struct kiln_remote_cache *rc, struct kiln_store *store, const char *tag,
                        const char *config_type, struct kiln_buf *body,
                        char digest[KILN_DIGEST_MAX], struct kiln_manifest *m, bool *found,
                        struct kiln_err **err)
{
        *found = false;
        _cleanup_free_ char *mt = NULL;
        _cleanup_err_ struct kiln_err *gerr = NULL;
        if (kiln_registry_get_manifest(rc->reg, rc->ref.path, tag, body, &mt, digest, &gerr) < 0) {
                if (gerr->domain == KILN_ERR_NOT_FOUND)
                        return 0;
                *err = steal_pointer(&gerr);
                return kiln_err_prefix(err, "cache %s", rc->name);
        }
        if (check_result(rc, store, tag, config_type, body, m, err) < 0) {
                kiln_manifest_release(m);
                return kiln_err_prefix(err, "cache %s", rc->name);
        }
        *found = true;
        return 0;
}

/* The entry of the step result m (its config, in the store) into e. */
static int load_entry(struct kiln_remote_cache *rc, struct kiln_store *store, const char *key,
                      const char *tag, const struct kiln_manifest *m, struct kiln_step_entry *e,
                      struct kiln_err **err)
{
        if (m->n_layers > 1)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s:%s is not a kiln step result",
                                    rc->name, tag);
        _cleanup_buf_ struct kiln_buf cfg = {0};
        if (kiln_store_read(store, m->config.digest, ENTRY_MAX, &cfg, err) < 0)
                return -1;
        _cleanup_step_entry_ struct kiln_step_entry got = {0};
        if (!kiln_step_entry_load(key, cfg.data, cfg.len, &got))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s:%s: its entry is malformed",
                                    rc->name, tag);
        if (got.has_layer && (m->n_layers != 1 || strcmp(m->layers[0].digest, got.digest)))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s:%s: the entry and the manifest name different layers",
                                    rc->name, tag);
        *e = got;
        got = (struct kiln_step_entry){0};
        return 0;
}

int kiln_remote_cache_get(struct kiln_remote_cache *rc, struct kiln_store *store, const char *key,
                          struct kiln_step_entry *e, bool *found, struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_free_ char *tag = kiln_xasprintf(STEP_TAG_FMT, key);
        _cleanup_buf_ struct kiln_buf body = {0};
        char digest[KILN_DIGEST_MAX];
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (fetch_result(rc, store, tag, KILN_MT_STEP, &body, digest, &m, found, err) < 0)
                return -1;
        if (!*found)
                return 0;
        if (load_entry(rc, store, key, tag, &m, e, err) < 0) {
                *found = false;
                return kiln_err_prefix(err, "cache %s", rc->name);
        }
        /* The layer stays in the registry until something needs its bytes
         * (a later step's rootfs, an output); a push to this registry
         * mounts it from here. */
        kiln_store_note_missing(store, rc->ref.domain, rc->ref.path, m.layers, m.n_layers);
        return 0;
}

int kiln_remote_cache_put(struct kiln_remote_cache *rc, struct kiln_store *store,
                          const struct kiln_step_entry *e, const char *mount_from,
                          struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_free_ char *text = kiln_step_entry_dump(e);
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "step entry: out of memory");
        char cfg[KILN_DIGEST_MAX];
        if (kiln_store_put(store, text, strlen(text), cfg, err) < 0)
                return -1;
        json_t *layers = json_array();
        if (e->has_layer)
                json_array_append_new(layers,
                                      json_pack("{s:s, s:s, s:I}", "mediaType", e->media_type,
                                                "digest", e->digest, "size", (json_int_t)e->size));
        _cleanup_json_ json_t *m =
            json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                      KILN_MT_OCI_MANIFEST, "config", "mediaType", KILN_MT_STEP, "digest", cfg,
                      "size", (json_int_t)strlen(text), "layers", layers);
        _cleanup_free_ char *mtext = json_dumps(m, JSON_COMPACT);
        if (!mtext)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "step manifest: out of memory");
        char md[KILN_DIGEST_MAX];
        if (kiln_store_put(store, mtext, strlen(mtext), md, err) < 0)
                return -1;
        struct kiln_descriptor top = {
            .media_type = KILN_MT_OCI_MANIFEST, .digest = md, .size = (int64_t)strlen(mtext)};
        _cleanup_ref_ struct kiln_ref dest = {0};
        tagged_ref(rc, kiln_xasprintf(STEP_TAG_FMT, e->key), &dest);
        if (kiln_push(rc->reg, &dest, &top, store, mount_from, NULL, err) < 0)
                return kiln_err_prefix(err, "cache %s", rc->name);
        return 0;
}

/* The assembled image of a chain whose every step hit, tagged
 * "image-<key>": a builder served wholly by the cache gives the very image
 * (same digest) the first one made. */
#define IMAGE_TAG_FMT "image-%s"

int kiln_remote_cache_get_image(struct kiln_remote_cache *rc, struct kiln_store *store,
                                const char *key, struct kiln_descriptor *out, bool *found,
                                struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_free_ char *tag = kiln_xasprintf(IMAGE_TAG_FMT, key);
        _cleanup_buf_ struct kiln_buf body = {0};
        char digest[KILN_DIGEST_MAX];
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (fetch_result(rc, store, tag, NULL, &body, digest, &m, found, err) < 0)
                return -1;
        if (!*found)
                return 0;
        if (kiln_store_put(store, body.data, body.len, NULL, err) < 0) {
                *found = false;
                return kiln_err_prefix(err, "cache %s", rc->name);
        }
        /* The layers stay in the registry until something needs their
         * bytes; a push to this registry mounts them from here. */
        kiln_store_note_missing(store, rc->ref.domain, rc->ref.path, m.layers, m.n_layers);
        out->media_type = kiln_xstrdup(m.media_type);
        out->digest = kiln_xstrdup(digest);
        out->size = (int64_t)body.len;
        return 0;
}

int kiln_remote_cache_fetch(struct kiln_remote_cache *rc, struct kiln_store *store,
                            const struct kiln_descriptor *blobs, size_t n, struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        struct kiln_progress *p = kiln_progress_new("pull", kiln_log_get_level() < KILN_LOG_INFO);
        int r = kiln_registry_fetch_blobs(rc->reg, rc->ref.path, blobs, n, store, p, err);
        kiln_progress_free(p);
        return r < 0 ? kiln_err_prefix(err, "cache %s", rc->name) : 0;
}

int kiln_remote_cache_put_image(struct kiln_remote_cache *rc, struct kiln_store *store,
                                const char *key, const struct kiln_descriptor *image,
                                const char *mount_from, struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_ref_ struct kiln_ref dest = {0};
        tagged_ref(rc, kiln_xasprintf(IMAGE_TAG_FMT, key), &dest);
        if (kiln_push(rc->reg, &dest, image, store, mount_from, NULL, err) < 0)
                return kiln_err_prefix(err, "cache %s", rc->name);
        return 0;
}

int kiln_remote_cache_put_manifest(struct kiln_remote_cache *rc, struct kiln_store *store,
                                   const struct kiln_descriptor *m, struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_ref_ struct kiln_ref dest = {0};
        tagged_ref(rc, NULL, &dest); /* no tag: by digest */
        if (kiln_push(rc->reg, &dest, m, store, NULL, NULL, err) < 0)
                return kiln_err_prefix(err, "cache %s", rc->name);
        return 0;
}

int kiln_remote_cache_get_manifest(struct kiln_remote_cache *rc, struct kiln_store *store,
                                   const char *digest, struct kiln_err **err)
{
        kiln_registry_restart_clock(rc->reg);
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_free_ char *mt = NULL;
        char got[KILN_DIGEST_MAX];
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_registry_get_manifest(rc->reg, rc->ref.path, digest, &body, &mt, got, err) < 0 ||
            kiln_manifest_parse(body.data, body.len, mt, &m, err) < 0 ||
            kiln_store_put(store, body.data, body.len, NULL, err) < 0)
                return kiln_err_prefix(err, "cache %s", rc->name);
        if (m.is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "cache %s: %s is an index", rc->name,
                                    digest);
        size_t n = m.n_layers + 1;
        _cleanup_free_ struct kiln_descriptor *blobs = kiln_xcalloc(n, sizeof(*blobs));
        blobs[0] = m.config; /* shallow: m owns the strings */
        for (size_t i = 0; i < m.n_layers; i++)
                blobs[i + 1] = m.layers[i];
        if (kiln_registry_fetch_blobs(rc->reg, rc->ref.path, blobs, n, store, NULL, err) < 0)
                return kiln_err_prefix(err, "cache %s", rc->name);
        return 0;
}
