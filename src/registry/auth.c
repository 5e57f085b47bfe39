/* Registry authentication without the network: WWW-Authenticate challenges,
 * token responses, and credential lookup in auth files and credential
 * helpers. Nothing here may put a password or token into an error message. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kiln/registry.h"

#define AUTH_FILE_MAX     (1024 * 1024)
#define TOKEN_BODY_MAX    (1024 * 1024)
#define HELPER_STDOUT_MAX (64 * 1024)
#define HELPER_STDERR_MAX 4096
/* A helper may wait for a keyring unlock, but must not hang kiln forever. */
#define HELPER_TIMEOUT_MS (120 * 1000)
/* distribution token spec: tokens live at least 60 seconds; Docker raises
 * shorter lifetimes to this minimum. */
#define TOKEN_MIN_EXPIRES 60

static void free_secret(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* ---------- WWW-Authenticate ---------- */

/* RFC 7230 tchar */
static bool is_tchar(char c)
{
        return isascii((unsigned char)c) &&
               (isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c)));
}

static bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

static const char *skip_ows(const char *p)
{
        while (is_ows(*p))
                p++;
        return p;
}

static size_t token_len(const char *p)
{
        size_t n = 0;
        while (is_tchar(p[n]))
                n++;
        return n;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static size_t token68_len(const char *p)
{
        size_t n = 0;
        while (isascii((unsigned char)p[n]) &&
               (isalnum((unsigned char)p[n]) || (p[n] && strchr("-._~+/", p[n]))))
                n++;
        if (n == 0)
                return 0;
        while (p[n] == '=')
                n++;
        return n;
}

/* Is p the start of "name BWS = " (an auth-param rather than a new scheme
 * or a token68)? */
static bool at_auth_param(const char *p)
{
        size_t n = token_len(p);
        if (n == 0)
                return false;
        const char *q = skip_ows(p + n);
        if (*q != '=')
                return false;
        q = skip_ows(q + 1);
        /* "abc==" is a token68, "abc=" followed by end/comma is too. */
        return *q && *q != '=' && *q != ',';
}

static void challenge_set(struct kiln_challenge *c, const char *name, char *value)
{
        char **slot = NULL;
        if (!strcmp(name, "realm"))
                slot = &c->realm;
        else if (!strcmp(name, "service"))
                slot = &c->service;
        else if (!strcmp(name, "scope"))
                slot = &c->scope;
        else if (!strcmp(name, "error"))
                slot = &c->error;
        /* RFC 7235 allows each parameter once; keep the first. */
        if (slot && !*slot)
                *slot = value;
        else
                free(value);
}

static int challenge_fail(struct kiln_err **err, const char *header, const char *reason)
{
        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                            "malformed WWW-Authenticate header \"%.200s\": %s", header, reason);
}

int kiln_challenges_parse(const char *header, struct kiln_challenge **out, size_t *n,
                          struct kiln_err **err)
{
        *out = NULL;
        *n = 0;
        if (!header)
                header = "";
        _cleanup_challenges_ struct kiln_challenges list = {0};
        const char *p = header;

        for (;;) {
                while (is_ows(*p) || *p == ',')
                        p++;
                if (!*p)
                        break;
                size_t sl = token_len(p);
                if (sl == 0)
                        return challenge_fail(err, header, "expected an authentication scheme");
                list.v = kiln_xrealloc(list.v, (list.n + 1) * sizeof(*list.v));
                struct kiln_challenge *c = &list.v[list.n++];
                memset(c, 0, sizeof(*c));
                c->scheme = kiln_xstrndup(p, sl);
                p += sl;
                if (*p && !is_ows(*p) && *p != ',')
                        return challenge_fail(err, header, "expected a space after the scheme");
                p = skip_ows(p);
                if (*p && *p != ',' && !at_auth_param(p)) {
                        size_t tl = token68_len(p);
                        if (tl > 0) {
                                /* token68 credentials carry nothing kiln uses. */
                                p = skip_ows(p + tl);
                                if (*p && *p != ',')
                                        return challenge_fail(err, header,
                                                              "unexpected text after token68");
                                continue;
                        }
                }
                /* auth-params, comma separated, until the next scheme */
                for (;;) {
                        const char *q = p;
                        while (is_ows(*q) || *q == ',')
                                q++;
                        if (!*q) {
                                p = q;
                                break;
                        }
                        if (!at_auth_param(q)) {
                                if (token_len(q) == 0)
                                        return challenge_fail(err, header,
                                                              "expected a parameter name");
                                /* a token not followed by '=': the next challenge */
                                p = q;
                                break;
                        }
                        size_t nl = token_len(q);
                        _cleanup_free_ char *name = kiln_xstrndup(q, nl);
                        for (char *x = name; *x; x++)
                                *x = (char)tolower((unsigned char)*x);
                        q = skip_ows(skip_ows(q + nl) + 1); /* past '=' */
                        _cleanup_buf_ struct kiln_buf value = {0};
                        if (*q == '"') {
                                q++;
                                for (;;) {
                                        if (!*q)
                                                return challenge_fail(err, header,
                                                                      "unterminated quoted string");
                                        if (*q == '"')
                                                break;
                                        if (*q == '\\') {
                                                q++;
                                                if (!*q)
                                                        return challenge_fail(
                                                            err, header,
                                                            "unterminated quoted string");
                                        }
                                        kiln_buf_append(&value, q, 1);
                                        q++;
                                }
                                q++;
                                if (!value.data)
                                        kiln_buf_append(&value, "", 0);
                        } else {
                                size_t vl = token_len(q);
                                if (vl == 0)
                                        return challenge_fail(err, header,
                                                              "expected a parameter value");
                                kiln_buf_append(&value, q, vl);
                                q += vl;
                        }
                        challenge_set(c, name, kiln_buf_steal(&value));
                        q = skip_ows(q);
                        if (*q && *q != ',')
                                return challenge_fail(err, header,
                                                      "expected ',' between parameters");
                        p = q;
                }
        }
        if (list.n == 0)
                return challenge_fail(err, header, "no challenge");
        *out = list.v;
        *n = list.n;
        list = (struct kiln_challenges){0};
        return 0;
}

void kiln_challenges_free(struct kiln_challenge *c, size_t n)
{
        if (!c)
                return;
        for (size_t i = 0; i < n; i++) {
                free(c[i].scheme);
                free(c[i].realm);
                free(c[i].service);
                free(c[i].scope);
                free(c[i].error);
        }
        free(c);
}

void kiln_challenges_release(struct kiln_challenges *l)
{
        kiln_challenges_free(l->v, l->n);
        *l = (struct kiln_challenges){0};
}

bool kiln_challenge_is(const struct kiln_challenge *c, const char *scheme)
{
        return c && c->scheme && !strcasecmp(c->scheme, scheme);
}

/* ---------- token responses ---------- */

/* The token goes into "Authorization: Bearer <token>" as it is: a CR or LF
 * would end that header and start others of the token server's choosing.
 * RFC 6750 tokens are token68; any printable ASCII without spaces is
 * accepted (Go clients take even more), nothing else. The token itself is
 * never quoted: only where and what the offending byte is. */
static int token_check(const char *tok, struct kiln_err **err)
{
        for (const unsigned char *c = (const unsigned char *)tok; *c; c++)
                if (*c < 0x21 || *c > 0x7e)
                        return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                            "the token holds byte 0x%02x at offset %zu: a token "
                                            "must be printable ASCII without spaces (token68), as "
                                            "it is sent in a request header",
                                            *c, (size_t)(c - (const unsigned char *)tok));
        return 0;
}

int kiln_token_parse(const char *body, size_t len, struct kiln_token *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!body)
                body = "", len = 0;
        if (len > TOKEN_BODY_MAX)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "token response is larger than the %d-byte limit",
                                    TOKEN_BODY_MAX);
        json_error_t jerr;
        _cleanup_json_ json_t *root = json_loadb(body, len, 0, &jerr);
        /* jerr.text can quote the body (which holds the token): position only. */
        if (!root)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "token response is not valid JSON (line %d, column %d)",
                                    jerr.line, jerr.column);
        if (!json_is_object(root))
                return kiln_err_set(err, KILN_ERR_AUTH, 0, "token response is not a JSON object");
        const char *tok = json_string_value(json_object_get(root, "token"));
        if (!tok || !*tok)
                tok = json_string_value(json_object_get(root, "access_token"));
        if (!tok || !*tok)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "token response has no \"token\" or \"access_token\"");
        json_t *exp = json_object_get(root, "expires_in");
        long expires = TOKEN_MIN_EXPIRES;
        if (json_is_integer(exp))
                expires =
                    json_integer_value(exp) > LONG_MAX ? LONG_MAX : (long)json_integer_value(exp);
        else if (json_is_real(exp) && json_real_value(exp) > TOKEN_MIN_EXPIRES &&
                 json_real_value(exp) < (double)LONG_MAX)
                /* Bounded both ways: converting a double outside long's range is
                 * undefined (-1e82 from a hostile token server). */
                expires = (long)json_real_value(exp);
        if (expires < TOKEN_MIN_EXPIRES)
                expires = TOKEN_MIN_EXPIRES;
        if (token_check(tok, err) < 0)
                return -1;
        out->token = kiln_xstrdup(tok);
        out->expires_in = expires;
        return 0;
}

void kiln_token_release(struct kiln_token *t)
{
        if (!t)
                return;
        free_secret(t->token);
        t->token = NULL;
}

void kiln_creds_release(struct kiln_creds *c)
{
        if (!c)
                return;
        free(c->username);
        free_secret(c->password);
        free_secret(c->identity_token);
        free(c->source);
        memset(c, 0, sizeof(*c));
}

/* ---------- credential helpers ---------- */

static bool helper_name_valid(const char *name)
{
        if (!*name)
                return false;
        for (const char *c = name; *c; c++)
                if (!isascii((unsigned char)*c) ||
                    !(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-'))
                        return false;
        return true;
}

static char *find_on_path(const char *prog)
{
        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        _cleanup_free_ char *copy = kiln_xstrdup(path);
        char *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                if (!*dir)
                        continue;
                _cleanup_free_ char *full = kiln_xasprintf("%s/%s", dir, prog);
                struct stat st;
                if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
                        return steal_pointer(&full);
        }
        return NULL;
}

/* Reads what fits under max and drains the rest, so a chatty child can't
 * block on a full pipe. Returns true if output was cut. */
static bool drain_into(int fd, struct kiln_buf *b, size_t max, bool *eof)
{
        char chunk[4096];
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
                return false;
        if (r <= 0) {
                *eof = true;
                return false;
        }
        size_t room = b->len < max ? max - b->len : 0;
        kiln_buf_append(b, chunk, (size_t)r < room ? (size_t)r : room);
        return (size_t)r > room;
}

static void first_line(const char *s, char *out, size_t n)
{
        while (*s && isspace((unsigned char)*s))
                s++;
        size_t l = strcspn(s, "\r\n");
        if (l >= n)
                l = n - 1;
        memcpy(out, s, l);
        out[l] = '\0';
}

/* A socket pair and a pipe, close-on-exec, each as two fds the caller
 * owns: ours, and the helper's. -1 with errno set. */
static int socket_pair(int *ours, int *child)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return -1;
        *ours = sp[0];
        *child = sp[1];
        return 0;
}

static int pipe_pair(int *rd, int *wr)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        *rd = p[0];
        *wr = p[1];
        return 0;
}

int kiln_creds_from_helper(const char *helper, const char *host, struct kiln_creds *out,
                           bool *found, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        *found = false;
        if (!helper_name_valid(helper))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "invalid credential helper name \"%s\": only letters, digits, "
                                    "'_', '.' and '-' are allowed",
                                    helper);
        _cleanup_free_ char *prog = kiln_xasprintf("docker-credential-%s", helper);
        _cleanup_free_ char *exe = find_on_path(prog);
        if (!exe)
                return kiln_err_set(err, KILN_ERR_AUTH, 0, "credential helper %s not found on PATH",
                                    prog);

        /* stdin is a socket so a helper that exits without reading can't kill
         * us with SIGPIPE (send with MSG_NOSIGNAL). Our ends and the
         * helper's: each closed at scope exit unless closed before. */
        _cleanup_close_ int in_fd = -1, in_child = -1;
        _cleanup_close_ int out_fd = -1, out_child = -1;
        _cleanup_close_ int err_fd = -1, err_child = -1;
        if (socket_pair(&in_fd, &in_child) < 0 || pipe_pair(&out_fd, &out_child) < 0 ||
            pipe_pair(&err_fd, &err_child) < 0)
                return kiln_err_sys(err, "run %s", prog);
        char *argv[] = {prog, (char *)"get", NULL};
        pid_t pid = fork();
        if (pid < 0)
                return kiln_err_sys(err, "run %s", prog);
        if (pid == 0) {
                /* async-signal-safe only; never returns, so no cleanup runs here */
                if (dup2(in_child, 0) < 0 || dup2(out_child, 1) < 0 || dup2(err_child, 2) < 0)
                        _exit(127);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                execv(exe, argv);
                _exit(127);
        }
        close(steal_fd(&in_child));
        close(steal_fd(&out_child));
        close(steal_fd(&err_child));

        size_t hl = strlen(host);
        const char *hp = host;
        while (hl > 0) {
                ssize_t w = send(in_fd, hp, hl, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break; /* the helper's exit status tells what happened */
                hp += w;
                hl -= (size_t)w;
        }
        shutdown(in_fd, SHUT_WR);
        close(steal_fd(&in_fd));

        _cleanup_buf_ struct kiln_buf sout = {0};
        _cleanup_buf_ struct kiln_buf serr = {0};
        bool out_eof = false, err_eof = false, too_big = false, timed_out = false;
        uint64_t deadline = kiln_now_ns() + (uint64_t)HELPER_TIMEOUT_MS * 1000000u;
        while (!out_eof || !err_eof) {
                struct pollfd pfd[2] = {{out_eof ? -1 : out_fd, POLLIN, 0},
                                        {err_eof ? -1 : err_fd, POLLIN, 0}};
                uint64_t now = kiln_now_ns();
                if (now >= deadline) {
                        timed_out = true;
                        break;
                }
                int pr = poll(pfd, 2, (int)((deadline - now) / 1000000u) + 1);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr < 0)
                        break;
                if (!out_eof && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        too_big |= drain_into(out_fd, &sout, HELPER_STDOUT_MAX, &out_eof);
                if (!err_eof && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
                        drain_into(err_fd, &serr, HELPER_STDERR_MAX, &err_eof);
                if (too_big)
                        break;
        }
        if (too_big || timed_out)
                kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return kiln_err_sys(err, "wait for %s", prog);
        if (timed_out)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "credential helper %s did not answer within %d seconds", prog,
                                    HELPER_TIMEOUT_MS / 1000);
        if (too_big)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "credential helper %s: output larger than the %d-byte limit",
                                    prog, HELPER_STDOUT_MAX);
        if (!sout.data)
                kiln_buf_append(&sout, "", 0);
        if (!serr.data)
                kiln_buf_append(&serr, "", 0);

        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                /* docker-credential-helpers' ErrCredentialsNotFound text */
                if (strcasestr(sout.data, "credentials not found") ||
                    strcasestr(serr.data, "credentials not found"))
                        return 0;
                char line[256];
                first_line(serr.data, line, sizeof(line));
                if (WIFEXITED(status))
                        return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                            "credential helper %s failed (exit status %d)%s%s",
                                            prog, WEXITSTATUS(status), *line ? ": " : "", line);
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "credential helper %s was killed by signal %d", prog,
                                    WTERMSIG(status));
        }

        _cleanup_json_ json_t *root = json_loadb(sout.data, sout.len, 0, NULL);
        const char *user = json_string_value(json_object_get(root, "Username"));
        const char *secret = json_string_value(json_object_get(root, "Secret"));
        if (!json_is_object(root) || !secret)
                return kiln_err_set(err, KILN_ERR_AUTH, 0,
                                    "credential helper %s returned malformed output (want JSON "
                                    "with \"Username\" and \"Secret\")",
                                    prog);
        if (!*secret && (!user || !*user))
                return 0; /* some helpers answer empty credentials for unknown hosts */
        out->username = kiln_xstrdup(user ? user : "");
        out->password = kiln_xstrdup(secret);
        if (user && !strcmp(user, "<token>"))
                out->identity_token = kiln_xstrdup(secret);
        out->source = kiln_xstrdup(prog);
        *found = true;
        return 0;
}

/* ---------- auth files ---------- */

/* Docker Hub answers to several names; credentials stored under any of them
 * are the same account. */
static bool is_docker_hub(const char *h)
{
        return !strcasecmp(h, "docker.io") || !strcasecmp(h, "index.docker.io") ||
               !strcasecmp(h, "registry-1.docker.io");
}

/* "https://host/v1/" -> "host", like Docker's ConvertToHostname. */
static char *normalize_key(const char *key)
{
        if (kiln_str_case_prefix(key, "https://"))
                key += 8;
        else if (kiln_str_case_prefix(key, "http://"))
                key += 7;
        return kiln_xstrndup(key, strcspn(key, "/"));
}

static bool host_matches(const char *key, const char *host)
{
        _cleanup_free_ char *k = normalize_key(key);
        if (!strcasecmp(k, host))
                return true;
        return is_docker_hub(host) && is_docker_hub(k);
}

static int entry_to_creds(const char *file, const char *key, json_t *entry, struct kiln_creds *out,
                          bool *found, struct kiln_err **err)
{
        if (!json_is_object(entry))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: auths[\"%s\"] is not an object",
                                    file, key);
        const char *auth = json_string_value(json_object_get(entry, "auth"));
        const char *user = json_string_value(json_object_get(entry, "username"));
        const char *pass = json_string_value(json_object_get(entry, "password"));
        const char *idt = json_string_value(json_object_get(entry, "identitytoken"));
        if (auth && *auth) {
                _cleanup_buf_ struct kiln_buf dec = {0};
                if (kiln_base64_decode(auth, &dec) < 0) {
                        kiln_buf_release(&dec);
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: auths[\"%s\"].auth is not valid base64", file,
                                            key);
                }
                char *colon = memchr(dec.data, ':', dec.len);
                if (!colon || strlen(dec.data) != dec.len) {
                        explicit_bzero(dec.data, dec.len);
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: auths[\"%s\"].auth is not base64 of "
                                            "\"user:password\"",
                                            file, key);
                }
                out->username = kiln_xstrndup(dec.data, (size_t)(colon - dec.data));
                out->password = kiln_xstrdup(colon + 1);
                explicit_bzero(dec.data, dec.len);
        } else if (user && pass && (*user || *pass)) {
                out->username = kiln_xstrdup(user);
                out->password = kiln_xstrdup(pass);
        }
        if (idt && *idt)
                out->identity_token = kiln_xstrdup(idt);
        /* Docker writes empty entries ({}) when a credsStore holds the secret. */
        if (!out->username && !out->identity_token)
                return 0;
        if (!out->username && user)
                out->username = kiln_xstrdup(user);
        out->source = kiln_xstrdup(file);
        *found = true;
        return 0;
}

/* The names a helper may have stored a host under: Docker CLI uses the v1
 * URL for Docker Hub, podman the bare name. */
static int helper_lookup(const char *file, const char *helper, const char *host,
                         struct kiln_creds *out, bool *found, struct kiln_err **err)
{
        const char *names[3] = {host, NULL, NULL};
        if (is_docker_hub(host)) {
                names[0] = "https://index.docker.io/v1/";
                names[1] = host;
        }
        for (size_t i = 0; names[i]; i++) {
                if (kiln_creds_from_helper(helper, names[i], out, found, err) < 0)
                        return kiln_err_prefix(err, "%s", file);
                if (*found)
                        return 0;
        }
        return 0;
}

/* Returns 0 with *found set, or -1. A missing file is simply not a hit. */
static int lookup_file(const char *file, const char *host, struct kiln_creds *out, bool *found,
                       struct kiln_err **err)
{
        *found = false;
        _cleanup_buf_ struct kiln_buf data = {0};
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                return kiln_err_sys(err, "open auth file %s", file);
        }
        if (kiln_read_fd(fd, file, AUTH_FILE_MAX, &data, err) < 0)
                return -1;
        json_error_t jerr;
        _cleanup_json_ json_t *root = json_loadb(data.data, data.len, 0, &jerr);
        explicit_bzero(data.data, data.len);
        /* jerr.text may quote file content, which holds secrets. */
        if (!root)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "auth file %s: invalid JSON (line %d, column %d)", file,
                                    jerr.line, jerr.column);
        if (!json_is_object(root))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "auth file %s: top level is not a JSON object", file);

        json_t *helpers = json_object_get(root, "credHelpers");
        if (helpers && !json_is_object(helpers))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "auth file %s: \"credHelpers\" is not an object", file);
        const char *hkey;
        json_t *hval;
        json_object_foreach(helpers, hkey, hval)
        {
                if (!host_matches(hkey, host))
                        continue;
                if (!json_is_string(hval))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "auth file %s: credHelpers[\"%s\"] is not a string",
                                            file, hkey);
                if (helper_lookup(file, json_string_value(hval), host, out, found, err) < 0)
                        return -1;
                if (*found)
                        return 0;
                break;
        }

        json_t *auths = json_object_get(root, "auths");
        if (auths && !json_is_object(auths))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "auth file %s: \"auths\" is not an object", file);
        /* The key exactly as written wins over normalised matches. */
        json_t *exact = NULL;
        const char *akey;
        json_t *aval;
        json_object_foreach(auths, akey, aval)
        {
                if (!strcasecmp(akey, host)) {
                        exact = aval;
                        if (entry_to_creds(file, akey, aval, out, found, err) < 0)
                                return -1;
                        if (*found)
                                return 0;
                        kiln_creds_release(out);
                }
        }
        json_object_foreach(auths, akey, aval)
        {
                if (aval == exact || !host_matches(akey, host))
                        continue;
                if (entry_to_creds(file, akey, aval, out, found, err) < 0)
                        return -1;
                if (*found)
                        return 0;
                kiln_creds_release(out);
        }

        json_t *store = json_object_get(root, "credsStore");
        if (store && !json_is_string(store))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "auth file %s: \"credsStore\" is not a string", file);
        if (store && *json_string_value(store))
                return helper_lookup(file, json_string_value(store), host, out, found, err);
        return 0;
}

static const char *env_nonempty(const char *name)
{
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

int kiln_creds_lookup(const char *host, struct kiln_creds *out, bool *found, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        *found = false;
        _cleanup_strv_ char **files = kiln_xcalloc(4, sizeof(char *));
        size_t nf = 0;
        const char *v;
        if ((v = env_nonempty("REGISTRY_AUTH_FILE")))
                files[nf++] = kiln_xstrdup(v);
        if ((v = env_nonempty("XDG_RUNTIME_DIR")))
                files[nf++] = kiln_xasprintf("%s/containers/auth.json", v);
        if ((v = env_nonempty("DOCKER_CONFIG"))) {
                files[nf++] = kiln_xasprintf("%s/config.json", v);
        } else {
                const char *home = env_nonempty("HOME");
                if (!home) {
                        struct passwd *pw = getpwuid(getuid());
                        home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
                }
                if (home)
                        files[nf++] = kiln_xasprintf("%s/.docker/config.json", home);
        }
        for (size_t i = 0; i < nf && !*found; i++) {
                if (lookup_file(files[i], host, out, found, err) < 0) {
                        kiln_creds_release(out);
                        *found = false;
                        return -1;
                }
                if (!*found)
                        kiln_creds_release(out);
        }
        return 0;
}
