/* The planner and executor: base image -> steps -> image -> outputs.
 *
 * This file is the driver: the plan, the run of the steps, the outputs
 * and the base's name. The rootfs of sandboxed steps is prepared in
 * rootfs.c; what a step kind may do (kiln/step.h) is done for it in
 * step.c; step keys and the cache of results and images are step_cache.c. */
#include "builder-internal.h"

#include <string.h>
#include <strings.h>

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
    &kiln_step_env,         /* UV_*, SSL_CERT_DIR, PYTHONPATH, the spec's env */
    &kiln_step_pip,         /* packages, requirements, lock files */
    &kiln_step_runtime_env, /* the GPU paths, entrypoint */
    &kiln_step_source,      /* source_root into /root */
    &kiln_step_copy,        /* copy into /root */
    &kiln_step_commands,    /* commands, as root */
    &kiln_step_user_config, /* WORKDIR /root, SHELL, USER flytekit */
    &kiln_step_profile,     /* PATH into the flytekit user's ~/.profile */
};

const char *builder_platform(const struct kiln_spec *spec, const struct kiln_build_opts *o)
{
        if (o->platform)
                return o->platform;
        return spec->platforms ? spec->platforms[0] : KILN_SPEC_DEFAULT_PLATFORM;
}

bool builder_several_platforms(const struct kiln_spec *spec, const struct kiln_build_opts *o)
{
        return !o->platform && kiln_strv_len(spec->platforms) > 1;
}

void kiln_build_result_release(struct kiln_build_result *r)
{
        kiln_image_name_release(&r->name);
        kiln_descriptor_release(&r->manifest);
        for (size_t i = 0; i < r->n_platform_manifests; i++)
                kiln_descriptor_release(&r->platform_manifests[i]);
        free(r->platform_manifests);
        kiln_strv_free(r->outputs);
        memset(r, 0, sizeof(*r));
}

void builder_result_add_output(struct kiln_build_result *res, const struct kiln_image_loc *dest)
{
        size_t n = kiln_strv_len(res->outputs);
        res->outputs = kiln_xrealloc(res->outputs, (n + 2) * sizeof(char *));
        res->outputs[n] = kiln_output_location(dest);
        res->outputs[n + 1] = NULL;
}

static void ctx_release(struct kiln_step_ctx *c)
{
        builder_abandon_layers(c); /* first: the writers read the build directory */
        kiln_remote_cache_free(c->remote);
        kiln_ref_release(&c->base_ref);
        kiln_net_ports_release(&c->net_ports);
        free(c->layer_keys);
        kiln_step_entry_release(&c->out);
        for (size_t i = 0; i < c->n_facts; i++)
                free(c->facts[i]);
        free(c->facts);
        kiln_image_release(&c->img);
        kiln_platform_release(&c->platform);
        builder_rootfs_release(c);
        if (c->build_dir) {
                _cleanup_err_ struct kiln_err *e = NULL;
                if (kiln_rm_rf(c->build_dir, &e) < 0)
                        kiln_warn("could not remove the build directory: %s", e->msg);
                free(c->build_dir);
        }
        builder_attest_release(c);
        kiln_store_free(c->store); /* after the writers, which write into it */
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
                if (builder_step_key(step_kinds[i], c->spec, key, err) < 0)
                        return -1;
                builder_note_step(c, step_kinds[i], key);
                if (step_kinds[i]->run)
                        snprintf(c->layer_keys[c->n_layer_keys++], KILN_HEX_MAX, "%s", key);
        }
        builder_image_key(key, id, out);
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
                const char *key = k < c->n_notes ? c->notes[k].key : NULL;
                k++;
                builder_event_step(c, k, step_kinds[i], key, d, true, from);
        }
}

static int run_step(struct kiln_step_ctx *c, struct kiln_err **err)
{
        _cleanup_free_ char *d = c->kind->describe(c->spec);
        if (builder_step_key(c->kind, c->spec, c->key, err) < 0)
                return -1;
        if (c->kind->run && builder_layer_part(c, !c->o->no_cache, d, err) < 0)
                return -1;
        if (!c->kind->run)
                builder_event_step(c, c->step_no, c->kind, c->key, d, false, NULL);
        if (c->kind->config && c->kind->config(c, err) < 0)
                return -1;
        builder_event_step_end(c, NULL);
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
                        builder_event_step_end(c, *err);
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
        _cleanup_ref_ struct kiln_ref ref = {0};
        if (kiln_ref_parse(name->full, &ref, err) < 0)
                return kiln_err_prefix(err, "image name");
        _cleanup_registry_ struct kiln_registry *r = NULL;
        if (kiln_registry_new(ref.domain, reg, &r, err) < 0 ||
            kiln_registry_head_manifest(r, ref.path, ref.tag, exists, digest, err) < 0)
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
        _cleanup_ref_ struct kiln_ref ref = {0};
        _cleanup_descriptor_ struct kiln_descriptor top = {0};
        if (kiln_build_pull_base(o, base, platform, true, store, &ref, &top, err) < 0)
                return -1;
        snprintf(digest, KILN_DIGEST_MAX, "%s", top.digest);
        return 0;
}

/* The key a build of spec would start its chain from, with the store it
 * would use; why says what keeps it from being known (the plan then
 * checks no cache). */
static int plan_base_key(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                         const char *base, const char *platform_name, struct kiln_store **store,
                         char key[KILN_HEX_MAX], struct kiln_err **why)
{
        if (spec->base_spec)
                return kiln_err_set(why, KILN_ERR_BUILD, 0, "the base spec is not built yet");
        _cleanup_platform_ struct kiln_platform platform = {0};
        enum kiln_idmap idmap = KILN_IDMAP_HOST;
        struct kiln_archive_opts lo;
        char digest[KILN_DIGEST_MAX];
        if (kiln_platform_parse(platform_name, &platform, why) < 0 ||
            kiln_userns_enter(&idmap, why) < 0 || kiln_store_open(o->cache_dir, store, why) < 0 ||
            kiln_archive_opts_init(&lo, why) < 0 ||
            kiln_build_resolve_base(o, base, &platform, *store, digest, why) < 0)
                return -1;
        lo.compression = o->compression;
        builder_base_key(&platform, idmap, &lo, digest, key);
        return 0;
}

/* --dry-run: the steps, and for each with a layer whether the cache has
 * its result ("cached") or it will run; config-only steps cost nothing. */
static void print_network(const struct kiln_spec *spec, const struct kiln_build_opts *o)
{
        printf("network: %s", kiln_network_name(o->network));
        _cleanup_net_ports_ struct kiln_net_ports p = {0};
        builder_net_ports(spec, o, &p);
        for (size_t i = 0; o->network != KILN_NETWORK_HOST && i < p.n; i++) {
                bool v6 = strchr(p.v[i].addr, ':') != NULL;
                printf("%s%s%s%s:%u", i ? ", " : " (forwarded from the host: ", v6 ? "[" : "",
                       p.v[i].addr, v6 ? "]" : "", (unsigned)p.v[i].port);
        }
        printf("%s\n", o->network != KILN_NETWORK_HOST && p.n ? ")" : "");
}

static int print_plan(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                      const char *base, const char *platform, const struct kiln_image_name *name,
                      struct kiln_err **err)
{
        char key[KILN_HEX_MAX] = "";
        _cleanup_store_ struct kiln_store *store = NULL;
        _cleanup_err_ struct kiln_err *why = NULL;
        if (plan_base_key(spec, o, base, platform, &store, key, &why) < 0)
                printf("cache: not checked (%s)\n", why->msg);
        size_t k = 1;
        for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                const struct kiln_step_kind *kind = step_kinds[i];
                if (!kind->wanted(spec))
                        continue;
                _cleanup_free_ char *d = kind->describe(spec);
                const char *state = "";
                if (key[0] && builder_step_key(kind, spec, key, err) < 0)
                        return -1;
                if (key[0] && kind->run) {
                        _cleanup_step_entry_ struct kiln_step_entry e = {0};
                        bool found = false;
                        if (kiln_store_step_get(store, key, &e, &found, err) < 0)
                                return -1;
                        bool usable =
                            found && (!e.has_layer || kiln_store_has(store, e.digest, e.size));
                        state = usable && !o->no_cache ? " [cached]" : " [runs]";
                }
                printf("%zu. %s: %s%s\n", k++, kind->name, d, state);
        }
        printf("%zu. config: _F_IMG_ID=%s\n", k, name->id);
        if (key[0] && !o->no_cache) {
                char ik[KILN_HEX_MAX];
                builder_image_key(key, name->id, ik);
                _cleanup_step_entry_ struct kiln_step_entry e = {0};
                bool found = false;
                if (kiln_store_step_get(store, ik, &e, &found, err) < 0)
                        return -1;
                const char *m = found ? kiln_step_entry_fact(&e, "manifest") : NULL;
                if (m && kiln_store_has(store, m, -1))
                        printf("cached image: %s (no step runs)\n", m);
        }
        return 0;
}

int builder_write_image(const struct kiln_build_opts *o, struct kiln_store *store,
                        struct kiln_build_result *res, const struct kiln_descriptor *refs,
                        size_t n_refs, struct kiln_ref *dest, struct kiln_registry **reg,
                        struct kiln_err **err)
{
        for (size_t i = 0; i < o->n_outputs && !o->untagged; i++) {
                if (kiln_output_write_referrers(&o->outputs[i], store, &res->manifest,
                                                res->name.full, refs, n_refs, err) < 0)
                        return -1;
                builder_result_add_output(res, &o->outputs[i]);
        }
        if (!o->push)
                return 0;
        if (kiln_ref_parse(res->name.full, dest, err) < 0)
                return kiln_err_prefix(err, "image name");
        return kiln_registry_new(dest->domain, &o->reg, reg, err);
}

static int write_outputs(struct kiln_step_ctx *c, const struct kiln_build_opts *o,
                         struct kiln_build_result *res, struct kiln_err **err)
{
        const struct kiln_ref *base_ref = &c->base_ref;
        if (o->n_outputs && builder_fetch_for(c, &res->manifest, NULL, err) < 0)
                return -1;
        _cleanup_(builder_referrers_release) struct builder_referrers refs = {0};
        if (builder_attest(c, &res->manifest, res->name.full, &refs, err) < 0)
                return -1;
        _cleanup_ref_ struct kiln_ref dest = {0};
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        if (builder_write_image(o, c->store, res, refs.v, refs.n, &dest, &reg, err) < 0)
                return -1;
        if (!reg)
                return 0;
        if (o->untagged) /* the index takes the tag once every platform is there */
                free(steal_pointer(&dest.tag));
        /* The base's blobs need not travel again when the destination is
         * on the same registry: mount them from the base's repository. */
        const char *mount_from =
            base_ref->domain && !strcmp(base_ref->domain, dest.domain) ? base_ref->path : NULL;
        _cleanup_progress_ struct kiln_progress *p = kiln_progress_new("push", o->reg.quiet);
        /* The attestations go first, the tag last: the name is never seen
         * without them. */
        if (!refs.n)
                return push_lazily(c, reg, &dest, &res->manifest, mount_from, p, err);
        struct kiln_ref by_digest = dest; /* shares dest's strings */
        by_digest.tag = NULL;
        if (push_lazily(c, reg, &by_digest, &res->manifest, mount_from, p, err) < 0 ||
            builder_attest_push(reg, dest.path, &res->manifest, &refs, c->store, err) < 0)
                return -1;
        return dest.tag ? builder_tag_manifest(reg, &dest, &res->manifest, c->store, err) : 0;
}

int builder_tag_manifest(struct kiln_registry *reg, const struct kiln_ref *dest,
                         const struct kiln_descriptor *image, struct kiln_store *store,
                         struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        if (kiln_store_read(store, image->digest, KILN_MANIFEST_MAX, &body, err) < 0)
                return -1;
        return kiln_registry_put_manifest(reg, dest->path, dest->tag, image->media_type, body.data,
                                          body.len, err);
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
        _cleanup_build_result_ struct kiln_build_result r = {0};
        kiln_info("base_image is a spec: building it first");
        if (kiln_build(spec->base_spec, &bo, &r, err) < 0)
                return -1;
        if (r.skipped) {
                kiln_info("%s exists in the registry: using it", r.name.full);
        } else {
                kiln_descriptor_copy(top, &r.manifest);
                *built = true;
        }
        return 0;
}

int kiln_build_base_name(const struct kiln_spec *spec, char **out, struct kiln_err **err)
{
        *out = NULL;
        if (spec->base_spec) {
                _cleanup_image_name_ struct kiln_image_name bn = {0};
                if (kiln_spec_image_name(spec->base_spec, &bn, err) < 0)
                        return kiln_err_prefix(err, "base_image");
                *out = steal_pointer(&bn.full);
                return 0;
        }
        if (spec->base_image) {
                *out = kiln_xstrdup(spec->base_image);
                return 0;
        }
        return default_base(spec, out, err);
}

static int make_build_dir(struct kiln_step_ctx *c, struct kiln_err **err)
{
        _cleanup_free_ char *builds = kiln_xasprintf("%s/builds", kiln_store_root(c->store));
        if (kiln_mkdir_p(builds, 0755, err) < 0)
                return -1;
        _cleanup_free_ char *dir = kiln_xasprintf("%s/XXXXXX", builds);
        if (!mkdtemp(dir))
                return kiln_err_sys(err, "create build directory in %s", builds);
        c->build_dir = steal_pointer(&dir);
        return 0;
}

/* Everything the steps need before the first runs: the platform, the
 * store, the base's config (its layers wait until something needs their
 * bytes: pulled with manifest_only, or built just before) and a build
 * directory. */
static int prepare(struct kiln_step_ctx *c, const char *base, bool base_built,
                   struct kiln_descriptor *top, struct kiln_err **err)
{
        const struct kiln_spec *spec = c->spec;
        const struct kiln_build_opts *o = c->o;
        if (kiln_platform_parse(builder_platform(spec, o), &c->platform, err) < 0)
                return -1;
        /* The user namespace first: it cannot be entered once threads exist. */
        if (kiln_userns_enter(&c->idmap, err) < 0 ||
            kiln_store_open(o->cache_dir, &c->store, err) < 0 ||
            kiln_archive_opts_init(&c->lopts, err) < 0)
                return -1;
        c->lopts.compression = o->compression;
        /* The base's layers wait until something needs their bytes. */
        if (base_built) {
                if (kiln_ref_parse(base, &c->base_ref, err) < 0)
                        return -1;
        } else if (kiln_build_pull_base(o, base, &c->platform, true, c->store, &c->base_ref, top,
                                        err) < 0) {
                return -1;
        }
        if (kiln_image_from_base(&c->img, c->store, top, err) < 0 ||
            builder_capture_base(c, err) < 0)
                return -1;
        kiln_image_set_created(&c->img, c->lopts.source_date_epoch);
        return make_build_dir(c, err);
}

/* A cached image's descriptor names its platform as a built one's does
 * (an index entry needs it): the config's. */
static int set_image_platform(struct kiln_store *store, struct kiln_descriptor *image,
                              struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_manifest_ struct kiln_manifest m = {0};
        _cleanup_buf_ struct kiln_buf config = {0};
        _cleanup_config_summary_ struct kiln_config_summary cfg = {0};
        if (kiln_store_read(store, image->digest, KILN_MANIFEST_MAX, &body, err) < 0 ||
            kiln_manifest_parse(body.data, body.len, image->media_type, &m, err) < 0 ||
            kiln_store_read(store, m.config.digest, KILN_CONFIG_MAX, &config, err) < 0 ||
            kiln_config_summary_parse(config.data, config.len, &cfg, err) < 0)
                return kiln_err_prefix(err, "cached image %s", image->digest);
        image->platform = kiln_xcalloc(1, sizeof(*image->platform));
        kiln_platform_copy(image->platform, &cfg.platform);
        return 0;
}

/* The image in the store: the image cache's, or the steps' (then cached
 * too). */
static int assemble(struct kiln_step_ctx *c, const char *base, bool base_built,
                    struct kiln_descriptor *top, struct kiln_build_result *res,
                    struct kiln_err **err)
{
        builder_note_base(c, NULL); /* the clock starts */
        int prepared = prepare(c, base, base_built, top, err);
        kiln_debug("user namespace: %s", kiln_idmap_name(c->idmap));
        if (prepared < 0)
                return -1;
        builder_note_base(c, top);
        builder_base_key(&c->platform, c->idmap, &c->lopts, top->digest, c->key);
        const char *cache_repo = c->o->cache_repo ? c->o->cache_repo : getenv("KILN_CACHE_REPO");
        if (cache_repo && *cache_repo) {
                if (kiln_remote_cache_open(cache_repo, &c->o->reg, &c->remote, err) < 0)
                        return -1;
                if (c->base_ref.domain &&
                    !strcmp(c->base_ref.domain, kiln_remote_cache_domain(c->remote)))
                        c->mount_from = c->base_ref.path;
        }
        char image_key[KILN_HEX_MAX] = "";
        bool image_hit = false;
        if (chain_image_key(c, res->name.id, image_key, err) < 0 ||
            builder_image_get(c, image_key, res->name.id, &res->manifest, &image_hit, err) < 0)
                return -1;
        if (image_hit) {
                if (!res->manifest.platform &&
                    set_image_platform(c->store, &res->manifest, err) < 0)
                        return -1;
                report_cached_steps(c);
                c->n_cached = c->n_layer_keys;
                c->n_remote_hits = c->image_remote ? c->n_layer_keys : 0;
                return 0;
        }
        if (run_steps(c, err) < 0)
                return -1;
        /* Last, so a changed id costs no layer. */
        kiln_image_set_env(&c->img, "_F_IMG_ID", res->name.id);
        _cleanup_free_ char *h = kiln_xasprintf("ENV _F_IMG_ID=%s", res->name.id);
        kiln_image_add_history(&c->img, h);
        if (kiln_image_commit(&c->img, c->store, &res->manifest, err) < 0)
                return -1;
        builder_image_put(c, image_key, res->name.id, &res->manifest);
        return 0;
}

/* One build's context, from the base on: the image assembled and written
 * out. The counts and the time are told whether it succeeded or not. */
static int build_image(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                       const char *base, bool base_built, struct kiln_descriptor *top,
                       uint64_t start_ns, struct kiln_build_result *res, struct kiln_err **err)
{
        _cleanup_(ctx_release) struct kiln_step_ctx c = {.spec = spec, .o = o};
        builder_event_build(res, builder_platform(spec, o));
        int rc = assemble(&c, base, base_built, top, res, err);
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
        if (rc < 0)
                return -1;
        if (!o->local_only)
                return write_outputs(&c, o, res, err);
        return 0;
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
        if (!o->follow_external_symlinks && kiln_spec_check_symlinks(spec, err) < 0)
                return -1;
        if (o->dry_run) {
                if (spec->base_spec) {
                        _cleanup_build_result_ struct kiln_build_result br = {0};
                        if (kiln_build(spec->base_spec, o, &br, err) < 0)
                                return kiln_err_prefix(err, "base_image");
                        printf("\n");
                }
                printf("image: %s\n", res->name.full);
                printf("base:  %s\n", base);
                print_network(spec, o);
                if (!builder_several_platforms(spec, o))
                        return print_plan(spec, o, base, builder_platform(spec, o), &res->name,
                                          err);
                /* Each platform has its own keys and cache entries. */
                for (size_t i = 0; spec->platforms[i]; i++) {
                        printf("\nplatform %s:\n", spec->platforms[i]);
                        if (print_plan(spec, o, base, spec->platforms[i], &res->name, err) < 0)
                                return -1;
                }
                return 0;
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
        if (builder_several_platforms(spec, o))
                return builder_build_platforms(spec, o, res, err);

        uint64_t start_ns = kiln_now_ns();
        _cleanup_descriptor_ struct kiln_descriptor top = {0};
        bool base_built = false;
        if (spec->base_spec && build_base_spec(spec, o, &top, &base_built, err) < 0)
                return kiln_err_prefix(err, "base_image %s", base);
        if (build_image(spec, o, base, base_built, &top, start_ns, res, err) < 0)
                return kiln_err_prefix(err, "build %s", res->name.full);
        return 0;
}
