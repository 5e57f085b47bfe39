/* The builder's attestation step: after the image is committed, the
 * provenance (and the SBOM) as OCI 1.1 artifacts whose subject is the
 * image, pushed before the image's tag and written into -o layouts.
 *
 * An image that came from the cache gets them too: they are made from
 * the image's manifest and config as stored, and from the steps' keys,
 * which are known whether the steps ran or not. */
#include "builder-internal.h"

#include "kiln/attest.h"

#include <string.h>
#include <time.h>

void builder_referrers_release(struct builder_referrers *r)
{
        for (size_t i = 0; i < r->n; i++)
                kiln_descriptor_release(&r->v[i]);
        free(r->v);
        memset(r, 0, sizeof(*r));
}

void builder_attest_release(struct kiln_step_ctx *c)
{
        free(c->notes);
        free(c->base_digest);
        c->notes = NULL;
        c->n_notes = 0;
        c->base_digest = NULL;
}

void builder_note_step(struct kiln_step_ctx *c, const struct kiln_step_kind *kind, const char *key)
{
        c->notes = kiln_xrealloc(c->notes, (c->n_notes + 1) * sizeof(*c->notes));
        struct builder_step_note *n = &c->notes[c->n_notes++];
        n->kind = kind;
        snprintf(n->key, sizeof(n->key), "%s", key);
        n->ran = false;
}

void builder_note_step_ran(struct kiln_step_ctx *c, const char *key)
{
        for (size_t i = 0; i < c->n_notes; i++)
                if (!strcmp(c->notes[i].key, key))
                        c->notes[i].ran = true;
}

void builder_note_base(struct kiln_step_ctx *c, const struct kiln_descriptor *base)
{
        free(c->base_digest);
        c->base_digest = base && base->digest ? kiln_xstrdup(base->digest) : NULL;
        if (!c->started_at)
                c->started_at = (int64_t)time(NULL);
}

static void add_referrer(struct builder_referrers *out, struct kiln_descriptor *d)
{
        out->v = kiln_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
        out->v[out->n++] = *d;
        *d = (struct kiln_descriptor){0};
}

static void strv_add(char ***v, size_t *n, char *s)
{
        *v = kiln_xrealloc(*v, (*n + 2) * sizeof(**v));
        (*v)[(*n)++] = s;
        (*v)[*n] = NULL;
}

/* The indexes pip was told to use, credentials removed. */
static char **python_indexes(const struct kiln_spec *s)
{
        char **v = NULL;
        size_t n = 0;
        if (s->pip_index)
                strv_add(&v, &n, kiln_spec_strip_credentials(s->pip_index));
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                strv_add(&v, &n, kiln_spec_strip_credentials(s->pip_extra_index_url[i]));
        return v;
}

/* The step that made each layer of the image: "base" for the base's, else
 * the kind whose cache entry names the layer's blob. */
static const char *layer_step(struct kiln_step_ctx *c, size_t i, const char *digest)
{
        if (i < c->n_base)
                return "base";
        for (size_t k = 0; k < c->n_notes; k++) {
                if (!c->notes[k].kind->run)
                        continue;
                _cleanup_step_entry_ struct kiln_step_entry e = {0};
                bool found = false;
                _cleanup_err_ struct kiln_err *err = NULL;
                if (kiln_store_step_get(c->store, c->notes[k].key, &e, &found, &err) == 0 &&
                    found && e.has_layer && !strcmp(e.digest, digest))
                        return c->notes[k].kind->name;
        }
        return "kiln";
}

/* The image's packages, from its layer blobs (fetched when the build did
 * not need them: a copy-only build leaves the base's layers remote). */
static int collect_sbom(struct kiln_step_ctx *c, const struct kiln_descriptor *image,
                        const struct kiln_manifest *m, const struct kiln_config_summary *cfg,
                        struct kiln_sbom_layer **layers, struct kiln_sbom *out,
                        struct kiln_err **err)
{
        size_t n = m->n_layers;
        if (kiln_strv_len(cfg->diff_ids) != n)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "image %s: %zu layers but %zu diff_ids", image->digest, n,
                                    kiln_strv_len(cfg->diff_ids));
        if (builder_fetch_for(c, image, NULL, err) < 0)
                return -1;
        *layers = kiln_xcalloc(n ? n : 1, sizeof(**layers));
        for (size_t i = 0; i < n; i++)
                (*layers)[i] = (struct kiln_sbom_layer){
                    .digest = m->layers[i].digest,
                    .media_type = m->layers[i].media_type,
                    .diff_id = cfg->diff_ids[i],
                    .step = layer_step(c, i, m->layers[i].digest),
                };
        return kiln_sbom_collect(c->store, *layers, n, out, err);
}

static bool wants_apt(const struct kiln_step_ctx *c)
{
        for (size_t i = 0; i < c->n_notes; i++)
                if (c->notes[i].kind == &kiln_step_apt)
                        return true;
        return false;
}

static int provenance_doc(struct kiln_step_ctx *c, const struct kiln_attest_subject *subj,
                          char *const *apt_sources, struct kiln_buf *out, struct kiln_err **err)
{
        const struct kiln_spec *s = c->spec;
        _cleanup_json_ json_t *fields = kiln_spec_to_json(s);
        _cleanup_free_ char *canon = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
        char spec_digest[KILN_DIGEST_MAX] = "";
        if (canon)
                kiln_sha256_digest(canon, strlen(canon), spec_digest);
        _cleanup_free_ struct kiln_prov_step *steps =
            kiln_xcalloc(c->n_notes ? c->n_notes : 1, sizeof(*steps));
        _cleanup_strv_ char **descs = kiln_xcalloc(c->n_notes + 1, sizeof(*descs));
        /* A step without a layer part is "cached" when nothing of the
         * build ran: its config change then came with the cached image. */
        bool any_ran = false;
        for (size_t i = 0; i < c->n_notes; i++)
                any_ran |= c->notes[i].ran;
        for (size_t i = 0; i < c->n_notes; i++) {
                const struct builder_step_note *n = &c->notes[i];
                descs[i] = n->kind->describe(s);
                steps[i] = (struct kiln_prov_step){
                    .kind = n->kind->name,
                    .key = n->key,
                    .describe = descs[i],
                    .cached = n->kind->run ? !n->ran : !any_ran,
                };
        }
        _cleanup_strv_ char **indexes = python_indexes(s);
        _cleanup_free_ char *base_name = c->base_ref.path ? kiln_ref_string(&c->base_ref) : NULL;
        int64_t sde = c->lopts.source_date_epoch;
        struct kiln_provenance p = {
            .subject = *subj,
            .spec_digest = spec_digest[0] ? spec_digest : NULL,
            .spec_fields = fields,
            .base_name = base_name,
            .base_digest = c->base_digest,
            .steps = steps,
            .n_steps = c->n_notes,
            .apt_sources = apt_sources,
            .python_indexes = indexes,
            /* SOURCE_DATE_EPOCH stands for every time of the build, so the
             * same inputs give the same attestation bytes and digests. */
            .started = sde >= 0 ? sde : c->started_at,
            .finished = sde >= 0 ? sde : (int64_t)time(NULL),
            .compression = c->lopts.compression == KILN_COMP_ZSTD ? "zstd" : "gzip",
        };
        if (p.started > p.finished)
                p.started = p.finished;
        return kiln_provenance_document(&p, out, err);
}

/* The attestations of an image are kept as a step entry keyed by what
 * they depend on: a rebuild that finds the image in the cache attaches the
 * same documents (those of the build that made it) instead of piling a new
 * provenance onto the registry's referrers at every run. */
static void attest_key(const struct kiln_build_opts *o, const char *image, const char *name,
                       char key[KILN_HEX_MAX])
{
        _cleanup_free_ char *text =
            kiln_xasprintf("kiln-attest-v1\n%s\n%s\nprovenance=%d\nsbom=%d/%d\n", image, name,
                           !o->no_provenance, !o->no_sbom, (int)o->sbom_format);
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(text, strlen(text), d);
        snprintf(key, KILN_HEX_MAX, "%s", d + 7);
}

/* The referrers a cached entry names, added to out when every one is
 * whole in the store. */
static bool attest_cached(struct kiln_store *store, const char *key, struct builder_referrers *out)
{
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool found = false;
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_store_step_get(store, key, &e, &found, &err) < 0 || !found)
                return false;
        _cleanup_(builder_referrers_release) struct builder_referrers refs = {0};
        for (size_t i = 0; e.facts && e.facts[i]; i++) {
                const char *eq = strchr(e.facts[i], '=');
                if (!kiln_str_has_prefix(e.facts[i], "referrer") || !eq)
                        continue;
                const char *digest = eq + 1;
                _cleanup_buf_ struct kiln_buf mb = {0};
                _cleanup_manifest_ struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *rerr = NULL;
                if (kiln_store_read(store, digest, KILN_MANIFEST_MAX, &mb, &rerr) < 0 ||
                    kiln_manifest_parse(mb.data, mb.len, KILN_MT_OCI_MANIFEST, &m, &rerr) < 0 ||
                    m.n_layers != 1 || !kiln_store_has(store, m.config.digest, m.config.size) ||
                    !kiln_store_has(store, m.layers[0].digest, m.layers[0].size))
                        return false;
                _cleanup_json_ json_t *j = json_loadb(mb.data, mb.len, 0, NULL);
                const char *at = json_string_value(json_object_get(j, "artifactType"));
                if (!at)
                        return false;
                struct kiln_descriptor d = {
                    .media_type = kiln_xstrdup(KILN_MT_OCI_MANIFEST),
                    .digest = kiln_xstrdup(digest),
                    .size = (int64_t)mb.len,
                    .artifact_type = kiln_xstrdup(at),
                    .annotations = m.annotations ? json_deep_copy(m.annotations) : NULL,
                };
                add_referrer(&refs, &d);
        }
        kiln_store_step_touch(store, key);
        for (size_t i = 0; i < refs.n; i++)
                add_referrer(out, &refs.v[i]);
        return true;
}

void builder_attest_find(struct kiln_store *store, const struct kiln_build_opts *o,
                         const char *image, const char *name, struct builder_referrers *out)
{
        char key[KILN_HEX_MAX];
        attest_key(o, image, name, key);
        if (!attest_cached(store, key, out))
                kiln_debug("no attestations of %s in the cache", image);
}

/* The registry cache (--cache-repo) keeps them too, so a builder on a
 * fresh disk that gets the image from there needs no layer's bytes for
 * its attestations either. Failures only warn, as the cache's do. */
static void remote_attest_get(struct kiln_step_ctx *c, const char *key)
{
        if (!c->remote || c->remote_read_failed)
                return;
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool found = false;
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_remote_cache_get(c->remote, c->store, key, &e, &found, &err) < 0) {
                kiln_warn("%s; the attestations are made here", err->msg);
                return;
        }
        if (!found || !e.kind || strcmp(e.kind, "attest"))
                return;
        for (size_t i = 0; e.facts && e.facts[i]; i++) {
                const char *eq = strchr(e.facts[i], '=');
                if (!kiln_str_has_prefix(e.facts[i], "referrer") || !eq)
                        continue;
                if (kiln_remote_cache_get_manifest(c->remote, c->store, eq + 1, &err) < 0) {
                        kiln_warn("%s; the attestations are made here", err->msg);
                        return;
                }
        }
        if (kiln_store_step_put(c->store, &e, &err) < 0)
                kiln_debug("attestations not cached: %s", err->msg);
}

static void remote_attest_put(struct kiln_step_ctx *c, const struct kiln_step_entry *e,
                              const struct builder_referrers *refs)
{
        if (!c->remote || c->remote_write_failed)
                return;
        _cleanup_err_ struct kiln_err *err = NULL;
        for (size_t i = 0; i < refs->n; i++)
                if (kiln_remote_cache_put_manifest(c->remote, c->store, &refs->v[i], &err) < 0) {
                        kiln_warn("the attestations were not stored in the cache: %s", err->msg);
                        return;
                }
        if (kiln_remote_cache_put(c->remote, c->store, e, NULL, &err) < 0)
                kiln_warn("the attestations were not stored in the cache: %s", err->msg);
}

static void attest_remember(struct kiln_step_ctx *c, const char *key,
                            const struct builder_referrers *refs)
{
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        snprintf(e.key, sizeof(e.key), "%s", key);
        e.kind = kiln_xstrdup("attest");
        e.created_by = kiln_xstrdup("");
        e.facts = kiln_xcalloc(refs->n + 1, sizeof(char *));
        for (size_t i = 0; i < refs->n; i++)
                /* distinct names: an entry keeps one value per name */
                e.facts[i] = kiln_xasprintf("referrer%zu=%s", i, refs->v[i].digest);
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_store_step_put(c->store, &e, &err) < 0)
                kiln_debug("attestations not cached: %s", err->msg);
        remote_attest_put(c, &e, refs);
}

int builder_attest(struct kiln_step_ctx *c, const struct kiln_descriptor *image, const char *name,
                   struct builder_referrers *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        const struct kiln_build_opts *o = c->o;
        if (o->no_provenance && o->no_sbom)
                return 0;
        char key[KILN_HEX_MAX];
        attest_key(o, image->digest, name, key);
        bool hit = !o->no_cache && attest_cached(c->store, key, out);
        if (!hit && !o->no_cache) {
                remote_attest_get(c, key);
                hit = attest_cached(c->store, key, out);
        }
        if (hit) {
                kiln_debug("attestations of %s: cached (%zu)", image->digest, out->n);
                return 0;
        }
        _cleanup_buf_ struct kiln_buf mb = {0};
        _cleanup_buf_ struct kiln_buf cb = {0};
        _cleanup_manifest_ struct kiln_manifest m = {0};
        _cleanup_config_summary_ struct kiln_config_summary cfg = {0};
        if (kiln_store_read(c->store, image->digest, KILN_MANIFEST_MAX, &mb, err) < 0 ||
            kiln_manifest_parse(mb.data, mb.len, image->media_type, &m, err) < 0 ||
            kiln_store_read(c->store, m.config.digest, KILN_CONFIG_MAX, &cb, err) < 0 ||
            kiln_config_summary_parse(cb.data, cb.len, &cfg, err) < 0)
                return kiln_err_prefix(err, "attest %s", image->digest);
        _cleanup_free_ char *platform = kiln_platform_string(&c->platform);
        struct kiln_attest_subject subj = {
            .name = name,
            .manifest_digest = image->digest,
            .platform = platform,
            .created = cfg.created,
            .tool_version = KILN_VERSION,
        };
        _cleanup_(builder_referrers_release) struct builder_referrers refs = {0};
        _cleanup_sbom_ struct kiln_sbom sbom = {0};
        _cleanup_free_ struct kiln_sbom_layer *layers = NULL;
        /* the provenance's apt sources are the image's, which the SBOM reads */
        bool collect = !o->no_sbom || (!o->no_provenance && wants_apt(c));
        if (collect && collect_sbom(c, image, &m, &cfg, &layers, &sbom, err) < 0)
                return kiln_err_prefix(err, "SBOM of %s", name);
        if (!o->no_sbom) {
                bool cdx = o->sbom_format == KILN_SBOM_CYCLONEDX;
                const char *mt = cdx ? KILN_MT_CYCLONEDX_JSON : KILN_MT_SPDX_JSON;
                _cleanup_buf_ struct kiln_buf doc = {0};
                _cleanup_descriptor_ struct kiln_descriptor art = {0};
                if (kiln_sbom_document(&sbom, o->sbom_format, &subj, layers, m.n_layers, &doc,
                                       err) < 0)
                        return kiln_err_prefix(err, "SBOM of %s", name);
                if (kiln_attest_artifact(c->store, image, mt, mt, doc.data, doc.len, cfg.created,
                                         &art, err) < 0)
                        return -1;
                kiln_debug("SBOM of %s: %s (%zu packages)", image->digest, art.digest, sbom.n_pkgs);
                add_referrer(&refs, &art);
        }
        if (!o->no_provenance) {
                _cleanup_buf_ struct kiln_buf doc = {0};
                _cleanup_descriptor_ struct kiln_descriptor art = {0};
                if (provenance_doc(c, &subj, sbom.apt_sources, &doc, err) < 0)
                        return kiln_err_prefix(err, "provenance of %s", name);
                if (kiln_attest_artifact(c->store, image, KILN_MT_INTOTO_JSON, KILN_MT_INTOTO_JSON,
                                         doc.data, doc.len, cfg.created, &art, err) < 0)
                        return -1;
                kiln_debug("provenance of %s: %s", image->digest, art.digest);
                add_referrer(&refs, &art);
        }
        attest_remember(c, key, &refs);
        *out = refs;
        refs = (struct builder_referrers){0};
        return 0;
}

int builder_attest_push(struct kiln_registry *reg, const char *repo,
                        const struct kiln_descriptor *image, const struct builder_referrers *refs,
                        struct kiln_store *store, struct kiln_err **err)
{
        for (size_t i = 0; i < refs->n; i++)
                if (kiln_registry_push_referrer(reg, repo, image, &refs->v[i], store, err) < 0)
                        return -1;
        return 0;
}
