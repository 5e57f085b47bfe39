/* Image references and transports.
 *
 * References are parsed the way Docker (distribution/reference) parses them:
 * "debian" -> docker.io/library/debian:latest, "host:port/path:tag",
 * "name@sha256:..." and "name:tag@sha256:...". Transports are named as skopeo
 * names them: docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG],
 * docker-archive:FILE[:REF]. */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "kiln/util.h"

#define KILN_DOCKER_HUB_DOMAIN "docker.io"
/* docker.io is an alias; the API lives here. */
#define KILN_DOCKER_HUB_API_HOST "registry-1.docker.io"

struct kiln_ref {
        char *domain; /* "docker.io", "127.0.0.1:5000", "localhost", "ghcr.io" */
        char *path;   /* "library/debian", "flyteorg/flytekit" */
        char *tag;    /* NULL only when a digest is given without a tag */
        char *digest; /* NULL or "sha256:<64 hex>" */
};

/* Parses and normalises s. On error names the reference and the reason
 * (uppercase repository, bad tag, bad digest, empty component, too long...).
 * Errors are KILN_ERR_USAGE. */
int kiln_ref_parse(const char *s, struct kiln_ref *out, struct kiln_err **err);
void kiln_ref_release(struct kiln_ref *r);
#define _cleanup_ref_ _cleanup_(kiln_ref_release)
void kiln_ref_copy(struct kiln_ref *dst, const struct kiln_ref *src);
/* "domain/path[:tag][@digest]" fully qualified. Caller frees. */
char *kiln_ref_string(const struct kiln_ref *r);
/* "domain/path" (no tag/digest). Caller frees. */
char *kiln_ref_name(const struct kiln_ref *r);
/* The reference to ask the registry for: the digest when present, else the tag. */
const char *kiln_ref_object(const struct kiln_ref *r);
/* Host[:port] to connect to: registry-1.docker.io for docker.io. */
const char *kiln_ref_api_host(const struct kiln_ref *r);

enum kiln_transport {
        KILN_TRANSPORT_DOCKER,         /* docker://REF */
        KILN_TRANSPORT_OCI,            /* oci:DIR[:TAG] */
        KILN_TRANSPORT_OCI_ARCHIVE,    /* oci-archive:FILE[:TAG] */
        KILN_TRANSPORT_DOCKER_ARCHIVE, /* docker-archive:FILE[:REF] */
};

struct kiln_image_loc {
        enum kiln_transport transport;
        struct kiln_ref
            ref;    /* DOCKER: the image; DOCKER_ARCHIVE: optional RepoTag (domain NULL if unset) */
        char *path; /* OCI, OCI_ARCHIVE, DOCKER_ARCHIVE */
        char *tag;  /* OCI, OCI_ARCHIVE: "org.opencontainers.image.ref.name"; NULL if unset */
};

/* Parses "transport:rest". When allow_bare is true a string without a known
 * transport prefix is taken as a docker reference (kiln inspect debian).
 * Errors name the string and the reason (unknown transport, empty path...). */
int kiln_image_loc_parse(const char *s, bool allow_bare, struct kiln_image_loc *out,
                         struct kiln_err **err);
void kiln_image_loc_release(struct kiln_image_loc *l);
#define _cleanup_image_loc_ _cleanup_(kiln_image_loc_release)
/* Canonical text form, e.g. "docker://docker.io/library/debian:latest". */
char *kiln_image_loc_string(const struct kiln_image_loc *l);

#endif
