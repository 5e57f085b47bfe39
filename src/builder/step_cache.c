/* The step cache: a step's result under its key, in the store and in
 * the registry cache, and the image a fully cached chain assembles.
 *
 * A step's key is a digest of its parent's key, its kind and its canonical
 * inputs (kind->key); the chain starts from the base image's manifest
 * digest and what shapes every layer (platform, owners kept or not,
 * compression, SOURCE_DATE_EPOCH). A key found in the store means the step
 * already ran with the same meaning: its layer is reused and nothing runs.
 * Bump CACHE_SCHEMA when a change to kiln changes what a step produces
 * without changing its key inputs. */
#include "builder-internal.h"

#include <string.h>

#define CACHE_SCHEMA "kiln step cache 1"

static void hex_of(const char *text, size_t len, char out[KILN_HEX_MAX])
{
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(text, len, d);
        snprintf(out, KILN_HEX_MAX, "%s", kiln_digest_hex(d));
}

void builder_base_key(const struct kiln_platform *platform, enum kiln_idmap idmap,
                      const struct kiln_archive_opts *lo, const char *base_digest,
                      char out[KILN_HEX_MAX])
{
        _cleanup_free_ char *plat = kiln_platform_string(platform);
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_printf(&b,
                        CACHE_SCHEMA "\nbase %s\nplatform %s\nowners %s\ncompression %d/%d\n"
                                     "epoch %lld\n",
                        base_digest, plat, idmap == KILN_IDMAP_SINGLE ? "root" : "kept",
                        (int)lo->compression, lo->level, (long long)lo->source_date_epoch);
        hex_of(b.data, b.len, out);
}

int builder_step_key(const struct kiln_step_kind *k, const struct kiln_spec *s,
                     char key[KILN_HEX_MAX], struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_printf(&b, "%s\n%s\n", key, k->name);
        if (k->key && k->key(s, &b, err) < 0)
                return kiln_err_prefix(err, "cache key of the %s step", k->name);
        hex_of(b.data, b.len, key);
        return 0;
}

/* A cached layer is trusted while its blob file is the one last hashed;
 * otherwise it is hashed again, and a corrupt one is dropped (with its
 * entry) so the step runs again. */
static int cached_layer_ok(struct kiln_step_ctx *c, struct kiln_step_entry *e, bool *ok,
                           struct kiln_err **err)
{
        uint64_t ino = 0;
        int64_t mt = 0, size = 0;
        *ok = false;
        if (kiln_store_stamp(c->store, e->digest, &ino, &mt, &size) < 0)
                return 0;
        if (ino == e->stamp_ino && mt == e->stamp_mtime_ns && size == e->stamp_size &&
            size == e->size) {
                *ok = true;
                return 0;
        }
        if (kiln_store_verify_blob(c->store, e->digest, ok, err) < 0)
                return -1;
        if (*ok && size == e->size) {
                e->stamp_ino = ino;
                e->stamp_mtime_ns = mt;
                e->stamp_size = size;
                _cleanup_err_ struct kiln_err *perr = NULL;
                kiln_store_step_put(c->store, e, &perr);
                return 0;
        }
        *ok = false;
        kiln_warn("the cached layer %s of the %s step is corrupt: removed, the step runs again",
                  e->digest, e->kind ? e->kind : "?");
        if (kiln_store_remove_blob(c->store, e->digest, err) < 0 ||
            kiln_store_step_remove(c->store, e->key, err) < 0)
                return -1;
        return 0;
}

static int cache_lookup(struct kiln_step_ctx *c, struct kiln_step_entry *e, bool *hit,
                        struct kiln_err **err)
{
        *hit = false;
        bool found = false;
        if (kiln_store_step_get(c->store, c->key, e, &found, err) < 0)
                return -1;
        if (!found)
                return 0;
        bool ok = !e->has_layer;
        if (e->has_layer && cached_layer_ok(c, e, &ok, err) < 0) {
                kiln_step_entry_release(e);
                return -1;
        }
        if (!ok) {
                kiln_step_entry_release(e);
                return 0;
        }
        *hit = true;
        kiln_store_step_touch(c->store, c->key);
        return 0;
}

static void apply_entry(struct kiln_step_ctx *c, const struct kiln_step_entry *e)
{
        if (e->has_layer) {
                struct kiln_archive_result res = {.size = e->size, .media_type = e->media_type};
                snprintf(res.digest, sizeof(res.digest), "%s", e->digest);
                snprintf(res.diff_id, sizeof(res.diff_id), "%s", e->diff_id);
                kiln_image_add_layer(&c->img, &res, e->created_by);
                builder_add_pending(c, e->digest, e->media_type, e->diff_id, e->size);
                kiln_store_touch(c->store, e->digest);
        } else if (e->created_by && *e->created_by) {
                kiln_image_add_history(&c->img, e->created_by);
        }
        for (size_t i = 0; e->facts && e->facts[i]; i++) {
                c->facts = kiln_xrealloc(c->facts, (c->n_facts + 1) * sizeof(char *));
                c->facts[c->n_facts++] = kiln_xstrdup(e->facts[i]);
        }
}

/* A local miss asks the registry cache; what it has becomes a local entry.
 * A cache that cannot be reached costs this build time, never its result:
 * it warns, and the step runs. True when the cache has the step's result,
 * now in e. */
static bool remote_lookup(struct kiln_step_ctx *c, struct kiln_step_entry *e)
{
        bool found = false;
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (c->remote_read_failed)
                return false;
        if (kiln_remote_cache_get(c->remote, c->store, c->key, e, &found, &rerr) < 0) {
                kiln_warn("%s; building without it", rerr->msg);
                c->remote_read_failed = true;
                c->remote_write_failed = true;
                return false;
        }
        if (!found)
                return false;
        snprintf(e->key, sizeof(e->key), "%s", c->key);
        if (e->has_layer)
                kiln_store_stamp(c->store, e->digest, &e->stamp_ino, &e->stamp_mtime_ns,
                                 &e->stamp_size);
        _cleanup_err_ struct kiln_err *perr = NULL;
        kiln_store_step_put(c->store, e, &perr);
        c->n_remote_hits++;
        return true;
}

/* A step's result into the local cache and the registry cache. A cache
 * that cannot be written costs the next build time, never this build. */
void builder_put_entry(struct kiln_step_ctx *c, struct kiln_step_entry *e)
{
        if (e->has_layer)
                kiln_store_stamp(c->store, e->digest, &e->stamp_ino, &e->stamp_mtime_ns,
                                 &e->stamp_size);
        _cleanup_err_ struct kiln_err *perr = NULL;
        if (kiln_store_step_put(c->store, e, &perr) < 0)
                kiln_warn("the %s step's result was not cached: %s", e->kind, perr->msg);
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (c->remote && !c->remote_write_failed &&
            kiln_remote_cache_put(c->remote, c->store, e, c->mount_from, &rerr) < 0) {
                kiln_warn("the %s step's result was not stored in the cache (nor will later "
                          "ones be): %s",
                          e->kind, rerr->msg);
                c->remote_write_failed = true;
        }
}

/* The layer part of a step: from the cache, or run (one builder at a time
 * per key, so concurrent builds of one spec share the first one's result)
 * and recorded. A cache that cannot be written costs the next build time,
 * never this build. */
int builder_layer_part(struct kiln_step_ctx *c, bool use_cache, const char *desc,
                       struct kiln_err **err)
{
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool hit = false;
        if (use_cache && cache_lookup(c, &e, &hit, err) < 0)
                return -1;
        _cleanup_close_ int lock = -1;
        if (!hit) {
                if (kiln_store_step_lock(c->store, c->key, &lock, err) < 0)
                        return -1;
                if (use_cache && cache_lookup(c, &e, &hit, err) < 0)
                        return -1;
        }
        const char *from = "";
        if (!hit && use_cache && c->remote && remote_lookup(c, &e)) {
                hit = true;
                from = kiln_remote_cache_name(c->remote);
        }
        if (hit) {
                builder_event_step(c, c->step_no, c->kind, c->key, desc, true, *from ? from : NULL);
                apply_entry(c, &e);
                c->n_cached++;
                return 0;
        }
        builder_event_step(c, c->step_no, c->kind, c->key, desc, false, NULL);
        builder_note_step_ran(c, c->key);
        kiln_step_entry_release(&c->out);
        snprintf(c->out.key, sizeof(c->out.key), "%s", c->key);
        c->out.kind = kiln_xstrdup(c->kind->name);
        if (c->kind->run(c, err) < 0)
                return -1;
        struct builder_bg_layer *b = c->n_bg ? &c->bg[c->n_bg - 1] : NULL;
        if (b && b->step_no == c->step_no) {
                /* its layer is still being written: the entry waits for it */
                b->out = c->out;
                memset(&c->out, 0, sizeof(c->out));
                b->lock = steal_fd(&lock);
                b->has_entry = true;
                return 0;
        }
        builder_put_entry(c, &c->out);
        return 0;
}

/* The layers of the chain's steps, checked as a step hit checks its own
 * (a blob file that changed is hashed again; a corrupt one is dropped with
 * its entry, and the steps run). */
static int steps_layers_ok(struct kiln_step_ctx *c, bool *ok, struct kiln_err **err)
{
        for (size_t i = 0; *ok && i < c->n_layer_keys; i++) {
                _cleanup_step_entry_ struct kiln_step_entry e = {0};
                bool found = false;
                if (kiln_store_step_get(c->store, c->layer_keys[i], &e, &found, err) < 0)
                        return -1;
                *ok = found;
                if (found && e.has_layer && cached_layer_ok(c, &e, ok, err) < 0)
                        return -1;
                if (*ok)
                        kiln_store_step_touch(c->store, c->layer_keys[i]);
        }
        return 0;
}

/* The assembled image is cached too, under the last step's key and the
 * id: when every step hit, a rebuild gives the very same manifest (and its
 * push moves nothing), as a layer cache hit does in other builders. */
static int image_from_cache(struct kiln_step_ctx *c, const char *key, const char *id,
                            struct kiln_descriptor *out, bool *hit, struct kiln_err **err)
{
        *hit = false;
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool found = false;
        if (kiln_store_step_get(c->store, key, &e, &found, err) < 0)
                return -1;
        if (!found)
                return 0;
        const char *digest = kiln_step_entry_fact(&e, "manifest"),
                   *mt = kiln_step_entry_fact(&e, "mediaType");
        const char *size = kiln_step_entry_fact(&e, "size"), *eid = kiln_step_entry_fact(&e, "id");
        bool ok = digest && mt && size && eid && !strcmp(eid, id) &&
                  kiln_digest_validate(digest, NULL) == 0 && builder_image_usable(c, digest);
        if (ok && steps_layers_ok(c, &ok, err) < 0)
                return -1;
        if (!ok)
                return 0;
        out->digest = kiln_xstrdup(digest);
        out->media_type = kiln_xstrdup(mt);
        out->size = strtoll(size, NULL, 10);
        *hit = true;
        kiln_store_step_touch(c->store, key);
        return 0;
}

static void image_to_cache(struct kiln_step_ctx *c, const char *key, const char *id,
                           const struct kiln_descriptor *m)
{
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        snprintf(e.key, sizeof(e.key), "%s", key);
        e.kind = kiln_xstrdup("image");
        e.created_by = kiln_xstrdup("");
        e.facts = kiln_xcalloc(5, sizeof(char *));
        e.facts[0] = kiln_xasprintf("manifest=%s", m->digest);
        e.facts[1] = kiln_xasprintf("mediaType=%s", m->media_type);
        e.facts[2] = kiln_xasprintf("size=%lld", (long long)m->size);
        e.facts[3] = kiln_xasprintf("id=%s", id);
        _cleanup_err_ struct kiln_err *perr = NULL;
        kiln_store_step_put(c->store, &e, &perr);
}

static void image_from_remote(struct kiln_step_ctx *c, const char *key, const char *id,
                              struct kiln_descriptor *out, bool *hit)
{
        *hit = false;
        _cleanup_descriptor_ struct kiln_descriptor d = {0};
        bool found = false;
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (kiln_remote_cache_get_image(c->remote, c->store, key, &d, &found, &rerr) < 0) {
                kiln_warn("%s; the image is assembled here", rerr->msg);
                return;
        }
        if (!found)
                return;
        *out = d;
        d = (struct kiln_descriptor){0};
        *hit = true;
        c->image_remote = true;
        image_to_cache(c, key, id, out);
}

static void image_to_remote(struct kiln_step_ctx *c, const char *key,
                            const struct kiln_descriptor *image)
{
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (builder_fetch_for(c, image, kiln_remote_cache_domain(c->remote), &rerr) < 0 ||
            kiln_remote_cache_put_image(c->remote, c->store, key, image, c->mount_from, &rerr) < 0)
                kiln_warn("the image was not stored in the cache: %s", rerr->msg);
}

/* The assembled image's key: the last step's and the id. */
void builder_image_key(const char *last_key, const char *id, char out[KILN_HEX_MAX])
{
        _cleanup_free_ char *k = kiln_xasprintf("%s\nimage\n%s\n", last_key, id);
        hex_of(k, strlen(k), out);
}

/* The image cache is asked only with the cache in use; the registry's
 * only on a local miss. */
int builder_image_get(struct kiln_step_ctx *c, const char *key, const char *id,
                      struct kiln_descriptor *out, bool *hit, struct kiln_err **err)
{
        *hit = false;
        if (c->o->no_cache)
                return 0;
        if (image_from_cache(c, key, id, out, hit, err) < 0)
                return -1;
        if (!*hit && c->remote)
                image_from_remote(c, key, id, out, hit);
        return 0;
}

void builder_image_put(struct kiln_step_ctx *c, const char *key, const char *id,
                       const struct kiln_descriptor *image)
{
        image_to_cache(c, key, id, image);
        if (c->remote && !c->remote_write_failed)
                image_to_remote(c, key, image);
}
