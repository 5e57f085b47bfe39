/* CA certificates: a base without /etc/ssl/certs/ca-certificates.crt gets
 * the host's bundle there, as flytekit's default builder copies one in from
 * its micromamba image, so pip, curl and python's ssl (SSL_CERT_DIR is set
 * by the env step) can verify TLS in images made from minimal bases. A
 * host-file layer: no sandbox, no program of the image. */
#include "kiln/step.h"

#include <stdlib.h>
#include <unistd.h>

#define CA_BUNDLE "etc/ssl/certs/ca-certificates.crt"

static bool wanted(const struct kiln_spec *s)
{
        (void)s;
        return true;
}

static char *describe(const struct kiln_spec *s)
{
        (void)s;
        return kiln_xstrdup("the host's CA bundle to /" CA_BUNDLE " if the base has none");
}

/* Debian/Ubuntu, Fedora/RHEL, Alpine/macOS-style locations; SSL_CERT_FILE
 * first, as OpenSSL reads it. */
static const char *host_bundle(void)
{
        const char *env = getenv("SSL_CERT_FILE");
        if (env && *env && access(env, R_OK) == 0)
                return env;
        static const char *const paths[] = {"/etc/ssl/certs/ca-certificates.crt",
                                            "/etc/pki/tls/certs/ca-bundle.crt",
                                            "/etc/ssl/cert.pem"};
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                if (access(paths[i], R_OK) == 0)
                        return paths[i];
        return NULL;
}

/* The bundle a base without one gets: its content is the input. */
static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)s;
        _cleanup_free_ char *src = host_bundle() ? realpath(host_bundle(), NULL) : NULL;
        char d[KILN_DIGEST_MAX] = "none";
        if (src && kiln_sha256_file(src, d, err) < 0)
                return -1;
        kiln_buf_printf(b, "bundle %s\n", d);
        return 0;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        _cleanup_close_ int fd = -1;
        if (kiln_step_rootfs_open(ctx, CA_BUNDLE, &fd, err) < 0)
                return -1;
        if (fd >= 0)
                return 0; /* the base has its own: no layer, no history */
        /* the bundle itself, not a symlink to it that the image cannot follow */
        _cleanup_free_ char *src = host_bundle() ? realpath(host_bundle(), NULL) : NULL;
        if (!src) {
                kiln_warn("the base image has no /" CA_BUNDLE " and this host has no CA bundle "
                          "to give it: TLS in the image will not verify");
                return 0;
        }
        struct kiln_step_file e = {.src = src, .dest = CA_BUNDLE};
        return kiln_step_host_layer(ctx, &e, 1, 0, 0, "COPY ca-certificates.crt /" CA_BUNDLE, err);
}

const struct kiln_step_kind kiln_step_cacerts = {
    .name = "ca-certs",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
