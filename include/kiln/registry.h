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
bool kiln_challenge_is(const struct kiln_challenge *c, const char *scheme);

/* A token endpoint's JSON answer: "token" or "access_token" (token wins when
 * both), "expires_in" (seconds; default 60 per the spec), "issued_at". */
struct kiln_token {
        char *token;
        long expires_in;
};
int kiln_token_parse(const char *body, size_t len, struct kiln_token *out, struct kiln_err **err);
void kiln_token_release(struct kiln_token *t);

struct kiln_creds {
        char *username;
        char *password;       /* or identity token when username is "<token>" */
        char *identity_token; /* "identitytoken" from auth files: OAuth refresh token */
        char *source;         /* where they came from, for messages (a path or helper name) */
};
void kiln_creds_release(struct kiln_creds *c);

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

#endif
