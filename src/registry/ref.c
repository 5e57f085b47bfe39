/* Image references (Docker's distribution/reference grammar and
 * normalisation) and transport-prefixed image locations (skopeo's names). */
#include <ctype.h>
#include <string.h>

#include "kiln/oci.h"
#include "kiln/ref.h"

/* distribution/reference NameTotalLengthMax */
#define NAME_TOTAL_MAX 255
#define TAG_MAX        128

static int ref_fail(struct kiln_err **err, const char *s, const char *reason)
{
        return kiln_err_set(err, KILN_ERR_USAGE, 0, "invalid reference \"%s\": %s", s, reason);
}

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return isascii((unsigned char)c) && isalnum((unsigned char)c);
}

static bool is_word(char c)
{
        return is_alnum(c) || c == '_';
}

/* [a-z0-9]+ ( ([._]|__|-+) [a-z0-9]+ )* */
static bool path_component_valid(const char *p, size_t n)
{
        size_t i = 0;
        if (n == 0 || !is_lower_alnum(p[0]))
                return false;
        while (i < n) {
                while (i < n && is_lower_alnum(p[i]))
                        i++;
                if (i == n)
                        return true;
                size_t sep = i;
                if (p[i] == '.')
                        i++;
                else if (p[i] == '_')
                        i += (i + 1 < n && p[i + 1] == '_') ? 2 : 1;
                else if (p[i] == '-')
                        while (i < n && p[i] == '-')
                                i++;
                else
                        return false;
                if (i == sep || i >= n || !is_lower_alnum(p[i]))
                        return false;
        }
        return true;
}

/* [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_valid(const char *p, size_t n)
{
        if (n == 0 || !is_alnum(p[0]) || !is_alnum(p[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(p[i]) && p[i] != '-')
                        return false;
        return true;
}

static bool port_valid(const char *p, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (p[i] < '0' || p[i] > '9')
                        return false;
        return true;
}

/* host [':' port] where host is dotted domain components or "[ipv6]". */
static bool domain_valid(const char *d)
{
        size_t n = strlen(d);
        const char *end = d + n;
        const char *host_end;
        if (d[0] == '[') {
                const char *close = strchr(d, ']');
                if (!close || close == d + 1)
                        return false;
                for (const char *c = d + 1; c < close; c++)
                        if (!isxdigit((unsigned char)*c) && *c != ':')
                                return false;
                host_end = close + 1;
        } else {
                const char *colon = strchr(d, ':');
                host_end = colon ? colon : end;
                const char *c = d;
                for (;;) {
                        const char *dot = memchr(c, '.', (size_t)(host_end - c));
                        const char *ce = dot ? dot : host_end;
                        if (!domain_component_valid(c, (size_t)(ce - c)))
                                return false;
                        if (!dot)
                                break;
                        c = dot + 1;
                }
        }
        if (host_end == end)
                return true;
        if (*host_end != ':')
                return false;
        return port_valid(host_end + 1, (size_t)(end - host_end - 1));
}

static bool tag_valid(const char *t)
{
        size_t n = strlen(t);
        if (n == 0 || n > TAG_MAX || !is_word(t[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
                        return false;
        return true;
}

static bool is_hex64(const char *s)
{
        if (strlen(s) != 64)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return false;
        return true;
}

static bool has_upper(const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] >= 'A' && p[i] <= 'Z')
                        return true;
        return false;
}

int kiln_ref_parse(const char *s, struct kiln_ref *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!s || !*s)
                return ref_fail(err, s ? s : "", "reference is empty");
        /* Docker refuses bare image IDs so they are not mistaken for names. */
        if (is_hex64(s))
                return ref_fail(err, s, "cannot specify 64-byte hexadecimal strings");

        _cleanup_free_ char *digest = NULL;
        _cleanup_free_ char *name = NULL;
        const char *at = strchr(s, '@');
        if (at) {
                name = kiln_xstrndup(s, (size_t)(at - s));
                digest = kiln_xstrdup(at + 1);
                _cleanup_err_ struct kiln_err *derr = NULL;
                if (kiln_digest_validate(digest, &derr) < 0)
                        return ref_fail(err, s, "invalid digest");
        } else {
                name = kiln_xstrdup(s);
        }
        if (!*name)
                return ref_fail(err, s, "repository name is empty");

        /* splitDockerDomain: the first component is a registry when it looks
         * like a host (has '.' or ':', is localhost) or is not lowercase,
         * since repository namespaces can never contain uppercase. */
        _cleanup_free_ char *domain = NULL;
        const char *remainder = name;
        const char *slash = strchr(name, '/');
        if (slash) {
                size_t dl = (size_t)(slash - name);
                bool is_domain = (dl == 9 && !strncmp(name, "localhost", 9)) ||
                                 memchr(name, '.', dl) || memchr(name, ':', dl) ||
                                 has_upper(name, dl);
                if (is_domain) {
                        domain = kiln_xstrndup(name, dl);
                        remainder = slash + 1;
                }
        }
        if (!domain)
                domain = kiln_xstrdup(KILN_DOCKER_HUB_DOMAIN);
        else if (!strcmp(domain, "index.docker.io")) {
                free(domain);
                domain = kiln_xstrdup(KILN_DOCKER_HUB_DOMAIN);
        }

        _cleanup_free_ char *tag = NULL;
        _cleanup_free_ char *path = NULL;
        const char *colon = strchr(remainder, ':');
        if (colon) {
                path = kiln_xstrndup(remainder, (size_t)(colon - remainder));
                tag = kiln_xstrdup(colon + 1);
        } else {
                path = kiln_xstrdup(remainder);
        }
        if (has_upper(path, strlen(path)))
                return ref_fail(err, s, "repository name must be lowercase");
        if (!strcmp(domain, KILN_DOCKER_HUB_DOMAIN) && !strchr(path, '/')) {
                char *p = kiln_xasprintf("library/%s", path);
                free(path);
                path = p;
        }

        if (!domain_valid(domain))
                return ref_fail(err, s, "invalid registry host");
        const char *c = path;
        for (;;) {
                const char *sl = strchr(c, '/');
                size_t cl = sl ? (size_t)(sl - c) : strlen(c);
                if (cl == 0)
                        return ref_fail(err, s, "repository name has an empty component");
                if (!path_component_valid(c, cl))
                        return ref_fail(err, s, "invalid reference format");
                if (!sl)
                        break;
                c = sl + 1;
        }
        if (tag && !tag_valid(tag))
                return ref_fail(err, s, "invalid tag");
        if (strlen(domain) + 1 + strlen(path) > NAME_TOTAL_MAX)
                return ref_fail(err, s, "repository name must not be more than 255 characters");

        if (!tag && !digest)
                tag = kiln_xstrdup("latest");
        out->domain = steal_pointer(&domain);
        out->path = steal_pointer(&path);
        out->tag = steal_pointer(&tag);
        out->digest = steal_pointer(&digest);
        return 0;
}

void kiln_ref_release(struct kiln_ref *r)
{
        if (!r)
                return;
        free(r->domain);
        free(r->path);
        free(r->tag);
        free(r->digest);
        memset(r, 0, sizeof(*r));
}

void kiln_ref_copy(struct kiln_ref *dst, const struct kiln_ref *src)
{
        dst->domain = src->domain ? kiln_xstrdup(src->domain) : NULL;
        dst->path = src->path ? kiln_xstrdup(src->path) : NULL;
        dst->tag = src->tag ? kiln_xstrdup(src->tag) : NULL;
        dst->digest = src->digest ? kiln_xstrdup(src->digest) : NULL;
}

char *kiln_ref_string(const struct kiln_ref *r)
{
        return kiln_xasprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "",
                              r->tag ? r->tag : "", r->digest ? "@" : "",
                              r->digest ? r->digest : "");
}

char *kiln_ref_name(const struct kiln_ref *r)
{
        return kiln_xasprintf("%s/%s", r->domain, r->path);
}

const char *kiln_ref_object(const struct kiln_ref *r)
{
        return r->digest ? r->digest : r->tag;
}

const char *kiln_ref_api_host(const struct kiln_ref *r)
{
        if (!strcmp(r->domain, KILN_DOCKER_HUB_DOMAIN))
                return KILN_DOCKER_HUB_API_HOST;
        return r->domain;
}

/* ---------- transports ---------- */

static const char SUPPORTED[] = "docker://, oci:, oci-archive:, docker-archive:";

static int loc_fail(struct kiln_err **err, const char *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int loc_fail(struct kiln_err **err, const char *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *reason = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        return kiln_err_set(err, KILN_ERR_USAGE, 0, "invalid image location \"%s\": %s", s, reason);
}

/* skopeo splits "PATH:IMAGE" at the first ':' (containers/image
 * SplitPathAndImage), so directories containing ':' cannot be named.
 * *colon points at the ':' in rest, or is NULL. */
static int split_path(const char *s, const char *rest, char **path, const char **colon,
                      struct kiln_err **err)
{
        *colon = strchr(rest, ':');
        *path = *colon ? kiln_xstrndup(rest, (size_t)(*colon - rest)) : kiln_xstrdup(rest);
        if (**path)
                return 0;
        free(*path);
        *path = NULL;
        return loc_fail(err, s, "empty path");
}

static int parse_oci(const char *s, const char *rest, struct kiln_image_loc *out,
                     struct kiln_err **err)
{
        const char *colon = NULL;
        _cleanup_free_ char *path = NULL;
        if (split_path(s, rest, &path, &colon, err) < 0)
                return -1;
        if (colon && colon[1]) {
                if (colon[1] == '@')
                        return loc_fail(err, s, "source index \"%s\" is not supported", colon + 1);
                if (!kiln_oci_ref_name_valid(colon + 1))
                        return loc_fail(err, s, "invalid image name \"%s\"", colon + 1);
                out->tag = kiln_xstrdup(colon + 1);
        }
        out->path = steal_pointer(&path);
        return 0;
}

static int parse_docker_archive(const char *s, const char *rest, struct kiln_image_loc *out,
                                struct kiln_err **err)
{
        const char *colon = NULL;
        _cleanup_free_ char *path = NULL;
        if (split_path(s, rest, &path, &colon, err) < 0)
                return -1;
        if (colon) {
                if (colon[1] == '@')
                        return loc_fail(err, s, "source index \"%s\" is not supported", colon + 1);
                if (kiln_ref_parse(colon + 1, &out->ref, err) < 0)
                        return kiln_err_prefix(err, "invalid image location \"%s\"", s);
                if (out->ref.digest) {
                        kiln_ref_release(&out->ref);
                        return loc_fail(err, s,
                                        "docker-archive does not support digest references");
                }
        }
        out->path = steal_pointer(&path);
        return 0;
}

int kiln_image_loc_parse(const char *s, bool allow_bare, struct kiln_image_loc *out,
                         struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!s || !*s)
                return loc_fail(err, s ? s : "", "empty image location");

        int rc;
        if (kiln_str_has_prefix(s, "docker://")) {
                out->transport = KILN_TRANSPORT_DOCKER;
                rc = kiln_ref_parse(s + 9, &out->ref, err);
                if (rc < 0)
                        kiln_err_prefix(err, "invalid image location \"%s\"", s);
        } else if (kiln_str_has_prefix(s, "oci:")) {
                out->transport = KILN_TRANSPORT_OCI;
                rc = parse_oci(s, s + 4, out, err);
        } else if (kiln_str_has_prefix(s, "oci-archive:")) {
                out->transport = KILN_TRANSPORT_OCI_ARCHIVE;
                rc = parse_oci(s, s + 12, out, err);
        } else if (kiln_str_has_prefix(s, "docker-archive:")) {
                out->transport = KILN_TRANSPORT_DOCKER_ARCHIVE;
                rc = parse_docker_archive(s, s + 15, out, err);
        } else if (allow_bare) {
                out->transport = KILN_TRANSPORT_DOCKER;
                rc = kiln_ref_parse(s, &out->ref, err);
        } else {
                const char *colon = strchr(s, ':');
                if (!colon)
                        return loc_fail(err, s, "expected TRANSPORT:REFERENCE (supported: %s)",
                                        SUPPORTED);
                if (!strncmp(s, "docker:", 7))
                        return loc_fail(err, s, "the docker transport is written docker://REF");
                return loc_fail(err, s, "unknown transport \"%.*s\" (supported: %s)",
                                (int)(colon - s), s, SUPPORTED);
        }
        if (rc < 0)
                kiln_image_loc_release(out);
        return rc;
}

void kiln_image_loc_release(struct kiln_image_loc *l)
{
        if (!l)
                return;
        kiln_ref_release(&l->ref);
        free(l->path);
        free(l->tag);
        l->path = NULL;
        l->tag = NULL;
}

char *kiln_image_loc_string(const struct kiln_image_loc *l)
{
        switch (l->transport) {
        case KILN_TRANSPORT_DOCKER: {
                _cleanup_free_ char *r = kiln_ref_string(&l->ref);
                return kiln_xasprintf("docker://%s", r);
        }
        case KILN_TRANSPORT_OCI:
        case KILN_TRANSPORT_OCI_ARCHIVE:
                return kiln_xasprintf("%s:%s%s%s",
                                      l->transport == KILN_TRANSPORT_OCI ? "oci" : "oci-archive",
                                      l->path, l->tag ? ":" : "", l->tag ? l->tag : "");
        case KILN_TRANSPORT_DOCKER_ARCHIVE:
                if (l->ref.domain) {
                        _cleanup_free_ char *r = kiln_ref_string(&l->ref);
                        return kiln_xasprintf("docker-archive:%s:%s", l->path, r);
                }
                return kiln_xasprintf("docker-archive:%s", l->path);
        }
        return kiln_xstrdup("?");
}
