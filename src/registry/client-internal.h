/* Private to the registry module: the session state shared by the manifest,
 * blob and pull code. */
#ifndef KILN_REGISTRY_CLIENT_INTERNAL_H
#define KILN_REGISTRY_CLIENT_INTERNAL_H

#include "http-internal.h"

#include <pthread.h>

enum registry_auth { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct token_entry {
        char *scope;
        char *token;
        uint64_t expires_ns;
};

struct kiln_registry {
        char *domain;         /* as written in references */
        const char *api_host; /* where the API lives (registry-1.docker.io for docker.io) */
        char *base_url;       /* scheme://host after the first contact */
        char *origin;         /* scheme://host:port, the only place credentials go */
        bool insecure;        /* --insecure-registry: no TLS verification, HTTP allowed */
        bool allow_http;
        struct http_tls tls;
        int parallel;
        int max_attempts;
        bool quiet;
        struct http_deadline deadline; /* --timeout, from creation or the last restart */

        pthread_mutex_t lock; /* guards everything below */
        enum registry_auth auth;
        char *realm;
        char *service;
        struct kiln_creds creds;
        bool creds_loaded;
        bool have_creds;
        struct token_entry *tokens;
        size_t n_tokens;
        CURL *token_handle; /* pings and token requests, always under lock */
        CURL *handle;       /* the calling thread's connection; workers have their own */
};

/* Sends q (q->url is a path below the base URL, e.g. "/v2/x/manifests/y")
 * with the right Authorization for scope, answering one fresh 401 challenge.
 * A final 401 becomes a KILN_ERR_AUTH error; other statuses are returned. */
int registry_request(struct kiln_registry *r, CURL *h, const char *scope, struct http_req *q,
                     struct http_resp *resp, struct kiln_err **err);
/* Calls fn(ctx, handle, k) for k in [0, n) on up to r->parallel threads.
 * fn reports its own progress; a failure sets *cancel and stops the rest. */
typedef int (*registry_item_fn)(void *ctx, CURL *h, size_t k, struct kiln_err **err);
int registry_parallel(struct kiln_registry *r, size_t n, registry_item_fn fn, void *ctx,
                      volatile int *cancel, struct kiln_err **err);
/* PUTs a manifest (kiln_registry_put_manifest without the error's
 * prefix); *indexed (may be NULL) tells whether the answer carried
 * OCI-Subject, i.e. the registry keeps the referrers API itself. */
int registry_put_manifest(struct kiln_registry *r, const char *repo, const char *reference,
                          const char *media_type, const void *data, size_t len, bool *indexed,
                          struct kiln_err **err);
/* "repository:<repo>:<actions>". Caller frees. */
char *registry_scope(const char *repo, const char *actions);

#endif
