/* Image manifests and indexes (OCI and Docker schema 2). */
#include "oci-internal.h"

#include <string.h>

void kiln_manifest_release(struct kiln_manifest *m)
{
        if (!m)
                return;
        free(m->media_type);
        kiln_descriptor_release(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                kiln_descriptor_release(&m->layers[i]);
        free(m->layers);
        for (size_t i = 0; i < m->n_manifests; i++)
                kiln_descriptor_release(&m->manifests[i]);
        free(m->manifests);
        if (m->annotations)
                json_decref(m->annotations);
        *m = (struct kiln_manifest){0};
}

static bool is_schema1_mt(const char *mt)
{
        return kiln_oci_mt_equal(mt, KILN_MT_DOCKER_V1_SIGNED) ||
               kiln_oci_mt_equal(mt, "application/vnd.docker.distribution.manifest.v1+json");
}

/* Parses an array of descriptors into *out; each is named key[i] in errors. */
static int parse_descriptors(json_t *doc, const char *key, struct kiln_descriptor **out,
                             size_t *n_out, struct kiln_err **err)
{
        json_t *arr = json_object_get(doc, key);
        if (!arr)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "missing \"%s\"", key);
        if (!json_is_array(arr))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\" must be an array", key);
        size_t n = json_array_size(arr);
        /* Written as they parse so the caller's release frees what exists. */
        *out = kiln_xcalloc(n ? n : 1, sizeof(**out));
        *n_out = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *what = kiln_xasprintf("%s[%zu]", key, i);
                if (kiln_descriptor_from_json(json_array_get(arr, i), what, &(*out)[i], err) < 0)
                        return -1;
                *n_out = i + 1;
        }
        return 0;
}

/* Decides which media type the document is: the document's own, else the
 * declared one, else what its shape says. */
static int resolve_media_type(json_t *doc, const char *declared_mt, char **out,
                              struct kiln_err **err)
{
        _cleanup_free_ char *declared = NULL;
        if (declared_mt && *declared_mt) {
                size_t n = strcspn(declared_mt, ";");
                while (n > 0 && (declared_mt[n - 1] == ' ' || declared_mt[n - 1] == '\t'))
                        n--;
                declared = kiln_xstrndup(declared_mt, n);
        }
        if (declared && is_schema1_mt(declared))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "Docker schema 1 manifests are not supported");

        json_t *mt = json_object_get(doc, "mediaType");
        if (mt && !json_is_string(mt))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"mediaType\" must be a string");
        const char *inner = mt ? json_string_value(mt) : NULL;
        if (inner && declared && strcmp(inner, declared) != 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "media type mismatch: the document says \"%.200s\" but it "
                                    "was served as \"%.200s\"",
                                    inner, declared);
        if (inner) {
                *out = kiln_xstrdup(inner);
                return 0;
        }
        if (declared) {
                *out = steal_pointer(&declared);
                return 0;
        }
        if (json_object_get(doc, "manifests")) {
                *out = kiln_xstrdup(KILN_MT_OCI_INDEX);
                return 0;
        }
        if (json_object_get(doc, "config") && json_object_get(doc, "layers")) {
                *out = kiln_xstrdup(KILN_MT_OCI_MANIFEST);
                return 0;
        }
        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                            "no \"mediaType\" and neither \"manifests\" nor \"config\" and "
                            "\"layers\": not a manifest or index");
}

static int manifest_parse(json_t *doc, const char *declared_mt, struct kiln_manifest *m,
                          struct kiln_err **err)
{
        if (!json_is_object(doc))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "not a JSON object");

        json_t *sv = json_object_get(doc, "schemaVersion");
        if (!sv)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "missing \"schemaVersion\"");
        if (!json_is_integer(sv))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "\"schemaVersion\" must be an integer");
        if (json_integer_value(sv) == 1)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "Docker schema 1 manifests are not supported");
        if (json_integer_value(sv) != 2)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "unsupported \"schemaVersion\" %lld (want 2)",
                                    (long long)json_integer_value(sv));
        m->schema_version = 2;

        if (json_object_get(doc, "manifests") &&
            (json_object_get(doc, "layers") || json_object_get(doc, "config")))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "has both \"manifests\" and \"%s\": ambiguous document",
                                    json_object_get(doc, "layers") ? "layers" : "config");

        if (resolve_media_type(doc, declared_mt, &m->media_type, err) < 0)
                return -1;
        if (is_schema1_mt(m->media_type))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "Docker schema 1 manifests are not supported");

        if (kiln_mt_is_index(m->media_type)) {
                m->is_index = true;
                if (parse_descriptors(doc, "manifests", &m->manifests, &m->n_manifests, err) < 0)
                        return -1;
        } else if (kiln_mt_is_manifest(m->media_type)) {
                json_t *cfg = json_object_get(doc, "config");
                if (!cfg)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "missing \"config\"");
                if (kiln_descriptor_from_json(cfg, "config", &m->config, err) < 0)
                        return -1;
                if (parse_descriptors(doc, "layers", &m->layers, &m->n_layers, err) < 0)
                        return -1;
        } else {
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "unsupported media type \"%.200s\" (kiln understands %s)",
                                    m->media_type, KILN_MANIFEST_ACCEPT);
        }
        return kiln_oci_get_opt_string_map(doc, "annotations", &m->annotations, err);
}

int kiln_manifest_parse(const char *data, size_t len, const char *declared_mt,
                        struct kiln_manifest *out, struct kiln_err **err)
{
        *out = (struct kiln_manifest){0};
        if (len > KILN_MANIFEST_MAX)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "manifest is %zu bytes, over the %zu byte limit", len,
                                    KILN_MANIFEST_MAX);
        if (!data || len == 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "empty manifest");

        json_error_t jerr;
        /* Duplicate keys are refused: two parsers reading different values
         * from one signed document is a known attack on manifests. */
        _cleanup_json_ json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                                    jerr.text);
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (manifest_parse(doc, declared_mt, &m, err) < 0)
                return -1;
        *out = m;
        m = (struct kiln_manifest){0};
        return 0;
}

int kiln_index_select(const struct kiln_manifest *idx, const struct kiln_platform *want,
                      const struct kiln_descriptor **out, struct kiln_err **err)
{
        *out = NULL;
        if (!idx->is_index)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "selecting a platform from a manifest that is not an index");
        /* An exact variant match wins over a looser one, so that linux/arm64
         * picks arm64/v8 even when an index lists another arm64 variant
         * first; otherwise the first match wins, as in containerd. */
        for (int strict = 1; strict >= 0; strict--) {
                for (size_t i = 0; i < idx->n_manifests; i++) {
                        const struct kiln_descriptor *d = &idx->manifests[i];
                        if (d->platform &&
                            kiln_oci_platform_matches_ex(want, d->platform, strict)) {
                                *out = d;
                                return 0;
                        }
                }
        }

        _cleanup_buf_ struct kiln_buf avail = {0};
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct kiln_platform *p = idx->manifests[i].platform;
                if (!p || !p->os || !p->architecture || !strcmp(p->os, "unknown") ||
                    !strcmp(p->architecture, "unknown"))
                        continue;
                _cleanup_free_ char *s = kiln_platform_string(p);
                /* Indexes list a platform twice when they carry several
                 * os.versions (Windows) or duplicates; name it once. */
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++) {
                        const struct kiln_platform *q = idx->manifests[j].platform;
                        if (q && q->os && q->architecture) {
                                _cleanup_free_ char *t = kiln_platform_string(q);
                                seen = !strcmp(s, t);
                        }
                }
                if (seen)
                        continue;
                kiln_buf_printf(&avail, "%s%s", avail.len ? ", " : "", s);
        }
        _cleanup_free_ char *w = kiln_platform_string(want);
        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                            "no image for %s in the index (available: %s)", w,
                            avail.len ? avail.data : "none");
}
