/* Writing to a registry: blobs (HEAD first, cross-repository mount, then a
 * monolithic or chunked upload), then manifests with their exact bytes. */
#include "client-internal.h"

#include <fcntl.h>
#include <string.h>

/* Blobs up to this size go up in one PUT; larger ones in chunks of this
 * size, so a dropped connection costs one chunk, not the whole layer. */
#define MONOLITHIC_MAX ((uint64_t)32 << 20)
#define CHUNK_SIZE     ((uint64_t)32 << 20)

struct push_job {
        struct kiln_registry *r;
        const char *repo;
        const char *mount_from;
        const struct kiln_descriptor *blobs;
        int *slots;
        struct kiln_store *store;
        struct kiln_progress *progress;
        const volatile int *cancel;
        char *scope;
};

static char *with_digest(const char *location, const char *digest)
{
        return kiln_xasprintf("%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", digest);
}

static int unexpected(const struct kiln_registry *r, const char *what, const char *digest,
                      const struct http_resp *resp, struct kiln_err **err)
{
        _cleanup_free_ char *t = http_error_text(resp);
        enum kiln_err_domain d = resp->status == 401 || resp->status == 403 ? KILN_ERR_AUTH
                                 : resp->status == 404                      ? KILN_ERR_NOT_FOUND
                                                                            : KILN_ERR_NETWORK;
        return kiln_err_set(err, d, (int)resp->status, "%s %s to %s: %s", what, digest, r->domain,
                            t);
}

/* Sends a request and, on a 202 that carries the next upload location, hands
 * the location back. */
static int upload_step(struct push_job *j, CURL *h, struct http_req *q, long want, const char *what,
                       const char *digest, char **location, struct kiln_err **err)
{
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(j->r, h, j->scope, q, &resp, err) < 0)
                return -1;
        if (resp.status != want)
                return unexpected(j->r, what, digest, &resp, err);
        if (!location)
                return 0;
        if (!resp.location)
                return kiln_err_set(err, KILN_ERR_NETWORK, (int)resp.status,
                                    "%s %s: the registry gave no upload location", what, digest);
        /* Relative locations are relative to the registry. */
        char *abs = http_resolve(j->r->base_url, resp.location);
        free(*location);
        *location = abs ? abs : kiln_xstrdup(resp.location);
        return 0;
}

static char *push_scope(const char *repo, const char *mount_from)
{
        if (mount_from && strcmp(mount_from, repo) != 0)
                return kiln_xasprintf("repository:%s:pull,push repository:%s:pull", repo,
                                      mount_from);
        return registry_scope(repo, "pull,push");
}

/* HEAD of the blob: its status says whether the registry has it. */
static int head_blob(struct push_job *j, CURL *h, const char *path, long *status,
                     struct kiln_err **err)
{
        struct http_req head = {
            .method = "HEAD", .url = path, .upload_fd = -1, .cancel = j->cancel};
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(j->r, h, j->scope, &head, &resp, err) < 0)
                return -1;
        *status = resp.status;
        return 0;
}

/* POSTs the start of an upload, asking for a mount from `from` (NULL: no
 * mount). *status is 201 when the mount made the blob, else 202 with
 * *location (NULL when the registry gave none) to upload to. */
static int start_upload(struct push_job *j, CURL *h, const struct kiln_descriptor *d,
                        const char *from, long *status, char **location, struct kiln_err **err)
{
        _cleanup_free_ char *start = NULL;
        _cleanup_free_ char *scope = NULL;
        if (from)
                start = kiln_xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", j->repo, d->digest,
                                       from);
        else
                start = kiln_xasprintf("/v2/%s/blobs/uploads/", j->repo);
        if (from && from != j->mount_from)
                scope = push_scope(j->repo, from);
        struct http_req post = {
            .method = "POST", .url = start, .upload_fd = -1, .cancel = j->cancel};
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(j->r, h, scope ? scope : j->scope, &post, &resp, err) < 0)
                return -1;
        *status = resp.status;
        if (resp.location) {
                char *abs = http_resolve(j->r->base_url, resp.location);
                *location = abs ? abs : kiln_xstrdup(resp.location);
        }
        if (resp.status != 201 && resp.status != 202)
                return unexpected(j->r, "start upload of", d->digest, &resp, err);
        return 0;
}

/* One request carrying len bytes of fd (from its current offset), with
 * the header extra (NULL: none) before the Content-Type. It is sent once:
 * the upload session may have taken part of the bytes. */
static int send_bytes(struct push_job *j, CURL *h, const char *method, const char *url,
                      const char *extra, int fd, uint64_t len, int slot, long want,
                      const char *what, const char *digest, char **location, struct kiln_err **err)
{
        _cleanup_curl_slist_ struct curl_slist *hdrs = NULL;
        if (extra)
                hdrs = curl_slist_append(hdrs, extra);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
        struct http_req q = {.method = method,
                             .url = url,
                             .headers = hdrs,
                             .upload_fd = fd,
                             .upload_len = len,
                             .progress = j->progress,
                             .progress_slot = slot,
                             .cancel = j->cancel,
                             .max_attempts = 1};
        return upload_step(j, h, &q, want, what, digest, location, err);
}

/* Sends size bytes of fd to *location: in one PUT, or when large in
 * chunks whose acknowledgements carry the next location, then a PUT that
 * finishes the upload. */
static int upload(struct push_job *j, CURL *h, const struct kiln_descriptor *d, int slot, int fd,
                  uint64_t size, char **location, struct kiln_err **err)
{
        if (size <= MONOLITHIC_MAX) {
                _cleanup_free_ char *fin = with_digest(*location, d->digest);
                return send_bytes(j, h, "PUT", fin, NULL, fd, size, slot, 201, "upload", d->digest,
                                  NULL, err);
        }
        for (uint64_t off = 0; off < size; off += CHUNK_SIZE) {
                uint64_t len = size - off < CHUNK_SIZE ? size - off : CHUNK_SIZE;
                char range[80];
                snprintf(range, sizeof(range), "Content-Range: %llu-%llu", (unsigned long long)off,
                         (unsigned long long)(off + len - 1));
                lseek(fd, (off_t)off, SEEK_SET);
                if (send_bytes(j, h, "PATCH", *location, range, fd, len, slot, 202,
                               "upload chunk of", d->digest, location, err) < 0)
                        return -1;
        }
        _cleanup_free_ char *fin = with_digest(*location, d->digest);
        struct http_req put = {.method = "PUT", .url = fin, .upload_fd = -1, .cancel = j->cancel};
        return upload_step(j, h, &put, 201, "finish upload of", d->digest, NULL, err);
}

static int push_one(void *ctx, CURL *h, size_t k, struct kiln_err **err)
{
        struct push_job *j = ctx;
        const struct kiln_descriptor *d = &j->blobs[k];
        int slot = j->slots[k];
        _cleanup_free_ char *path = kiln_xasprintf("/v2/%s/blobs/%s", j->repo, d->digest);
        /* Another build of this run may be pushing the same layer: wait for
         * it, and the HEAD below finds the blob there. */
        _cleanup_close_ int lock = -1;
        if (kiln_store_push_lock(j->store, j->r->domain, d->digest, &lock, err) < 0)
                return kiln_err_prefix(err, "push blob %s", d->digest);

        /* HEAD: the registry may have it already. */
        long status = 0;
        if (head_blob(j, h, path, &status, err) < 0)
                return kiln_err_prefix(err, "blob %s", d->digest);
        if (status == 200) {
                kiln_store_note_blob_location(j->store, j->r->domain, d->digest, j->repo);
                kiln_progress_finish(j->progress, slot, "exists");
                return 0;
        }

        /* Start an upload, asking for a mount first: from the repository
         * the blob was last seen in on this registry, else the base's. On
         * the same registry a mount costs no bytes. */
        _cleanup_free_ char *seen = kiln_store_blob_location(j->store, j->r->domain, d->digest);
        const char *from = seen && strcmp(seen, j->repo) != 0 ? seen : j->mount_from;
        if (from && !strcmp(from, j->repo))
                from = NULL;
        _cleanup_free_ char *location = NULL;
        if (start_upload(j, h, d, from, &status, &location, err) < 0)
                return kiln_err_prefix(err, "push blob %s", d->digest);
        if (status == 201) {
                kiln_store_note_blob_location(j->store, j->r->domain, d->digest, j->repo);
                kiln_progress_finish(j->progress, slot, "mounted");
                return 0;
        }
        if (!location)
                return kiln_err_set(err, KILN_ERR_NETWORK, 202,
                                    "push blob %s: the registry gave no upload location",
                                    d->digest);
        /* Only an upload needs the bytes: a blob that a mount brings
         * need not be here. */
        _cleanup_close_ int fd = -1;
        uint64_t size = 0;
        if (kiln_store_open_blob(j->store, d->digest, &fd, &size, err) < 0)
                return -1;
        if (upload(j, h, d, slot, fd, size, &location, err) < 0)
                return kiln_err_prefix(err, "push blob %s", d->digest);
        kiln_store_note_blob_location(j->store, j->r->domain, d->digest, j->repo);
        kiln_progress_update(j->progress, slot, size);
        kiln_progress_finish(j->progress, slot, "pushed");
        return 0;
}

int kiln_registry_push_blobs(struct kiln_registry *r, const char *repo,
                             const struct kiln_descriptor *blobs, size_t n, const char *mount_from,
                             struct kiln_store *store, struct kiln_progress *progress,
                             struct kiln_err **err)
{
        _cleanup_free_ int *slots = kiln_xcalloc(n ? n : 1, sizeof(*slots));
        for (size_t i = 0; i < n; i++)
                slots[i] = kiln_progress_add(progress, blobs[i].digest, blobs[i].size);
        volatile int cancel = 0;
        _cleanup_free_ char *scope = push_scope(repo, mount_from);
        struct push_job j = {.r = r,
                             .repo = repo,
                             .mount_from = mount_from,
                             .blobs = blobs,
                             .slots = slots,
                             .store = store,
                             .progress = progress,
                             .cancel = &cancel,
                             .scope = scope};
        if (registry_parallel(r, n, push_one, &j, &cancel, err) < 0)
                return kiln_err_prefix(err, "push to %s/%s", r->domain, repo);
        return 0;
}

int registry_put_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                          const char *media_type, const void *data, size_t len, bool *indexed,
                          struct kiln_err **err)
{
        char digest[KILN_DIGEST_MAX];
        kiln_sha256_digest(data, len, digest);
        _cleanup_free_ char *path = kiln_xasprintf("/v2/%s/manifests/%s", repo, reference);
        _cleanup_free_ char *scope = registry_scope(repo, "pull,push");
        _cleanup_free_ char *ct = kiln_xasprintf("Content-Type: %s", media_type);
        _cleanup_curl_slist_ struct curl_slist *hdrs = curl_slist_append(NULL, ct);
        struct http_req q = {.method = "PUT",
                             .url = path,
                             .headers = hdrs,
                             .upload = data,
                             .upload_len = len,
                             .upload_fd = -1};
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (registry_request(r, r->handle, scope, &q, &resp, err) < 0)
                return -1;
        if (resp.status != 201)
                return unexpected(r, "put manifest", digest, &resp, err);
        if (resp.docker_digest && kiln_str_has_prefix(resp.docker_digest, "sha256:") &&
            strcmp(resp.docker_digest, digest) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "the registry stored manifest %s as %s", digest,
                                    resp.docker_digest);
        if (indexed)
                *indexed = resp.oci_subject != NULL;
        return 0;
}

int kiln_registry_put_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                               const char *media_type, const void *data, size_t len,
                               struct kiln_err **err)
{
        if (registry_put_manifest(r, repo, reference, media_type, data, len, NULL, err) < 0)
                return kiln_err_prefix(err, "push %s/%s:%s", r->domain, repo, reference);
        return 0;
}

/* Pushes one image manifest's blobs and then the manifest itself. */
static int push_image(struct kiln_registry *r, const char *repo, const struct kiln_descriptor *d,
                      const char *reference, struct kiln_store *store, const char *mount_from,
                      struct kiln_progress *progress, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        if (kiln_store_read(store, d->digest, KILN_MANIFEST_MAX, &body, err) < 0)
                return -1;
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_manifest_parse(body.data, body.len, d->media_type, &m, err) < 0)
                return -1;
        if (m.is_index) {
                for (size_t i = 0; i < m.n_manifests; i++)
                        if (push_image(r, repo, &m.manifests[i], m.manifests[i].digest, store,
                                       mount_from, progress, err) < 0)
                                return -1;
        } else {
                size_t n = m.n_layers + 1;
                /* shallow copies: m owns the strings */
                _cleanup_free_ struct kiln_descriptor *all = kiln_xcalloc(n, sizeof(*all));
                all[0] = m.config;
                for (size_t i = 0; i < m.n_layers; i++)
                        all[i + 1] = m.layers[i];
                if (kiln_registry_push_blobs(r, repo, all, n, mount_from, store, progress, err) < 0)
                        return -1;
        }
        return kiln_registry_put_manifest(r, repo, reference, d->media_type, body.data, body.len,
                                          err);
}

int kiln_push(struct kiln_registry *r, const struct kiln_ref *dest,
              const struct kiln_descriptor *top, struct kiln_store *store, const char *mount_from,
              struct kiln_progress *progress, struct kiln_err **err)
{
        const char *reference = dest->tag ? dest->tag : top->digest;
        if (dest->digest && strcmp(dest->digest, top->digest) != 0)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "push: destination names digest %s but the image is %s",
                                    dest->digest, top->digest);
        return push_image(r, dest->path, top, reference, store, mount_from, progress, err);
}
