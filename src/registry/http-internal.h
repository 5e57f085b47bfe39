/* Private to the registry module: one HTTP exchange over libcurl, with
 * manual redirects (credentials never follow to another host), bounded
 * in-memory bodies, streaming bodies into the blob store, and retries with
 * backoff for 429/5xx and dropped connections. */
#ifndef KILN_REGISTRY_HTTP_INTERNAL_H
#define KILN_REGISTRY_HTTP_INTERNAL_H

#include "kiln/registry.h"

#include <curl/curl.h>

struct http_tls {
        bool insecure; /* skip certificate verification */
        char *ca_blob; /* PEM: system bundle + extra CAs, NULL for curl's default */
        size_t ca_len;
        char *client_cert; /* paths, NULL if none */
        char *client_key;
};

/* The end of a whole operation (--timeout): no request, retry or backoff
 * goes past at_ns. */
struct http_deadline {
        uint64_t at_ns;      /* 0: none */
        uint64_t timeout_ms; /* for messages */
};

struct http_req {
        const char *method; /* GET, HEAD, POST, PUT, PATCH */
        const char *url;
        struct curl_slist *headers; /* extra headers, not Authorization */
        const char *authorization;  /* full header value, sent only to auth_origin */
        const char *auth_origin;    /* "scheme://host:port" allowed to see it */
        /* request body (POST/PUT/PATCH) */
        const void *upload;
        size_t upload_len;
        int upload_fd; /* or stream from an fd: upload_len bytes from its current offset */
        /* response body sinks; at most one is set */
        struct kiln_buf *body;
        size_t body_max;
        struct kiln_blob_writer *writer;
        /* progress */
        struct kiln_progress *progress;
        int progress_slot;
        const struct http_tls *tls;
        int max_attempts;
        bool no_redirect;                     /* return 3xx to the caller */
        const volatile int *cancel;           /* non-zero aborts the transfer */
        const struct http_deadline *deadline; /* or NULL */
};

struct http_resp {
        long status;
        char *content_type;
        char *docker_digest;
        char *www_authenticate;
        char *location;
        char *range;
        char *oci_subject;     /* OCI-Subject: the registry indexed the manifest's subject */
        char *filters_applied; /* OCI-Filters-Applied of a referrers answer */
        long retry_after;      /* seconds, -1 if absent */
        int64_t content_length;
        struct kiln_buf error_body; /* first bytes of a non-2xx body, for messages */
};
void http_resp_release(struct http_resp *r);
#define _cleanup_http_resp_ _cleanup_(http_resp_release)

/* libcurl objects a local owns: a handle, a header list. */
static inline void http_curl_cleanupp(CURL **h)
{
        if (*h)
                curl_easy_cleanup(*h);
        *h = NULL;
}
#define _cleanup_curl_ _cleanup_(http_curl_cleanupp)
static inline void http_slist_freep(struct curl_slist **l)
{
        curl_slist_free_all(*l);
        *l = NULL;
}
#define _cleanup_curl_slist_ _cleanup_(http_slist_freep)

/* A transfer whose average rate over the last window stays under the
 * floor is aborted and retried (a stall, or a trickle meant to hold the
 * connection). KILN_XFER_FLOOR (bytes/s) and KILN_XFER_WINDOW (a
 * duration) override the defaults; they exist for tests. */
#define HTTP_FLOOR_DEFAULT     4096
#define HTTP_WINDOW_DEFAULT_MS 30000

/* Performs the request on handle h (reused across calls so the connection
 * stays open). Returns 0 when an HTTP response was received, whatever its
 * status; -1 for transport failures that persisted through the retries,
 * a body over its bound, or a blob writer error. */
int http_do(CURL *h, const struct http_req *req, struct http_resp *resp, struct kiln_err **err);

/* "scheme://host:port" of an absolute URL. Caller frees. NULL if unparsable. */
char *http_origin(const char *url);
/* Resolves a Location value against the URL it came from. Caller frees. */
char *http_resolve(const char *base, const char *location);
/* Explains a registry error body ({"errors":[{"code","message"}]}) in one
 * line, or the status text. Caller frees. */
char *http_error_text(const struct http_resp *resp);
void http_global_init(void);

#endif
