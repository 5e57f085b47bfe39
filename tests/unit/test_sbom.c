/* The SBOM read from layers made here as tar, tar+gzip and tar+zstd blobs
 * in a temporary store: dpkg's status across an apt layer, an upgrade and
 * a removal, python metadata in a venv and pip's dist-packages, licenses
 * in each form, os-release through a symlink, apt sources in both formats,
 * whiteouts and opaque directories, hostile layers, and the per-layer
 * cache. `test_sbom --documents DIR` writes the SPDX and CycloneDX
 * documents for tests/unit/sbom_schema.sh to validate. */
#include "attest/attest-internal.h"
#include "test.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sys/stat.h>

static struct kiln_store *store;

/* content NULL: a directory; LINK "target": a symlink */
struct file {
        const char *name;
        const char *content;
};
#define LINK "\001"

static la_ssize_t buf_write_cb(struct archive *a, void *ud, const void *p, size_t n)
{
        (void)a;
        kiln_buf_append(ud, p, n);
        return (la_ssize_t)n;
}

/* A layer blob in the store; mt picks the compression. big > 0: the first
 * file's content repeated to this many bytes. */
static void make_layer(const struct file *files, const char *mt, size_t big,
                       char digest[KILN_DIGEST_MAX])
{
        _cleanup_buf_ struct kiln_buf out = {0};
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (kiln_str_has_suffix(mt, "gzip"))
                archive_write_add_filter_gzip(a);
        else if (kiln_str_has_suffix(mt, "zstd"))
                archive_write_add_filter_zstd(a);
        archive_write_set_bytes_in_last_block(a, 1);
        archive_write_open(a, &out, NULL, buf_write_cb, NULL);
        for (const struct file *f = files; f->name; f++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, f->name);
                bool link = f->content && f->content[0] == LINK[0];
                size_t len = big && f == files ? big : f->content && !link ? strlen(f->content) : 0;
                archive_entry_set_filetype(e, link ? AE_IFLNK : f->content ? AE_IFREG : AE_IFDIR);
                if (link)
                        archive_entry_set_symlink(e, f->content + 1);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, (la_int64_t)len);
                archive_write_header(a, e);
                for (size_t done = 0; done < len;) {
                        size_t k =
                            strlen(f->content) < len - done ? strlen(f->content) : len - done;
                        archive_write_data(a, f->content, k);
                        done += k;
                }
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        struct kiln_err *err = NULL;
        if (kiln_store_put(store, out.data, out.len, digest, &err) < 0) {
                fprintf(stderr, "put: %s\n", err->msg);
                exit(1);
        }
}

/* ---------- the image ---------- */

#define DEP5 "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
#define PKG(name, ver, status)                                                                     \
        "Package: " name "\nStatus: " status "\nPriority: required\nArchitecture: amd64\n"         \
        "Version: " ver "\nDescription: x\n some long text\n .\n more\n\n"
#define BASE_STATUS                                                                                \
        PKG("base-files", "12.4+deb12u5", "install ok installed")                                  \
        PKG("bash", "5.2.15-2+b2", "install ok installed")                                         \
        PKG("libc6", "2.36-9+deb12u4", "install ok installed")                                     \
        PKG("held", "1.0-1", "hold ok installed")                                                  \
        PKG("gone", "0.1-1", "deinstall ok config-files")
#define APT_STATUS                                                                                 \
        PKG("jq", "1.6-2.1", "install ok installed")                                               \
        PKG("libonig5", "1:6.9.8-1", "install ok installed")

static const struct file base[] = {
    {"./var/lib/dpkg/status", BASE_STATUS},
    {"usr/share/doc/libc6/copyright",
     DEP5 "Files: debian/*\nLicense: GPL-2+\n\nFiles: *\nCopyright: FSF\nLicense: LGPL-2.1+\n"
          " The GNU C Library is free software.\n"},
    {"usr/share/doc/base-files/copyright", DEP5 "Files:\n *\nLicense: GPL-2+ or Artistic\n"},
    {"usr/share/doc/bash/copyright", "This is Debian's prepackaged version of bash.\nGPL-3+\n"},
    {"usr/share/doc/held/copyright", DEP5 "Files: *\nLicense: Expat\n"},
    {"usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\nVERSION_ID=\"12\"\n"},
    {"etc/os-release", LINK "../usr/lib/os-release"},
    {"etc/apt/sources.list.d/debian.sources",
     "# deb822\nTypes: deb deb-src\nURIs: http://deb.debian.org/debian\n"
     "Suites: bookworm bookworm-updates\nComponents: main\n"
     "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
     "Types: deb\nURIs: http://off.example/debian\nSuites: x\nComponents: main\nEnabled: no\n"},
    /* dpkg owns these: already deb entries */
    {"usr/lib/python3/dist-packages/dpkgowned-1.0.dist-info/METADATA",
     "Name: dpkgowned\nVersion: 1.0\n"},
    {NULL, NULL},
};

static const struct file apt[] = {
    {"var/lib/dpkg/status", BASE_STATUS APT_STATUS},
    {"usr/share/doc/jq/copyright", DEP5 "Files: *\nLicense: MIT and CC-BY-3.0\n"},
    {"usr/share/doc/libonig5/copyright", DEP5 "Files: *\nLicense: BSD-2-clause\n"},
    {"etc/apt/sources.list",
     "deb [signed-by=/x.gpg arch=amd64] http://user:s3cr3t@mirror.example/debian bookworm main "
     "contrib # c\n# deb http://commented.example/ x main\ndeb-src http://src.example/ x main\n"},
    {NULL, NULL},
};

#define SP "opt/venv/lib/python3.11/site-packages/"
#define DP "usr/local/lib/python3.11/dist-packages/"
static const struct file venv[] = {
    {SP "hello_img-1.0.dist-info/METADATA",
     "Metadata-Version: 2.4\nName: Hello_Img\nVersion: 1.0\nLicense-Expression: MIT\n\n"
     "License: not-this\n"},
    {SP "requests-2.31.0.dist-info/METADATA",
     "Name: requests\nVersion: 2.31.0\nLicense: Apache 2.0\nClassifier: License :: OSI Approved "
     ":: MIT License\n"},
    {SP "six-1.16.0.egg-info/PKG-INFO", "Name: six\nVersion: 1.16.0\nLicense: UNKNOWN\n"
                                        "Classifier: License :: OSI Approved :: MIT License\n"},
    {SP "legacy-0.1-py3.11.egg-info",
     "Name: legacy\nVersion: 0.1\nClassifier: License :: OSI Approved :: BSD License\n"},
    {SP "two-1.0.dist-info/METADATA",
     "Name: two\nVersion: 1.0\nClassifier: License :: OSI Approved :: MIT License\n"
     "Classifier: License :: OSI Approved :: ISC License (ISCL)\n"},
    {SP "long-1.0.dist-info/METADATA",
     "Name: long\nVersion: 1.0\nLicense: Copyright (c) someone\n        Permission is hereby\n"},
    {SP "old_pkg-0.9.dist-info/METADATA", "Name: old-pkg\nVersion: 0.9\n"},
    {SP "badutf-1.0.dist-info/METADATA", "Name: badutf\nVersion: 1.0\nLicense: \xff\xfe\n"},
    {SP "badname-1.0.dist-info/METADATA", "Name: bad name\"\nVersion: 1.0\n"},
    {DP "pipdeb-2.0.dist-info/METADATA", "Name: pipdeb\nVersion: 2.0\nLicense: GPL-3+\n"},
    {"usr/local/lib/python3.11/site-packages/zope.interface-6.0.dist-info/METADATA",
     "Name: zope.interface\nVersion: 6.0\nLicense: ZPL 2.1\n"},
    {NULL, NULL},
};

/* an upgrade (jq), a removal (bash), a rewrite that changes nothing
 * (libc6, requests), a whiteout and an opaque directory */
static const struct file upgrade[] = {
    {"var/lib/dpkg/status", PKG("base-files", "12.4+deb12u5", "install ok installed")
                                PKG("libc6", "2.36-9+deb12u4", "install ok installed")
                                    PKG("held", "1.0-1", "hold ok installed")
                                        PKG("jq", "1.6-2.1+deb12u1", "install ok installed")
                                            PKG("libonig5", "1:6.9.8-1", "install ok installed")
                                                PKG("gone", "0.1-1", "deinstall ok config-files")},
    {SP "requests-2.31.0.dist-info/METADATA",
     "Name: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n"},
    {SP ".wh.old_pkg-0.9.dist-info", ""},
    {SP ".wh.six-1.16.0.egg-info", ""},
    {SP "six-1.17.0.dist-info/METADATA", "Name: six\nVersion: 1.17.0\nLicense: MIT\n"},
    {DP ".wh..wh..opq", ""},
    {SP "numpy/.wh.core.py", ""},
    {NULL, NULL},
};

/* what a hostile image may hold: names that climb, absolute names, a huge
 * description after the headers, many entries */
static char big_meta[(2 << 20) + 64];
static struct file hostile[2100] = {
    {"../var/lib/dpkg/status", PKG("evil", "6.6.6", "install ok installed")},
    {"usr/../var/lib/dpkg/status", PKG("evil2", "6.6.6", "install ok installed")},
    {"/etc/os-release", "ID=evil\nVERSION_ID=6\n"},
    {"etc/../../etc/apt/sources.list", "deb http://evil.example/ x main\n"},
    {SP "../../../../../../etc/x.dist-info/METADATA", "Name: evil3\nVersion: 6\n"},
    {SP "big-1.0.dist-info/METADATA", big_meta},
};

static const struct kiln_sbom_layer layer_defs[] = {
    {.media_type = KILN_MT_OCI_LAYER_GZIP, .step = "base"},
    {.media_type = KILN_MT_OCI_LAYER, .step = "apt"},
    {.media_type = KILN_MT_OCI_LAYER_ZSTD, .step = "pip"},
    {.media_type = KILN_MT_OCI_LAYER_GZIP, .step = "commands"},
    {.media_type = KILN_MT_OCI_LAYER_GZIP, .step = "copy"},
};
#define N_LAYERS 5
static char digests[N_LAYERS][KILN_DIGEST_MAX];
static struct kiln_sbom_layer layers[N_LAYERS];

static void make_image(void)
{
        memcpy(big_meta, "Name: big\nVersion: 1.0\n\n", 25);
        memset(big_meta + 25, 'x', sizeof(big_meta) - 26);
        static char names[2000][64];
        for (size_t i = 0; i < 2000; i++) {
                snprintf(names[i], sizeof(names[i]), "usr/share/junk/%zu/.wh.f", i);
                hostile[6 + i] = (struct file){names[i], ""};
        }
        const struct file *sets[N_LAYERS] = {base, apt, venv, upgrade, hostile};
        for (size_t i = 0; i < N_LAYERS; i++) {
                make_layer(sets[i], layer_defs[i].media_type, 0, digests[i]);
                layers[i] = layer_defs[i];
                layers[i].digest = digests[i];
                layers[i].diff_id = digests[i]; /* any digest: only reported */
        }
}

/* ---------- the checks ---------- */

static const struct want {
        const char *name, *version, *license, *purl, *location;
        size_t layer;
} want[] = {
    {"base-files", "12.4+deb12u5", "GPL-2+ or Artistic",
     "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12", "var/lib/dpkg/status",
     0},
    {"held", "1.0-1", "Expat", "pkg:deb/debian/held@1.0-1?arch=amd64&distro=debian-12",
     "var/lib/dpkg/status", 0},
    {"jq", "1.6-2.1+deb12u1", "MIT and CC-BY-3.0",
     "pkg:deb/debian/jq@1.6-2.1%2Bdeb12u1?arch=amd64&distro=debian-12", "var/lib/dpkg/status", 3},
    {"libc6", "2.36-9+deb12u4", "LGPL-2.1+",
     "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12", "var/lib/dpkg/status", 0},
    {"libonig5", "1:6.9.8-1", "BSD-2-clause",
     "pkg:deb/debian/libonig5@1:6.9.8-1?arch=amd64&distro=debian-12", "var/lib/dpkg/status", 1},
    {"Hello_Img", "1.0", "MIT", "pkg:pypi/hello-img@1.0", SP "hello_img-1.0.dist-info", 2},
    {"badutf", "1.0", NULL, "pkg:pypi/badutf@1.0", SP "badutf-1.0.dist-info", 2},
    {"big", "1.0", NULL, "pkg:pypi/big@1.0", SP "big-1.0.dist-info", 4},
    {"legacy", "0.1", NULL, "pkg:pypi/legacy@0.1", SP "legacy-0.1-py3.11.egg-info", 2},
    {"long", "1.0", NULL, "pkg:pypi/long@1.0", SP "long-1.0.dist-info", 2},
    {"requests", "2.31.0", "Apache 2.0", "pkg:pypi/requests@2.31.0", SP "requests-2.31.0.dist-info",
     2},
    {"six", "1.17.0", "MIT", "pkg:pypi/six@1.17.0", SP "six-1.17.0.dist-info", 3},
    {"two", "1.0", NULL, "pkg:pypi/two@1.0", SP "two-1.0.dist-info", 2},
    {"zope.interface", "6.0", "ZPL 2.1", "pkg:pypi/zope-interface@6.0",
     "usr/local/lib/python3.11/site-packages/zope.interface-6.0.dist-info", 2},
};

static void check_sbom(const struct kiln_sbom *s, const char *what)
{
        size_t n = sizeof(want) / sizeof(want[0]);
        CHECK(s->n_pkgs == n, "%s: %zu packages, want %zu", what, s->n_pkgs, n);
        for (size_t i = 0; i < s->n_pkgs && i < n; i++) {
                const struct kiln_sbom_pkg *p = &s->pkgs[i];
                CHECK_STR(p->name, want[i].name);
                CHECK_STR(p->version, want[i].version);
                CHECK_STR(p->license, want[i].license);
                CHECK_STR(p->purl, want[i].purl);
                CHECK_STR(p->location, want[i].location);
                CHECK(p->layer == want[i].layer, "%s: %s in layer %zu, want %zu", what, p->name,
                      p->layer, want[i].layer);
                CHECK_STR(p->arch, p->type == KILN_PKG_DEB ? "amd64" : NULL);
        }
        CHECK_STR(s->os_id, "debian");
        CHECK_STR(s->os_version_id, "12");
        static const char *const sources[] = {
            "http://mirror.example/debian bookworm main contrib",
            "http://deb.debian.org/debian bookworm main",
            "http://deb.debian.org/debian bookworm-updates main",
        };
        size_t ns = kiln_strv_len(s->apt_sources);
        CHECK(ns == 3, "%s: %zu apt sources", what, ns);
        for (size_t i = 0; i < ns && i < 3; i++)
                CHECK_STR(s->apt_sources[i], sources[i]);
}

static void test_collect(void)
{
        struct kiln_err *err = NULL;
        _cleanup_sbom_ struct kiln_sbom s = {0};
        CHECK(kiln_sbom_collect(store, layers, N_LAYERS, &s, &err) == 0, "collect: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);
        check_sbom(&s, "first");

        /* the layers are read once: with their blobs gone, the cache answers */
        _cleanup_free_ char *hidden = kiln_xasprintf("%s/hidden", kiln_store_root(store));
        mkdir(hidden, 0700);
        for (size_t i = 0; i < N_LAYERS; i++) {
                _cleanup_free_ char *p = kiln_store_blob_path(store, digests[i]);
                _cleanup_free_ char *q = kiln_xasprintf("%s/%zu", hidden, i);
                CHECK(rename(p, q) == 0, "hide layer %zu", i);
        }
        _cleanup_sbom_ struct kiln_sbom c = {0};
        CHECK(kiln_sbom_collect(store, layers, N_LAYERS, &c, &err) == 0, "cached: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);
        check_sbom(&c, "cached");

        /* a cache entry whose blob went (or rotted) is a miss: the layer is read */
        char key[KILN_DIGEST_MAX];
        _cleanup_free_ char *in = kiln_xasprintf("kiln sbom v1%s", digests[1]);
        kiln_sha256_digest(in, strlen(in), key);
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool found = false;
        CHECK(kiln_store_step_get(store, kiln_digest_hex(key), &e, &found, &err) == 0 && found &&
                  !strcmp(e.kind, "sbom"),
              "the layer's cache entry is keyed by sha256(\"kiln sbom v1\" + digest)");
        _cleanup_free_ char *cached = found ? kiln_store_blob_path(store, e.digest) : NULL;
        CHECK(cached && unlink(cached) == 0, "drop the cached findings");
        _cleanup_sbom_ struct kiln_sbom m = {0};
        CHECK(kiln_sbom_collect(store, layers, N_LAYERS, &m, &err) < 0 && err &&
                  strstr(err->msg, digests[1]),
              "a miss reads the layer, which is gone: %s", err ? err->msg : "no error");
        kiln_err_clear(&err);
        for (size_t i = 0; i < N_LAYERS; i++) {
                _cleanup_free_ char *p = kiln_store_blob_path(store, digests[i]);
                _cleanup_free_ char *q = kiln_xasprintf("%s/%zu", hidden, i);
                rename(q, p);
        }
        _cleanup_sbom_ struct kiln_sbom r = {0};
        CHECK(kiln_sbom_collect(store, layers, N_LAYERS, &r, &err) == 0, "read again: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);
        check_sbom(&r, "read again");
}

static void test_oversized(void)
{
        static const struct file huge[] = {
            {"var/lib/dpkg/status", PKG("a", "1", "install ok installed")},
            {NULL, NULL},
        };
        char d[KILN_DIGEST_MAX];
        make_layer(huge, KILN_MT_OCI_LAYER_GZIP, KILN_SBOM_STATUS_MAX + 1, d);
        struct kiln_sbom_layer l = {.digest = d, .media_type = KILN_MT_OCI_LAYER_GZIP, .step = "x"};
        struct kiln_err *err = NULL;
        _cleanup_sbom_ struct kiln_sbom s = {0};
        CHECK(kiln_sbom_collect(store, &l, 1, &s, &err) < 0 && err &&
                  strstr(err->msg, "var/lib/dpkg/status") && strstr(err->msg, d) &&
                  strstr(err->msg, "64 MiB"),
              "an oversized status is refused by name: %s", err ? err->msg : "no error");
        kiln_err_clear(&err);
        /* a blob that is not what its media type says */
        static const struct file plain[] = {{"a", "b"}, {NULL, NULL}};
        make_layer(plain, KILN_MT_OCI_LAYER, 0, d);
        l.media_type = KILN_MT_OCI_LAYER_ZSTD;
        CHECK(kiln_sbom_collect(store, &l, 1, &s, &err) < 0 && err && strstr(err->msg, d),
              "plain tar as zstd: %s", err ? err->msg : "no error");
        kiln_err_clear(&err);
}

/* ---------- the parts ---------- */

static void test_parts(void)
{
        static const struct {
                const char *in, *want;
        } pep503[] = {{"Hello_Img", "hello-img"},
                      {"zope.interface", "zope-interface"},
                      {"a-_.b", "a-b"},
                      {"A__B", "a-b"},
                      {"x", "x"}};
        for (size_t i = 0; i < sizeof(pep503) / sizeof(pep503[0]); i++) {
                _cleanup_free_ char *n = kiln_sbom_pep503(pep503[i].in);
                CHECK_STR(n, pep503[i].want);
        }
        static const struct {
                const char *in, *want;
        } enc[] = {{"1:2.3-1+b1", "1:2.3-1%2Bb1"},
                   {"1.0~rc1", "1.0~rc1"},
                   {"a b/c@d?e#f%", "a%20b%2Fc%40d%3Fe%23f%25"},
                   {"\xc3\xa9", "%C3%A9"}};
        for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
                _cleanup_buf_ struct kiln_buf b = {0};
                kiln_sbom_purl_encode(&b, enc[i].in, false);
                CHECK_STR(b.data, enc[i].want);
        }
        static const struct {
                const char *in, *want, *ref;
        } lic[] = {
            {"MIT", "MIT", NULL},
            {"Expat", "MIT", NULL},
            {"GPL-2+", "GPL-2.0-or-later", NULL},
            {"Apache 2.0", "Apache-2.0", NULL},
            {"GPL-2+ or LGPL-2.1", "GPL-2.0-or-later OR LGPL-2.1-only", NULL},
            {"(MIT AND BSD-3-clause)", "(MIT AND BSD-3-Clause)", NULL},
            {"GPL-2+ with Autoconf-exception-2.0", "GPL-2.0-or-later WITH Autoconf-exception-2.0",
             NULL},
            {"GPL-2+ or Artistic", "LicenseRef-GPL-2-or-Artistic-",
             "LicenseRef-GPL-2-or-Artistic-"},
            {"ZPL 2.1", "LicenseRef-ZPL-2.1-", "LicenseRef-ZPL-2.1-"},
            {"Custom-1.0", "LicenseRef-Custom-1.0", "LicenseRef-Custom-1.0"},
            {"MIT or", "LicenseRef-MIT-or-", "LicenseRef-MIT-or-"},
            {"(MIT", "LicenseRef-MIT-", "LicenseRef-MIT-"},
        };
        for (size_t i = 0; i < sizeof(lic) / sizeof(lic[0]); i++) {
                _cleanup_free_ char *ref = NULL;
                _cleanup_free_ char *e = kiln_sbom_license_expression(lic[i].in, &ref);
                if (lic[i].ref) {
                        CHECK(e && kiln_str_has_prefix(e, lic[i].want), "%s: %s", lic[i].in, e);
                        CHECK(ref && !strcmp(ref, e), "%s: the ref is declared", lic[i].in);
                } else {
                        CHECK_STR(e, lic[i].want);
                        CHECK(!ref, "%s: no ref", lic[i].in);
                }
        }
        static const struct {
                const char *in, *want;
        } creds[] = {{"http://u:p@h.example/x", "http://h.example/x"},
                     {"https://tok@h.example:8443/a@b", "https://h.example:8443/a@b"},
                     {"http://h.example/", "http://h.example/"},
                     {"cdrom:[x]/", "cdrom:[x]/"}};
        for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
                _cleanup_free_ char *u = kiln_sbom_strip_credentials(creds[i].in);
                CHECK_STR(u, creds[i].want);
        }
        static const struct {
                const char *in, *want;
        } paths[] = {
            {"./a//b/./c/", "a/b/c"}, {"a/../b", NULL}, {"/etc/x", NULL}, {"..", NULL}, {".", ""}};
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                _cleanup_free_ char *p = kiln_sbom_norm_path(paths[i].in);
                CHECK_STR(p, paths[i].want);
        }
        static const struct {
                const char *path;
                int kind;
        } kinds[] = {
            {"var/lib/dpkg/status", KILN_SBOM_REC_DPKG},
            {"var/lib/dpkg/status.d/base", KILN_SBOM_REC_DPKG},
            {"var/lib/dpkg/status.d/base.md5sums", -1},
            {"var/lib/dpkg/status-old", -1},
            {"usr/share/doc/jq/copyright", KILN_SBOM_REC_COPYRIGHT},
            {"usr/share/doc/jq/x/copyright", -1},
            {"usr/lib/python3/dist-packages/a-1.dist-info/METADATA", -1},
            {"usr/local/lib/python3.11/dist-packages/a-1.dist-info/METADATA", KILN_SBOM_REC_PYTHON},
            {"a/site-packages/a-1.dist-info/METADATA", KILN_SBOM_REC_PYTHON},
            {"a/site-packages/a-1.dist-info/RECORD", -1},
            {"a/site-packages/a/b-1.dist-info/METADATA", -1},
            {"a/not-site-packages/a-1.dist-info/METADATA", -1},
            {"a/site-packages/a-1.egg-info/PKG-INFO", KILN_SBOM_REC_PYTHON},
            {"a/site-packages/a-1.egg-info", KILN_SBOM_REC_PYTHON},
            {"etc/apt/sources.list.d/x.list", KILN_SBOM_REC_APT},
            {"etc/apt/sources.list.d/x.sources", KILN_SBOM_REC_APT},
            {"etc/apt/sources.list.d/x.list.save", -1},
            {"etc/os-release", KILN_SBOM_REC_OS_RELEASE},
        };
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                CHECK(kiln_sbom_path_kind(kinds[i].path) == kinds[i].kind, "%s: kind %d, want %d",
                      kinds[i].path, kiln_sbom_path_kind(kinds[i].path), kinds[i].kind);
        /* status.d files (distroless) need no Status field; the status file does */
        static const char para[] = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n";
        struct kiln_sbom_pkg *p = NULL;
        size_t n = 0;
        kiln_sbom_parse_dpkg(para, strlen(para), false, &p, &n);
        CHECK(n == 1 && !strcmp(p[0].name, "tzdata"), "status.d paragraph");
        for (size_t i = 0; i < n; i++)
                kiln_sbom_pkg_release(&p[i]);
        free(p);
        kiln_sbom_parse_dpkg(para, strlen(para), true, &p, &n);
        CHECK(n == 0, "a status paragraph without Status is not installed");
        free(p);
}

/* ---------- documents ---------- */

static const struct kiln_attest_subject subject = {
    .name = "localhost:5000/team/Hello-App:abc123",
    .manifest_digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    .platform = "linux/amd64",
    .created = "2026-12-03T10:11:12.5Z",
    .tool_version = "0.1.0",
};

static json_t *document(const struct kiln_sbom *s, enum kiln_sbom_format f, struct kiln_buf *out)
{
        struct kiln_err *err = NULL;
        CHECK(kiln_sbom_document(s, f, &subject, layers, N_LAYERS, out, &err) == 0, "document: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);
        _cleanup_buf_ struct kiln_buf again = {0};
        kiln_sbom_document(s, f, &subject, layers, N_LAYERS, &again, &err);
        CHECK(again.len == out->len && !memcmp(again.data, out->data, out->len),
              "same bytes twice");
        CHECK(!strstr(out->data, "s3cr3t"), "no credential in the document");
        return json_loadb(out->data, out->len, 0, NULL);
}

static void test_documents(const char *dir)
{
        struct kiln_err *err = NULL;
        _cleanup_sbom_ struct kiln_sbom s = {0};
        CHECK(kiln_sbom_collect(store, layers, N_LAYERS, &s, &err) == 0, "collect");
        kiln_err_clear(&err);
        _cleanup_buf_ struct kiln_buf spdx = {0}, cdx = {0};
        _cleanup_json_ json_t *sd = document(&s, KILN_SBOM_SPDX, &spdx);
        _cleanup_json_ json_t *cd = document(&s, KILN_SBOM_CYCLONEDX, &cdx);
        const char *want_purl =
            "pkg:oci/hello-app@sha256:0123456789abcdef0123456789abcdef0123456789"
            "abcdef0123456789abcdef?arch=amd64&repository_url=localhost:5000/team/"
            "Hello-App&tag=abc123";
        json_t *pk = json_object_get(sd, "packages");
        json_t *img = json_array_get(pk, 0);
        CHECK_STR(json_string_value(json_object_get(img, "SPDXID")), "SPDXRef-image");
        CHECK_STR(json_string_value(json_object_get(
                      json_array_get(json_object_get(img, "externalRefs"), 0), "referenceLocator")),
                  want_purl);
        CHECK_STR(
            json_string_value(json_object_get(json_object_get(sd, "creationInfo"), "created")),
            "2026-12-03T10:11:12Z");
        /* image + OS + every package; each contained by the image */
        CHECK(json_array_size(pk) == s.n_pkgs + 2, "%zu SPDX packages", json_array_size(pk));
        CHECK(json_array_size(json_object_get(sd, "relationships")) == s.n_pkgs + 2,
              "relationships");
        size_t jq = 0;
        for (size_t i = 0; i < json_array_size(pk); i++)
                if (!strcmp(json_string_value(json_object_get(json_array_get(pk, i), "name")),
                            "jq"))
                        jq = i;
        json_t *j = json_array_get(pk, jq);
        const char *decl = json_string_value(json_object_get(j, "licenseDeclared"));
        CHECK(decl && kiln_str_has_prefix(decl, "LicenseRef-MIT-and-CC-BY-3.0-"), "jq: %s", decl);
        json_t *ex = json_object_get(sd, "hasExtractedLicensingInfos");
        bool declared = false;
        for (size_t i = 0; decl && i < json_array_size(ex); i++)
                declared |= !strcmp(
                    json_string_value(json_object_get(json_array_get(ex, i), "licenseId")), decl);
        CHECK(declared, "%s is declared", decl);
        _cleanup_free_ char *want_ann = kiln_xasprintf("LayerDigest: %s", digests[3]);
        CHECK_STR(json_string_value(json_object_get(
                      json_array_get(json_object_get(j, "annotations"), 0), "comment")),
                  want_ann);
        CHECK(strstr(json_string_value(json_object_get(j, "sourceInfo")), "layer 3 (commands)"),
              "sourceInfo names the layer");
        /* CycloneDX: the image, the OS, the packages with their layer */
        json_t *comps = json_object_get(cd, "components");
        CHECK(json_array_size(comps) == s.n_pkgs + 1, "%zu CycloneDX components",
              json_array_size(comps));
        CHECK_STR(json_string_value(json_object_get(
                      json_object_get(json_object_get(cd, "metadata"), "component"), "purl")),
                  want_purl);
        bool hello = false;
        for (size_t i = 0; i < json_array_size(comps); i++) {
                json_t *c = json_array_get(comps, i);
                if (strcmp(json_string_value(json_object_get(c, "name")), "Hello_Img"))
                        continue;
                hello = true;
                CHECK_STR(json_string_value(json_object_get(c, "purl")), "pkg:pypi/hello-img@1.0");
                json_t *props = json_object_get(c, "properties");
                CHECK_STR(json_string_value(json_object_get(json_array_get(props, 0), "value")),
                          digests[2]);
                CHECK_STR(json_string_value(json_object_get(json_array_get(props, 3), "value")),
                          "pip");
                CHECK_STR(json_string_value(json_object_get(
                              json_object_get(json_array_get(json_object_get(c, "licenses"), 0),
                                              "license"),
                              "id")),
                          "MIT");
        }
        CHECK(hello, "hello-img is a component");
        if (!dir)
                return;
        _cleanup_free_ char *a = kiln_xasprintf("%s/sbom.spdx.json", dir);
        _cleanup_free_ char *b = kiln_xasprintf("%s/sbom.cdx.json", dir);
        CHECK(kiln_write_file_atomic(a, spdx.data, spdx.len, 0644, &err) == 0 &&
                  kiln_write_file_atomic(b, cdx.data, cdx.len, 0644, &err) == 0,
              "write the documents");
        kiln_err_clear(&err);
}

int main(int argc, char **argv)
{
        const char *docs = argc == 3 && !strcmp(argv[1], "--documents") ? argv[2] : NULL;
        char dir[] = "/tmp/kiln-test-sbom-XXXXXX";
        struct kiln_err *err = NULL;
        if (!mkdtemp(dir) || kiln_store_open(dir, &store, &err) < 0) {
                fprintf(stderr, "store: %s\n", err ? err->msg : "mkdtemp");
                return 1;
        }
        make_image();
        test_parts();
        test_collect();
        test_oversized();
        test_documents(docs);
        kiln_store_free(store);
        kiln_rm_rf(dir, NULL);
        TEST_DONE();
}
