/* A spec naming several platforms: one image per platform, one index.
 *
 * Each platform is a build of its own (kiln_build_many runs them side by
 * side, each in a process with its own user namespace and sandboxes, with
 * the platform in every step key), pushed by digest only or kept in the
 * store. The index over them is made here once all succeeded, and only
 * then written and tagged: a name never points at some of the platforms.
 * Host-side layers (copy, source_root, CA certificates) come out
 * byte-identical for every platform and are stored and pushed once. */
#include "builder-internal.h"

#include <string.h>

static int refuse_outputs(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                          struct kiln_err **err)
{
        for (size_t i = 0; i < o->n_outputs; i++)
                if (o->outputs[i].transport == KILN_TRANSPORT_DOCKER_ARCHIVE)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "-o docker-archive:%s: a docker archive holds one "
                                            "image per platform, and platform names %zu (%s); "
                                            "write oci: or oci-archive:, or build one with "
                                            "--platform",
                                            o->outputs[i].path, kiln_strv_len(spec->platforms),
                                            spec->platform);
        if (spec->base_spec)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "base_image: a spec as the base of a build for several "
                                    "platforms (%s) is not supported; push the base and name "
                                    "it",
                                    spec->platform);
        return 0;
}

/* Every platform's failure, in the spec's order; the first one's domain
 * decides the exit code. */
static int platform_errors(const struct kiln_build_job *jobs, size_t n, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf msg = {0};
        const struct kiln_err *first = NULL;
        for (size_t i = 0; i < n; i++) {
                if (!jobs[i].err)
                        continue;
                if (!first)
                        first = jobs[i].err;
                else
                        kiln_buf_puts(&msg, "; ");
                kiln_buf_printf(&msg, "%s: %s", jobs[i].platform, jobs[i].err->msg);
        }
        if (!first)
                return 0;
        return kiln_err_set(err, first->domain, first->code, "%s (nothing was tagged)", msg.data);
}

/* The OCI index over the platforms' manifests, in the store. */
static int store_index(struct kiln_store *store, const struct kiln_build_result *res,
                       struct kiln_descriptor *out, struct kiln_err **err)
{
        _cleanup_json_ json_t *idx = json_object();
        json_t *list = json_array();
        if (!idx || !list)
                abort();
        json_object_set_new(idx, "schemaVersion", json_integer(2));
        json_object_set_new(idx, "mediaType", json_string(KILN_MT_OCI_INDEX));
        json_object_set_new(idx, "manifests", list);
        for (size_t i = 0; i < res->n_platform_manifests; i++)
                json_array_append_new(list, kiln_descriptor_to_json(&res->platform_manifests[i]));
        _cleanup_free_ char *text = json_dumps(idx, JSON_COMPACT);
        if (!text)
                abort();
        char digest[KILN_DIGEST_MAX];
        if (kiln_store_put(store, text, strlen(text), digest, err) < 0)
                return kiln_err_prefix(err, "store the index");
        out->media_type = kiln_xstrdup(KILN_MT_OCI_INDEX);
        out->digest = kiln_xstrdup(digest);
        out->size = (int64_t)strlen(text);
        return 0;
}

static int write_index(const struct kiln_build_opts *o, struct kiln_store *store,
                       struct kiln_build_result *res, struct kiln_err **err)
{
        _cleanup_ref_ struct kiln_ref dest = {0};
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        /* each platform's attestations, made (and pushed) by its build */
        _cleanup_(builder_referrers_release) struct builder_referrers refs = {0};
        for (size_t i = 0; i < res->n_platform_manifests; i++)
                builder_attest_find(store, o, res->platform_manifests[i].digest, res->name.full,
                                    &refs);
        if (builder_write_image(o, store, res, refs.v, refs.n, &dest, &reg, err) < 0)
                return -1;
        if (!reg)
                return 0;
        /* The platforms' blobs and manifests are there already (each
         * build pushed its own by digest): the index takes the tag. */
        return builder_tag_manifest(reg, &dest, &res->manifest, store, err);
}

int builder_build_platforms(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                            struct kiln_build_result *res, struct kiln_err **err)
{
        if (refuse_outputs(spec, o, err) < 0)
                return -1;
        size_t n = kiln_strv_len(spec->platforms);
        _cleanup_free_ struct kiln_build_job *jobs = kiln_xcalloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++)
                jobs[i] = (struct kiln_build_job){
                    .spec = spec, .label = spec->platforms[i], .platform = spec->platforms[i]};
        struct kiln_build_opts po = *o;
        po.untagged = true;
        po.force = true; /* the name was checked once, for all of them */
        kiln_info("building %zu platforms: %s", n, spec->platform);
        int rc = kiln_build_many(jobs, n, &po, 0, err);
        if (rc == 0)
                rc = platform_errors(jobs, n, err);
        if (rc == 0) {
                res->platform_manifests = kiln_xcalloc(n, sizeof(*res->platform_manifests));
                for (size_t i = 0; i < n; i++) {
                        struct kiln_build_result *r = &jobs[i].res;
                        kiln_descriptor_copy(&res->platform_manifests[i], &r->manifest);
                        res->n_platform_manifests++;
                        res->n_new_layers += r->n_new_layers;
                        res->n_cached_steps += r->n_cached_steps;
                        res->n_remote_hits += r->n_remote_hits;
                }
        }
        for (size_t i = 0; i < n; i++) {
                kiln_build_result_release(&jobs[i].res);
                kiln_err_free(jobs[i].err);
        }
        if (rc < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (!res->platform_manifests[i].platform)
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                            "the build of %s reported no platform",
                                            spec->platforms[i]);
        _cleanup_store_ struct kiln_store *store = NULL;
        if (kiln_store_open(o->cache_dir, &store, err) < 0 ||
            store_index(store, res, &res->manifest, err) < 0)
                return -1;
        return write_index(o, store, res, err);
}
