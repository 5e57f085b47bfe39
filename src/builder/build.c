/* The planner and executor: base image -> steps -> image -> outputs.
 *
 * The rootfs of sandboxed steps is prepared in rootfs.c; what a step kind
 * may do (kiln/step.h) is done for it in step.c. */
#include "builder-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#define DEFAULT_BASE_IMAGE "debian:bookworm-slim"
/* NVIDIA's CUDA images: runtime flavour, the Ubuntu LTS every CUDA 11.7+
 * and 12.x release is published for. */
#define CUDA_REPO   "docker.io/nvidia/cuda"
#define CUDA_FLAVOR "runtime-ubuntu22.04"

/* The planner's table: the order in which flytekit's default builder lays
 * an image out (see imagespec-reference.md). */
static const struct kiln_step_kind *const step_kinds[] = {
    &kiln_step_apt,         /* apt_packages */
    &kiln_step_cacerts,     /* the host's CA bundle where the base has none */
    &kiln_step_user,        /* the flytekit user owning /root */
    &kiln_step_python,      /* /root/.venv */
    &kiln_step_pip,         /* packages, requirements, lock files */
    &kiln_step_env,         /* PATH, PYTHONPATH, the spec's env, entrypoint */
    &kiln_step_source,      /* source_root into /root */
    &kiln_step_copy,        /* copy into /root */
    &kiln_step_commands,    /* commands, as root */
    &kiln_step_user_config, /* WORKDIR /root, USER flytekit */
};

void kiln_build_result_release(struct kiln_build_result *r)
{
        kiln_image_name_release(&r->name);
        kiln_descriptor_release(&r->manifest);
        memset(r, 0, sizeof(*r));
}

static void ctx_release(struct kiln_step_ctx *c)
{
        builder_abandon_layers(c); /* first: the writers read the build directory */
        kiln_remote_cache_free(c->remote);
        kiln_ref_release(&c->base_ref);
        free(c->layer_keys);
        kiln_step_entry_release(&c->out);
        for (size_t i = 0; i < c->n_facts; i++)
                free(c->facts[i]);
        free(c->facts);
        kiln_image_release(&c->img);
        kiln_platform_release(&c->platform);
        builder_rootfs_release(c);
        if (c->build_dir) {
                struct kiln_err *e = NULL;
                if (kiln_rm_rf(c->build_dir, &e) < 0) {
                        kiln_warn("could not remove the build directory: %s", e->msg);
                        kiln_err_free(e);
                }
                free(c->build_dir);
        }
}

/* A push that counted on mounts and found one declined (the blob went
 * from that repository) fetches what is missing and pushes again. */
static int push_lazily(struct kiln_step_ctx *c, struct kiln_registry *reg,
                       const struct kiln_ref *dest, const struct kiln_descriptor *image,
                       const char *mount_from, struct kiln_progress *p, struct kiln_err **err)
{
        if (builder_fetch_for(c, image, dest->domain, err) < 0)
                return -1;
        if (kiln_push(reg, dest, image, c->store, mount_from, p, err) == 0)
                return 0;
        if ((*err)->domain != KILN_ERR_NOT_FOUND && (*err)->domain != KILN_ERR_SYSTEM)
                return -1;
        kiln_debug("push: %s; fetching the image's layers and pushing again", (*err)->msg);
        kiln_err_clear(err);
        if (builder_fetch_for(c, image, NULL, err) < 0)
                return -1;
        return kiln_push(reg, dest, image, c->store, mount_from, p, err);
}

/* ---------- the step cache ----------
 *
 * A step's key is a digest of its parent's key, its kind and its canonical
 * inputs (kind->key); the chain starts from the base image's manifest
 * digest and what shapes every layer (platform, owners kept or not,
 * compression, SOURCE_DATE_EPOCH). A key found in the store means the step
 * already ran with the same meaning: its layer is reused and nothing runs.
 * Bump CACHE_SCHEMA when a change to kiln changes what a step produces
 * without changing its key inputs. */

#define CACHE_SCHEMA "kiln step cache 1"

static void hex_of(const char *text, size_t len, char out[KILN_HEX_MAX])
{
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(text, len, d);
        snprintf(out, 65, "%s", kiln_digest_hex(d));
}

static void base_key(const struct kiln_platform *platform, enum kiln_idmap idmap,
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

static int step_key(const struct kiln_step_kind *k, const struct kiln_spec *s,
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
 * it warns, and the step runs. */
static bool remote_lookup(struct kiln_step_ctx *c, struct kiln_step_entry *e, bool *hit)
{
        *hit = false;
        bool found = false;
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (c->remote_read_failed)
                return true;
        if (kiln_remote_cache_get(c->remote, c->store, c->key, e, &found, &rerr) < 0) {
                kiln_warn("%s; building without it", rerr->msg);
                c->remote_read_failed = true;
                c->remote_write_failed = true;
                return true;
        }
        if (!found)
                return true;
        snprintf(e->key, sizeof(e->key), "%s", c->key);
        if (e->has_layer)
                kiln_store_stamp(c->store, e->digest, &e->stamp_ino, &e->stamp_mtime_ns,
                                 &e->stamp_size);
        _cleanup_err_ struct kiln_err *perr = NULL;
        kiln_store_step_put(c->store, e, &perr);
        c->n_remote_hits++;
        *hit = true;
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
static int layer_part(struct kiln_step_ctx *c, bool use_cache, const char *desc,
                      struct kiln_err **err)
{
        struct kiln_step_entry e;
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
        if (!hit && use_cache && c->remote && remote_lookup(c, &e, &hit) && hit)
                from = kiln_remote_cache_name(c->remote);
        if (hit) {
                kiln_info("step %zu: %s: %s (cached%s%s)", c->step_no, c->kind->name, desc,
                          *from ? " in " : "", from);
                apply_entry(c, &e);
                kiln_step_entry_release(&e);
                c->n_cached++;
                return 0;
        }
        kiln_info("step %zu: %s: %s", c->step_no, c->kind->name, desc);
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
                struct kiln_step_entry e;
                bool found = false;
                if (kiln_store_step_get(c->store, c->layer_keys[i], &e, &found, err) < 0)
                        return -1;
                *ok = found;
                int rc = found && e.has_layer ? cached_layer_ok(c, &e, ok, err) : 0;
                if (*ok)
                        kiln_store_step_touch(c->store, c->layer_keys[i]);
                if (found)
                        kiln_step_entry_release(&e);
                if (rc < 0)
                        return -1;
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
        struct kiln_step_entry e;
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
        if (ok && steps_layers_ok(c, &ok, err) < 0) {
                kiln_step_entry_release(&e);
                return -1;
        }
        if (ok) {
                out->digest = kiln_xstrdup(digest);
                out->media_type = kiln_xstrdup(mt);
                out->size = strtoll(size, NULL, 10);
                *hit = true;
                kiln_store_step_touch(c->store, key);
        }
        kiln_step_entry_release(&e);
        return 0;
}

static void image_to_cache(struct kiln_step_ctx *c, const char *key, const char *id,
                           const struct kiln_descriptor *m)
{
        struct kiln_step_entry e = {0};
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
        kiln_step_entry_release(&e);
}

static void image_from_remote(struct kiln_step_ctx *c, const char *key, const char *id,
                              struct kiln_descriptor *out, bool *hit)
{
        *hit = false;
        struct kiln_descriptor d = {0};
        bool found = false;
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (kiln_remote_cache_get_image(c->remote, c->store, key, &d, &found, &rerr) < 0) {
                kiln_warn("%s; the image is assembled here", rerr->msg);
                return;
        }
        if (found) {
                *out = d;
                *hit = true;
                c->image_remote = true;
                image_to_cache(c, key, id, out);
                return;
        }
        kiln_descriptor_release(&d);
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
static void image_key(const char *last_key, const char *id, char out[KILN_HEX_MAX])
{
        _cleanup_free_ char *k = kiln_xasprintf("%s\nimage\n%s\n", last_key, id);
        hex_of(k, strlen(k), out);
}

/* Every step's key, before anything runs (keys depend on inputs, never on
 * results): the image key then says whether the whole image is cached. */
static int chain_image_key(struct kiln_step_ctx *c, const char *id, char out[KILN_HEX_MAX],
                           struct kiln_err **err)
{
        char key[KILN_HEX_MAX];
        snprintf(key, sizeof(key), "%s", c->key);
        size_t n = sizeof(step_kinds) / sizeof(step_kinds[0]);
        c->layer_keys = kiln_xcalloc(n, sizeof(*c->layer_keys));
        for (size_t i = 0; i < n; i++) {
                if (!step_kinds[i]->wanted(c->spec))
                        continue;
                if (step_key(step_kinds[i], c->spec, key, err) < 0)
                        return -1;
                if (step_kinds[i]->run)
                        snprintf(c->layer_keys[c->n_layer_keys++], 65, "%s", key);
        }
        image_key(key, id, out);
        return 0;
}

static void report_cached_steps(struct kiln_step_ctx *c)
{
        const char *from = c->image_remote ? kiln_remote_cache_name(c->remote) : NULL;
        size_t k = 0;
        for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                if (!step_kinds[i]->wanted(c->spec))
                        continue;
                _cleanup_free_ char *d = step_kinds[i]->describe(c->spec);
                kiln_info("step %zu: %s: %s (cached%s%s)", ++k, step_kinds[i]->name, d,
                          from ? " in " : "", from ? from : "");
        }
}

static int run_step(struct kiln_step_ctx *c, struct kiln_err **err)
{
        _cleanup_free_ char *d = c->kind->describe(c->spec);
        if (step_key(c->kind, c->spec, c->key, err) < 0)
                return -1;
        if (c->kind->run && layer_part(c, !c->o->no_cache, d, err) < 0)
                return -1;
        if (!c->kind->run)
                kiln_info("step %zu: %s: %s", c->step_no, c->kind->name, d);
        if (c->kind->config && c->kind->config(c, err) < 0)
                return -1;
        return 0;
}

static int run_steps(struct kiln_step_ctx *c, struct kiln_err **err)
{
        for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                if (!step_kinds[i]->wanted(c->spec))
                        continue;
                c->kind = step_kinds[i];
                c->step_no++;
                if (run_step(c, err) < 0) {
                        /* the steps before the failing one stay cached */
                        _cleanup_err_ struct kiln_err *e = NULL;
                        if (builder_settle_layers(c, &e) < 0)
                                kiln_debug("%s", e->msg);
                        return -1;
                }
        }
        return builder_settle_layers(c, err);
}

/* ---------- plan, run, output ---------- */

int kiln_build_exists(const struct kiln_spec *spec, const struct kiln_image_name *name,
                      const struct kiln_registry_opts *reg, bool *exists,
                      char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        *exists = false;
        digest[0] = '\0';
        if (!spec->registry)
                return 0;
        struct kiln_ref ref = {0};
        if (kiln_ref_parse(name->full, &ref, err) < 0)
                return kiln_err_prefix(err, "image name");
        _cleanup_registry_ struct kiln_registry *r = NULL;
        int rc = kiln_registry_new(ref.domain, reg, &r, err);
        if (rc == 0)
                rc = kiln_registry_head_manifest(r, ref.path, ref.tag, exists, digest, err);
        kiln_ref_release(&ref);
        if (rc < 0)
                return kiln_err_prefix(err, "check whether %s exists", name->full);
        return 0;
}

bool kiln_build_forced(const struct kiln_build_opts *o)
{
        if (o->force)
                return true;
        const char *v = getenv("FLYTE_FORCE_PUSH_IMAGE_SPEC");
        return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

int kiln_build_resolve_base(const struct kiln_build_opts *o, const char *base,
                            const struct kiln_platform *platform, struct kiln_store *store,
                            char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        struct kiln_ref ref = {0};
        struct kiln_descriptor top = {0};
        int rc = kiln_build_pull_base(o, base, platform, true, store, &ref, &top, err);
        if (rc == 0)
                snprintf(digest, KILN_DIGEST_MAX, "%s", top.digest);
        kiln_descriptor_release(&top);
        kiln_ref_release(&ref);
        return rc;
}

/* --dry-run: the steps, and for each with a layer whether the cache has
 * its result ("cached") or it will run; config-only steps cost nothing. */
static int print_plan(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                      const char *base, const struct kiln_image_name *name, struct kiln_err **err)
{
        printf("image: %s\n", name->full);
        printf("base:  %s\n", base);
        char key[KILN_HEX_MAX] = "";
        _cleanup_store_ struct kiln_store *store = NULL;
        struct kiln_platform platform = {0};
        enum kiln_idmap idmap = KILN_IDMAP_HOST;
        struct kiln_archive_opts lo;
        char digest[KILN_DIGEST_MAX];
        _cleanup_err_ struct kiln_err *why = NULL;
        if (spec->base_spec)
                kiln_err_set(&why, KILN_ERR_BUILD, 0, "the base spec is not built yet");
        else if (kiln_platform_parse(spec->platforms ? spec->platforms[0]
                                                     : KILN_SPEC_DEFAULT_PLATFORM,
                                     &platform, &why) == 0 &&
                 kiln_userns_enter(&idmap, &why) == 0 &&
                 kiln_store_open(o->cache_dir, &store, &why) == 0 &&
                 kiln_archive_opts_init(&lo, &why) == 0 &&
                 kiln_build_resolve_base(o, base, &platform, store, digest, &why) == 0) {
                lo.compression = o->compression;
                base_key(&platform, idmap, &lo, digest, key);
        }
        kiln_platform_release(&platform);
        if (why)
                printf("cache: not checked (%s)\n", why->msg);
        size_t k = 1;
        for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                const struct kiln_step_kind *kind = step_kinds[i];
                if (!kind->wanted(spec))
                        continue;
                _cleanup_free_ char *d = kind->describe(spec);
                const char *state = "";
                if (key[0] && step_key(kind, spec, key, err) < 0)
                        return -1;
                if (key[0] && kind->run) {
                        struct kiln_step_entry e;
                        bool found = false;
                        if (kiln_store_step_get(store, key, &e, &found, err) < 0)
                                return -1;
                        bool usable =
                            found && (!e.has_layer || kiln_store_has(store, e.digest, e.size));
                        state = usable && !o->no_cache ? " [cached]" : " [runs]";
                        if (found)
                                kiln_step_entry_release(&e);
                }
                printf("%zu. %s: %s%s\n", k++, kind->name, d, state);
        }
        printf("%zu. config: _F_IMG_ID=%s\n", k, name->id);
        if (key[0] && !o->no_cache) {
                char ik[KILN_HEX_MAX];
                image_key(key, name->id, ik);
                struct kiln_step_entry e;
                bool found = false;
                if (kiln_store_step_get(store, ik, &e, &found, err) < 0)
                        return -1;
                const char *m = found ? kiln_step_entry_fact(&e, "manifest") : NULL;
                if (m && kiln_store_has(store, m, -1))
                        printf("cached image: %s (no step runs)\n", m);
                if (found)
                        kiln_step_entry_release(&e);
        }
        return 0;
}

static int write_outputs(struct kiln_step_ctx *c, const struct kiln_build_opts *o,
                         struct kiln_build_result *res, struct kiln_err **err)
{
        const struct kiln_ref *base_ref = &c->base_ref;
        if (o->n_outputs && builder_fetch_for(c, &res->manifest, NULL, err) < 0)
                return -1;
        for (size_t i = 0; i < o->n_outputs; i++)
                if (kiln_output_write(&o->outputs[i], c->store, &res->manifest, res->name.full,
                                      err) < 0)
                        return -1;
        if (!o->push)
                return 0;
        struct kiln_ref dest = {0};
        if (kiln_ref_parse(res->name.full, &dest, err) < 0)
                return kiln_err_prefix(err, "image name");
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        int rc = kiln_registry_new(dest.domain, &o->reg, &reg, err);
        /* The base's blobs need not travel again when the destination is
         * on the same registry: mount them from the base's repository. */
        const char *mount_from =
            base_ref->domain && !strcmp(base_ref->domain, dest.domain) ? base_ref->path : NULL;
        struct kiln_progress *p = rc == 0 ? kiln_progress_new("push", o->reg.quiet) : NULL;
        if (rc == 0)
                rc = push_lazily(c, reg, &dest, &res->manifest, mount_from, p, err);
        kiln_progress_free(p);
        kiln_ref_release(&dest);
        return rc;
}

static bool is_full_version(const char *v)
{
        int dots = 0;
        if (!*v || *v == '.')
                return false;
        for (const char *p = v; *p; p++) {
                if (*p == '.' && (p[1] == '.' || !p[1]))
                        return false;
                if (*p == '.')
                        dots++;
                else if (*p < '0' || *p > '9')
                        return false;
        }
        return dots == 2;
}

/* No base_image: debian:bookworm-slim as flytekit's default builder uses,
 * or with cuda an NVIDIA CUDA image (cudnn adds cuDNN: up to 8 the tag
 * names the major version, from 9 on it is just "cudnn"). Caller frees. */
static int default_base(const struct kiln_spec *s, char **out, struct kiln_err **err)
{
        if (!s->cuda && s->cudnn)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cudnn: %s given without cuda (a cuDNN base needs the CUDA "
                                    "version too)",
                                    s->cudnn);
        if (!s->cuda) {
                *out = kiln_xstrdup(DEFAULT_BASE_IMAGE);
                return 0;
        }
        if (!is_full_version(s->cuda))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cuda: '%s': NVIDIA's CUDA images are tagged by the full "
                                    "version (e.g. 12.4.1); give that, or a base_image",
                                    s->cuda);
        if (!s->cudnn) {
                *out = kiln_xasprintf(CUDA_REPO ":%s-" CUDA_FLAVOR, s->cuda);
                return 0;
        }
        char *end = NULL;
        long major = strtol(s->cudnn, &end, 10);
        if (end == s->cudnn || major < 7 || (*end && *end != '.'))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cudnn: '%s' is not a cuDNN major version (7, 8, 9 ...)",
                                    s->cudnn);
        *out = major >= 9 ? kiln_xasprintf(CUDA_REPO ":%s-cudnn-" CUDA_FLAVOR, s->cuda)
                          : kiln_xasprintf(CUDA_REPO ":%s-cudnn%ld-" CUDA_FLAVOR, s->cuda, major);
        return 0;
}

/* base_image names another spec: it is built first (and pushed with the
 * spec when it has a registry, as flytekit does) and used from the store
 * without a pull. When the registry already has it, it is pulled instead. */
static int build_base_spec(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                           struct kiln_descriptor *top, bool *built, struct kiln_err **err)
{
        struct kiln_build_opts bo = *o;
        bo.outputs = NULL;
        bo.n_outputs = 0;
        bo.push = o->push && spec->base_spec->registry;
        bo.local_only = !bo.push;
        struct kiln_build_result r = {0};
        kiln_info("base_image is a spec: building it first");
        if (kiln_build(spec->base_spec, &bo, &r, err) < 0) {
                kiln_build_result_release(&r);
                return -1;
        }
        if (r.skipped) {
                kiln_info("%s exists in the registry: using it", r.name.full);
        } else {
                kiln_descriptor_copy(top, &r.manifest);
                *built = true;
        }
        kiln_build_result_release(&r);
        return 0;
}

int kiln_build_base_name(const struct kiln_spec *spec, char **out, struct kiln_err **err)
{
        *out = NULL;
        if (spec->base_spec) {
                struct kiln_image_name bn = {0};
                if (kiln_spec_image_name(spec->base_spec, &bn, err) < 0)
                        return kiln_err_prefix(err, "base_image");
                *out = steal_pointer(&bn.full);
                kiln_image_name_release(&bn);
                return 0;
        }
        if (spec->base_image) {
                *out = kiln_xstrdup(spec->base_image);
                return 0;
        }
        return default_base(spec, out, err);
}

int kiln_build(const struct kiln_spec *spec, const struct kiln_build_opts *o,
               struct kiln_build_result *res, struct kiln_err **err)
{
        memset(res, 0, sizeof(*res));
        if (kiln_spec_image_name(spec, &res->name, err) < 0)
                return -1;
        for (size_t i = 0; spec->warnings && spec->warnings[i]; i++)
                kiln_warn("%s", spec->warnings[i]);
        _cleanup_free_ char *base = NULL;
        if (kiln_build_base_name(spec, &base, err) < 0)
                return -1;
        if (o->dry_run) {
                if (spec->base_spec) {
                        struct kiln_build_result br = {0};
                        int r = kiln_build(spec->base_spec, o, &br, err);
                        kiln_build_result_release(&br);
                        if (r < 0)
                                return kiln_err_prefix(err, "base_image");
                        printf("\n");
                }
                return print_plan(spec, o, base, &res->name, err);
        }
        if (o->push && !spec->registry)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--push needs a registry in the spec (the image name %s has "
                                    "none)",
                                    res->name.full);
        if (!o->push && o->n_outputs == 0 && !o->local_only)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "nowhere to put the image: give --push or -o DEST");
        if (o->push && !kiln_build_forced(o)) {
                char digest[KILN_DIGEST_MAX];
                bool exists = false;
                if (kiln_build_exists(spec, &res->name, &o->reg, &exists, digest, err) < 0)
                        return -1;
                if (exists) {
                        res->skipped = true;
                        res->manifest.digest = digest[0] ? kiln_xstrdup(digest) : NULL;
                        return 0;
                }
        }
        if (kiln_strv_len(spec->platforms) > 1)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "platform: building several platforms at once (%s) is not "
                                    "supported yet",
                                    spec->platform);

        struct kiln_step_ctx c = {.spec = spec, .o = o};
        uint64_t start_ns = kiln_now_ns();
        struct kiln_descriptor top = {0};
        bool base_built = false;
        if (spec->base_spec && build_base_spec(spec, o, &top, &base_built, err) < 0)
                return kiln_err_prefix(err, "base_image %s", base);
        int rc = kiln_platform_parse(
            spec->platforms ? spec->platforms[0] : KILN_SPEC_DEFAULT_PLATFORM, &c.platform, err);
        /* The user namespace first: it cannot be entered once threads exist. */
        if (rc == 0)
                rc = kiln_userns_enter(&c.idmap, err);
        if (rc == 0)
                rc = kiln_store_open(o->cache_dir, &c.store, err);
        if (rc == 0)
                rc = kiln_archive_opts_init(&c.lopts, err);
        if (rc == 0) {
                c.lopts.compression = o->compression;
                /* The base's layers wait until something needs their bytes. */
                if (base_built)
                        rc = kiln_ref_parse(base, &c.base_ref, err);
                else
                        rc = kiln_build_pull_base(o, base, &c.platform, true, c.store, &c.base_ref,
                                                  &top, err);
        }
        if (rc == 0)
                rc = kiln_image_from_base(&c.img, c.store, &top, err);
        if (rc == 0)
                rc = builder_capture_base(&c, err);
        if (rc == 0) {
                kiln_image_set_created(&c.img, c.lopts.source_date_epoch);
                _cleanup_free_ char *builds = kiln_xasprintf("%s/builds", kiln_store_root(c.store));
                rc = kiln_mkdir_p(builds, 0755, err);
                if (rc == 0) {
                        c.build_dir = kiln_xasprintf("%s/XXXXXX", builds);
                        if (!mkdtemp(c.build_dir)) {
                                rc = kiln_err_sys(err, "create build directory in %s", builds);
                                free(c.build_dir);
                                c.build_dir = NULL;
                        }
                }
        }
        kiln_debug("user namespace: %s", kiln_idmap_name(c.idmap));
        if (rc == 0)
                base_key(&c.platform, c.idmap, &c.lopts, top.digest, c.key);
        const char *cache_repo = o->cache_repo ? o->cache_repo : getenv("KILN_CACHE_REPO");
        if (rc == 0 && cache_repo && *cache_repo) {
                rc = kiln_remote_cache_open(cache_repo, &o->reg, &c.remote, err);
                if (rc == 0 && c.base_ref.domain &&
                    !strcmp(c.base_ref.domain, kiln_remote_cache_domain(c.remote)))
                        c.mount_from = c.base_ref.path;
        }
        char image_key[KILN_HEX_MAX] = "";
        bool image_hit = false;
        if (rc == 0)
                rc = chain_image_key(&c, res->name.id, image_key, err);
        if (rc == 0 && !o->no_cache)
                rc = image_from_cache(&c, image_key, res->name.id, &res->manifest, &image_hit, err);
        if (rc == 0 && !image_hit && !o->no_cache && c.remote)
                image_from_remote(&c, image_key, res->name.id, &res->manifest, &image_hit);
        if (rc == 0 && image_hit) {
                report_cached_steps(&c);
                c.n_cached = c.n_layer_keys;
                c.n_remote_hits = c.image_remote ? c.n_layer_keys : 0;
        } else if (rc == 0) {
                rc = run_steps(&c, err);
        }
        if (rc == 0 && !image_hit) {
                /* Last, so a changed id costs no layer. */
                kiln_image_set_env(&c.img, "_F_IMG_ID", res->name.id);
                _cleanup_free_ char *h = kiln_xasprintf("ENV _F_IMG_ID=%s", res->name.id);
                kiln_image_add_history(&c.img, h);
                rc = kiln_image_commit(&c.img, c.store, &res->manifest, err);
                if (rc == 0)
                        image_to_cache(&c, image_key, res->name.id, &res->manifest);
                if (rc == 0 && c.remote && !c.remote_write_failed)
                        image_to_remote(&c, image_key, &res->manifest);
        }
        /* Where the time went: what is not the installers' is kiln's. */
        uint64_t total_ns = kiln_now_ns() - start_ns;
        kiln_debug("time: %.3f s in all, %.3f s in sandboxed programs, %.3f s of it kiln's own "
                   "(%.3f s waiting for layers, written in %.3f s mostly while later steps ran)",
                   (double)total_ns / 1e9, (double)c.sandbox_ns / 1e9,
                   (double)(total_ns - c.sandbox_ns) / 1e9, (double)c.commit_ns / 1e9,
                   (double)c.commit_bg_ns / 1e9);
        res->n_new_layers = c.n_new_layers;
        res->n_cached_steps = c.n_cached;
        res->n_remote_hits = c.n_remote_hits;
        if (rc == 0 && !o->local_only)
                rc = write_outputs(&c, o, res, err);
        kiln_descriptor_release(&top);
        struct kiln_store *store = c.store;
        ctx_release(&c);
        kiln_store_free(store);
        if (rc < 0)
                kiln_err_prefix(err, "build %s", res->name.full);
        return rc;
}
