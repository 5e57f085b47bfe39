/* Reading from a registry: manifests into memory, blobs into the store. */
#include "client-internal.h"

#include <string.h>

static bool is_digest_ref(const char *reference)
{
        return strchr(reference, ':') != NULL;
}

static char *object_name(const struct kiln_registry *r, const char *repo, const char *reference)
{
        return kiln_xasprintf("%s/%s%s%s", r->domain, repo, is_digest_ref(reference) ? "@" : ":",
                              reference);
}

static int status_error(const struct kiln_registry *r, const char *what, const char *name,
                        const struct http_resp *resp, struct kiln_err **err)
{
        _cleanup_free_ char *t = http_error_text(resp);
        if (resp->status == 404)
                return kiln_err_set(err, KILN_ERR_NOT_FOUND, 404, "%s %s not found: %s", what, name,
                                    t);
        if (resp->status == 403)
                return kiln_err_set(err, KILN_ERR_AUTH, 403, "%s %s: access denied: %s", what, name,
                                    t);
        (void)r;
        return kiln_err_set(err, KILN_ERR_NETWORK, (int)resp->status, "%s %s: %s", what, name, t);
}

static int manifest_request(struct kiln_registry *r, const char *method, const char *repo,
                            const char *reference, struct kiln_buf *body, struct http_resp *resp,
                            struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xasprintf("/v2/%s/manifests/%s", repo, reference);
        _cleanup_free_ char *scope = registry_scope(repo, "pull");
        _cleanup_free_ char *accept = kiln_xasprintf("Accept: %s", KILN_MANIFEST_ACCEPT);
        _cleanup_curl_slist_ struct curl_slist *hdrs = curl_slist_append(NULL, accept);
        struct http_req q = {.method = method,
                             .url = path,
                             .headers = hdrs,
                             .body = body,
                             .body_max = KILN_MANIFEST_MAX,
                             .upload_fd = -1};
        return registry_request(r, r->handle, scope, &q, resp, err);
}

int kiln_registry_get_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                               struct kiln_buf *body, char **media_type,
                               char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        _cleanup_free_ char *name = object_name(r, repo, reference);
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (manifest_request(r, "GET", repo, reference, body, &resp, err) < 0)
                return kiln_err_prefix(err, "manifest %s", name);
        if (resp.status != 200)
                return status_error(r, "manifest", name, &resp, err);
        kiln_sha256_digest(body->data ? body->data : "", body->len, digest);
        const char *want = is_digest_ref(reference) ? reference : NULL;
        if (!want && resp.docker_digest && kiln_str_has_prefix(resp.docker_digest, "sha256:"))
                want = resp.docker_digest;
        if (want && strcmp(want, digest) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "manifest %s: content hashes to %s, expected %s", name, digest,
                                    want);
        if (media_type)
                *media_type = resp.content_type ? kiln_xstrdup(resp.content_type) : NULL;
        return 0;
}

/* The HEAD answered 5xx through its retries. Some registries do that for a
 * repository that does not exist yet (Harbor answers 500), so a GET
 * decides: only when it fails too is the registry broken. */
static int head_by_get(struct kiln_registry *r, const char *repo, const char *reference,
                       const struct http_resp *head, bool *exists, char digest[KILN_DIGEST_MAX],
                       struct kiln_err **err)
{
        _cleanup_free_ char *name = object_name(r, repo, reference);
        _cleanup_free_ char *head_text = http_error_text(head);
        kiln_debug("HEAD of manifest %s: %s; asking with GET", name, head_text);
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_registry_get_manifest(r, repo, reference, &body, NULL, digest, &e) == 0) {
                *exists = true;
                return 0;
        }
        if (e->domain == KILN_ERR_NOT_FOUND) {
                *exists = false;
                digest[0] = '\0';
                return 0;
        }
        *err = steal_pointer(&e);
        return kiln_err_prefix(err, "HEAD answered %s, and then GET", head_text);
}

int kiln_registry_head_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                                bool *exists, char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        _cleanup_free_ char *name = object_name(r, repo, reference);
        _cleanup_http_resp_ struct http_resp resp = {0};
        digest[0] = '\0';
        if (manifest_request(r, "HEAD", repo, reference, NULL, &resp, err) < 0)
                return kiln_err_prefix(err, "manifest %s", name);
        if (resp.status >= 500)
                return head_by_get(r, repo, reference, &resp, exists, digest, err);
        *exists = resp.status == 200;
        if (resp.status == 200 && resp.docker_digest &&
            kiln_digest_validate(resp.docker_digest, NULL) == 0)
                snprintf(digest, KILN_DIGEST_MAX, "%s", resp.docker_digest);
        else if (resp.status != 200 && resp.status != 404)
                return status_error(r, "manifest", name, &resp, err);
        return 0;
}

/* ---------- blobs, several at once ---------- */

struct fetch_job {
        struct kiln_registry *r;
        const char *repo;
        const struct kiln_descriptor *blobs;
        const size_t *todo; /* indexes into blobs */
        int *slots;
        struct kiln_store *store;
        struct kiln_progress *progress;
        struct kiln_blob_watch *const *watches; /* by index into blobs, or NULL */
        const volatile int *cancel;
};

/* GETs the blob into w and commits it (verified against its digest). */
static int download(const struct fetch_job *j, CURL *h, const struct kiln_descriptor *d,
                    struct http_req *q, struct kiln_blob_writer *w, struct kiln_err **err)
{
        _cleanup_free_ char *scope = registry_scope(j->repo, "pull");
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(j->r, h, scope, q, &resp, err) < 0)
                return -1;
        if (resp.status != 200) {
                _cleanup_free_ char *name =
                    kiln_xasprintf("%s/%s@%s", j->r->domain, j->repo, d->digest);
                return status_error(j->r, "blob", name, &resp, err);
        }
        http_resp_release(&resp);
        return kiln_blob_writer_commit(w, NULL, err);
}

static int fetch_one(void *ctx, CURL *h, size_t k, struct kiln_err **err)
{
        struct fetch_job *j = ctx;
        const struct kiln_descriptor *d = &j->blobs[j->todo[k]];
        struct kiln_blob_watch *watch = j->watches ? j->watches[j->todo[k]] : NULL;
        _cleanup_close_ int lock = -1;
        if (kiln_store_fetch_lock(j->store, d->digest, &lock, err) < 0)
                return kiln_err_prefix(err, "blob %s", d->digest);
        if (kiln_store_has(j->store, d->digest, d->size)) {
                kiln_progress_finish(j->progress, j->slots[k], "cached");
                kiln_blob_watch_done(watch);
                return 0; /* another process fetched it meanwhile */
        }
        _cleanup_blob_writer_ struct kiln_blob_writer *w = NULL;
        if (kiln_blob_writer_new(j->store, d->digest, d->size, &w, err) < 0)
                return -1;
        if (watch)
                kiln_blob_writer_watch(w, watch);
        _cleanup_free_ char *path = kiln_xasprintf("/v2/%s/blobs/%s", j->repo, d->digest);
        struct http_req q = {.method = "GET",
                             .url = path,
                             .writer = w,
                             .progress = j->progress,
                             .progress_slot = j->slots[k],
                             .cancel = j->cancel,
                             .upload_fd = -1};
        if (download(j, h, d, &q, w, err) < 0) {
                kiln_progress_finish(j->progress, j->slots[k], "failed");
                return kiln_err_prefix(err, "blob %s", d->digest);
        }
        kiln_store_note_blob_location(j->store, j->r->domain, d->digest, j->repo);
        kiln_progress_finish(j->progress, j->slots[k], "done");
        return 0;
}

static int fetch_blobs(struct kiln_registry *r, const char *repo,
                       const struct kiln_descriptor *blobs, size_t n, struct kiln_store *store,
                       struct kiln_progress *progress, struct kiln_blob_watch *const *watches,
                       struct kiln_err **err)
{
        _cleanup_free_ size_t *todo = kiln_xcalloc(n, sizeof(*todo));
        _cleanup_free_ int *slots = kiln_xcalloc(n, sizeof(*slots));
        size_t n_todo = 0;
        for (size_t i = 0; i < n; i++) {
                if (kiln_digest_validate(blobs[i].digest, err) < 0)
                        return -1;
                bool dup = false;
                for (size_t k = 0; k < n_todo && !dup; k++)
                        dup = !strcmp(blobs[todo[k]].digest, blobs[i].digest);
                if (dup)
                        continue;
                int slot = kiln_progress_add(progress, blobs[i].digest, blobs[i].size);
                if (kiln_store_has(store, blobs[i].digest, blobs[i].size)) {
                        kiln_store_touch(store, blobs[i].digest);
                        kiln_progress_finish(progress, slot, "cached");
                        kiln_blob_watch_done(watches ? watches[i] : NULL);
                        continue;
                }
                slots[n_todo] = slot;
                todo[n_todo++] = i;
        }
        volatile int cancel = 0;
        struct fetch_job j = {.r = r,
                              .repo = repo,
                              .blobs = blobs,
                              .todo = todo,
                              .slots = slots,
                              .store = store,
                              .progress = progress,
                              .watches = watches,
                              .cancel = &cancel};
        if (registry_parallel(r, n_todo, fetch_one, &j, &cancel, err) < 0)
                return kiln_err_prefix(err, "pull from %s/%s", r->domain, repo);
        return 0;
}

int kiln_registry_fetch_blobs(struct kiln_registry *r, const char *repo,
                              const struct kiln_descriptor *blobs, size_t n,
                              struct kiln_store *store, struct kiln_progress *progress,
                              struct kiln_err **err)
{
        return kiln_registry_fetch_blobs_watched(r, repo, blobs, n, store, progress, NULL, err);
}

int kiln_registry_fetch_blobs_watched(struct kiln_registry *r, const char *repo,
                                      const struct kiln_descriptor *blobs, size_t n,
                                      struct kiln_store *store, struct kiln_progress *progress,
                                      struct kiln_blob_watch *const *watches, struct kiln_err **err)
{
        int rc = fetch_blobs(r, repo, blobs, n, store, progress, watches, err);
        /* every watch hears the end: duplicates, blobs that were there */
        for (size_t i = 0; watches && i < n; i++) {
                if (rc < 0)
                        kiln_blob_watch_failed(watches[i]);
                else
                        kiln_blob_watch_done(watches[i]);
        }
        return rc;
}
