/* Platforms: parsing, normalisation (as containerd's platforms.Normalize),
 * the host platform and matching index entries against a wanted one. */
#include "oci-internal.h"

#include <ctype.h>
#include <string.h>
#include <sys/utsname.h>

char *kiln_oci_strdup0(const char *s)
{
        return s ? kiln_xstrdup(s) : NULL;
}

static void replace(char **field, const char *value)
{
        free(*field);
        *field = kiln_oci_strdup0(value);
}

static bool eq(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

static void lower(char *s)
{
        for (; s && *s; s++)
                *s = (char)tolower((unsigned char)*s);
}

/* Aliases are rewritten and the spellings of variants unified so that
 * "linux/aarch64/8" and "linux/arm64/v8" compare equal. */
static void normalise(struct kiln_platform *p)
{
        lower(p->os);
        lower(p->architecture);
        lower(p->variant);
        if (eq(p->os, "macos"))
                replace(&p->os, "darwin");

        const char *a = p->architecture ? p->architecture : "";
        const char *v = p->variant;
        if (eq(a, "i386") || eq(a, "i686")) {
                replace(&p->architecture, "386");
                replace(&p->variant, NULL);
        } else if (eq(a, "x86_64") || eq(a, "x86-64") || eq(a, "amd64")) {
                replace(&p->architecture, "amd64");
                if (eq(v, "v1"))
                        replace(&p->variant, NULL);
        } else if (eq(a, "aarch64") || eq(a, "arm64")) {
                replace(&p->architecture, "arm64");
                if (eq(v, "8") || eq(v, "v8") || eq(v, "v8.0"))
                        replace(&p->variant, "v8");
        } else if (eq(a, "armhf")) {
                replace(&p->architecture, "arm");
                replace(&p->variant, "v7");
        } else if (eq(a, "armel")) {
                replace(&p->architecture, "arm");
                replace(&p->variant, "v6");
        } else if (eq(a, "arm")) {
                if (v && strlen(v) == 1 && v[0] >= '5' && v[0] <= '8') {
                        _cleanup_free_ char *nv = kiln_xasprintf("v%s", v);
                        replace(&p->variant, nv);
                }
        }
        if (p->variant && !*p->variant)
                replace(&p->variant, NULL);
}

static bool valid_part(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (!isalnum(c) && c != '_' && c != '-' && c != '.')
                        return false;
        }
        return true;
}

int kiln_platform_parse(const char *s, struct kiln_platform *out, struct kiln_err **err)
{
        *out = (struct kiln_platform){0};
        if (!s)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "invalid platform: none given");
        const char *parts[4] = {0};
        size_t lens[4] = {0};
        size_t n = 0;
        const char *p = s;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t l = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 3)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "invalid platform \"%.100s\": want os/arch[/variant]",
                                            s);
                parts[n] = p;
                lens[n] = l;
                n++;
                if (!slash)
                        break;
                p = slash + 1;
        }
        if (n < 2)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "invalid platform \"%.100s\": want os/arch[/variant]", s);
        for (size_t i = 0; i < n; i++)
                if (!valid_part(parts[i], lens[i]))
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "invalid platform \"%.100s\": %s part %s", s,
                                            i == 0   ? "os"
                                            : i == 1 ? "architecture"
                                                     : "variant",
                                            lens[i] ? "has characters other than letters, "
                                                      "digits, '.', '_' and '-'"
                                                    : "is empty");
        out->os = kiln_xstrndup(parts[0], lens[0]);
        out->architecture = kiln_xstrndup(parts[1], lens[1]);
        if (n == 3)
                out->variant = kiln_xstrndup(parts[2], lens[2]);
        normalise(out);
        return 0;
}

void kiln_platform_host(struct kiln_platform *out)
{
        *out = (struct kiln_platform){0};
        const char *os = NULL, *arch = NULL, *variant = NULL;
#if defined(__linux__)
        os = "linux";
#endif
#if defined(__x86_64__)
        arch = "amd64";
#elif defined(__aarch64__)
        arch = "arm64";
        variant = "v8";
#elif defined(__arm__)
        arch = "arm";
#if defined(__ARM_ARCH) && __ARM_ARCH >= 8
        variant = "v8";
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
        variant = "v6";
#elif defined(__ARM_ARCH) && __ARM_ARCH == 5
        variant = "v5";
#else
        variant = "v7";
#endif
#elif defined(__i386__)
        arch = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        arch = "ppc64le";
#elif defined(__powerpc64__)
        arch = "ppc64";
#elif defined(__s390x__)
        arch = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
        arch = "riscv64";
#elif defined(__loongarch64)
        arch = "loong64";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        arch = "mips64le";
#endif
        struct utsname u;
        bool have_uname = uname(&u) == 0;
        out->os = kiln_xstrdup(os ? os : have_uname ? u.sysname : "unknown");
        out->architecture = kiln_xstrdup(arch ? arch : have_uname ? u.machine : "unknown");
        out->variant = kiln_oci_strdup0(variant);
        normalise(out);
}

void kiln_platform_release(struct kiln_platform *p)
{
        if (!p)
                return;
        free(p->os);
        free(p->architecture);
        free(p->variant);
        free(p->os_version);
        *p = (struct kiln_platform){0};
}

void kiln_platform_copy(struct kiln_platform *dst, const struct kiln_platform *src)
{
        dst->os = kiln_oci_strdup0(src->os);
        dst->architecture = kiln_oci_strdup0(src->architecture);
        dst->variant = kiln_oci_strdup0(src->variant);
        dst->os_version = kiln_oci_strdup0(src->os_version);
}

char *kiln_platform_string(const struct kiln_platform *p)
{
        const char *os = p->os ? p->os : "";
        const char *arch = p->architecture ? p->architecture : "";
        if (p->variant && *p->variant)
                return kiln_xasprintf("%s/%s/%s", os, arch, p->variant);
        return kiln_xasprintf("%s/%s", os, arch);
}

/* The variant a platform means when it names none. */
static const char *effective_variant(const struct kiln_platform *p)
{
        if (p->variant)
                return p->variant;
        if (eq(p->architecture, "arm64"))
                return "v8";
        if (eq(p->architecture, "arm"))
                return "v7";
        return NULL;
}

static bool is_unknown(const struct kiln_platform *p)
{
        return !p->os || !p->architecture || eq(p->os, "unknown") || eq(p->architecture, "unknown");
}

bool kiln_oci_platform_matches_ex(const struct kiln_platform *want,
                                  const struct kiln_platform *cand, bool strict)
{
        if (!want || !cand)
                return false;
        _cleanup_platform_ struct kiln_platform w = {0}, c = {0};
        kiln_platform_copy(&w, want);
        kiln_platform_copy(&c, cand);
        normalise(&w);
        normalise(&c);
        if (is_unknown(&w) || is_unknown(&c) || !eq(w.os, c.os) ||
            !eq(w.architecture, c.architecture))
                return false;
        if (w.variant || strict || eq(w.architecture, "arm"))
                return eq(effective_variant(&w), effective_variant(&c));
        return true;
}

bool kiln_platform_matches(const struct kiln_platform *want, const struct kiln_platform *cand)
{
        return kiln_oci_platform_matches_ex(want, cand, false);
}

int kiln_oci_platform_from_json(json_t *obj, struct kiln_platform *out, struct kiln_err **err)
{
        _cleanup_platform_ struct kiln_platform p = {0};
        static const struct {
                const char *key;
                bool required;
                size_t off;
        } fields[] = {
            {"architecture", true, offsetof(struct kiln_platform, architecture)},
            {"os", true, offsetof(struct kiln_platform, os)},
            {"variant", false, offsetof(struct kiln_platform, variant)},
            {"os.version", false, offsetof(struct kiln_platform, os_version)},
        };
        *out = (struct kiln_platform){0};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                json_t *v = json_object_get(obj, fields[i].key);
                char **dst = (char **)((char *)&p + fields[i].off);
                if (!v && fields[i].required)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "missing \"%s\"",
                                            fields[i].key);
                if (!v || (!fields[i].required && json_is_null(v)))
                        continue;
                if (!json_is_string(v))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\" must be a string",
                                            fields[i].key);
                *dst = kiln_xstrdup(json_string_value(v));
        }
        *out = p;
        p = (struct kiln_platform){0};
        return 0;
}
