/* The network settings and the loopback ports a run with a network of its
 * own may reach: --network, --allow-host and the URLs a spec names. */
#include <string.h>

#include "kiln/sandbox.h"
#include "test.h"

/* The ports as "addr port" lines, in order. */
static char *ports_string(const struct kiln_net_ports *p)
{
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, "");
        for (size_t i = 0; i < p->n; i++)
                kiln_buf_printf(&b, "%s%s %u", i ? "," : "", p->v[i].addr, (unsigned)p->v[i].port);
        return kiln_buf_steal(&b);
}

static void test_network_names(void)
{
        static const char *const names[] = {"private", "host", "none"};
        for (size_t i = 0; i < 3; i++) {
                enum kiln_network n = KILN_NETWORK_HOST;
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_network_parse(names[i], &n, &err) == 0, "%s", names[i]);
                CHECK_STR(kiln_network_name(n), names[i]);
        }
        enum kiln_network zero = 0;
        CHECK_STR(kiln_network_name(zero), "private"); /* the default */
        static const char *const bad[] = {"", "Private", "bridge", "host ", "slirp4netns"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                enum kiln_network n = KILN_NETWORK_NONE;
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_network_parse(bad[i], &n, &err) < 0, "\"%s\" accepted", bad[i]);
                CHECK(err && err->domain == KILN_ERR_USAGE && strstr(err->msg, "--network") &&
                          strstr(err->msg, "private, host or none"),
                      "error for \"%s\": %s", bad[i], err ? err->msg : "(none)");
                CHECK(n == KILN_NETWORK_NONE, "\"%s\" changed the setting", bad[i]);
        }
}

struct allow_row {
        const char *in;
        const char *want; /* ports_string; NULL: refused */
        const char *why;  /* fragment of the error */
};

static const struct allow_row allow_rows[] = {
    {"127.0.0.1:5107", "127.0.0.1 5107", NULL},
    {"127.1.2.3:1", "127.1.2.3 1", NULL},
    {"127.255.255.254:65535", "127.255.255.254 65535", NULL},
    {"localhost:8080", "127.0.0.1 8080,::1 8080", NULL},
    {"LOCALHOST:80", "127.0.0.1 80,::1 80", NULL},
    {"[::1]:443", "::1 443", NULL},
    {"[0:0:0:0:0:0:0:1]:443", "::1 443", NULL},
    {"127.0.0.1", NULL, "want HOST:PORT"},
    {"127.0.0.1:", NULL, "want HOST:PORT"},
    {"127.0.0.1:0", NULL, "want HOST:PORT"},
    {"127.0.0.1:65536", NULL, "want HOST:PORT"},
    {"127.0.0.1:99999999999", NULL, "want HOST:PORT"},
    {"127.0.0.1:80x", NULL, "want HOST:PORT"},
    {"127.0.0.1:-1", NULL, "want HOST:PORT"},
    {":80", NULL, "want HOST:PORT"},
    {"[::1]", NULL, "want HOST:PORT"},
    {"[::1:80", NULL, "want HOST:PORT"},
    {"::1:80", NULL, "want HOST:PORT"}, /* IPv6 needs its brackets */
    {"10.0.2.2:80", NULL, "loopback"},
    {"128.0.0.1:80", NULL, "loopback"},
    {"0.0.0.0:80", NULL, "loopback"},
    {"deb.debian.org:80", NULL, "loopback"},
    {"[::2]:80", NULL, "loopback"},
    {"[fe80::1]:80", NULL, "loopback"},
};

static void test_allow_host(void)
{
        for (size_t i = 0; i < sizeof(allow_rows) / sizeof(allow_rows[0]); i++) {
                const struct allow_row *r = &allow_rows[i];
                _cleanup_net_ports_ struct kiln_net_ports p = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_net_ports_add(&p, r->in, &err);
                if (!r->want) {
                        CHECK(rc < 0 && p.n == 0, "\"%s\" accepted", r->in);
                        CHECK(err && err->domain == KILN_ERR_USAGE && strstr(err->msg, r->in) &&
                                  strstr(err->msg, "--allow-host") && strstr(err->msg, r->why),
                              "error for \"%s\": %s", r->in, err ? err->msg : "(none)");
                        continue;
                }
                CHECK(rc == 0, "\"%s\": %s", r->in, err ? err->msg : "");
                _cleanup_free_ char *got = ports_string(&p);
                CHECK_STR(got, r->want);
        }
}

struct url_row {
        const char *text;
        const char *want; /* ports_string */
};

static const struct url_row url_rows[] = {
    {"http://127.0.0.1:5107/simple", "127.0.0.1 5107"},
    {"http://127.0.0.1/simple", "127.0.0.1 80"},
    {"https://127.0.0.1/simple", "127.0.0.1 443"},
    {"HTTPS://LocalHost:9/x", "127.0.0.1 9,::1 9"},
    {"http://[::1]:5107/", "::1 5107"},
    {"http://[::1]/", "::1 80"},
    /* credentials are skipped, also when they hold '@' or ':' */
    {"http://kiln:p%40ss@127.0.0.1:5108/simple", "127.0.0.1 5108"},
    {"http://u:p@ss@127.0.0.1:5108/simple", "127.0.0.1 5108"},
    {"http://127.0.0.1:5108@evil.example:80/", ""},
    /* other hosts: reachable anyway or not at all, never forwarded */
    {"https://pypi.org/simple", ""},
    {"http://10.0.2.2:80/", ""},
    {"http://127.0.0.1.nip.io:80/", ""},
    {"http://[::2]:80/", ""},
    /* several in one text (pip_extra_args), each once */
    {"--index-url http://127.0.0.1:1/a --extra-index-url=http://127.0.0.2:2/b "
     "-f http://127.0.0.1:1/c",
     "127.0.0.1 1,127.0.0.2 2"},
    {"pkg @ http://127.0.0.1:3/pkg-1.0.tar.gz#sha256=00", "127.0.0.1 3"},
    /* malformed: nothing, and no crash at the end of the text */
    {"http://", ""},
    {"http://127.0.0.1:", ""},
    {"http://127.0.0.1:0/", ""},
    {"http://127.0.0.1:70000/", ""},
    {"http://[::1", ""},
    {"ftp://127.0.0.1:21/", ""},
    {"", ""},
};

static void test_urls(void)
{
        for (size_t i = 0; i < sizeof(url_rows) / sizeof(url_rows[0]); i++) {
                _cleanup_net_ports_ struct kiln_net_ports p = {0};
                kiln_net_ports_add_urls(&p, url_rows[i].text);
                _cleanup_free_ char *got = ports_string(&p);
                CHECK(!strcmp(got, url_rows[i].want), "\"%s\": got \"%s\", want \"%s\"",
                      url_rows[i].text, got, url_rows[i].want);
        }
        /* NULL text (a field the spec does not set) adds nothing */
        _cleanup_net_ports_ struct kiln_net_ports p = {0};
        kiln_net_ports_add_urls(&p, NULL);
        CHECK(p.n == 0, "NULL text added ports");
}

/* Merging dedups, and the list is bounded whatever a spec lists. */
static void test_merge_and_bound(void)
{
        _cleanup_net_ports_ struct kiln_net_ports a = {0};
        _cleanup_net_ports_ struct kiln_net_ports b = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_net_ports_add(&a, "127.0.0.1:1", &err) == 0, "add");
        CHECK(kiln_net_ports_add(&b, "localhost:1", &err) == 0, "add");
        kiln_net_ports_add_all(&a, &b);
        kiln_net_ports_add_all(&a, NULL);
        _cleanup_free_ char *got = ports_string(&a);
        CHECK_STR(got, "127.0.0.1 1,::1 1");
        _cleanup_net_ports_ struct kiln_net_ports many = {0};
        for (unsigned port = 1; port <= 1000; port++) {
                char url[64];
                snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
                kiln_net_ports_add_urls(&many, url);
        }
        CHECK(many.n == 64, "got %zu ports, want the bound of 64", many.n);
        CHECK(many.v[63].port == 64, "the first 64 are kept");
}

int main(void)
{
        test_network_names();
        test_allow_host();
        test_urls();
        test_merge_and_bound();
        TEST_DONE();
}
