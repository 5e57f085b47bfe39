/* Image outputs and local image sources: OCI layout directories,
 * oci-archive tarballs and docker-archive (docker save) tarballs.
 *
 * Every blob an image needs (index, manifests, configs, layers) is already in
 * the blob store; writers copy (or hardlink) from it. A writer never leaves a
 * half-written output under the requested name: archives are written to a
 * temp sibling and renamed; a layout directory gets its blobs first and its
 * index.json last, atomically. */
#ifndef KILN_OUTPUT_H
#define KILN_OUTPUT_H

#include "kiln/oci.h"
#include "kiln/ref.h"
#include "kiln/store.h"

/* Writes the image (or index) `top` to dest (OCI, OCI_ARCHIVE or
 * DOCKER_ARCHIVE). For an index, every child manifest present in the store
 * is written with its blobs; children absent from the store are an error.
 * source_name (may be NULL) is the image's full reference, used as the
 * docker-archive RepoTag when dest has none. The OCI tag is dest->tag; when
 * unset, OCI layouts get no ref.name annotation... except that skopeo/umoci
 * need one to address the image, so "latest" is used when dest->tag is NULL.
 * Writing into an existing OCI layout adds the image to its index.json,
 * replacing any entry with the same ref name. docker-archive needs a single
 * image manifest (an index is an error) and stores layers uncompressed, each
 * verified against its diff_id. */
/* The ref name an OCI layout or oci-archive gets when dest names none. */
#define KILN_OUTPUT_DEFAULT_TAG "latest"

/* Where kiln_output_write(dest, ...) puts the image, as a location that
 * skopeo and kiln read back (e.g. "oci:DIR:REF", the default ref filled
 * in). Caller frees. */
char *kiln_output_location(const struct kiln_image_loc *dest);

int kiln_output_write(const struct kiln_image_loc *dest, struct kiln_store *store,
                      const struct kiln_descriptor *top, const char *source_name,
                      struct kiln_err **err);
/* The same, with the image's referrers (OCI 1.1 artifact manifests in the
 * store whose subject is top, e.g. kiln_attest_artifact's): OCI layouts
 * and oci-archives list each in index.json without a ref name, with its
 * artifactType and annotations, as the image-spec and ORAS do, so a tool
 * that reads the image by tag sees the image alone. docker-archive has no
 * place for them and leaves them out. */
int kiln_output_write_referrers(const struct kiln_image_loc *dest, struct kiln_store *store,
                                const struct kiln_descriptor *top, const char *source_name,
                                const struct kiln_descriptor *referrers, size_t n_referrers,
                                struct kiln_err **err);

/* A local image opened for reading (kiln inspect oci:DIR, oci-archive:FILE,
 * and later builds from local bases). Blobs are read from the layout itself,
 * never from the store. */
struct kiln_local_image {
        char *dir;                  /* layout directory (a temp extraction for archives) */
        bool cleanup;               /* remove dir on release (extracted archive) */
        struct kiln_descriptor top; /* entry of index.json selected by tag */
};
/* Opens src (OCI or OCI_ARCHIVE). With src->tag unset the layout must hold
 * exactly one image. Unknown tags are KILN_ERR_NOT_FOUND and list the tags
 * present. */
int kiln_local_image_open(const struct kiln_image_loc *src, struct kiln_local_image *out,
                          struct kiln_err **err);
void kiln_local_image_release(struct kiln_local_image *img);
#define _cleanup_local_image_ _cleanup_(kiln_local_image_release)
/* Reads a blob of the layout into memory with a size bound, verifying its
 * digest. */
int kiln_local_image_read_blob(const struct kiln_local_image *img, const char *digest, size_t max,
                               struct kiln_buf *out, struct kiln_err **err);
/* The layout's referrers of subject (a manifest digest): index.json
 * entries with an artifactType (artifact_type's only, when not NULL) whose
 * manifest's subject is subject. *out (caller releases each and frees)
 * may be empty. */
int kiln_local_image_referrers(const struct kiln_local_image *img, const char *subject,
                               const char *artifact_type, struct kiln_descriptor **out, size_t *n,
                               struct kiln_err **err);
/* Path of a blob inside the layout. Caller frees. */
char *kiln_local_image_blob_path(const struct kiln_local_image *img, const char *digest);

#endif
