/* Attestations: what is inside an image (an SBOM read from its layers,
 * SPDX 2.3 or CycloneDX 1.5 JSON) and how it was made (an in-toto
 * statement with a SLSA v1 provenance predicate), and the OCI 1.1 artifact
 * manifests that attach either to the image as a referrer.
 *
 * Nothing here runs anything in the image: the SBOM is read from the layer
 * blobs in the store (dpkg's status, python dist-info/egg-info metadata),
 * with whiteouts applied in layer order, so each package is attributed to
 * the layer (step) where that name and version appeared and stayed. */
#ifndef KILN_ATTEST_H
#define KILN_ATTEST_H

#include "kiln/oci.h"
#include "kiln/store.h"

#define KILN_MT_SPDX_JSON      "application/spdx+json"
#define KILN_MT_CYCLONEDX_JSON "application/vnd.cyclonedx+json"
#define KILN_MT_INTOTO_JSON    "application/vnd.in-toto+json"
#define KILN_MT_OCI_EMPTY      "application/vnd.oci.empty.v1+json"
/* sha256 of "{}", the OCI 1.1 empty descriptor's content */
#define KILN_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* ---------- SBOM ---------- */

/* One layer of the image, lowest first. */
struct kiln_sbom_layer {
        const char *digest;     /* the layer blob, in the store */
        const char *media_type; /* its compression follows from it */
        const char *diff_id;    /* sha256 of the uncompressed tar */
        const char *step;       /* "base", or the step kind that made it ("apt", "pip" ...) */
};

enum kiln_pkg_type { KILN_PKG_DEB, KILN_PKG_PYPI };

struct kiln_sbom_pkg {
        enum kiln_pkg_type type;
        char *name;     /* deb: Package; pypi: Name as METADATA writes it */
        char *version;  /* deb: Version; pypi: Version */
        char *arch;     /* deb: Architecture; pypi: NULL */
        char *license;  /* NULL when the metadata names none */
        char *purl;     /* pkg:deb/debian/jq@1.6-2.1?arch=amd64, pkg:pypi/hello-img@1.0 */
        char *location; /* where it was read: var/lib/dpkg/status, or the dist-info directory */
        size_t layer;   /* index into the layers given to kiln_sbom_collect */
};

struct kiln_sbom {
        struct kiln_sbom_pkg *pkgs; /* sorted: type, name, version, location */
        size_t n_pkgs;
        char *os_id;         /* etc/os-release ID ("debian"), NULL if none */
        char *os_version_id; /* VERSION_ID ("12"), NULL if none */
        /* The apt sources the image's final etc/apt/sources.list and
         * sources.list.d (one-line and deb822) name, one "URI SUITE
         * COMPONENTS..." per entry, credentials removed; NULL-terminated,
         * NULL if none. */
        char **apt_sources;
};
void kiln_sbom_release(struct kiln_sbom *s);
#define _cleanup_sbom_ _cleanup_(kiln_sbom_release)

/* Reads the packages of an image from its layers (every blob present in
 * the store). What one layer contributes is cached in the store by the
 * layer's digest, so a base's layers are read once for every build on it. */
int kiln_sbom_collect(struct kiln_store *store, const struct kiln_sbom_layer *layers, size_t n,
                      struct kiln_sbom *out, struct kiln_err **err);

/* What an SBOM or a provenance document is about. */
struct kiln_attest_subject {
        const char *name;            /* the image's full name (registry/repo:tag) */
        const char *manifest_digest; /* the image manifest's digest */
        const char *platform;        /* "linux/amd64" */
        const char *created;         /* RFC 3339: the image's created time */
        const char *tool_version;    /* kiln's version */
};

enum kiln_sbom_format { KILN_SBOM_SPDX, KILN_SBOM_CYCLONEDX };

/* The SBOM document (SPDX 2.3 or CycloneDX 1.5 JSON), deterministic for
 * the same inputs. layers are the ones given to kiln_sbom_collect: each
 * package names the layer (digest and step) that introduced it. */
int kiln_sbom_document(const struct kiln_sbom *s, enum kiln_sbom_format fmt,
                       const struct kiln_attest_subject *subj, const struct kiln_sbom_layer *layers,
                       size_t n_layers, struct kiln_buf *out, struct kiln_err **err);

/* ---------- provenance ---------- */

struct kiln_prov_step {
        const char *kind; /* step kind name */
        const char *key;  /* its cache key (hex) */
        const char *describe;
        bool cached;
};

struct kiln_provenance {
        struct kiln_attest_subject subject;
        const char *spec_digest; /* sha256:... of the spec's canonical form */
        json_t *spec_fields;     /* the spec's fields, credentials removed, no secret contents */
        const char *base_name;   /* the base image reference */
        const char *base_digest; /* its manifest digest (the per-platform one) */
        const struct kiln_prov_step *steps;
        size_t n_steps;
        char *const *apt_sources;    /* NULL-terminated or NULL */
        char *const *python_indexes; /* credentials removed; NULL-terminated or NULL */
        int64_t started, finished;   /* unix seconds (SOURCE_DATE_EPOCH when set) */
        const char *compression;     /* of the new layers ("gzip"), NULL: not said */
};

/* An in-toto Statement v1 with a SLSA provenance v1 predicate. */
int kiln_provenance_document(const struct kiln_provenance *p, struct kiln_buf *out,
                             struct kiln_err **err);

/* ---------- artifacts (OCI 1.1 referrers) ---------- */

/* Stores doc as a blob and an artifact manifest whose subject is subject
 * (the OCI 1.1 empty config, one layer of doc_media_type, artifactType
 * artifact_type, an org.opencontainers.image.created annotation = created);
 * out describes the manifest as an index or referrers list names it:
 * artifactType and the manifest's annotations set. */
int kiln_attest_artifact(struct kiln_store *store, const struct kiln_descriptor *subject,
                         const char *artifact_type, const char *doc_media_type, const void *doc,
                         size_t len, const char *created, struct kiln_descriptor *out,
                         struct kiln_err **err);

#endif
