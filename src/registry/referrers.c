/* OCI 1.1 referrers: artifacts whose subject is an image.
 *
 * A registry with the referrers API indexes a manifest's subject when the
 * manifest is PUT and says so with an OCI-Subject header. One without it
 * (distribution 2.8, Debian's docker-registry) stores the manifest all
 * the same; the pusher then keeps the "referrers tag schema"
 * (distribution-spec 1.1, "Pushing Manifests with Subject"): an image
 * index tagged sha256-<hex of the subject> listing every referrer.
 *
 * That index is read, changed and written back with no way to make the
 * PUT conditional (distribution has no If-Match), so two writers can
 * lose one another's entry. kiln reads the tag back after writing and
 * writes again, up to REFERRERS_ATTEMPTS times, until its own entry is
 * there: a writer whose entry was dropped by the other's PUT notices and
 * merges again. (The spec's ETag/If-Match advice needs registry support
 * that distribution 2.8 lacks.) */
#include "client-internal.h"

#include <string.h>

#define REFERRERS_ATTEMPTS 5

static char *fallback_tag(const char *digest)
{
        /* sha256:HEX -> sha256-HEX, as the distribution spec writes it */
        char *t = kiln_xstrdup(digest);
        char *colon = strchr(t, ':');
        if (colon)
                *colon = '-';
        return t;
}

/* The tag's index as JSON, or a new empty one when the tag is missing. */
static int read_tag_index(struct kiln_registry *r, const char *repo, const char *tag, json_t **out,
                          struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_free_ char *mt = NULL;
        char digest[KILN_DIGEST_MAX];
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_registry_get_manifest(r, repo, tag, &body, &mt, digest, &e) < 0) {
                if (e->domain != KILN_ERR_NOT_FOUND) {
                        *err = steal_pointer(&e);
                        return -1;
                }
                json_t *idx = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                                        KILN_MT_OCI_INDEX, "manifests");
                if (!idx)
                        abort();
                *out = idx;
                return 0;
        }
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_manifest_parse(body.data, body.len, mt, &m, err) < 0)
                return kiln_err_prefix(err, "referrers tag %s", tag);
        if (!m.is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "referrers tag %s/%s:%s holds %s, not an image index",
                                    r->domain, repo, tag, m.media_type);
        json_t *j = json_loadb(body.data, body.len, 0, NULL);
        if (!j)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "referrers tag %s: not JSON", tag);
        *out = j;
        return 0;
}

static bool index_has(json_t *idx, const char *digest)
{
        json_t *ms = json_object_get(idx, "manifests");
        size_t i;
        json_t *d;
        json_array_foreach(ms, i, d)
        {
                const char *dg = json_string_value(json_object_get(d, "digest"));
                if (dg && !strcmp(dg, digest))
                        return true;
        }
        return false;
}

/* Adds artifact to the subject's tag index unless it is listed already. */
static int tag_schema_add(struct kiln_registry *r, const char *repo, const char *subject_digest,
                          const struct kiln_descriptor *artifact, struct kiln_err **err)
{
        _cleanup_free_ char *tag = fallback_tag(subject_digest);
        for (int attempt = 1;; attempt++) {
                _cleanup_json_ json_t *idx = NULL;
                if (read_tag_index(r, repo, tag, &idx, err) < 0)
                        return -1;
                if (index_has(idx, artifact->digest))
                        return 0;
                if (attempt > REFERRERS_ATTEMPTS)
                        return kiln_err_set(err, KILN_ERR_NETWORK, 0,
                                            "referrers tag %s/%s:%s: another writer replaced it "
                                            "%d times without %s",
                                            r->domain, repo, tag, REFERRERS_ATTEMPTS,
                                            artifact->digest);
                if (attempt > 1)
                        kiln_debug("referrers tag %s: %s was lost to another writer; adding it "
                                   "again",
                                   tag, artifact->digest);
                json_t *ms = json_object_get(idx, "manifests");
                if (!json_is_array(ms)) {
                        ms = json_array();
                        json_object_set_new(idx, "manifests", ms);
                }
                json_t *d = kiln_descriptor_to_json(artifact);
                json_object_del(d, "platform");
                json_array_append_new(ms, d);
                _cleanup_free_ char *text = json_dumps(idx, JSON_COMPACT);
                if (!text)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "referrers tag %s: not valid UTF-8", tag);
                if (registry_put_manifest(r, repo, tag, KILN_MT_OCI_INDEX, text, strlen(text), NULL,
                                          err) < 0)
                        return kiln_err_prefix(err, "referrers tag %s/%s:%s", r->domain, repo, tag);
        }
}

int kiln_registry_push_referrer(struct kiln_registry *r, const char *repo,
                                const struct kiln_descriptor *subject,
                                const struct kiln_descriptor *artifact, struct kiln_store *store,
                                struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_store_read(store, artifact->digest, KILN_MANIFEST_MAX, &body, err) < 0 ||
            kiln_manifest_parse(body.data, body.len, artifact->media_type, &m, err) < 0)
                return kiln_err_prefix(err, "referrer %s", artifact->digest);
        if (m.is_index)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "referrer %s is an index",
                                    artifact->digest);
        size_t n = m.n_layers + 1;
        _cleanup_free_ struct kiln_descriptor *blobs = kiln_xcalloc(n, sizeof(*blobs));
        blobs[0] = m.config; /* shallow copies: m owns the strings */
        for (size_t i = 0; i < m.n_layers; i++)
                blobs[i + 1] = m.layers[i];
        if (kiln_registry_push_blobs(r, repo, blobs, n, NULL, store, NULL, err) < 0)
                return kiln_err_prefix(err, "referrer %s", artifact->digest);
        bool indexed = false;
        if (registry_put_manifest(r, repo, artifact->digest, artifact->media_type, body.data,
                                  body.len, &indexed, err) < 0)
                return kiln_err_prefix(err, "push referrer %s/%s@%s", r->domain, repo,
                                       artifact->digest);
        if (indexed) {
                kiln_debug("%s/%s indexed referrer %s itself (OCI-Subject)", r->domain, repo,
                           artifact->digest);
                return 0;
        }
        return tag_schema_add(r, repo, subject->digest, artifact, err);
}

/* GET /v2/REPO/referrers/DIGEST: 0 with the index's bytes, 1 when the
 * registry has no referrers API (404), -1 on error. */
static int referrers_api(struct kiln_registry *r, const char *repo, const char *digest,
                         const char *artifact_type, struct kiln_buf *body, struct kiln_err **err)
{
        _cleanup_free_ char *path = NULL;
        if (artifact_type) {
                _cleanup_free_ char *q = curl_easy_escape(NULL, artifact_type, 0);
                path = kiln_xasprintf("/v2/%s/referrers/%s?artifactType=%s", repo, digest, q);
        } else {
                path = kiln_xasprintf("/v2/%s/referrers/%s", repo, digest);
        }
        _cleanup_free_ char *scope = registry_scope(repo, "pull");
        _cleanup_curl_slist_ struct curl_slist *hdrs =
            curl_slist_append(NULL, "Accept: " KILN_MT_OCI_INDEX);
        struct http_req q = {.method = "GET",
                             .url = path,
                             .headers = hdrs,
                             .body = body,
                             .body_max = KILN_MANIFEST_MAX,
                             .upload_fd = -1};
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(r, r->handle, scope, &q, &resp, err) < 0)
                return -1;
        if (resp.status == 404)
                return 1;
        if (resp.status != 200) {
                _cleanup_free_ char *t = http_error_text(&resp);
                return kiln_err_set(err, KILN_ERR_NETWORK, (int)resp.status,
                                    "referrers of %s/%s@%s: %s", r->domain, repo, digest, t);
        }
        return 0;
}

int kiln_registry_referrers(struct kiln_registry *r, const char *repo, const char *digest,
                            const char *artifact_type, struct kiln_manifest *out,
                            struct kiln_err **err)
{
        *out = (struct kiln_manifest){0};
        _cleanup_buf_ struct kiln_buf body = {0};
        int api = referrers_api(r, repo, digest, artifact_type, &body, err);
        if (api < 0)
                return -1;
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (api == 0) {
                if (kiln_manifest_parse(body.data, body.len, KILN_MT_OCI_INDEX, &m, err) < 0)
                        return kiln_err_prefix(err, "referrers of %s/%s@%s", r->domain, repo,
                                               digest);
        } else {
                _cleanup_free_ char *tag = fallback_tag(digest);
                _cleanup_json_ json_t *idx = NULL;
                if (read_tag_index(r, repo, tag, &idx, err) < 0)
                        return -1;
                _cleanup_free_ char *text = json_dumps(idx, JSON_COMPACT);
                if (!text ||
                    kiln_manifest_parse(text, strlen(text), KILN_MT_OCI_INDEX, &m, err) < 0)
                        return kiln_err_prefix(err, "referrers tag %s/%s:%s", r->domain, repo, tag);
        }
        if (!m.is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "referrers of %s/%s@%s: the answer is not an image index",
                                    r->domain, repo, digest);
        /* A registry may ignore the filter (it says which it applied in
         * OCI-Filters-Applied); filtering again is cheap and always right. */
        size_t keep = 0;
        for (size_t i = 0; i < m.n_manifests; i++) {
                struct kiln_descriptor *d = &m.manifests[i];
                if (artifact_type &&
                    (!d->artifact_type || strcmp(d->artifact_type, artifact_type))) {
                        kiln_descriptor_release(d);
                        continue;
                }
                m.manifests[keep++] = *d;
        }
        m.n_manifests = keep;
        *out = m;
        m = (struct kiln_manifest){0};
        return 0;
}
