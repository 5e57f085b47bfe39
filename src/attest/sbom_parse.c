/* What the files an SBOM reads say: dpkg's status, DEP-5 copyright files,
 * python METADATA/PKG-INFO, os-release and apt sources. Every input is a
 * layer's bytes, so every value kept is checked (UTF-8, no control
 * characters, the charset its format allows) and anything else is dropped:
 * a JSON document must not carry what the image made up. */
#include "attest-internal.h"

#include <ctype.h>
#include <string.h>

/* ---------- text ---------- */

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF):
 * jansson refuses anything else. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                size_t k = c < 0x80             ? 0
                           : (c & 0xe0) == 0xc0 ? 1
                           : (c & 0xf0) == 0xe0 ? 2
                           : (c & 0xf8) == 0xf0 ? 3
                                                : 4;
                if (k == 4 || i + k >= n)
                        return false;
                uint32_t cp = k ? c & (0x3f >> k) : c;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
                if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += k + 1;
        }
        return true;
}

/* s[0..n) trimmed, or NULL when empty, not UTF-8 or holding a control
 * character. */
static char *clean(const char *s, size_t n)
{
        while (n && isspace((unsigned char)*s))
                s++, n--;
        while (n && isspace((unsigned char)s[n - 1]))
                n--;
        if (!n || !utf8_ok((const unsigned char *)s, n))
                return NULL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return NULL;
        return kiln_xstrndup(s, n);
}

/* s when every byte is in allowed (or alphanumeric ASCII), else NULL; frees s. */
static char *charset(char *s, const char *allowed)
{
        for (const char *p = s; p && *p; p++) {
                if (!isalnum((unsigned char)*p) && !strchr(allowed, *p)) {
                        free(s);
                        return NULL;
                }
        }
        return s;
}

/* ---------- deb822 / RFC 822 fields ---------- */

struct field {
        const char *name, *val; /* val runs over its continuation lines */
        size_t name_len, val_len;
};

static bool blank_line(const char *p, const char *le)
{
        for (; p < le; p++)
                if (!isspace((unsigned char)*p))
                        return false;
        return true;
}

static const char *line_end(const char *p, const char *end)
{
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        return nl ? nl : end;
}

/* The next field of the paragraph at *pp; false at the paragraph's end (a
 * blank line, consumed) or the text's. Comment lines and lines without a
 * colon are skipped. */
static bool next_field(const char **pp, const char *end, struct field *f)
{
        const char *p = *pp;
        while (p < end) {
                const char *le = line_end(p, end), *next = le < end ? le + 1 : end;
                if (blank_line(p, le)) {
                        *pp = next;
                        return false;
                }
                const char *colon = memchr(p, ':', (size_t)(le - p));
                if (*p == ' ' || *p == '\t' || *p == '#' || !colon) {
                        p = next;
                        continue;
                }
                const char *q = next, *vend = le;
                while (q < end && (*q == ' ' || *q == '\t')) {
                        const char *qe = line_end(q, end);
                        if (blank_line(q, qe))
                                break;
                        vend = qe;
                        q = qe < end ? qe + 1 : end;
                }
                *f = (struct field){.name = p, .name_len = (size_t)(colon - p), .val = colon + 1};
                f->val_len = (size_t)(vend - f->val);
                *pp = q;
                return true;
        }
        *pp = end;
        return false;
}

static bool is(const struct field *f, const char *name)
{
        return f->name_len == strlen(name) && !strncasecmp(f->name, name, f->name_len);
}

static bool multi_line(const struct field *f)
{
        return memchr(f->val, '\n', f->val_len) != NULL;
}

/* The first line of the value, cleaned. */
static char *first_line(const struct field *f)
{
        const char *nl = memchr(f->val, '\n', f->val_len);
        return clean(f->val, nl ? (size_t)(nl - f->val) : f->val_len);
}

/* The whole value with its lines joined by spaces, cleaned. */
static char *joined(const struct field *f)
{
        _cleanup_free_ char *v = kiln_xstrndup(f->val, f->val_len);
        for (char *p = v; *p; p++)
                if (*p == '\n' || *p == '\t' || *p == '\r')
                        *p = ' ';
        return clean(v, strlen(v));
}

/* ---------- dpkg ---------- */

void kiln_sbom_parse_dpkg(const char *text, size_t len, bool need_status,
                          struct kiln_sbom_pkg **pkgs, size_t *n)
{
        const char *p = text, *end = text + len;
        *pkgs = NULL;
        *n = 0;
        size_t cap = 0;
        while (p < end) {
                _cleanup_free_ char *name = NULL, *version = NULL, *arch = NULL, *status = NULL;
                struct field f;
                while (next_field(&p, end, &f)) {
                        char **slot = is(&f, "Package")        ? &name
                                      : is(&f, "Version")      ? &version
                                      : is(&f, "Architecture") ? &arch
                                      : is(&f, "Status")       ? &status
                                                               : NULL;
                        if (slot) {
                                free(*slot);
                                *slot = first_line(&f);
                        }
                }
                /* "hold ok installed" is a held package, still installed */
                bool installed =
                    status ? kiln_str_has_suffix(status, " ok installed") : !need_status;
                name = charset(steal_pointer(&name), ".+-");
                version = charset(steal_pointer(&version), ".+~:-");
                arch = charset(steal_pointer(&arch), "-");
                if (!installed || !name || !version)
                        continue;
                if (*n == cap)
                        *pkgs = kiln_xrealloc(*pkgs, (cap = cap ? cap * 2 : 64) * sizeof(**pkgs));
                (*pkgs)[(*n)++] = (struct kiln_sbom_pkg){.type = KILN_PKG_DEB,
                                                         .name = steal_pointer(&name),
                                                         .version = steal_pointer(&version),
                                                         .arch = steal_pointer(&arch)};
        }
}

/* ---------- DEP-5 copyright ---------- */

char *kiln_sbom_parse_copyright(const char *text, size_t len)
{
        const char *p = text, *end = text + len;
        struct field f;
        bool dep5 = false;
        while (next_field(&p, end, &f))
                if (is(&f, "Format")) {
                        _cleanup_free_ char *v = first_line(&f);
                        dep5 = v && strstr(v, "copyright-format");
                }
        if (!dep5)
                return NULL;
        while (p < end) {
                _cleanup_free_ char *files = NULL, *license = NULL;
                while (next_field(&p, end, &f)) {
                        if (is(&f, "Files")) {
                                free(files);
                                files = joined(&f);
                        } else if (is(&f, "License")) {
                                free(license);
                                license = first_line(&f);
                        }
                }
                if (files && !strcmp(files, "*"))
                        return steal_pointer(&license);
        }
        return NULL;
}

/* ---------- python ---------- */

static const struct {
        const char *classifier, *id;
} classifiers[] = {
    {"MIT License", "MIT"},
    {"Apache Software License", "Apache-2.0"},
    {"ISC License (ISCL)", "ISC"},
    {"Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"},
    {"GNU General Public License v2 (GPLv2)", "GPL-2.0-only"},
    {"GNU General Public License v2 or later (GPLv2+)", "GPL-2.0-or-later"},
    {"GNU General Public License v3 (GPLv3)", "GPL-3.0-only"},
    {"GNU General Public License v3 or later (GPLv3+)", "GPL-3.0-or-later"},
    {"GNU Lesser General Public License v2 (LGPLv2)", "LGPL-2.0-only"},
    {"GNU Lesser General Public License v2 or later (LGPLv2+)", "LGPL-2.0-or-later"},
    {"GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"},
    {"GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"},
    {"GNU Affero General Public License v3", "AGPL-3.0-only"},
    {"GNU Affero General Public License v3 or later (AGPLv3+)", "AGPL-3.0-or-later"},
    {"Python Software Foundation License", "PSF-2.0"},
    {"The Unlicense (Unlicense)", "Unlicense"},
    {"zlib/libpng License", "Zlib"},
    {"Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"},
    {"European Union Public Licence 1.2 (EUPL 1.2)", "EUPL-1.2"},
    {"Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"},
    /* "BSD License", "Academic Free License (AFL)", "GNU General Public
     * License (GPL)" ... name several licenses: left out */
};

const char *kiln_sbom_classifier_id(const char *classifier)
{
        const char *prefix = "License :: OSI Approved :: ";
        if (!kiln_str_has_prefix(classifier, prefix))
                return NULL;
        for (size_t i = 0; i < sizeof(classifiers) / sizeof(classifiers[0]); i++)
                if (!strcmp(classifier + strlen(prefix), classifiers[i].classifier))
                        return classifiers[i].id;
        return NULL;
}

/* Headers only: they end at the first blank line, before the description. */
bool kiln_sbom_parse_python(const char *text, size_t len, struct kiln_sbom_pkg *out)
{
        const char *p = text, *end = text + len;
        _cleanup_free_ char *name = NULL, *version = NULL, *expr = NULL, *license = NULL;
        const char *classified = NULL;
        bool ambiguous = false;
        struct field f;
        while (next_field(&p, end, &f)) {
                char **slot = is(&f, "Name")                 ? &name
                              : is(&f, "Version")            ? &version
                              : is(&f, "License-Expression") ? &expr
                                                             : NULL;
                if (slot) {
                        free(*slot);
                        *slot = first_line(&f);
                } else if (is(&f, "License") && !multi_line(&f) && f.val_len <= 128) {
                        free(license);
                        license = first_line(&f);
                } else if (is(&f, "Classifier")) {
                        _cleanup_free_ char *c = first_line(&f);
                        const char *id = c ? kiln_sbom_classifier_id(c) : NULL;
                        if (id && classified && strcmp(id, classified))
                                ambiguous = true;
                        classified = id ? id : classified;
                }
        }
        name = charset(steal_pointer(&name), "._-");
        version = charset(steal_pointer(&version), ".+!_-");
        if (!name || !version)
                return false;
        if (license && (!strcasecmp(license, "UNKNOWN") || !strcasecmp(license, "None")))
                license = (free(license), NULL);
        const char *lic = expr ? expr : license ? license : ambiguous ? NULL : classified;
        *out = (struct kiln_sbom_pkg){.type = KILN_PKG_PYPI,
                                      .name = steal_pointer(&name),
                                      .version = steal_pointer(&version),
                                      .license = lic ? kiln_xstrdup(lic) : NULL};
        return true;
}

/* ---------- os-release ---------- */

void kiln_sbom_parse_os_release(const char *text, size_t len, char **id, char **version_id)
{
        *id = *version_id = NULL;
        const char *p = text, *end = text + len;
        while (p < end) {
                const char *le = line_end(p, end);
                const char *eq = memchr(p, '=', (size_t)(le - p));
                char **slot = !eq                                               ? NULL
                              : (eq - p == 2 && !strncmp(p, "ID", 2))           ? id
                              : (eq - p == 10 && !strncmp(p, "VERSION_ID", 10)) ? version_id
                                                                                : NULL;
                if (slot) {
                        const char *v = eq + 1;
                        size_t n = (size_t)(le - v);
                        if (n >= 2 && (*v == '"' || *v == '\'') && v[n - 1] == *v)
                                v++, n -= 2;
                        free(*slot);
                        *slot = charset(clean(v, n), "._-~");
                }
                p = le < end ? le + 1 : end;
        }
        if (!*id)
                *id = kiln_xstrdup("");
        if (!*version_id)
                *version_id = kiln_xstrdup("");
        for (char *c = *id; *c; c++)
                *c = (char)tolower((unsigned char)*c);
}

/* ---------- apt sources ---------- */

char *kiln_sbom_strip_credentials(const char *url)
{
        const char *s = strstr(url, "://");
        if (!s)
                return kiln_xstrdup(url);
        const char *host = s + 3, *slash = host + strcspn(host, "/?#");
        const char *at = NULL;
        for (const char *q = host; q < slash; q++)
                if (*q == '@')
                        at = q;
        if (!at)
                return kiln_xstrdup(url);
        return kiln_xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

static void add_str(char ***v, size_t *n, char *s)
{
        *v = kiln_xrealloc(*v, (*n + 2) * sizeof(char *));
        (*v)[(*n)++] = s;
        (*v)[*n] = NULL;
}

/* The words of s (space separated), NULL-terminated. */
static char **words(const char *s)
{
        char **v = NULL;
        size_t n = 0;
        while (s && *s) {
                s += strspn(s, " ");
                size_t k = strcspn(s, " ");
                if (k)
                        add_str(&v, &n, kiln_xstrndup(s, k));
                s += k;
        }
        return v;
}

static void add_entry(char ***v, size_t *n, const char *uri, const char *suite,
                      char *const *components, size_t first)
{
        if (!uri || !suite || !strchr(uri, ':'))
                return;
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_free_ char *u = kiln_sbom_strip_credentials(uri);
        kiln_buf_printf(&b, "%s %s", u, suite);
        for (size_t i = first; components && components[i]; i++)
                kiln_buf_printf(&b, " %s", components[i]);
        add_str(v, n, kiln_buf_steal(&b));
}

static char **apt_one_line(const char *text, size_t len)
{
        char **v = NULL;
        size_t n = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
                const char *le = line_end(p, end);
                _cleanup_free_ char *line = clean(p, (size_t)(le - p));
                p = le < end ? le + 1 : end;
                char *hash = line ? strchr(line, '#') : NULL;
                if (hash)
                        *hash = '\0';
                /* "deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS..." */
                if (!line || strncmp(line, "deb", 3) || (line[3] != ' ' && line[3] != '\t'))
                        continue;
                for (char *c = line; *c; c++)
                        if (*c == '\t')
                                *c = ' ';
                char *rest = line + 4;
                rest += strspn(rest, " ");
                if (*rest == '[') {
                        char *close = strchr(rest, ']');
                        if (!close)
                                continue;
                        rest = close + 1;
                }
                _cleanup_strv_ char **w = words(rest);
                if (kiln_strv_len(w) >= 2)
                        add_entry(&v, &n, w[0], w[1], w, 2);
        }
        return v;
}

static char **apt_deb822(const char *text, size_t len)
{
        char **v = NULL;
        size_t n = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
                _cleanup_free_ char *types = NULL, *uris = NULL, *suites = NULL, *comps = NULL,
                                    *enabled = NULL;
                struct field f;
                while (next_field(&p, end, &f)) {
                        char **slot = is(&f, "Types")        ? &types
                                      : is(&f, "URIs")       ? &uris
                                      : is(&f, "Suites")     ? &suites
                                      : is(&f, "Components") ? &comps
                                      : is(&f, "Enabled")    ? &enabled
                                                             : NULL;
                        if (slot) {
                                free(*slot);
                                *slot = joined(&f);
                        }
                }
                _cleanup_strv_ char **t = words(types), **u = words(uris), **s = words(suites),
                                    **c = words(comps);
                bool deb = false;
                for (size_t i = 0; t && t[i]; i++)
                        deb |= !strcmp(t[i], "deb");
                if (!deb || (enabled && !strcasecmp(enabled, "no")))
                        continue;
                for (size_t i = 0; u && u[i]; i++)
                        for (size_t j = 0; s && s[j]; j++)
                                add_entry(&v, &n, u[i], s[j], c, 0);
        }
        return v;
}

char **kiln_sbom_parse_apt(const char *text, size_t len, bool deb822)
{
        return deb822 ? apt_deb822(text, len) : apt_one_line(text, len);
}

/* ---------- paths ---------- */

char *kiln_sbom_norm_path(const char *raw)
{
        if (raw[0] == '/')
                return NULL;
        _cleanup_buf_ struct kiln_buf b = {0};
        for (const char *p = raw; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t len = (size_t)(e - p);
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return NULL;
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (b.len)
                                kiln_buf_append(&b, "/", 1);
                        kiln_buf_append(&b, p, len);
                }
                p = e;
        }
        return b.data ? kiln_buf_steal(&b) : kiln_xstrdup("");
}

/* The index just past the python package directory the path is in
 * ("site-packages/", or "usr/local/lib/pythonX/dist-packages/"), or 0. */
static size_t python_root(const char *path)
{
        for (const char *p = path; (p = strstr(p, "site-packages/")); p++)
                if (p == path || p[-1] == '/')
                        return (size_t)(p - path) + strlen("site-packages/");
        if (kiln_str_has_prefix(path, "usr/local/lib/python")) {
                const char *d = strchr(path + strlen("usr/local/lib/"), '/');
                if (d && kiln_str_has_prefix(d, "/dist-packages/"))
                        return (size_t)(d - path) + strlen("/dist-packages/");
        }
        return 0;
}

static bool one_component(const char *s)
{
        return *s && !strchr(s, '/');
}

int kiln_sbom_path_kind(const char *path)
{
        if (!strcmp(path, "var/lib/dpkg/status"))
                return KILN_SBOM_REC_DPKG;
        if (kiln_str_has_prefix(path, "var/lib/dpkg/status.d/") &&
            one_component(path + strlen("var/lib/dpkg/status.d/")) &&
            !kiln_str_has_suffix(path, ".md5sums"))
                return KILN_SBOM_REC_DPKG;
        if (kiln_str_has_prefix(path, "usr/share/doc/") &&
            kiln_str_has_suffix(path, "/copyright")) {
                const char *pkg = path + strlen("usr/share/doc/");
                if (strchr(pkg, '/') == path + strlen(path) - strlen("/copyright") && pkg[0] != '/')
                        return KILN_SBOM_REC_COPYRIGHT;
        }
        if (!strcmp(path, "etc/os-release") || !strcmp(path, "usr/lib/os-release"))
                return KILN_SBOM_REC_OS_RELEASE;
        if (!strcmp(path, "etc/apt/sources.list"))
                return KILN_SBOM_REC_APT;
        if (kiln_str_has_prefix(path, "etc/apt/sources.list.d/")) {
                const char *f = path + strlen("etc/apt/sources.list.d/");
                if (one_component(f) &&
                    (kiln_str_has_suffix(f, ".list") || kiln_str_has_suffix(f, ".sources")))
                        return KILN_SBOM_REC_APT;
        }
        size_t r = python_root(path);
        if (r) {
                const char *rel = path + r, *slash = strchr(rel, '/');
                if (!slash && kiln_str_has_suffix(rel, ".egg-info"))
                        return KILN_SBOM_REC_PYTHON;
                if (slash && kiln_str_has_suffix(rel, ".dist-info/METADATA") &&
                    !strcmp(slash, "/METADATA"))
                        return KILN_SBOM_REC_PYTHON;
                if (slash && !strcmp(slash, "/PKG-INFO") &&
                    !strncmp(slash - strlen(".egg-info"), ".egg-info", strlen(".egg-info")))
                        return KILN_SBOM_REC_PYTHON;
        }
        return -1;
}

/* A deletion inside a package's files (pip upgrading numpy deletes a
 * thousand) cannot touch what kiln reads; anything else might be above a
 * site-packages directory and is kept. */
bool kiln_sbom_path_may_matter(const char *path)
{
        size_t r = python_root(path);
        if (r) {
                const char *rel = path + r, *slash = strchr(rel, '/');
                if (!slash)
                        return true;
                _cleanup_free_ char *top = kiln_xstrndup(rel, (size_t)(slash - rel));
                return kiln_str_has_suffix(top, ".dist-info") ||
                       kiln_str_has_suffix(top, ".egg-info");
        }
        if (kiln_str_has_prefix(path, "usr/share/doc/")) {
                const char *pkg = path + strlen("usr/share/doc/"), *slash = strchr(pkg, '/');
                return !slash || !strcmp(slash, "/copyright");
        }
        if (kiln_str_has_prefix(path, "var/lib/dpkg/"))
                return kiln_str_has_prefix(path, "var/lib/dpkg/status");
        if (kiln_str_has_prefix(path, "var/lib/apt/") || kiln_str_has_prefix(path, "var/cache/") ||
            kiln_str_has_prefix(path, "usr/share/locale/") ||
            kiln_str_has_prefix(path, "usr/share/man/"))
                return false;
        return true;
}

/* ---------- names, purls, licenses ---------- */

char *kiln_sbom_pep503(const char *name)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        for (const char *p = name; *p; p++) {
                if (*p == '-' || *p == '_' || *p == '.') {
                        if (!b.len || b.data[b.len - 1] != '-')
                                kiln_buf_append(&b, "-", 1);
                        continue;
                }
                char c = (char)tolower((unsigned char)*p);
                kiln_buf_append(&b, &c, 1);
        }
        return kiln_buf_steal(&b) ?: kiln_xstrdup("");
}

void kiln_sbom_purl_encode(struct kiln_buf *b, const char *s, bool keep_slash)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (isalnum(*p) || strchr(".-_~:", *p) || (keep_slash && *p == '/'))
                        kiln_buf_append(b, p, 1);
                else
                        kiln_buf_printf(b, "%%%02X", *p);
        }
}

/* Ids of the SPDX license list and the names Debian's copyright files and
 * python packages use for them. Every id here is on the list CycloneDX 1.5
 * validates license.id against. */
static const struct {
        const char *name, *id;
} licenses[] = {
    {"0BSD", "0BSD"},
    {"AGPL-3", "AGPL-3.0-only"},
    {"AGPL-3+", "AGPL-3.0-or-later"},
    {"AGPL-3.0-only", "AGPL-3.0-only"},
    {"AGPL-3.0-or-later", "AGPL-3.0-or-later"},
    {"Apache 2.0", "Apache-2.0"},
    {"Apache License 2.0", "Apache-2.0"},
    {"Apache License, Version 2.0", "Apache-2.0"},
    {"Apache-2", "Apache-2.0"},
    {"Apache-2.0", "Apache-2.0"},
    {"Artistic-2.0", "Artistic-2.0"},
    {"BSD-2-Clause", "BSD-2-Clause"},
    {"BSD-3-Clause", "BSD-3-Clause"},
    {"BSD-4-Clause", "BSD-4-Clause"},
    {"BSL-1.0", "BSL-1.0"},
    {"CC0-1.0", "CC0-1.0"},
    {"curl", "curl"},
    {"EPL-2.0", "EPL-2.0"},
    {"EUPL-1.2", "EUPL-1.2"},
    {"Expat", "MIT"},
    {"GPL-1+", "GPL-1.0-or-later"},
    {"GPL-2", "GPL-2.0-only"},
    {"GPL-2+", "GPL-2.0-or-later"},
    {"GPL-2.0-only", "GPL-2.0-only"},
    {"GPL-2.0-or-later", "GPL-2.0-or-later"},
    {"GPL-3", "GPL-3.0-only"},
    {"GPL-3+", "GPL-3.0-or-later"},
    {"GPL-3.0-only", "GPL-3.0-only"},
    {"GPL-3.0-or-later", "GPL-3.0-or-later"},
    {"ISC", "ISC"},
    {"LGPL-2", "LGPL-2.0-only"},
    {"LGPL-2+", "LGPL-2.0-or-later"},
    {"LGPL-2.1", "LGPL-2.1-only"},
    {"LGPL-2.1+", "LGPL-2.1-or-later"},
    {"LGPL-2.1-only", "LGPL-2.1-only"},
    {"LGPL-2.1-or-later", "LGPL-2.1-or-later"},
    {"LGPL-3", "LGPL-3.0-only"},
    {"LGPL-3+", "LGPL-3.0-or-later"},
    {"LGPL-3.0-only", "LGPL-3.0-only"},
    {"LGPL-3.0-or-later", "LGPL-3.0-or-later"},
    {"MIT", "MIT"},
    {"MIT License", "MIT"},
    {"MPL-2.0", "MPL-2.0"},
    {"OpenSSL", "OpenSSL"},
    {"PSF-2.0", "PSF-2.0"},
    {"Python-2.0", "Python-2.0"},
    {"Unlicense", "Unlicense"},
    {"X11", "X11"},
    {"Zlib", "Zlib"},
};

const char *kiln_sbom_spdx_id(const char *name)
{
        for (size_t i = 0; i < sizeof(licenses) / sizeof(licenses[0]); i++)
                if (!strcasecmp(name, licenses[i].name))
                        return licenses[i].id;
        return NULL;
}
