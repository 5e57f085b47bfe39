/* Registry client: authentication (challenges, credentials, tokens) and the
 * distribution API over libcurl. */
#ifndef KILN_REGISTRY_H
#define KILN_REGISTRY_H

#include "kiln/oci.h"
#include "kiln/ref.h"
#include "kiln/store.h"

/* ---------- authentication: pure parsing and credential lookup ---------- */

/* One challenge of a WWW-Authenticate header (RFC 7235). Scheme compared
 * case-insensitively; parameter names lowercased; quoted-string values
 * unescaped. */
struct kiln_challenge {
        char *scheme; /* "Bearer", "Basic" as sent */
        char *realm;
        char *service;
        char *scope;
        char *error; /* e.g. "insufficient_scope" */
};
/* Parses all challenges in one header value (several may be comma-separated:
 * `Basic realm="x", Bearer realm="y",service="z"`). */
int kiln_challenges_parse(const char *header, struct kiln_challenge **out, size_t *n,
                          struct kiln_err **err);
void kiln_challenges_free(struct kiln_challenge *c, size_t n);
/* What kiln_challenges_parse gives, owned as one value:
 * kiln_challenges_parse(header, &l.v, &l.n, err). */
struct kiln_challenges {
        struct kiln_challenge *v;
        size_t n;
};
void kiln_challenges_release(struct kiln_challenges *l);
#define _cleanup_challenges_ _cleanup_(kiln_challenges_release)
bool kiln_challenge_is(const struct kiln_challenge *c, const char *scheme);

/* A token endpoint's JSON answer: "token" or "access_token" (token wins when
 * both), "expires_in" (seconds; default 60 per the spec), "issued_at". */
struct kiln_token {
        char *token;
        long expires_in;
};
int kiln_token_parse(const char *body, size_t len, struct kiln_token *out, struct kiln_err **err);
void kiln_token_release(struct kiln_token *t);
#define _cleanup_token_ _cleanup_(kiln_token_release)

struct kiln_creds {
        char *username;
        char *password;       /* or identity token when username is "<token>" */
        char *identity_token; /* "identitytoken" from auth files: OAuth refresh token */
        char *source;         /* where they came from, for messages (a path or helper name) */
};
void kiln_creds_release(struct kiln_creds *c);
#define _cleanup_creds_ _cleanup_(kiln_creds_release)

/* Finds credentials for a registry host (as written in the reference:
 * "docker.io", "127.0.0.1:5000"). Search order, first hit wins:
 *   1. $REGISTRY_AUTH_FILE
 *   2. $XDG_RUNTIME_DIR/containers/auth.json
 *   3. $DOCKER_CONFIG/config.json, else ~/.docker/config.json
 * In each file: "credHelpers"[host] -> run docker-credential-<name> get;
 * "auths" keyed by host, "https://host", "http://host", "host/v1/" and for
 * docker.io also "https://index.docker.io/v1/" (values: "auth" base64
 * user:pass, or "username"/"password", "identitytoken"); then
 * "credsStore" -> docker-credential-<name> get. Found nothing: returns 0 with
 * *found=false. A malformed file is an error naming the file. Secrets never
 * appear in error messages. */
int kiln_creds_lookup(const char *host, struct kiln_creds *out, bool *found, struct kiln_err **err);
/* Runs docker-credential-<helper> get with host on stdin; parses
 * {"Username","Secret"}. "credentials not found" output means *found=false. */
int kiln_creds_from_helper(const char *helper, const char *host, struct kiln_creds *out,
                           bool *found, struct kiln_err **err);

/* base64 (standard alphabet, with padding). Caller frees. */
char *kiln_base64_encode(const void *p, size_t n);
/* Decodes standard or URL-safe base64, padding optional. */
int kiln_base64_decode(const char *s, struct kiln_buf *out);

/* ---------- progress of blob transfers ---------- */

/* Shared by transfer threads; renders per-blob bytes and rate on a terminal,
 * one line per finished blob otherwise, nothing when quiet. */
struct kiln_progress;
struct kiln_progress *kiln_progress_new(const char *verb, bool quiet);
void kiln_progress_free(struct kiln_progress *p);
void kiln_progress_freep(struct kiln_progress **p);
#define _cleanup_progress_ _cleanup_(kiln_progress_freep)
/* Registers a blob; returns its slot. total < 0: unknown. */
int kiln_progress_add(struct kiln_progress *p, const char *label, int64_t total);
void kiln_progress_update(struct kiln_progress *p, int slot, uint64_t done);
/* state: "done", "cached", "failed" … */
void kiln_progress_finish(struct kiln_progress *p, int slot, const char *state);

/* ---------- the registry client ---------- */

/* Does url answer at all (any HTTP status)? An error naming url and the
 * transport's reason otherwise. Sends no credentials. */
int kiln_http_probe(const char *url, long timeout_ms, struct kiln_err **err);

struct kiln_registry_opts {
        char **insecure_hosts; /* NULL-terminated: plain HTTP / unverified TLS allowed */
        const char *cert_dir;  /* --cert-dir: *.crt CAs, *.cert + *.key client pair */
        const char *creds;     /* --creds user:password (overrides auth files) */
        int parallel;          /* concurrent blob transfers; 0: default 4 */
        int max_attempts;      /* per request; 0: default 5 */
        bool quiet;            /* no progress output */
        uint64_t timeout_ms;   /* bounds the session's work (--timeout); 0: the default,
                                  KILN_TIMEOUT_NONE: unbounded */
};
/* A pull or a push that takes longer than this has met a trickling or
 * hung server; bigger images than that take --timeout. */
#define KILN_TIMEOUT_DEFAULT_MS ((uint64_t)3600 * 1000)
#define KILN_TIMEOUT_NONE       UINT64_MAX

/* A session with one registry host: scheme, TLS settings and auth state
 * (credentials and bearer tokens per scope, with their expiry). Safe to use
 * from several threads. */
struct kiln_registry;
/* domain as written in a reference ("docker.io", "127.0.0.1:5000"). Nothing
 * is sent until the first request. */
int kiln_registry_new(const char *domain, const struct kiln_registry_opts *opts,
                      struct kiln_registry **out, struct kiln_err **err);
void kiln_registry_free(struct kiln_registry *r);
void kiln_registry_freep(struct kiln_registry **r);
#define _cleanup_registry_ _cleanup_(kiln_registry_freep)
/* Starts the --timeout clock again: a session's deadline runs from its
 * creation, which suits one pull or push; a session used for many small
 * operations over a long build restarts it for each. */
void kiln_registry_restart_clock(struct kiln_registry *r);
/* "https://host:port" chosen after the first contact (NULL before). */
const char *kiln_registry_base_url(const struct kiln_registry *r);

/* GET /v2/<repo>/manifests/<reference> with every known media type in
 * Accept. body is bounded by KILN_MANIFEST_MAX; media_type is the response's
 * Content-Type (parameters stripped); digest is the sha256 of the body, and
 * when reference is a digest or the registry sent Docker-Content-Digest the
 * body must match it. A missing manifest is KILN_ERR_NOT_FOUND. */
int kiln_registry_get_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                               struct kiln_buf *body, char **media_type,
                               char digest[KILN_DIGEST_MAX], struct kiln_err **err);
/* HEAD of a manifest: *exists and, when it exists, its digest (may be empty
 * when the registry does not say). Unreachable registry is an error. */
int kiln_registry_head_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                                bool *exists, char digest[KILN_DIGEST_MAX], struct kiln_err **err);
/* Downloads blobs into the store, several at once, skipping those already
 * present. Each is verified against its digest and size before it becomes
 * visible; the first failure cancels the rest and is returned. */
int kiln_registry_fetch_blobs(struct kiln_registry *r, const char *repo,
                              const struct kiln_descriptor *blobs, size_t n,
                              struct kiln_store *store, struct kiln_progress *progress,
                              struct kiln_err **err);
/* The same, each blob told to watches[i] (NULL: none) as it is written,
 * and every watch told done or failed when the fetch ends. */
int kiln_registry_fetch_blobs_watched(struct kiln_registry *r, const char *repo,
                                      const struct kiln_descriptor *blobs, size_t n,
                                      struct kiln_store *store, struct kiln_progress *progress,
                                      struct kiln_blob_watch *const *watches,
                                      struct kiln_err **err);

/* ---------- push ---------- */

/* Uploads blobs from the store, several at once. Each is skipped when the
 * registry has it (HEAD), mounted from mount_from (a repository on the same
 * registry, e.g. the base image's) when possible, else uploaded in one PUT
 * or, when large, in chunks whose acknowledgements are checked. */
int kiln_registry_push_blobs(struct kiln_registry *r, const char *repo,
                             const struct kiln_descriptor *blobs, size_t n, const char *mount_from,
                             struct kiln_store *store, struct kiln_progress *progress,
                             struct kiln_err **err);
/* PUTs manifest bytes under reference (tag or digest) with their exact media
 * type; the registry's Docker-Content-Digest must agree. */
int kiln_registry_put_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                               const char *media_type, const void *data, size_t len,
                               struct kiln_err **err);
/* Pushes an image or index whose blobs are all in the store: blobs first,
 * then child manifests by digest, then top under dest's tag (or digest). */
int kiln_push(struct kiln_registry *r, const struct kiln_ref *dest,
              const struct kiln_descriptor *top, struct kiln_store *store, const char *mount_from,
              struct kiln_progress *progress, struct kiln_err **err);

/* ---------- referrers (OCI 1.1) ---------- */

/* Pushes an artifact manifest whose blobs are in the store (blobs, then
 * the manifest by digest). When the registry's answer has no OCI-Subject
 * header (no referrers API), artifact is added to the referrers tag
 * schema's index, sha256-<hex of subject>, which is read back until it
 * lists artifact (another writer may race; see referrers.c). artifact's
 * artifactType and annotations go into that index. */
int kiln_registry_push_referrer(struct kiln_registry *r, const char *repo,
                                const struct kiln_descriptor *subject,
                                const struct kiln_descriptor *artifact, struct kiln_store *store,
                                struct kiln_err **err);
/* The referrers of digest in repo as an index (out->manifests; none is an
 * empty list, not an error): GET /v2/REPO/referrers/DIGEST, and the tag
 * schema when the registry has no such API. artifact_type (may be NULL)
 * keeps only those of that type. */
int kiln_registry_referrers(struct kiln_registry *r, const char *repo, const char *digest,
                            const char *artifact_type, struct kiln_manifest *out,
                            struct kiln_err **err);

/* ---------- pull ---------- */

struct kiln_pull_opts {
        struct kiln_platform platform; /* unset os: host platform */
        bool all_platforms;            /* keep the whole index */
        bool manifest_only;            /* manifests and config only, no layers (to resolve) */
};

/* Pulls ref into the store: the manifest (and index), config and layers.
 * top receives the descriptor to hand to an output: the platform's image
 * manifest, or with all_platforms the index as published. */
int kiln_pull(struct kiln_registry *r, const struct kiln_ref *ref,
              const struct kiln_pull_opts *opts, struct kiln_store *store,
              struct kiln_progress *progress, struct kiln_descriptor *top, struct kiln_err **err);

#endif
