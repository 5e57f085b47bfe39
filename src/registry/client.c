/* A session with one registry: picks the scheme on first contact, answers
 * Basic and Bearer challenges, caches tokens per scope until they expire. */
#include "client-internal.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define TOKEN_BODY_MAX   ((size_t)1 << 20)
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define CA_BUNDLE_MAX    ((size_t)8 << 20)

static void token_cache_clear(struct kiln_registry *r)
{
        for (size_t i = 0; i < r->n_tokens; i++) {
                free(r->tokens[i].scope);
                free(r->tokens[i].token);
        }
        free(r->tokens);
        r->tokens = NULL;
        r->n_tokens = 0;
}

void kiln_registry_free(struct kiln_registry *r)
{
        if (!r)
                return;
        token_cache_clear(r);
        kiln_creds_release(&r->creds);
        free(r->domain);
        free(r->base_url);
        free(r->origin);
        free(r->realm);
        free(r->service);
        free(r->tls.ca_blob);
        free(r->tls.client_cert);
        free(r->tls.client_key);
        if (r->handle)
                curl_easy_cleanup(r->handle);
        if (r->token_handle)
                curl_easy_cleanup(r->token_handle);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

void kiln_registry_freep(struct kiln_registry **r)
{
        kiln_registry_free(*r);
        *r = NULL;
}

void kiln_registry_restart_clock(struct kiln_registry *r)
{
        uint64_t t = r->deadline.timeout_ms;
        /* atomic: a build's threads may share a remote-cache session */
        __atomic_store_n(&r->deadline.at_ns, t ? kiln_now_ns() + t * 1000000u : 0,
                         __ATOMIC_RELAXED);
}

const char *kiln_registry_base_url(const struct kiln_registry *r)
{
        return r->base_url;
}

static bool host_listed(char **list, const char *host)
{
        for (size_t i = 0; list && list[i]; i++)
                if (!strcmp(list[i], host))
                        return true;
        return false;
}

/* Reads the .crt files of dir into the CA bundle and picks up a .cert/.key
 * client pair, as containers/image does for its certs.d directories. */
static int load_cert_dir(struct kiln_registry *r, const char *dir, struct kiln_buf *bundle,
                         bool required, struct kiln_err **err)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d) {
                if (!required && errno == ENOENT)
                        return 0;
                return kiln_err_sys(err, "open certificate directory %s", dir);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = kiln_xasprintf("%s/%s", dir, de->d_name);
                if (kiln_str_has_suffix(de->d_name, ".crt")) {
                        if (kiln_read_file(path, CA_BUNDLE_MAX, bundle, err) < 0)
                                return -1;
                        kiln_buf_puts(bundle, "\n");
                } else if (kiln_str_has_suffix(de->d_name, ".cert")) {
                        _cleanup_free_ char *key = kiln_xstrndup(path, strlen(path) - 5);
                        _cleanup_free_ char *k = kiln_xasprintf("%s.key", key);
                        if (access(k, R_OK) != 0)
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "client certificate %s has no matching key %s",
                                                    path, k);
                        free(r->tls.client_cert);
                        free(r->tls.client_key);
                        r->tls.client_cert = kiln_xstrdup(path);
                        r->tls.client_key = steal_pointer(&k);
                }
        }
        return 0;
}

static int setup_tls(struct kiln_registry *r, const struct kiln_registry_opts *o,
                     struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf bundle = {0};
        bool extra = false;
        const char *env_file = getenv("SSL_CERT_FILE");
        const char *base = env_file && *env_file ? env_file : SYSTEM_CA_BUNDLE;
        if (o->cert_dir) {
                if (load_cert_dir(r, o->cert_dir, &bundle, true, err) < 0)
                        return kiln_err_prefix(err, "--cert-dir");
                extra = true;
        } else {
                /* The per-registry directories docker and podman consult. */
                const char *roots[] = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
                for (size_t i = 0; i < 2; i++) {
                        _cleanup_free_ char *dir = kiln_xasprintf("%s/%s", roots[i], r->domain);
                        size_t before = bundle.len;
                        if (load_cert_dir(r, dir, &bundle, false, err) < 0)
                                return -1;
                        extra = extra || bundle.len > before;
                }
        }
        if (!extra && !(env_file && *env_file))
                return 0; /* curl's built-in default is the system bundle */
        _cleanup_buf_ struct kiln_buf all = {0};
        if (access(base, R_OK) == 0 && kiln_read_file(base, CA_BUNDLE_MAX, &all, err) < 0)
                return -1;
        kiln_buf_puts(&all, "\n");
        kiln_buf_append(&all, bundle.data ? bundle.data : "", bundle.len);
        r->tls.ca_len = all.len;
        r->tls.ca_blob = kiln_buf_steal(&all);
        return 0;
}

int kiln_registry_new(const char *domain, const struct kiln_registry_opts *opts,
                      struct kiln_registry **out, struct kiln_err **err)
{
        static const struct kiln_registry_opts defaults = {0};
        const struct kiln_registry_opts *o = opts ? opts : &defaults;
        http_global_init();
        _cleanup_registry_ struct kiln_registry *r = kiln_xcalloc(1, sizeof(*r));
        pthread_mutex_init(&r->lock, NULL);
        r->domain = kiln_xstrdup(domain);
        r->api_host =
            !strcmp(domain, KILN_DOCKER_HUB_DOMAIN) ? KILN_DOCKER_HUB_API_HOST : r->domain;
        r->insecure = host_listed(o->insecure_hosts, domain);
        r->allow_http = r->insecure || kiln_host_is_loopback(domain);
        r->tls.insecure = r->insecure;
        r->parallel = o->parallel > 0 ? o->parallel : 4;
        r->max_attempts = o->max_attempts > 0 ? o->max_attempts : 5;
        r->quiet = o->quiet;
        r->deadline.timeout_ms = o->timeout_ms ? o->timeout_ms : KILN_TIMEOUT_DEFAULT_MS;
        if (o->timeout_ms == KILN_TIMEOUT_NONE)
                r->deadline.timeout_ms = 0;
        kiln_registry_restart_clock(r);
        if (o->creds) {
                const char *colon = strchr(o->creds, ':');
                if (!colon || colon == o->creds)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "--creds must be USERNAME:PASSWORD");
                r->creds.username = kiln_xstrndup(o->creds, (size_t)(colon - o->creds));
                r->creds.password = kiln_xstrdup(colon + 1);
                r->creds.source = kiln_xstrdup("--creds");
                r->creds_loaded = r->have_creds = true;
        }
        if (setup_tls(r, o, err) < 0)
                return kiln_err_prefix(err, "registry %s", domain);
        r->handle = curl_easy_init();
        r->token_handle = curl_easy_init();
        if (!r->handle || !r->token_handle)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "curl_easy_init failed");
        *out = steal_pointer(&r);
        return 0;
}

static int load_creds(struct kiln_registry *r, struct kiln_err **err)
{
        if (r->creds_loaded)
                return 0;
        bool found = false;
        if (kiln_creds_lookup(r->domain, &r->creds, &found, err) < 0)
                return kiln_err_prefix(err, "credentials for %s", r->domain);
        r->creds_loaded = true;
        r->have_creds = found;
        if (found)
                kiln_debug("using credentials for %s from %s", r->domain,
                           r->creds.source ? r->creds.source : "?");
        return 0;
}

static char *basic_header(const struct kiln_creds *c)
{
        _cleanup_free_ char *pair =
            kiln_xasprintf("%s:%s", c->username ? c->username : "", c->password ? c->password : "");
        _cleanup_free_ char *b64 = kiln_base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        return kiln_xasprintf("Basic %s", b64);
}

/* Adopts the challenge of a 401 answer: Bearer wins over Basic, since a
 * registry that offers a token service expects it to be used. */
static int adopt_challenge(struct kiln_registry *r, const char *header, struct kiln_err **err)
{
        if (!header)
                return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                    "%s answered 401 without a WWW-Authenticate challenge",
                                    r->domain);
        _cleanup_challenges_ struct kiln_challenges ch = {0};
        if (kiln_challenges_parse(header, &ch.v, &ch.n, err) < 0)
                return kiln_err_prefix(err, "%s: WWW-Authenticate", r->domain);
        const struct kiln_challenge *bearer = NULL, *basic = NULL;
        for (size_t i = 0; i < ch.n; i++) {
                if (!bearer && kiln_challenge_is(&ch.v[i], "Bearer"))
                        bearer = &ch.v[i];
                if (!basic && kiln_challenge_is(&ch.v[i], "Basic"))
                        basic = &ch.v[i];
        }
        if (bearer) {
                if (!bearer->realm)
                        return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                            "%s: Bearer challenge without a realm", r->domain);
                r->auth = AUTH_BEARER;
                free(r->realm);
                free(r->service);
                r->realm = kiln_xstrdup(bearer->realm);
                r->service = bearer->service ? kiln_xstrdup(bearer->service) : NULL;
                return 0;
        }
        if (basic) {
                r->auth = AUTH_BASIC;
                return 0;
        }
        return kiln_err_set(err, KILN_ERR_AUTH, 401,
                            "%s: no supported authentication scheme in \"%s\"", r->domain,
                            ch.v && ch.n ? ch.v[0].scheme : "");
}

static bool no_tls_code(const struct kiln_err *e)
{
        return e->code == CURLE_SSL_CONNECT_ERROR || e->code == CURLE_RECV_ERROR ||
               e->code == CURLE_GOT_NOTHING;
}

/* Is there TLS at all? Asked without verifying: loading the system CA
 * store costs ~20 ms of CPU, wasted on the plain-HTTP registries that
 * loopback hosts usually are. Where TLS answers, a verified request
 * decides. */
static bool tls_missing(struct kiln_registry *r, const char *url)
{
        struct http_tls probe_tls = r->tls;
        probe_tls.insecure = true;
        probe_tls.ca_blob = NULL;
        _cleanup_http_resp_ struct http_resp pr = {0};
        struct http_req probe = {.method = "GET",
                                 .url = url,
                                 .tls = &probe_tls,
                                 .upload_fd = -1,
                                 .max_attempts = 1,
                                 .deadline = &r->deadline};
        _cleanup_err_ struct kiln_err *pe = NULL;
        if (http_do(r->token_handle, &probe, &pr, &pe) == 0 || !no_tls_code(pe))
                return false;
        kiln_debug("%s: no TLS (%s); trying plain HTTP", r->domain, pe->msg);
        return true;
}

/* First contact: GET /v2/ over HTTPS, falling back to plain HTTP where that
 * is allowed and the server does not speak TLS. */
static int ping_locked(struct kiln_registry *r, struct kiln_err **err)
{
        if (r->base_url)
                return 0;
        const char *schemes[] = {"https", "http"};
        for (size_t i = 0; i < 2; i++) {
                if (i == 1 && !r->allow_http)
                        break;
                _cleanup_free_ char *base = kiln_xasprintf("%s://%s", schemes[i], r->api_host);
                _cleanup_free_ char *url = kiln_xasprintf("%s/v2/", base);
                if (i == 0 && r->allow_http && !r->insecure && tls_missing(r, url))
                        continue;
                struct http_req q = {.method = "GET",
                                     .url = url,
                                     .tls = &r->tls,
                                     .upload_fd = -1,
                                     .max_attempts = r->max_attempts,
                                     .deadline = &r->deadline};
                _cleanup_http_resp_ struct http_resp resp = {0};
                _cleanup_err_ struct kiln_err *e = NULL;
                if (http_do(r->token_handle, &q, &resp, &e) < 0) {
                        if (i == 0 && r->allow_http && no_tls_code(e)) {
                                kiln_debug("%s: HTTPS failed (%s); trying plain HTTP", r->domain,
                                           e->msg);
                                continue;
                        }
                        if (e->code == CURLE_PEER_FAILED_VERIFICATION)
                                kiln_err_prefix(&e,
                                                "%s: certificate not trusted (add its CA with "
                                                "--cert-dir or SSL_CERT_FILE, or name the host "
                                                "with --insecure-registry)",
                                                r->domain);
                        *err = steal_pointer(&e);
                        return kiln_err_prefix(err, "registry %s", r->domain);
                }
                if (resp.status == 401) {
                        if (adopt_challenge(r, resp.www_authenticate, err) < 0)
                                return -1;
                } else if (resp.status == 200) {
                        r->auth = AUTH_NONE;
                } else if (resp.status == 404) {
                        return kiln_err_set(err, KILN_ERR_NETWORK, 404,
                                            "%s does not serve the registry API (GET /v2/: 404)",
                                            base);
                } else {
                        _cleanup_free_ char *t = http_error_text(&resp);
                        return kiln_err_set(err, KILN_ERR_NETWORK, (int)resp.status, "GET %s: %s",
                                            url, t);
                }
                r->base_url = steal_pointer(&base);
                r->origin = http_origin(r->base_url);
                kiln_debug("registry %s at %s, auth %s", r->domain, r->base_url,
                           r->auth == AUTH_BEARER  ? "bearer"
                           : r->auth == AUTH_BASIC ? "basic"
                                                   : "none");
                return 0;
        }
        return kiln_err_set(err, KILN_ERR_NETWORK, 0, "registry %s: no usable scheme", r->domain);
}

static const char *cached_token(struct kiln_registry *r, const char *scope)
{
        uint64_t now = kiln_now_ns();
        for (size_t i = 0; i < r->n_tokens; i++)
                if (!strcmp(r->tokens[i].scope, scope) && r->tokens[i].expires_ns > now)
                        return r->tokens[i].token;
        return NULL;
}

static void drop_token(struct kiln_registry *r, const char *scope)
{
        for (size_t i = 0; i < r->n_tokens; i++)
                if (!strcmp(r->tokens[i].scope, scope))
                        r->tokens[i].expires_ns = 0;
}

static char *url_escape(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0);
        char *out = kiln_xstrdup(e);
        curl_free(e);
        return out;
}

/* "scope=a&scope=b" for a space-separated scope list: the token protocol
 * takes one parameter per scope (a push that mounts from another repository
 * needs two). */
static char *scope_params(const char *scope)
{
        struct kiln_buf b = {0};
        _cleanup_free_ char *copy = kiln_xstrdup(scope);
        char *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                _cleanup_free_ char *e = url_escape(t);
                kiln_buf_printf(&b, "%sscope=%s", b.len ? "&" : "", e);
        }
        return kiln_buf_steal(&b);
}

/* Credentials must not leave an HTTPS registry in clear text: a realm on
 * plain HTTP would show them to anyone on the path (a downgrade a hostile
 * or misconfigured registry can ask for). A loopback realm never leaves
 * the machine, and an HTTP registry sends them in clear text anyway. */
static int realm_check(const struct kiln_registry *r, struct kiln_err **err)
{
        if (!r->have_creds || !kiln_str_has_prefix(r->base_url, "https://"))
                return 0;
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        bool clear = curl_url_set(u, CURLUPART_URL, r->realm, 0) != CURLUE_OK ||
                     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
                     curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
                     (strcasecmp(scheme, "https") != 0 && !kiln_host_is_loopback(host));
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        if (!clear)
                return 0;
        return kiln_err_set(err, KILN_ERR_AUTH, 0,
                            "%s is an HTTPS registry but its token realm %s is not HTTPS: "
                            "refusing to send the credentials from %s in clear text to a "
                            "host that is not loopback",
                            r->domain, r->realm, r->creds.source ? r->creds.source : "?");
}

static int fetch_token_locked(struct kiln_registry *r, const char *scope, struct kiln_err **err)
{
        if (load_creds(r, err) < 0 || realm_check(r, err) < 0)
                return -1;
        _cleanup_free_ char *sc = url_escape(scope);
        _cleanup_free_ char *sv = r->service ? url_escape(r->service) : NULL;
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_buf_ struct kiln_buf form = {0};
        _cleanup_free_ char *url = NULL;
        _cleanup_free_ char *authz = NULL;
        _cleanup_free_ char *realm_origin = http_origin(r->realm);
        struct http_req q = {.tls = &r->tls,
                             .body = &body,
                             .body_max = TOKEN_BODY_MAX,
                             .max_attempts = r->max_attempts,
                             .upload_fd = -1,
                             .deadline = &r->deadline};
        _cleanup_curl_slist_ struct curl_slist *hdrs = NULL;
        if (r->have_creds && r->creds.identity_token) {
                /* OAuth2 refresh-token grant, as docker login stores it. */
                _cleanup_free_ char *rt = url_escape(r->creds.identity_token);
                kiln_buf_printf(&form,
                                "grant_type=refresh_token&client_id=kiln&scope=%s&refresh_token=%s",
                                sc, rt);
                if (sv)
                        kiln_buf_printf(&form, "&service=%s", sv);
                url = kiln_xstrdup(r->realm);
                q.method = "POST";
                q.upload = form.data;
                q.upload_len = form.len;
                /* A redirect would carry the form, refresh token included,
                 * to wherever it points. */
                q.no_redirect = true;
                hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
        } else {
                _cleanup_free_ char *params = scope_params(scope);
                url = kiln_xasprintf("%s%s%s%s%s", r->realm, strchr(r->realm, '?') ? "&" : "?",
                                     params, sv ? "&service=" : "", sv ? sv : "");
                q.method = "GET";
                if (r->have_creds) {
                        authz = basic_header(&r->creds);
                        q.authorization = authz;
                        q.auth_origin = realm_origin;
                }
        }
        q.url = url;
        q.headers = hdrs;
        _cleanup_http_resp_ struct http_resp resp = {0};
        if (http_do(r->token_handle, &q, &resp, err) < 0)
                return kiln_err_prefix(err, "token for %s", r->domain);
        if (resp.status == 401 || resp.status == 403) {
                if (r->have_creds)
                        return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                            "%s: authentication failed: the token service refused "
                                            "the credentials from %s",
                                            r->domain, r->creds.source ? r->creds.source : "?");
                return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                    "%s: authentication required and no credentials found "
                                    "(log in with an auth file or pass --creds)",
                                    r->domain);
        }
        if (resp.status != 200) {
                _cleanup_free_ char *t = http_error_text(&resp);
                return kiln_err_set(err, KILN_ERR_AUTH, 0, "%s: token service: %s", r->domain, t);
        }
        _cleanup_token_ struct kiln_token tok = {0};
        if (kiln_token_parse(body.data, body.len, &tok, err) < 0)
                return kiln_err_prefix(err, "%s: the answer of token service %s", r->domain,
                                       r->realm);
        /* Renew a little early so a token never expires in flight. */
        long life = tok.expires_in > 20 ? tok.expires_in - 10 : tok.expires_in;
        r->tokens = kiln_xrealloc(r->tokens, (r->n_tokens + 1) * sizeof(*r->tokens));
        r->tokens[r->n_tokens].scope = kiln_xstrdup(scope);
        r->tokens[r->n_tokens].token = steal_pointer(&tok.token);
        r->tokens[r->n_tokens].expires_ns = kiln_now_ns() + (uint64_t)life * 1000000000ull;
        r->n_tokens++;
        return 0;
}

/* The Authorization value for scope, fetching a token when needed. */
static int authorization_locked(struct kiln_registry *r, const char *scope, char **out,
                                struct kiln_err **err)
{
        *out = NULL;
        if (r->auth == AUTH_BASIC) {
                if (load_creds(r, err) < 0)
                        return -1;
                if (r->have_creds)
                        *out = basic_header(&r->creds);
                return 0;
        }
        if (r->auth != AUTH_BEARER)
                return 0;
        const char *t = cached_token(r, scope);
        if (!t) {
                if (fetch_token_locked(r, scope, err) < 0)
                        return -1;
                t = cached_token(r, scope);
        }
        *out = t ? kiln_xasprintf("Bearer %s", t) : NULL;
        return 0;
}

/* A 401 to a request: the scope's token is dropped and the challenge
 * taken afresh (with credentials loaded for Basic). */
static int readopt_locked(struct kiln_registry *r, const char *scope, const char *header,
                          struct kiln_err **err)
{
        drop_token(r, scope);
        if (adopt_challenge(r, header, err) < 0)
                return -1;
        if (r->auth == AUTH_BASIC)
                return load_creds(r, err);
        return 0;
}

int registry_request(struct kiln_registry *r, CURL *h, const char *scope, struct http_req *q,
                     struct http_resp *resp, struct kiln_err **err)
{
        pthread_mutex_lock(&r->lock);
        int rc = ping_locked(r, err);
        pthread_mutex_unlock(&r->lock);
        if (rc < 0)
                return -1;
        for (int round = 0;; round++) {
                _cleanup_free_ char *authz = NULL;
                /* Upload locations come back as absolute URLs. */
                bool absolute = kiln_str_has_prefix(q->url, "http://") ||
                                kiln_str_has_prefix(q->url, "https://");
                _cleanup_free_ char *url =
                    absolute ? kiln_xstrdup(q->url) : kiln_xasprintf("%s%s", r->base_url, q->url);
                const char *path = q->url;
                pthread_mutex_lock(&r->lock);
                rc = authorization_locked(r, scope, &authz, err);
                pthread_mutex_unlock(&r->lock);
                if (rc < 0)
                        return -1;
                q->url = url;
                q->tls = &r->tls;
                q->authorization = authz;
                q->auth_origin = r->origin;
                q->deadline = &r->deadline;
                if (!q->max_attempts)
                        q->max_attempts = r->max_attempts;
                rc = http_do(h, q, resp, err);
                q->url = path;
                q->authorization = NULL;
                if (rc < 0)
                        return -1;
                if (resp->status != 401)
                        return 0;
                if (round > 0 || (authz && r->auth == AUTH_BASIC)) {
                        if (r->auth == AUTH_BASIC && r->have_creds)
                                return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                                    "%s: authentication failed: the registry "
                                                    "refused the credentials from %s",
                                                    r->domain,
                                                    r->creds.source ? r->creds.source : "?");
                        if (!r->have_creds)
                                return kiln_err_set(err, KILN_ERR_AUTH, 401,
                                                    "%s: authentication required and no "
                                                    "credentials found (log in with an auth file "
                                                    "or pass --creds)",
                                                    r->domain);
                        _cleanup_free_ char *t = http_error_text(resp);
                        return kiln_err_set(err, KILN_ERR_AUTH, 401, "%s: access denied to %s: %s",
                                            r->domain, scope, t);
                }
                /* The token expired, lacked the scope, or the registry wants
                 * auth although /v2/ did not: take the fresh challenge and
                 * try once more. */
                pthread_mutex_lock(&r->lock);
                rc = readopt_locked(r, scope, resp->www_authenticate, err);
                pthread_mutex_unlock(&r->lock);
                if (rc < 0)
                        return -1;
        }
}

char *registry_scope(const char *repo, const char *actions)
{
        return kiln_xasprintf("repository:%s:%s", repo, actions);
}
