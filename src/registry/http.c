#include "http-internal.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERROR_BODY_MAX    4096
#define REDIRECT_MAX      5
#define BACKOFF_CAP_MS    8000
#define RETRY_AFTER_CAP_S 30

/* The shortest pace a transfer may keep over a window (see
 * HTTP_FLOOR_DEFAULT); read once. */
static struct {
        uint64_t floor;     /* bytes/s; 0: no floor */
        uint64_t window_ms; /* 0: no floor */
} pace = {HTTP_FLOOR_DEFAULT, HTTP_WINDOW_DEFAULT_MS};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void pace_from_env(void)
{
        const char *f = getenv("KILN_XFER_FLOOR");
        const char *w = getenv("KILN_XFER_WINDOW");
        if (f && *f) {
                char *end = NULL;
                errno = 0;
                unsigned long long n = strtoull(f, &end, 10);
                if (errno || *end || n > ((uint64_t)1 << 40))
                        kiln_warn("KILN_XFER_FLOOR: \"%s\" is not a number of bytes per second; "
                                  "ignored",
                                  f);
                else
                        pace.floor = n;
        }
        _cleanup_err_ struct kiln_err *e = NULL;
        uint64_t ms = 0;
        if (w && *w && kiln_duration_parse(w, &ms, &e) < 0)
                kiln_warn("KILN_XFER_WINDOW: %s; ignored", e->msg);
        else if (w && *w)
                pace.window_ms = ms;
}

static void global_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        pace_from_env();
}

void http_global_init(void)
{
        pthread_once(&global_once, global_init_once);
}

void http_resp_release(struct http_resp *r)
{
        free(r->content_type);
        free(r->docker_digest);
        free(r->www_authenticate);
        free(r->location);
        free(r->range);
        free(r->oci_subject);
        free(r->filters_applied);
        kiln_buf_release(&r->error_body);
        memset(r, 0, sizeof(*r));
}

/* Bytes moved so far at a time: the transfer's pace is measured between
 * such samples, a window apart. */
struct pace_sample {
        uint64_t t_ns;
        uint64_t bytes;
};
/* Taken window/16 apart, so a ring of 32 spans two windows. */
#define PACE_SAMPLES 32

/* State of one exchange (one URL, before redirects are followed). */
struct exchange {
        const struct http_req *req;
        struct http_resp *resp;
        struct kiln_err *sink_err; /* a body sink refused data */
        uint64_t upload_off;
        off_t upload_base;
        struct pace_sample samples[PACE_SAMPLES];
        size_t n_samples, next;
        bool too_slow;      /* aborted: under the floor for a window */
        bool past_deadline; /* aborted: the operation's --timeout ran out */
};

static bool is_2xx(long s)
{
        return s >= 200 && s < 300;
}

static bool is_redirect(long s)
{
        return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

static char *header_value(const char *line, size_t len, const char *name)
{
        size_t n = strlen(name);
        if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return NULL;
        const char *v = line + n + 1;
        const char *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        return kiln_xstrndup(v, (size_t)(end - v));
}

static long parse_retry_after(const char *v)
{
        char *end = NULL;
        errno = 0;
        long s = strtol(v, &end, 10);
        if (end != v && *end == '\0' && errno == 0)
                return s < 0 ? 0 : s;
        time_t t = curl_getdate(v, NULL);
        if (t < 0)
                return -1;
        long d = (long)(t - time(NULL));
        return d < 0 ? 0 : d;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
        struct exchange *x = ud;
        struct http_resp *r = x->resp;
        size_t len = size * nitems;
        if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
                /* A new status line (after 100 Continue or a redirect):
                 * forget the headers of the previous response. */
                http_resp_release(r);
                r->retry_after = -1;
                r->content_length = -1;
                const char *sp = memchr(buf, ' ', len);
                r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
                return len;
        }
        char *v;
        if ((v = header_value(buf, len, "Content-Type"))) {
                char *semi = strchr(v, ';');
                if (semi)
                        *semi = '\0';
                for (char *e = v + strlen(v); e > v && e[-1] == ' '; e--)
                        e[-1] = '\0';
                free(r->content_type);
                r->content_type = v;
        } else if ((v = header_value(buf, len, "Docker-Content-Digest"))) {
                free(r->docker_digest);
                r->docker_digest = v;
        } else if ((v = header_value(buf, len, "WWW-Authenticate"))) {
                /* Several challenges may come in separate headers; join them
                 * as RFC 7230 allows. */
                char *joined = r->www_authenticate
                                   ? kiln_xasprintf("%s, %s", r->www_authenticate, v)
                                   : kiln_xstrdup(v);
                free(v);
                free(r->www_authenticate);
                r->www_authenticate = joined;
        } else if ((v = header_value(buf, len, "Location"))) {
                free(r->location);
                r->location = v;
        } else if ((v = header_value(buf, len, "OCI-Subject"))) {
                free(r->oci_subject);
                r->oci_subject = v;
        } else if ((v = header_value(buf, len, "OCI-Filters-Applied"))) {
                free(r->filters_applied);
                r->filters_applied = v;
        } else if ((v = header_value(buf, len, "Range"))) {
                free(r->range);
                r->range = v;
        } else if ((v = header_value(buf, len, "Retry-After"))) {
                r->retry_after = parse_retry_after(v);
                free(v);
        } else if ((v = header_value(buf, len, "Content-Length"))) {
                r->content_length = strtoll(v, NULL, 10);
                free(v);
        }
        return len;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
        struct exchange *x = ud;
        const struct http_req *q = x->req;
        struct http_resp *r = x->resp;
        size_t len = size * nmemb;
        if (is_redirect(r->status))
                return len;
        if (!is_2xx(r->status)) {
                size_t room = ERROR_BODY_MAX - r->error_body.len;
                kiln_buf_append(&r->error_body, buf, len < room ? len : room);
                return len;
        }
        if (q->writer) {
                if (kiln_blob_writer_write(q->writer, buf, len, &x->sink_err) < 0)
                        return CURL_WRITEFUNC_ERROR;
                if (q->progress)
                        kiln_progress_update(q->progress, q->progress_slot,
                                             kiln_blob_writer_size(q->writer));
                return len;
        }
        if (q->body) {
                if (q->body->len + len > q->body_max) {
                        kiln_err_set(&x->sink_err, KILN_ERR_FORMAT, 0,
                                     "response from %s is larger than the %zu-byte limit", q->url,
                                     q->body_max);
                        return CURL_WRITEFUNC_ERROR;
                }
                kiln_buf_append(q->body, buf, len);
        }
        return len;
}

static bool deadline_passed(const struct http_req *q, uint64_t now)
{
        uint64_t at = q->deadline ? __atomic_load_n(&q->deadline->at_ns, __ATOMIC_RELAXED) : 0;
        return at && now >= at;
}

/* Records bytes at now; false when the pace since the newest sample at
 * least a window old is under the floor. */
static bool pace_ok(struct exchange *x, uint64_t now, uint64_t bytes)
{
        if (!pace.floor || !pace.window_ms)
                return true;
        uint64_t window = pace.window_ms * 1000000u;
        const struct pace_sample *last =
            x->n_samples ? &x->samples[(x->next + PACE_SAMPLES - 1) % PACE_SAMPLES] : NULL;
        if (!last || now - last->t_ns >= window / 16) {
                x->samples[x->next] = (struct pace_sample){now, bytes};
                x->next = (x->next + 1) % PACE_SAMPLES;
                if (x->n_samples < PACE_SAMPLES)
                        x->n_samples++;
        }
        for (size_t i = 0; i < x->n_samples; i++) {
                const struct pace_sample *then =
                    &x->samples[(x->next + PACE_SAMPLES - 1 - i) % PACE_SAMPLES];
                if (now - then->t_ns < window)
                        continue;
                uint64_t ms = (now - then->t_ns) / 1000000u;
                x->too_slow = (bytes - then->bytes) * 1000 < pace.floor * ms;
                return !x->too_slow;
        }
        return true; /* not a window old yet */
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
        (void)dltotal;
        struct exchange *x = ud;
        const struct http_req *q = x->req;
        if (q->cancel && *q->cancel)
                return 1;
        uint64_t now = kiln_now_ns();
        if (deadline_passed(q, now)) {
                x->past_deadline = true;
                return 1;
        }
        /* Sent in full, no answer yet: the server is at work (it may be
         * hashing a large upload), which says nothing about the link. The
         * window starts again when the answer flows. */
        if (ultotal > 0 && ulnow >= ultotal && dlnow == 0) {
                x->n_samples = 0;
                return 0;
        }
        return pace_ok(x, now, (uint64_t)dlnow + (uint64_t)ulnow) ? 0 : 1;
}

static size_t on_upload(char *buf, size_t size, size_t nitems, void *ud)
{
        struct exchange *x = ud;
        const struct http_req *q = x->req;
        size_t want = size * nitems;
        uint64_t left = q->upload_len - x->upload_off;
        if (want > left)
                want = (size_t)left;
        if (want == 0)
                return 0;
        if (q->upload) {
                memcpy(buf, (const char *)q->upload + x->upload_off, want);
        } else {
                ssize_t n = pread(q->upload_fd, buf, want, x->upload_base + (off_t)x->upload_off);
                if (n <= 0)
                        return CURL_READFUNC_ABORT;
                want = (size_t)n;
        }
        x->upload_off += want;
        if (q->progress)
                kiln_progress_update(q->progress, q->progress_slot, x->upload_off);
        return want;
}

char *http_origin(const char *url)
{
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL;
        char *out = NULL;
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
                for (char *c = host; *c; c++)
                        *c = (char)tolower((unsigned char)*c);
                out = kiln_xasprintf("%s://%s:%s", scheme, host, port);
        }
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return out;
}

char *http_resolve(const char *base, const char *location)
{
        CURLU *u = curl_url();
        char *s = NULL;
        char *out = NULL;
        if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
            curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
                out = kiln_xstrdup(s);
        curl_free(s);
        curl_url_cleanup(u);
        return out;
}

static bool transient_curl_error(CURLcode c)
{
        switch (c) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

static bool transient_status(long s)
{
        return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static void setup_tls(CURL *h, const struct http_tls *tls)
{
        if (!tls)
                return;
        if (tls->insecure) {
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (tls->ca_blob) {
                struct curl_blob blob = {
                    .data = tls->ca_blob, .len = tls->ca_len, .flags = CURL_BLOB_NOCOPY};
                curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        }
        if (tls->client_cert && tls->client_key) {
                curl_easy_setopt(h, CURLOPT_SSLCERT, tls->client_cert);
                curl_easy_setopt(h, CURLOPT_SSLKEY, tls->client_key);
        }
}

/* One request to one URL, no redirects and no retries. */
static CURLcode exchange_once(CURL *h, const struct http_req *q, const char *url, bool send_auth,
                              struct exchange *x, char *errbuf)
{
        curl_easy_reset(h);
        _cleanup_curl_slist_ struct curl_slist *hdrs = NULL;
        for (struct curl_slist *s = q->headers; s; s = s->next)
                hdrs = curl_slist_append(hdrs, s->data);
        _cleanup_free_ char *auth = NULL;
        if (send_auth && q->authorization) {
                auth = kiln_xasprintf("Authorization: %s", q->authorization);
                hdrs = curl_slist_append(hdrs, auth);
        }
        /* Registries answer small requests fast; Expect: 100-continue only
         * adds a round trip. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        long connect_ms = 30000;
        uint64_t at = q->deadline ? __atomic_load_n(&q->deadline->at_ns, __ATOMIC_RELAXED) : 0;
        if (at) {
                uint64_t now = kiln_now_ns();
                long left = now < at ? (long)((at - now) / 1000000u) + 1 : 1;
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
                connect_ms = left < connect_ms ? left : connect_ms;
        }
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        /* The pace floor (on_xfer) aborts slow transfers; this catches a
         * server that, once sent everything, never answers. */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 300L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
        setup_tls(h, q->tls);
        x->n_samples = x->next = 0;
        x->too_slow = x->past_deadline = false;
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
        if (!strcmp(q->method, "HEAD")) {
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (!strcmp(q->method, "GET")) {
                curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        } else {
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
                if (q->upload || q->upload_fd >= 0) {
                        x->upload_off = 0;
                        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
                        curl_easy_setopt(h, CURLOPT_READDATA, x);
                        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->upload_len);
                } else {
                        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
                        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                }
        }
        x->resp->status = 0;
        return curl_easy_perform(h);
}

static int reset_sinks(const struct http_req *q, struct kiln_err **err)
{
        if (q->body) {
                q->body->len = 0;
                if (q->body->data)
                        q->body->data[0] = '\0';
        }
        if (q->writer)
                return kiln_blob_writer_reset(q->writer, err);
        return 0;
}

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int deadline_error(const struct http_req *q, const char *url, struct kiln_err **err)
{
        _cleanup_free_ char *t = kiln_duration_format(q->deadline->timeout_ms);
        return kiln_err_set(err, KILN_ERR_NETWORK, 0,
                            "%s %s: not done when the time allowed (--timeout %s) ran out",
                            q->method, url, t);
}

/* Why on_xfer gave up, in the words of curl's error buffer. */
static void pace_text(char errbuf[CURL_ERROR_SIZE])
{
        _cleanup_free_ char *w = kiln_duration_format(pace.window_ms);
        snprintf(errbuf, CURL_ERROR_SIZE,
                 "transfer slower than %llu bytes/s on average over %s (a stalled or "
                 "trickling server)",
                 (unsigned long long)pace.floor, w);
}

int http_do(CURL *h, const struct http_req *q, struct http_resp *resp, struct kiln_err **err)
{
        int attempts = q->max_attempts > 0 ? q->max_attempts : 5;
        long backoff_ms = 250;
        struct exchange x = {.req = q, .resp = resp};
        if (!q->upload && q->upload_fd >= 0)
                x.upload_base = lseek(q->upload_fd, 0, SEEK_CUR);
        for (int attempt = 1;; attempt++) {
                _cleanup_free_ char *url = kiln_xstrdup(q->url);
                char errbuf[CURL_ERROR_SIZE] = "";
                CURLcode c = CURLE_OK;
                http_resp_release(resp);
                if (reset_sinks(q, err) < 0)
                        return -1;
                for (int hop = 0;; hop++) {
                        _cleanup_free_ char *origin = http_origin(url);
                        bool send_auth =
                            origin && q->auth_origin && !strcmp(origin, q->auth_origin);
                        errbuf[0] = '\0';
                        c = exchange_once(h, q, url, send_auth, &x, errbuf);
                        if (x.sink_err) {
                                *err = steal_pointer(&x.sink_err);
                                return -1;
                        }
                        if (c != CURLE_OK || q->no_redirect || !is_redirect(resp->status) ||
                            !resp->location)
                                break;
                        if (hop >= REDIRECT_MAX)
                                return kiln_err_set(err, KILN_ERR_NETWORK, 0,
                                                    "%s: too many redirects", q->url);
                        char *next = http_resolve(url, resp->location);
                        if (!next)
                                return kiln_err_set(err, KILN_ERR_NETWORK, 0,
                                                    "%s: unusable redirect location", q->url);
                        _cleanup_free_ char *next_origin = http_origin(next);
                        kiln_debug("%s %s redirected to %s%s", q->method, url, next_origin,
                                   send_auth && next_origin && strcmp(next_origin, origin)
                                       ? " (credentials not forwarded)"
                                       : "");
                        free(url);
                        url = next;
                        if (reset_sinks(q, err) < 0)
                                return -1;
                }
                if (x.past_deadline || (c != CURLE_OK && deadline_passed(q, kiln_now_ns())))
                        return deadline_error(q, url, err);
                if (c == CURLE_ABORTED_BY_CALLBACK && !x.too_slow)
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "%s: cancelled", url);
                if (x.too_slow)
                        pace_text(errbuf);
                bool retry = x.too_slow      ? true
                             : c != CURLE_OK ? transient_curl_error(c)
                                             : transient_status(resp->status);
                if (!retry || attempt >= attempts) {
                        if (c != CURLE_OK)
                                return kiln_err_set(err, KILN_ERR_NETWORK, (int)c, "%s %s: %s%s",
                                                    q->method, url,
                                                    errbuf[0] ? errbuf : curl_easy_strerror(c),
                                                    attempt > 1 ? " (after retries)" : "");
                        return 0;
                }
                long wait = backoff_ms;
                if (c == CURLE_OK && resp->retry_after >= 0)
                        wait = (resp->retry_after > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
                                                                      : resp->retry_after) *
                               1000;
                if (deadline_passed(q, kiln_now_ns() + (uint64_t)wait * 1000000u))
                        return deadline_error(q, url, err);
                kiln_debug("%s %s: %s, retrying in %ld ms (attempt %d of %d)", q->method, url,
                           c != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(c))
                                         : "server busy",
                           wait, attempt + 1, attempts);
                sleep_ms(wait);
                backoff_ms = backoff_ms * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff_ms * 2;
        }
}

char *http_error_text(const struct http_resp *resp)
{
        struct kiln_buf out = {0};
        if (resp->error_body.len) {
                json_error_t je;
                _cleanup_json_ json_t *doc =
                    json_loadb(resp->error_body.data, resp->error_body.len, 0, &je);
                json_t *errors = doc ? json_object_get(doc, "errors") : NULL;
                size_t i;
                json_t *e;
                json_array_foreach(errors, i, e)
                {
                        const char *code = json_string_value(json_object_get(e, "code"));
                        const char *msg = json_string_value(json_object_get(e, "message"));
                        if (i)
                                kiln_buf_puts(&out, "; ");
                        if (code)
                                kiln_buf_puts(&out, code);
                        if (msg)
                                kiln_buf_printf(&out, "%s%s", code ? ": " : "", msg);
                }
        }
        if (!out.len)
                kiln_buf_printf(&out, "HTTP %ld", resp->status);
        else
                kiln_buf_printf(&out, " (HTTP %ld)", resp->status);
        return kiln_buf_steal(&out);
}

int kiln_http_probe(const char *url, long timeout_ms, struct kiln_err **err)
{
        http_global_init();
        _cleanup_curl_ CURL *h = curl_easy_init();
        if (!h)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "curl_easy_init failed");
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms * 2);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK)
                return kiln_err_set(err, KILN_ERR_NETWORK, (int)rc, "%s is unreachable: %s", url,
                                    curl_easy_strerror(rc));
        return 0;
}
