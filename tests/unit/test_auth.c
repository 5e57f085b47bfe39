#include <string.h>
#include <sys/stat.h>

#include "kiln/registry.h"
#include "test.h"

/* ---------- base64 ---------- */

static void test_base64(void)
{
        static const struct {
                const char *plain, *enc;
        } vec[] = {
            /* RFC 4648 section 10 */
            {"", ""},
            {"f", "Zg=="},
            {"fo", "Zm8="},
            {"foo", "Zm9v"},
            {"foob", "Zm9vYg=="},
            {"fooba", "Zm9vYmE="},
            {"foobar", "Zm9vYmFy"},
            {"user:pa:ss", "dXNlcjpwYTpzcw=="},
        };
        for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
                _cleanup_free_ char *e = kiln_base64_encode(vec[i].plain, strlen(vec[i].plain));
                CHECK_STR(e, vec[i].enc);
                _cleanup_buf_ struct kiln_buf d = {0};
                CHECK(kiln_base64_decode(vec[i].enc, &d) == 0, "decode %s", vec[i].enc);
                CHECK(d.len == strlen(vec[i].plain) && !memcmp(d.data, vec[i].plain, d.len),
                      "decode %s", vec[i].enc);
        }
        static const unsigned char bin[] = {0xfb, 0xff, 0x00, 0x3e};
        _cleanup_free_ char *be = kiln_base64_encode(bin, sizeof(bin));
        CHECK_STR(be, "+/8APg==");

        static const struct {
                const char *in;
                int ok;
                const char *want;
                size_t wlen;
        } dec[] = {
            {"Zm9vYg", 1, "foob", 4}, /* padding optional */
            {"Zm9vYmE", 1, "fooba", 5},
            {"-_8APg", 1, "\xfb\xff\x00\x3e", 4}, /* url-safe */
            {"+/8APg==", 1, "\xfb\xff\x00\x3e", 4},
            {"Zm9v!", 0, NULL, 0},
            {"Zm9v Zm9v", 0, NULL, 0},
            {"Z", 0, NULL, 0},
            {"Zm9vY", 0, NULL, 0},
            {"Zg===", 0, NULL, 0},
            {"Zg=a", 0, NULL, 0},
            {"Zg=", 0, NULL, 0}, /* padded but not a multiple of 4 */
            {"Z=g=", 0, NULL, 0},
            {"====", 0, NULL, 0},
        };
        for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
                _cleanup_buf_ struct kiln_buf d = {0};
                int rc = kiln_base64_decode(dec[i].in, &d);
                CHECK((rc == 0) == dec[i].ok, "decode(%s) = %d", dec[i].in, rc);
                if (rc == 0 && dec[i].want)
                        CHECK(d.len == dec[i].wlen && !memcmp(d.data, dec[i].want, d.len),
                              "decode(%s) bytes", dec[i].in);
        }
}

/* ---------- challenges ---------- */

struct ch_want {
        const char *scheme, *realm, *service, *scope, *error;
};

static void test_challenges(void)
{
        static const struct {
                const char *in;
                int n; /* -1: must fail */
                struct ch_want c[3];
        } rows[] = {
            {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
             "scope=\"repository:library/debian:pull\"",
             1,
             {{"Bearer", "https://auth.docker.io/token", "registry.docker.io",
               "repository:library/debian:pull", NULL}}},
            {"Basic realm=\"Registry Realm\"", 1, {{"Basic", "Registry Realm", NULL, NULL, NULL}}},
            {"Basic realm=\"a\", Bearer realm=\"b\",service=\"c\"",
             2,
             {{"Basic", "a", NULL, NULL, NULL}, {"Bearer", "b", "c", NULL, NULL}}},
            {"bearer realm=unquoted,service=\"x\",error=\"insufficient_scope\"",
             1,
             {{"bearer", "unquoted", "x", NULL, "insufficient_scope"}}},
            {"Bearer realm=\"r\",scope=\"repository:a:pull,push repository:b:pull\"",
             1,
             {{"Bearer", "r", NULL, "repository:a:pull,push repository:b:pull", NULL}}},
            {"BASIC REALM=\"X\"", 1, {{"BASIC", "X", NULL, NULL, NULL}}},
            {"Bearer realm=\"a \\\"quoted\\\" \\\\ string\"",
             1,
             {{"Bearer", "a \"quoted\" \\ string", NULL, NULL, NULL}}},
            {"  Bearer   realm = \"r\" ,  service = s  ", 1, {{"Bearer", "r", "s", NULL, NULL}}},
            {"Bearer realm=\"\"", 1, {{"Bearer", "", NULL, NULL, NULL}}},
            {"Basic", 1, {{"Basic", NULL, NULL, NULL, NULL}}},
            {"Basic, Bearer realm=x",
             2,
             {{"Basic", NULL, NULL, NULL, NULL}, {"Bearer", "x", NULL, NULL, NULL}}},
            {"Negotiate abc123==, Basic realm=\"b\"",
             2,
             {{"Negotiate", NULL, NULL, NULL, NULL}, {"Basic", "b", NULL, NULL, NULL}}},
            {"Bearer realm=\"a\",realm=\"b\",foo=bar", 1, {{"Bearer", "a", NULL, NULL, NULL}}},
            {"Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", Basic "
             "realm=\"simple\"",
             2,
             {{"Newauth", "apps", NULL, NULL, NULL}, {"Basic", "simple", NULL, NULL, NULL}}},
            {"Basic realm=\"a\",,, Bearer realm=\"b\"",
             2,
             {{"Basic", "a", NULL, NULL, NULL}, {"Bearer", "b", NULL, NULL, NULL}}},
            /* malformed */
            {"", -1, {{0}}},
            {"   ", -1, {{0}}},
            {"Bearer realm=\"unterminated", -1, {{0}}},
            {"Bearer realm=\"ends in backslash\\", -1, {{0}}},
            /* "realm=" is syntactically a token68 (RFC 7235), not a parameter */
            {"Bearer realm=", 1, {{"Bearer", NULL, NULL, NULL, NULL}}},
            {"Bearer realm=,service=x", -1, {{0}}},
            {"Bearer realm=\"a\" service=\"b\"", -1, {{0}}},
            {"\"quoted\" realm=x", -1, {{0}}},
            {"Bearer realm=a b", -1, {{0}}},
            {"Bearer=x", -1, {{0}}},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kiln_challenge *c = NULL;
                size_t n = 99;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_challenges_parse(rows[i].in, &c, &n, &err);
                if (rows[i].n < 0) {
                        CHECK(rc < 0, "challenges(%s) should fail", rows[i].in);
                        CHECK(c == NULL && n == 0, "no output on failure");
                        CHECK(err && strstr(err->msg, "WWW-Authenticate"), "error message: %s",
                              err ? err->msg : "");
                        kiln_challenges_free(c, n);
                        continue;
                }
                CHECK(rc == 0, "challenges(%s): %s", rows[i].in, err ? err->msg : "");
                CHECK(n == (size_t)rows[i].n, "challenges(%s): n=%zu want %d", rows[i].in, n,
                      rows[i].n);
                for (size_t j = 0; rc == 0 && j < n && j < (size_t)rows[i].n; j++) {
                        CHECK_STR(c[j].scheme, rows[i].c[j].scheme);
                        CHECK_STR(c[j].realm, rows[i].c[j].realm);
                        CHECK_STR(c[j].service, rows[i].c[j].service);
                        CHECK_STR(c[j].scope, rows[i].c[j].scope);
                        CHECK_STR(c[j].error, rows[i].c[j].error);
                }
                kiln_challenges_free(c, n);
        }

        struct kiln_challenge *c = NULL;
        size_t n = 0;
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_challenges_parse("bEaReR realm=x", &c, &n, &err) == 0, "parse");
        CHECK(kiln_challenge_is(&c[0], "Bearer"), "case-insensitive scheme");
        CHECK(!kiln_challenge_is(&c[0], "Basic"), "scheme mismatch");
        kiln_challenges_free(c, n);
}

/* ---------- tokens ---------- */

static void test_tokens(void)
{
        static const struct {
                const char *body;
                const char *token; /* NULL: must fail */
                long expires;
                enum kiln_err_domain dom;
        } rows[] = {
            {"{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2024-01-01T00:00:00Z\"}", "abc",
             300, 0},
            {"{\"token\":\"abc\"}", "abc", 60, 0},
            {"{\"access_token\":\"xyz\",\"expires_in\":3600}", "xyz", 3600, 0},
            {"{\"token\":\"t1\",\"access_token\":\"t2\"}", "t1", 60, 0},
            {"{\"token\":\"\",\"access_token\":\"t2\"}", "t2", 60, 0},
            {"{\"token\":\"abc\",\"expires_in\":10}", "abc", 60, 0},
            {"{\"token\":\"abc\",\"expires_in\":-5}", "abc", 60, 0},
            {"{\"token\":\"abc\",\"expires_in\":120.7}", "abc", 120, 0},
            {"{\"token\":\"abc\",\"expires_in\":\"300\"}", "abc", 60, 0},
            {"{\"expires_in\":300,\"secretish\":\"s3cr3t-body\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":42}", NULL, 0, KILN_ERR_AUTH},
            {"[\"s3cr3t-body\"]", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t-body\"", NULL, 0, KILN_ERR_AUTH},
            {"s3cr3t-body", NULL, 0, KILN_ERR_AUTH},
            {"", NULL, 0, KILN_ERR_AUTH},
            /* token68, and the printable ASCII some token services use */
            {"{\"token\":\"eyJhbGciOi.eyJpc3Mi_-~+/.sig==\"}", "eyJhbGciOi.eyJpc3Mi_-~+/.sig==", 60,
             0},
            {"{\"token\":\"ya29.a0Af:%!*\"}", "ya29.a0Af:%!*", 60, 0},
            /* a byte that would end or bend the Authorization header */
            {"{\"token\":\"s3cr3t\\r\\nX-Injected: yes\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\nX-Injected: yes\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\r\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\t\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t x\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\u007f\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\u00e9\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\u0001\"}", NULL, 0, KILN_ERR_AUTH},
            {"{\"token\":\"s3cr3t\\u0000\"}", NULL, 0, KILN_ERR_AUTH},
            /* the token that is used must be clean; a clean other is no excuse */
            {"{\"token\":\"s3cr3t\\r\\n\",\"access_token\":\"ok\"}", NULL, 0, KILN_ERR_AUTH},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kiln_token t = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_token_parse(rows[i].body, strlen(rows[i].body), &t, &err);
                if (!rows[i].token) {
                        CHECK(rc < 0, "token(%s) should fail", rows[i].body);
                        CHECK(err && err->domain == rows[i].dom, "domain");
                        CHECK(err && !strstr(err->msg, "s3cr3t"), "error leaks body: %s",
                              err ? err->msg : "");
                        continue;
                }
                CHECK(rc == 0, "token(%s): %s", rows[i].body, err ? err->msg : "");
                CHECK_STR(t.token, rows[i].token);
                CHECK(t.expires_in == rows[i].expires, "expires %ld want %ld", t.expires_in,
                      rows[i].expires);
                kiln_token_release(&t);
                CHECK(t.token == NULL, "release");
        }
        /* the length given by the caller bounds the parse */
        const char *body = "{\"token\":\"abc\"}garbage";
        struct kiln_token t = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_token_parse(body, 15, &t, &err) == 0, "len-bounded parse");
        CHECK_STR(t.token, "abc");
        kiln_token_release(&t);
        _cleanup_err_ struct kiln_err *err2 = NULL;
        CHECK(kiln_token_parse(body, 2 * 1024 * 1024, &t, &err2) < 0, "over 1 MiB refused");
        /* the refusal names the byte and its place, never the token */
        const char *crlf = "{\"token\":\"s3cr3t\\r\\nX\"}";
        _cleanup_err_ struct kiln_err *err3 = NULL;
        CHECK(kiln_token_parse(crlf, strlen(crlf), &t, &err3) < 0 && t.token == NULL, "CR refused");
        CHECK(err3 && strstr(err3->msg, "byte 0x0d at offset 6") && !strstr(err3->msg, "s3cr3t"),
              "message: %s", err3 ? err3->msg : "");
}

/* ---------- credential helpers and auth files ---------- */

static char tmpdir[64];

static void write_file(const char *rel, const char *content, int mode)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/%s", tmpdir, rel);
        _cleanup_free_ char *dir = kiln_xstrdup(p);
        *strrchr(dir, '/') = '\0';
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_mkdir_p(dir, 0700, &err) == 0, "mkdir %s", dir);
        CHECK(kiln_write_file_atomic(p, content, strlen(content), mode, &err) == 0, "write %s: %s",
              p, err ? err->msg : "");
}

static char *tpath(const char *rel)
{
        return kiln_xasprintf("%s/%s", tmpdir, rel);
}

static void setup_helpers(void)
{
        /* Fake helpers log the host they were asked for, to check the name
         * kiln passes (Docker Hub is stored under its v1 URL). */
        write_file("bin/docker-credential-fake",
                   "#!/bin/sh\n"
                   "[ \"$1\" = get ] || { echo bad args >&2; exit 2; }\n"
                   "read -r host\n"
                   "echo \"$host\" >> \"$FAKE_LOG\"\n"
                   "case \"$host\" in\n"
                   "registry.example.com) echo "
                   "'{\"ServerURL\":\"registry.example.com\",\"Username\":\"alice\",\"Secret\":"
                   "\"helper-pw\"}' ;;\n"
                   "https://index.docker.io/v1/) echo "
                   "'{\"ServerURL\":\"https://index.docker.io/v1/\",\"Username\":\"hubuser\","
                   "\"Secret\":\"hub-pw\"}' ;;\n"
                   "tok.example.com) echo "
                   "'{\"ServerURL\":\"tok.example.com\",\"Username\":\"<token>\",\"Secret\":"
                   "\"refresh-tok\"}' ;;\n"
                   "*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                   "esac\n",
                   0755);
        write_file("bin/docker-credential-failing",
                   "#!/bin/sh\ncat >/dev/null\necho 'stdout-s3cr3t'\n"
                   "echo 'keyring is locked' >&2\necho 'second line' >&2\nexit 3\n",
                   0755);
        write_file("bin/docker-credential-garbage", "#!/bin/sh\necho 'not json s3cr3t'\n", 0755);
        write_file("bin/docker-credential-noread", "#!/bin/sh\nexit 4\n", 0755);
        write_file("bin/docker-credential-big",
                   "#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do echo "
                   "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; "
                   "i=$((i+1)); done\n",
                   0755);
        write_file("bin/docker-credential-noexec", "#!/bin/sh\nexit 0\n", 0644);
        _cleanup_free_ char *bin = tpath("bin");
        _cleanup_free_ char *path = kiln_xasprintf("%s:/usr/bin:/bin", bin);
        setenv("PATH", path, 1);
        _cleanup_free_ char *log = tpath("helper.log");
        setenv("FAKE_LOG", log, 1);
}

static void test_helpers(void)
{
        static const struct {
                const char *helper, *host;
                int rc;
                bool found;
                const char *user, *pass, *idt;
                const char *err_has;
        } rows[] = {
            {"fake", "registry.example.com", 0, true, "alice", "helper-pw", NULL, NULL},
            {"fake", "https://index.docker.io/v1/", 0, true, "hubuser", "hub-pw", NULL, NULL},
            {"fake", "tok.example.com", 0, true, "<token>", "refresh-tok", "refresh-tok", NULL},
            {"fake", "unknown.example.com", 0, false, NULL, NULL, NULL, NULL},
            {"failing", "x", -1, false, NULL, NULL, NULL,
             "docker-credential-failing failed (exit status 3): keyring is locked"},
            {"garbage", "x", -1, false, NULL, NULL, NULL, "malformed output"},
            {"noread", "x", -1, false, NULL, NULL, NULL, "exit status 4"},
            {"big", "x", -1, false, NULL, NULL, NULL, "limit"},
            {"missing", "x", -1, false, NULL, NULL, NULL,
             "docker-credential-missing not found on PATH"},
            {"noexec", "x", -1, false, NULL, NULL, NULL, "not found on PATH"},
            {"../fake", "x", -1, false, NULL, NULL, NULL, "invalid credential helper name"},
            {"a/b", "x", -1, false, NULL, NULL, NULL, "invalid credential helper name"},
            {"", "x", -1, false, NULL, NULL, NULL, "invalid credential helper name"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                struct kiln_creds c;
                bool found = true;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_creds_from_helper(rows[i].helper, rows[i].host, &c, &found, &err);
                CHECK(rc == rows[i].rc, "helper %s/%s rc=%d: %s", rows[i].helper, rows[i].host, rc,
                      err ? err->msg : "");
                CHECK(found == rows[i].found, "helper %s/%s found=%d", rows[i].helper, rows[i].host,
                      found);
                if (rc == 0 && found) {
                        CHECK_STR(c.username, rows[i].user);
                        CHECK_STR(c.password, rows[i].pass);
                        CHECK_STR(c.identity_token, rows[i].idt);
                        _cleanup_free_ char *src =
                            kiln_xasprintf("docker-credential-%s", rows[i].helper);
                        CHECK_STR(c.source, src);
                }
                if (rows[i].err_has) {
                        CHECK(err && strstr(err->msg, rows[i].err_has),
                              "helper error \"%s\" want \"%s\"", err ? err->msg : "",
                              rows[i].err_has);
                        bool usage =
                            strstr(rows[i].err_has, "invalid credential helper name") != NULL;
                        CHECK(err && err->domain == (usage ? KILN_ERR_USAGE : KILN_ERR_AUTH),
                              "helper error domain");
                        CHECK(err && !strstr(err->msg, "s3cr3t") && !strstr(err->msg, "second"),
                              "helper error leaks stdout or more than one line: %s",
                              err ? err->msg : "");
                }
                kiln_creds_release(&c);
        }
}

static void set_env(const char *name, const char *rel)
{
        if (!rel) {
                unsetenv(name);
                return;
        }
        _cleanup_free_ char *p = tpath(rel);
        setenv(name, p, 1);
}

static char *read_log(void)
{
        _cleanup_free_ char *p = tpath("helper.log");
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_read_file(p, 65536, &b, &err) < 0)
                return kiln_xstrdup("");
        unlink(p);
        return kiln_buf_steal(&b);
}

struct lookup_row {
        const char *what;
        const char *reg, *xdg, *dcfg, *home; /* env values relative to tmpdir, NULL: unset */
        const char *host;
        int rc;
        bool found;
        const char *user, *pass, *idt;
        const char *source; /* relative to tmpdir, or a helper name */
        const char *err_has;
        const char *helper_log; /* hosts the fake helper was asked for */
};

/* base64 of "u1:p1" etc. */
#define B64_U1      "dTE6cDE="         /* u1:p1 */
#define B64_U2      "dTI6cDI="         /* u2:p2 */
#define B64_U3      "dTM6cDM6d2l0aA==" /* u3:p3:with */
#define B64_NOCOLON "aHVudGVyMg=="     /* hunter2 */

static void setup_files(void)
{
        write_file("reg.json", "{\"auths\":{\"a.example.com\":{\"auth\":\"" B64_U1 "\"}}}", 0600);
        write_file("xdg/containers/auth.json",
                   "{\"auths\":{"
                   "\"a.example.com\":{\"auth\":\"" B64_U2 "\"},"
                   "\"b.example.com\":{\"auth\":\"" B64_U2 "\"},"
                   "\"https://c.example.com:5000/v2/\":{\"auth\":\"" B64_U3 "\"},"
                   "\"d.example.com\":{\"username\":\"du\",\"password\":\"dp\"},"
                   "\"e.example.com\":{\"identitytoken\":\"e-idtok\"},"
                   "\"Case.Example.COM\":{\"auth\":\"" B64_U1 "\"}"
                   "}}",
                   0600);
        write_file("dcfg/config.json",
                   "{\"auths\":{"
                   "\"https://index.docker.io/v1/\":{\"auth\":\"" B64_U1 "\"},"
                   "\"f.example.com\":{},"
                   "\"registry.example.com\":{\"auth\":\"" B64_U2 "\"},"
                   "\"http://g.example.com/v1/\":{\"auth\":\"" B64_U1 "\"}"
                   "},"
                   "\"credHelpers\":{\"registry.example.com\":\"fake\",\"h.example.com\":\"fake\"},"
                   "\"credsStore\":\"fake\"}",
                   0600);
        write_file("home/.docker/config.json",
                   "{\"auths\":{\"registry-1.docker.io\":{\"auth\":\"" B64_U2 "\"},"
                   "\"index.docker.io\":{\"auth\":\"" B64_U3 "\"},"
                   "\"home.example.com\":{\"auth\":\"" B64_U3 "\"}}}",
                   0600);
        write_file("home2/.docker/config.json",
                   "{\"auths\":{\"docker.io\":{\"auth\":\"" B64_U3 "\"}}}", 0600);
        write_file("home3/.docker/config.json",
                   "{\"auths\":{\"https://index.docker.io/v1/\":{}},\"credsStore\":\"fake\"}",
                   0600);
        write_file("bad/syntax.json",
                   "{\"auths\":{\"a.example.com\":{\"auth\":\"aHVudGVyMg==\" hunter2-plain}}}",
                   0600);
        write_file("bad/b64.json", "{\"auths\":{\"a.example.com\":{\"auth\":\"hunter2!!\"}}}",
                   0600);
        write_file("bad/nocolon.json",
                   "{\"auths\":{\"a.example.com\":{\"auth\":\"" B64_NOCOLON "\"}}}", 0600);
        write_file("bad/array.json", "[\"hunter2\"]", 0600);
        write_file("bad/auths.json", "{\"auths\":[]}", 0600);
        write_file("bad/failhelper.json", "{\"credHelpers\":{\"a.example.com\":\"failing\"}}",
                   0600);
        write_file("bad/empty.json", "", 0600);
}

static const struct lookup_row lookup_rows[] = {
    {"REGISTRY_AUTH_FILE first", "reg.json", "xdg", "dcfg", "home", "a.example.com", 0, true, "u1",
     "p1", NULL, "reg.json", NULL, ""},
    {"falls back to XDG", "reg.json", "xdg", "dcfg", "home", "b.example.com", 0, true, "u2", "p2",
     NULL, "xdg/containers/auth.json", NULL, ""},
    {"XDG without REGISTRY_AUTH_FILE", NULL, "xdg", "dcfg", "home", "a.example.com", 0, true, "u2",
     "p2", NULL, "xdg/containers/auth.json", NULL, ""},
    {"missing REGISTRY_AUTH_FILE skipped", "nope.json", "xdg", NULL, "home", "a.example.com", 0,
     true, "u2", "p2", NULL, "xdg/containers/auth.json", NULL, ""},
    {"scheme and path stripped, password keeps ':'", NULL, "xdg", NULL, NULL, "c.example.com:5000",
     0, true, "u3", "p3:with", NULL, "xdg/containers/auth.json", NULL, ""},
    {"port must match", NULL, "xdg", NULL, NULL, "c.example.com", 0, false, NULL, NULL, NULL, NULL,
     NULL, ""},
    {"username/password fields", NULL, "xdg", NULL, NULL, "d.example.com", 0, true, "du", "dp",
     NULL, "xdg/containers/auth.json", NULL, ""},
    {"identitytoken", NULL, "xdg", NULL, NULL, "e.example.com", 0, true, NULL, NULL, "e-idtok",
     "xdg/containers/auth.json", NULL, ""},
    {"host case-insensitive", NULL, "xdg", NULL, NULL, "case.example.com", 0, true, "u1", "p1",
     NULL, "xdg/containers/auth.json", NULL, ""},
    {"docker.io via v1 URL", NULL, NULL, "dcfg", "home", "docker.io", 0, true, "u1", "p1", NULL,
     "dcfg/config.json", NULL, ""},
    {"docker.io via registry-1 key", NULL, NULL, NULL, "home", "docker.io", 0, true, "u2", "p2",
     NULL, "home/.docker/config.json", NULL, ""},
    {"index.docker.io host = docker.io", NULL, NULL, NULL, "home2", "index.docker.io", 0, true,
     "u3", "p3:with", NULL, "home2/.docker/config.json", NULL, ""},
    {"DOCKER_CONFIG replaces HOME", NULL, NULL, "dcfg", "home", "home.example.com", 0, false, NULL,
     NULL, NULL, NULL, NULL, "home.example.com\n"},
    {"HOME when DOCKER_CONFIG unset", NULL, NULL, NULL, "home", "home.example.com", 0, true, "u3",
     "p3:with", NULL, "home/.docker/config.json", NULL, ""},
    {"credHelpers before auths", NULL, NULL, "dcfg", NULL, "registry.example.com", 0, true, "alice",
     "helper-pw", NULL, "docker-credential-fake", NULL, "registry.example.com\n"},
    {"credHelpers not found falls to credsStore", NULL, NULL, "dcfg", NULL, "h.example.com", 0,
     false, NULL, NULL, NULL, NULL, NULL, "h.example.com\nh.example.com\n"},
    {"empty entry then credsStore", NULL, NULL, "dcfg", NULL, "f.example.com", 0, false, NULL, NULL,
     NULL, NULL, NULL, "f.example.com\n"},
    {"credsStore for docker.io asks the v1 URL", NULL, NULL, NULL, "home3", "docker.io", 0, true,
     "hubuser", "hub-pw", NULL, "docker-credential-fake", NULL, "https://index.docker.io/v1/\n"},
    {"credsStore token user", NULL, NULL, "dcfg", NULL, "tok.example.com", 0, true, "<token>",
     "refresh-tok", "refresh-tok", "docker-credential-fake", NULL, "tok.example.com\n"},
    {"http scheme and /v1/ stripped", NULL, NULL, "dcfg", NULL, "g.example.com", 0, true, "u1",
     "p1", NULL, "dcfg/config.json", NULL, ""},
    {"nothing anywhere", "nope.json", "nodir", "nodir2", "nohome", "a.example.com", 0, false, NULL,
     NULL, NULL, NULL, NULL, ""},
    {"earlier file wins, later never read", "reg.json", "xdg", "bad", NULL, "a.example.com", 0,
     true, "u1", "p1", NULL, "reg.json", NULL, ""},
    /* errors name the file and never contain secrets */
    {"malformed JSON", "bad/syntax.json", "xdg", NULL, NULL, "a.example.com", -1, false, NULL, NULL,
     NULL, NULL, "bad/syntax.json: invalid JSON", ""},
    {"malformed later file still reached", "reg.json", "xdg", NULL, NULL, "zzz.example.com", 0,
     false, NULL, NULL, NULL, NULL, NULL, ""},
    {"bad base64", "bad/b64.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL, NULL, NULL,
     NULL, "bad/b64.json: auths[\"a.example.com\"].auth is not valid base64", ""},
    {"auth without colon", "bad/nocolon.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL,
     NULL, NULL, NULL, "bad/nocolon.json", ""},
    {"top level array", "bad/array.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL, NULL,
     NULL, NULL, "bad/array.json: top level is not a JSON object", ""},
    {"auths not object", "bad/auths.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL, NULL,
     NULL, NULL, "bad/auths.json: \"auths\" is not an object", ""},
    {"empty file", "bad/empty.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL, NULL, NULL,
     NULL, "bad/empty.json", ""},
    {"directory instead of file", "bad", NULL, NULL, NULL, "a.example.com", -1, false, NULL, NULL,
     NULL, NULL, "/bad", ""},
    {"failing helper", "bad/failhelper.json", NULL, NULL, NULL, "a.example.com", -1, false, NULL,
     NULL, NULL, NULL, "bad/failhelper.json: credential helper docker-credential-failing failed",
     ""},
};

static void test_lookup(void)
{
        size_t n = sizeof(lookup_rows) / sizeof(lookup_rows[0]);
        free(read_log());
        for (size_t i = 0; i < n; i++) {
                const struct lookup_row *r = &lookup_rows[i];
                set_env("REGISTRY_AUTH_FILE", r->reg);
                set_env("XDG_RUNTIME_DIR", r->xdg);
                set_env("DOCKER_CONFIG", r->dcfg);
                set_env("HOME", r->home ? r->home : "nohome");
                struct kiln_creds c;
                bool found = !r->found;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_creds_lookup(r->host, &c, &found, &err);
                CHECK(rc == r->rc, "[%s] rc=%d: %s", r->what, rc, err ? err->msg : "");
                CHECK(found == r->found, "[%s] found=%d", r->what, found);
                if (rc == 0 && found) {
                        CHECK_STR(c.username, r->user);
                        CHECK_STR(c.password, r->pass);
                        CHECK_STR(c.identity_token, r->idt);
                        _cleanup_free_ char *src = kiln_str_has_prefix(r->source, "docker-")
                                                       ? kiln_xstrdup(r->source)
                                                       : tpath(r->source);
                        CHECK_STR(c.source, src);
                }
                if (r->err_has) {
                        CHECK(err && strstr(err->msg, r->err_has), "[%s] error \"%s\" want \"%s\"",
                              r->what, err ? err->msg : "", r->err_has);
                        CHECK(err && !strstr(err->msg, "hunter2") &&
                                  !strstr(err->msg, "aHVudGVy") && !strstr(err->msg, "s3cr3t"),
                              "[%s] error leaks a secret: %s", r->what, err ? err->msg : "");
                }
                _cleanup_free_ char *log = read_log();
                CHECK_STR(log, r->helper_log);
                kiln_creds_release(&c);
        }
}

int main(void)
{
        test_base64();
        test_challenges();
        test_tokens();

        strcpy(tmpdir, "/tmp/kiln-test-auth-XXXXXX");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        setup_helpers();
        setup_files();
        test_helpers();
        test_lookup();
        _cleanup_err_ struct kiln_err *err = NULL;
        kiln_rm_rf(tmpdir, &err);
        TEST_DONE();
}
