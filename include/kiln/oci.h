/* OCI and Docker image formats: media types, descriptors, platforms,
 * manifests, indexes and image configs. Parsing only validates and extracts;
 * the exact bytes of a manifest are always kept by the caller (digests are
 * computed over bytes, never over re-serialised JSON). */
#ifndef KILN_OCI_H
#define KILN_OCI_H

#include "kiln/util.h"

#include <jansson.h>

/* A json_t a local owns: json_decref at scope exit. */
void kiln_json_decrefp(json_t **j);
#define _cleanup_json_ _cleanup_(kiln_json_decrefp)

#define KILN_MT_OCI_MANIFEST      "application/vnd.oci.image.manifest.v1+json"
#define KILN_MT_OCI_INDEX         "application/vnd.oci.image.index.v1+json"
#define KILN_MT_OCI_CONFIG        "application/vnd.oci.image.config.v1+json"
#define KILN_MT_OCI_LAYER         "application/vnd.oci.image.layer.v1.tar"
#define KILN_MT_OCI_LAYER_GZIP    "application/vnd.oci.image.layer.v1.tar+gzip"
#define KILN_MT_OCI_LAYER_ZSTD    "application/vnd.oci.image.layer.v1.tar+zstd"
#define KILN_MT_OCI_LAYER_ND_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define KILN_MT_DOCKER_MANIFEST   "application/vnd.docker.distribution.manifest.v2+json"
#define KILN_MT_DOCKER_LIST       "application/vnd.docker.distribution.manifest.list.v2+json"
#define KILN_MT_DOCKER_CONFIG     "application/vnd.docker.container.image.v1+json"
#define KILN_MT_DOCKER_LAYER      "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define KILN_MT_DOCKER_FOREIGN    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define KILN_MT_DOCKER_V1_SIGNED  "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* The Accept header value listing every manifest type kiln understands. */
extern const char KILN_MANIFEST_ACCEPT[];

/* Size bounds for documents read into memory (the spec recommends 4 MiB
 * for manifests; configs of large images can be bigger). */
#define KILN_MANIFEST_MAX ((size_t)4 << 20)
#define KILN_CONFIG_MAX   ((size_t)16 << 20)

bool kiln_mt_is_index(const char *mt);    /* OCI index or Docker manifest list */
bool kiln_mt_is_manifest(const char *mt); /* OCI or Docker schema 2 image manifest */
bool kiln_mt_is_layer(const char *mt);

enum kiln_compression { KILN_COMP_NONE, KILN_COMP_GZIP, KILN_COMP_ZSTD, KILN_COMP_UNKNOWN };
enum kiln_compression kiln_mt_layer_compression(const char *mt);

struct kiln_platform {
        char *os;
        char *architecture;
        char *variant;    /* NULL if unset */
        char *os_version; /* NULL if unset */
};

/* Parses "os/arch[/variant]" (e.g. linux/arm64/v8) and normalises aliases
 * (x86_64->amd64, aarch64->arm64, armhf->arm/v7, armel->arm/v6). Errors
 * name the string. */
int kiln_platform_parse(const char *s, struct kiln_platform *out, struct kiln_err **err);
/* The platform this process runs on (linux/amd64, linux/arm64/v8, ...). */
void kiln_platform_host(struct kiln_platform *out);

/* ---------- layout ref names ---------- */

/* Does s match the image spec's grammar for an OCI layout ref name
 * (alphanumeric components joined by one of -._:@+ or "--", and by /)? */
bool kiln_oci_ref_name_valid(const char *s);
/* A valid ref name for tag: the tag itself when it is one; otherwise the
 * tag with a '0' put wherever the grammar needs an alphanumeric — before
 * a leading separator, after a trailing one, between two separators that
 * may not meet — and any other character turned into '0'. Caller frees. */
char *kiln_oci_ref_name_for(const char *tag);
void kiln_platform_release(struct kiln_platform *p);
#define _cleanup_platform_ _cleanup_(kiln_platform_release)
void kiln_platform_copy(struct kiln_platform *dst, const struct kiln_platform *src);
/* "os/arch[/variant]". Caller frees. */
char *kiln_platform_string(const struct kiln_platform *p);
/* Does the candidate (from an index) satisfy want? os and architecture must
 * be equal; a variant in want must match the candidate's, where arm64's
 * missing variant means v8 and arm's means v7. */
bool kiln_platform_matches(const struct kiln_platform *want, const struct kiln_platform *cand);

struct kiln_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        struct kiln_platform *platform; /* NULL unless given (index entries) */
        json_t *annotations;            /* NULL or object; owned */
        char **urls;                    /* NULL or NULL-terminated */
        char *artifact_type;            /* NULL unless given (OCI 1.1 referrers) */
};
void kiln_descriptor_release(struct kiln_descriptor *d);
#define _cleanup_descriptor_ _cleanup_(kiln_descriptor_release)
void kiln_descriptor_copy(struct kiln_descriptor *dst, const struct kiln_descriptor *src);
/* Parses one descriptor object; validates digest and size >= 0. `what`
 * names it in errors ("layers[2]"). */
int kiln_descriptor_from_json(json_t *obj, const char *what, struct kiln_descriptor *out,
                              struct kiln_err **err);
json_t *kiln_descriptor_to_json(const struct kiln_descriptor *d);

/* A parsed manifest or index. media_type is the one inside the document when
 * present, else the one the registry/layout declared. */
struct kiln_manifest {
        char *media_type;
        bool is_index;
        int schema_version;
        /* image manifest */
        struct kiln_descriptor config;
        struct kiln_descriptor *layers;
        size_t n_layers;
        /* index */
        struct kiln_descriptor *manifests;
        size_t n_manifests;
        json_t *annotations; /* NULL or object */
};

/* Parses manifest or index bytes. declared_mt (may be NULL) is the
 * Content-Type or descriptor media type; a mismatch with the document's
 * own mediaType is an error, as is a schema 1 manifest (not supported).
 * Errors are KILN_ERR_FORMAT and say what is wrong. */
int kiln_manifest_parse(const char *data, size_t len, const char *declared_mt,
                        struct kiln_manifest *out, struct kiln_err **err);
void kiln_manifest_release(struct kiln_manifest *m);
#define _cleanup_manifest_ _cleanup_(kiln_manifest_release)
/* Picks the index entry for want. Among several matches the first wins
 * (as containerd does). A miss is KILN_ERR_NOT_FOUND and lists the
 * platforms the index offers. Attestation manifests (platform unknown/unknown)
 * never match. */
int kiln_index_select(const struct kiln_manifest *idx, const struct kiln_platform *want,
                      const struct kiln_descriptor **out, struct kiln_err **err);

/* What `kiln inspect` shows of an image config. */
struct kiln_config_summary {
        struct kiln_platform platform;
        char *created; /* NULL if unset */
        char *author;
        char **env;        /* NULL-terminated or NULL */
        char **entrypoint; /* NULL-terminated or NULL when unset */
        char **cmd;
        char *user;
        char *working_dir;
        char **diff_ids; /* NULL-terminated */
        json_t *labels;  /* NULL or object */
};
int kiln_config_summary_parse(const char *data, size_t len, struct kiln_config_summary *out,
                              struct kiln_err **err);
void kiln_config_summary_release(struct kiln_config_summary *c);
#define _cleanup_config_summary_ _cleanup_(kiln_config_summary_release)

#endif
