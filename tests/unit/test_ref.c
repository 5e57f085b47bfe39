#include <string.h>

#include "kiln/ref.h"
#include "test.h"

#define D1 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H1 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct ref_row {
        const char *in;
        const char *domain, *path, *tag, *digest; /* domain NULL: parse must fail */
        const char *want_err;                     /* fragment of the error message */
        const char *string;                       /* kiln_ref_string, NULL: derive */
};

static const struct ref_row ref_rows[] = {
    /* normalisation of familiar names */
    {"debian", "docker.io", "library/debian", "latest", NULL, NULL,
     "docker.io/library/debian:latest"},
    {"debian:12", "docker.io", "library/debian", "12", NULL, NULL, "docker.io/library/debian:12"},
    {"library/debian", "docker.io", "library/debian", "latest", NULL, NULL, NULL},
    {"docker.io/debian", "docker.io", "library/debian", "latest", NULL, NULL, NULL},
    {"docker.io/library/debian:bookworm-slim", "docker.io", "library/debian", "bookworm-slim", NULL,
     NULL, NULL},
    {"index.docker.io/debian", "docker.io", "library/debian", "latest", NULL, NULL,
     "docker.io/library/debian:latest"},
    {"index.docker.io/flyteorg/flytekit:py3.11", "docker.io", "flyteorg/flytekit", "py3.11", NULL,
     NULL, NULL},
    {"flyteorg/flytekit", "docker.io", "flyteorg/flytekit", "latest", NULL, NULL, NULL},
    {"a/b/c/d", "docker.io", "a/b/c/d", "latest", NULL, NULL, NULL},
    /* registries */
    {"ghcr.io/owner/repo:v1.2.3", "ghcr.io", "owner/repo", "v1.2.3", NULL, NULL,
     "ghcr.io/owner/repo:v1.2.3"},
    {"ghcr.io/repo", "ghcr.io", "repo", "latest", NULL, NULL, "ghcr.io/repo:latest"},
    {"127.0.0.1:5000/base/debian:12", "127.0.0.1:5000", "base/debian", "12", NULL, NULL, NULL},
    {"localhost/foo", "localhost", "foo", "latest", NULL, NULL, "localhost/foo:latest"},
    {"localhost:5000/foo/bar:t", "localhost:5000", "foo/bar", "t", NULL, NULL, NULL},
    {"[::1]:5000/foo", "[::1]:5000", "foo", "latest", NULL, NULL, "[::1]:5000/foo:latest"},
    {"[fe80::1]/foo", "[fe80::1]", "foo", "latest", NULL, NULL, NULL},
    {"myhost:5000/x", "myhost:5000", "x", "latest", NULL, NULL, NULL},
    {"Example.COM/foo", "Example.COM", "foo", "latest", NULL, NULL, NULL},
    /* Docker treats an uppercase first component as a host name */
    {"Foo/bar", "Foo", "bar", "latest", NULL, NULL, "Foo/bar:latest"},
    {"my-registry.example.com:443/a-b/c_d:T_1", "my-registry.example.com:443", "a-b/c_d", "T_1",
     NULL, NULL, NULL},
    /* A bare host:port is an image named like the host with a tag */
    {"localhost:5000", "docker.io", "library/localhost", "5000", NULL, NULL, NULL},
    /* separators */
    {"a__b/c.d/e---f", "docker.io", "a__b/c.d/e---f", "latest", NULL, NULL, NULL},
    {"x/a_b.c-d", "docker.io", "x/a_b.c-d", "latest", NULL, NULL, NULL},
    /* digests */
    {"debian@" D1, "docker.io", "library/debian", NULL, D1, NULL, "docker.io/library/debian@" D1},
    {"debian:12@" D1, "docker.io", "library/debian", "12", D1, NULL,
     "docker.io/library/debian:12@" D1},
    {"127.0.0.1:5000/a/b@" D1, "127.0.0.1:5000", "a/b", NULL, D1, NULL, NULL},
    /* tag edge cases */
    {"foo:_x", "docker.io", "library/foo", "_x", NULL, NULL, NULL},
    {"foo:"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "docker.io", "library/foo",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     NULL, NULL, NULL},
    /* errors */
    {"", NULL, NULL, NULL, NULL, "empty", NULL},
    {"foo/Bar", NULL, NULL, NULL, NULL,
     "invalid reference \"foo/Bar\": repository name must be lowercase", NULL},
    {"Debian", NULL, NULL, NULL, NULL, "must be lowercase", NULL},
    {"docker.io/Library/debian", NULL, NULL, NULL, NULL, "must be lowercase", NULL},
    {"ghcr.io/Owner/repo", NULL, NULL, NULL, NULL, "must be lowercase", NULL},
    {"a:b:c", NULL, NULL, NULL, NULL, "invalid reference \"a:b:c\": invalid tag", NULL},
    {"foo:", NULL, NULL, NULL, NULL, "invalid tag", NULL},
    {"foo:-x", NULL, NULL, NULL, NULL, "invalid tag", NULL},
    {"foo:.x", NULL, NULL, NULL, NULL, "invalid tag", NULL},
    {"foo:"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     NULL, NULL, NULL, NULL, "invalid tag", NULL},
    {"foo@sha256:abc", NULL, NULL, NULL, NULL, "invalid digest", NULL},
    {"foo@md5:d41d8cd98f00b204e9800998ecf8427e", NULL, NULL, NULL, NULL, "invalid digest", NULL},
    {"foo@", NULL, NULL, NULL, NULL, "invalid digest", NULL},
    {"foo@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", NULL, NULL,
     NULL, NULL, "invalid digest", NULL},
    {"@" D1, NULL, NULL, NULL, NULL, "empty", NULL},
    {"foo//bar", NULL, NULL, NULL, NULL, "empty component", NULL},
    {"foo/", NULL, NULL, NULL, NULL, "empty component", NULL},
    {"/foo", NULL, NULL, NULL, NULL, "empty component", NULL},
    {"-foo", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"foo-", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"foo..bar", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"foo___bar", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"foo._bar", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"foo bar", NULL, NULL, NULL, NULL, "invalid reference format", NULL},
    {"-host.com/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"host..com/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"host.com:/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"host.com:50a/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"::1/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"[]:5000/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {"[::1]x/foo", NULL, NULL, NULL, NULL, "invalid registry host", NULL},
    {H1, NULL, NULL, NULL, NULL, "64-byte hexadecimal", NULL},
    {"ghcr.io/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     NULL, NULL, NULL, NULL, "255 characters", NULL},
    /* exactly 255 characters is allowed */
    {"ghcr.io/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "ghcr.io",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "latest", NULL, NULL, NULL},
};

static void test_refs(void)
{
        size_t n = sizeof(ref_rows) / sizeof(ref_rows[0]);
        CHECK(n >= 40, "only %zu reference rows", n);
        for (size_t i = 0; i < n; i++) {
                const struct ref_row *r = &ref_rows[i];
                struct kiln_ref ref;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_ref_parse(r->in, &ref, &err);
                if (!r->domain) {
                        CHECK(rc < 0, "parse(\"%s\") should fail", r->in);
                        if (rc < 0) {
                                CHECK(err && err->domain == KILN_ERR_USAGE, "domain for %s", r->in);
                                CHECK(err && strstr(err->msg, r->want_err),
                                      "error for \"%s\" is \"%s\", want \"%s\"", r->in,
                                      err ? err->msg : "(none)", r->want_err);
                                CHECK(err && strstr(err->msg, "invalid reference \""),
                                      "error names the reference: %s", err ? err->msg : "");
                        } else {
                                kiln_ref_release(&ref);
                        }
                        continue;
                }
                CHECK(rc == 0, "parse(\"%s\") failed: %s", r->in, err ? err->msg : "");
                if (rc < 0)
                        continue;
                CHECK_STR(ref.domain, r->domain);
                CHECK_STR(ref.path, r->path);
                CHECK_STR(ref.tag, r->tag);
                CHECK_STR(ref.digest, r->digest);
                _cleanup_free_ char *s = kiln_ref_string(&ref);
                if (r->string)
                        CHECK_STR(s, r->string);
                /* The canonical string must parse back to the same reference. */
                struct kiln_ref again;
                _cleanup_err_ struct kiln_err *err2 = NULL;
                CHECK(kiln_ref_parse(s, &again, &err2) == 0, "reparse %s", s);
                if (!err2) {
                        _cleanup_free_ char *s2 = kiln_ref_string(&again);
                        CHECK_STR(s2, s);
                        kiln_ref_release(&again);
                }
                kiln_ref_release(&ref);
        }
}

static void test_ref_accessors(void)
{
        struct kiln_ref r;
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_ref_parse("debian:12@" D1, &r, &err) == 0, "parse");
        _cleanup_free_ char *name = kiln_ref_name(&r);
        CHECK_STR(name, "docker.io/library/debian");
        CHECK_STR(kiln_ref_object(&r), D1);
        CHECK_STR(kiln_ref_api_host(&r), "registry-1.docker.io");
        struct kiln_ref c;
        kiln_ref_copy(&c, &r);
        kiln_ref_release(&r);
        CHECK(r.domain == NULL, "release clears");
        _cleanup_free_ char *cs = kiln_ref_string(&c);
        CHECK_STR(cs, "docker.io/library/debian:12@" D1);
        kiln_ref_release(&c);

        CHECK(kiln_ref_parse("127.0.0.1:5000/x:y", &r, &err) == 0, "parse");
        CHECK_STR(kiln_ref_object(&r), "y");
        CHECK_STR(kiln_ref_api_host(&r), "127.0.0.1:5000");
        _cleanup_free_ char *n2 = kiln_ref_name(&r);
        CHECK_STR(n2, "127.0.0.1:5000/x");
        kiln_ref_release(&r);
}

struct loc_row {
        const char *in;
        bool allow_bare;
        int ok;
        enum kiln_transport transport;
        const char *path, *tag, *ref; /* ref: kiln_ref_string or NULL */
        const char *canonical;        /* or error fragment when !ok */
};

static const struct loc_row loc_rows[] = {
    {"docker://debian", false, 1, KILN_TRANSPORT_DOCKER, NULL, NULL,
     "docker.io/library/debian:latest", "docker://docker.io/library/debian:latest"},
    {"docker://127.0.0.1:5000/a/b:c", false, 1, KILN_TRANSPORT_DOCKER, NULL, NULL,
     "127.0.0.1:5000/a/b:c", "docker://127.0.0.1:5000/a/b:c"},
    {"debian:12", true, 1, KILN_TRANSPORT_DOCKER, NULL, NULL, "docker.io/library/debian:12",
     "docker://docker.io/library/debian:12"},
    {"localhost:5000/x", true, 1, KILN_TRANSPORT_DOCKER, NULL, NULL, "localhost:5000/x:latest",
     "docker://localhost:5000/x:latest"},
    {"docker:dind", true, 1, KILN_TRANSPORT_DOCKER, NULL, NULL, "docker.io/library/docker:dind",
     "docker://docker.io/library/docker:dind"},
    {"oci:/tmp/x:latest", false, 1, KILN_TRANSPORT_OCI, "/tmp/x", "latest", NULL,
     "oci:/tmp/x:latest"},
    {"oci:/tmp/x", false, 1, KILN_TRANSPORT_OCI, "/tmp/x", NULL, NULL, "oci:/tmp/x"},
    {"oci:/tmp/x:", false, 1, KILN_TRANSPORT_OCI, "/tmp/x", NULL, NULL, "oci:/tmp/x"},
    {"oci:relative/dir:v1", false, 1, KILN_TRANSPORT_OCI, "relative/dir", "v1", NULL,
     "oci:relative/dir:v1"},
    {"oci:dir", true, 1, KILN_TRANSPORT_OCI, "dir", NULL, NULL, "oci:dir"},
    /* containers/image splits at the first ':' and allows ':' and '/' in the name */
    {"oci:/tmp/x:example.com/app:v2", false, 1, KILN_TRANSPORT_OCI, "/tmp/x", "example.com/app:v2",
     NULL, "oci:/tmp/x:example.com/app:v2"},
    {"oci-archive:/tmp/x.tar", false, 1, KILN_TRANSPORT_OCI_ARCHIVE, "/tmp/x.tar", NULL, NULL,
     "oci-archive:/tmp/x.tar"},
    {"oci-archive:out.tar:v1.0", false, 1, KILN_TRANSPORT_OCI_ARCHIVE, "out.tar", "v1.0", NULL,
     "oci-archive:out.tar:v1.0"},
    {"docker-archive:/tmp/x.tar", false, 1, KILN_TRANSPORT_DOCKER_ARCHIVE, "/tmp/x.tar", NULL, NULL,
     "docker-archive:/tmp/x.tar"},
    {"docker-archive:/tmp/x.tar:myimg:v1", false, 1, KILN_TRANSPORT_DOCKER_ARCHIVE, "/tmp/x.tar",
     NULL, "docker.io/library/myimg:v1", "docker-archive:/tmp/x.tar:docker.io/library/myimg:v1"},
    {"docker-archive:x.tar:localhost:5000/a/b", false, 1, KILN_TRANSPORT_DOCKER_ARCHIVE, "x.tar",
     NULL, "localhost:5000/a/b:latest", "docker-archive:x.tar:localhost:5000/a/b:latest"},
    /* errors */
    {"docker-archive:x.tar:myimg@" D1, false, 0, 0, NULL, NULL, NULL, "digest"},
    {"docker-archive:x.tar:Bad", false, 0, 0, NULL, NULL, NULL, "must be lowercase"},
    {"docker-archive:", false, 0, 0, NULL, NULL, NULL, "empty path"},
    {"oci:", false, 0, 0, NULL, NULL, NULL, "empty path"},
    {"oci::tag", false, 0, 0, NULL, NULL, NULL, "empty path"},
    {"oci-archive:", true, 0, 0, NULL, NULL, NULL, "empty path"},
    {"oci:/tmp/x:-bad", false, 0, 0, NULL, NULL, NULL, "invalid image name"},
    {"oci:/tmp/x:a b", false, 0, 0, NULL, NULL, NULL, "invalid image name"},
    {"oci:/tmp/x:@1", false, 0, 0, NULL, NULL, NULL, "source index"},
    {"dir:x", false, 0, 0, NULL, NULL, NULL,
     "unknown transport \"dir\" (supported: docker://, oci:, oci-archive:, docker-archive:)"},
    {"debian", false, 0, 0, NULL, NULL, NULL, "supported: docker://"},
    {"docker:debian", false, 0, 0, NULL, NULL, NULL, "docker://"},
    {"docker://", false, 0, 0, NULL, NULL, NULL, "empty"},
    {"docker://Debian", false, 0, 0, NULL, NULL, NULL, "must be lowercase"},
    {"dir:x", true, 1, KILN_TRANSPORT_DOCKER, NULL, NULL, "docker.io/library/dir:x",
     "docker://docker.io/library/dir:x"},
    {"dir:/x", true, 0, 0, NULL, NULL, NULL, "invalid registry host"},
    {"foo:a/b", true, 0, 0, NULL, NULL, NULL, "invalid registry host"},
    {"foo:1.0", true, 1, KILN_TRANSPORT_DOCKER, NULL, NULL, "docker.io/library/foo:1.0",
     "docker://docker.io/library/foo:1.0"},
    {"", true, 0, 0, NULL, NULL, NULL, "empty"},
};

static void test_locs(void)
{
        size_t n = sizeof(loc_rows) / sizeof(loc_rows[0]);
        CHECK(n >= 20, "only %zu transport rows", n);
        for (size_t i = 0; i < n; i++) {
                const struct loc_row *r = &loc_rows[i];
                struct kiln_image_loc loc;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_image_loc_parse(r->in, r->allow_bare, &loc, &err);
                if (!r->ok) {
                        CHECK(rc < 0, "loc(\"%s\") should fail", r->in);
                        if (rc == 0) {
                                kiln_image_loc_release(&loc);
                                continue;
                        }
                        CHECK(err && err->domain == KILN_ERR_USAGE, "domain");
                        CHECK(err && strstr(err->msg, r->canonical),
                              "error for \"%s\" is \"%s\", want \"%s\"", r->in, err ? err->msg : "",
                              r->canonical);
                        CHECK(err && strstr(err->msg, r->in), "error names \"%s\": %s", r->in,
                              err ? err->msg : "");
                        continue;
                }
                CHECK(rc == 0, "loc(\"%s\") failed: %s", r->in, err ? err->msg : "");
                if (rc < 0)
                        continue;
                CHECK(loc.transport == r->transport, "transport of %s", r->in);
                CHECK_STR(loc.path, r->path);
                CHECK_STR(loc.tag, r->tag);
                _cleanup_free_ char *rs = loc.ref.domain ? kiln_ref_string(&loc.ref) : NULL;
                CHECK_STR(rs, r->ref);
                _cleanup_free_ char *cs = kiln_image_loc_string(&loc);
                CHECK_STR(cs, r->canonical);
                kiln_image_loc_release(&loc);
        }
}

int main(void)
{
        test_refs();
        test_ref_accessors();
        test_locs();
        TEST_DONE();
}
