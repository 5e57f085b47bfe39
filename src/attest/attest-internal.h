/* What the SBOM's files share: one layer's findings (the files of its tar
 * stream that name packages, the OS and apt sources, and its whiteouts),
 * the parsers of those files, purls and license ids. */
#ifndef KILN_ATTEST_INTERNAL_H
#define KILN_ATTEST_INTERNAL_H

#include "kiln/attest.h"

/* Caps on what one layer may make kiln read or keep: a layer is outside
 * input, and a base image can be anyone's. */
#define KILN_SBOM_STATUS_MAX   ((size_t)64 << 20) /* var/lib/dpkg/status, status.d/ files */
#define KILN_SBOM_META_MAX     ((size_t)1 << 20)  /* METADATA, PKG-INFO, copyright: a prefix */
#define KILN_SBOM_SMALL_MAX    ((size_t)1 << 20)  /* os-release, apt sources */
#define KILN_SBOM_MAX_RECORDS  ((size_t)1 << 17)
#define KILN_SBOM_MAX_WHITEOUT ((size_t)1 << 20)
#define KILN_SBOM_CACHE_MAX    ((size_t)256 << 20)

enum kiln_sbom_rec_kind {
        KILN_SBOM_REC_DPKG,       /* var/lib/dpkg/status or status.d/NAME: packages */
        KILN_SBOM_REC_COPYRIGHT,  /* usr/share/doc/PKG/copyright: strs[0] the license, if any */
        KILN_SBOM_REC_PYTHON,     /* METADATA, PKG-INFO or an egg-info file: one package */
        KILN_SBOM_REC_OS_RELEASE, /* os-release: strs = {ID, VERSION_ID} ("" when absent) */
        KILN_SBOM_REC_OS_LINK,    /* os-release as a symlink: strs[0] its target */
        KILN_SBOM_REC_APT,        /* an apt sources file: strs its entries */
        KILN_SBOM_REC_N
};

/* One file of a layer that matters. path is normalised (no "./", no
 * leading or repeated slash, never a ".." component). */
struct kiln_sbom_rec {
        enum kiln_sbom_rec_kind kind;
        char *path;
        struct kiln_sbom_pkg *pkgs; /* name, version, arch, license; no purl, no layer */
        size_t n_pkgs;
        char **strs; /* NULL-terminated, may be NULL */
};

/* What one layer contributes, sorted by path; the same bytes give the same
 * scan, which is what the store caches by the layer's digest. */
struct kiln_sbom_scan {
        struct kiln_sbom_rec *recs;
        size_t n_recs;
        char **whiteouts; /* paths the layer deletes from lower layers */
        size_t n_whiteouts;
        char **opaques; /* directories whose lower content the layer hides */
        size_t n_opaques;
};
void kiln_sbom_scan_release(struct kiln_sbom_scan *s);
#define _cleanup_sbom_scan_ _cleanup_(kiln_sbom_scan_release)

void kiln_sbom_pkg_release(struct kiln_sbom_pkg *p);
void kiln_sbom_rec_release(struct kiln_sbom_rec *r);

/* Reads one layer blob (tar, gzip or zstd by media_type) as a stream. */
int kiln_sbom_scan_layer(struct kiln_store *store, const struct kiln_sbom_layer *layer,
                         struct kiln_sbom_scan *out, struct kiln_err **err);
/* The scan as JSON and back (the per-layer cache); load is false on
 * anything malformed, which is a miss, never an error. */
char *kiln_sbom_scan_dump(const struct kiln_sbom_scan *s);
bool kiln_sbom_scan_load(const char *text, size_t len, struct kiln_sbom_scan *out);

/* ---------- what a file says (sbom_parse.c) ---------- */

/* The tar path normalised, or NULL when it is absolute or has a ".."
 * component (kiln's unpack refuses such layers; here they count for
 * nothing). */
char *kiln_sbom_norm_path(const char *raw);
/* The kind of record a path is, or -1 when kiln does not read it. */
int kiln_sbom_path_kind(const char *path);
/* Whether deleting path could delete a file kiln reads. */
bool kiln_sbom_path_may_matter(const char *path);

/* dpkg's status (or one status.d file, whose paragraphs need no Status
 * field): the installed packages. */
void kiln_sbom_parse_dpkg(const char *text, size_t len, bool need_status,
                          struct kiln_sbom_pkg **pkgs, size_t *n);
/* A DEP-5 copyright file's license of "Files: *"; NULL when the file is
 * not machine-readable or names none. */
char *kiln_sbom_parse_copyright(const char *text, size_t len);
/* METADATA or PKG-INFO headers: false without a Name and a Version. */
bool kiln_sbom_parse_python(const char *text, size_t len, struct kiln_sbom_pkg *out);
/* os-release: ID and VERSION_ID ("" when absent). */
void kiln_sbom_parse_os_release(const char *text, size_t len, char **id, char **version_id);
/* apt sources, one-line (deb822 when deb822 is true): "URI SUITE
 * COMPONENTS..." per deb entry, credentials removed. */
char **kiln_sbom_parse_apt(const char *text, size_t len, bool deb822);
/* url without its user information (scheme://user:pass@host -> scheme://host). */
char *kiln_sbom_strip_credentials(const char *url);

/* PEP 503: lowercase, runs of "-", "_", "." as one "-". */
char *kiln_sbom_pep503(const char *name);
/* Appends s percent-encoded as the purl spec asks: everything but
 * A-Z a-z 0-9 . - _ ~ and ":" (and "/" when keep_slash). */
void kiln_sbom_purl_encode(struct kiln_buf *b, const char *s, bool keep_slash);
/* An SPDX license list id for a license name as packages write it
 * ("MIT", "Apache 2.0", "GPL-2+", "BSD-3-clause"), or NULL. */
const char *kiln_sbom_spdx_id(const char *name);
/* The SPDX id a "License :: OSI Approved :: X" classifier stands for
 * when X names exactly one license, else NULL. */
const char *kiln_sbom_classifier_id(const char *classifier);

/* ---------- documents (sbom_doc.c, sbom_spdx.c, sbom_cyclonedx.c) ---------- */

/* What the documents say about the image itself. */
struct kiln_sbom_image {
        const char *name, *digest, *created, *tool_version, *platform;
        char *repo;             /* name without tag or digest: registry/path */
        char *tag;              /* NULL when the name has none */
        char *arch;             /* from platform ("amd64"), NULL if none */
        char *created_buf;      /* created, when it had to be rewritten */
        char *purl;             /* pkg:oci/NAME@DIGEST?arch=..&repository_url=..&tag=.. */
        char hex[KILN_HEX_MAX]; /* the manifest digest's */
};
int kiln_sbom_image_init(const struct kiln_attest_subject *subj, struct kiln_sbom_image *out,
                         struct kiln_err **err);
void kiln_sbom_image_release(struct kiln_sbom_image *im);
#define _cleanup_sbom_image_ _cleanup_(kiln_sbom_image_release)

/* 16 hex digits naming a package within a document (its purl and where it
 * was read: the same purl may be in two virtual environments). */
void kiln_sbom_pkg_ref(const struct kiln_sbom_pkg *p, char out[17]);
/* The license as an SPDX license expression: the id it stands for, an
 * expression of known ids, or else a LicenseRef- naming the whole text
 * (*ref set to it then, the caller declares it). */
char *kiln_sbom_license_expression(const char *license, char **ref);

int kiln_sbom_spdx(const struct kiln_sbom *s, const struct kiln_sbom_image *im,
                   const struct kiln_sbom_layer *layers, size_t n_layers, json_t **out);
int kiln_sbom_cyclonedx(const struct kiln_sbom *s, const struct kiln_sbom_image *im,
                        const struct kiln_sbom_layer *layers, size_t n_layers, json_t **out);

#endif
