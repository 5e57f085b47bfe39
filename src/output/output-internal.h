/* Helpers shared by the output writers and the local image reader.
 *
 * The output module reads manifests with its own small jansson code instead
 * of the oci module's parser: a writer only needs digests, sizes and media
 * types, and must copy documents byte for byte anyway. */
#ifndef KILN_OUTPUT_INTERNAL_H
#define KILN_OUTPUT_INTERNAL_H

#include "kiln/output.h"

#include <archive.h>
#include <jansson.h>
#include <time.h>

/* A descriptor as the writers see it. */
struct kiln_output_desc {
        char *media_type; /* NULL if the document gave none */
        char *digest;
        int64_t size;
        char *platform; /* "os/arch[/variant]" for index entries, else NULL */
};

/* A manifest or index reduced to what the writers need. */
struct kiln_output_doc {
        char *media_type; /* the document's own, else the declared one; may be NULL */
        bool is_index;
        struct kiln_output_desc config;
        struct kiln_output_desc *layers;
        size_t n_layers;
        struct kiln_output_desc *children;
        size_t n_children;
};

/* Parses manifest or index bytes. `what` names the document in errors. */
int kiln_output_doc_parse(const char *data, size_t len, const char *declared_mt, const char *what,
                          struct kiln_output_doc *out, struct kiln_err **err);
void kiln_output_doc_release(struct kiln_output_doc *d);
#define _cleanup_output_doc_ _cleanup_(kiln_output_doc_release)

bool kiln_output_mt_is_index(const char *mt);

/* Every blob an image needs, each once, in walk order (top first). */
struct kiln_output_blob {
        char *digest;
        int64_t size;
        bool document; /* manifest or index (not config or layer) */
};
struct kiln_output_blobs {
        struct kiln_output_blob *v;
        size_t n;
        size_t cap;
        char *top_media_type; /* effective media type of the top document */
        int64_t top_size;     /* its size in bytes */
};
/* Walks top (manifest or index, recursively) through the store and checks
 * every blob is there. */
int kiln_output_collect(struct kiln_store *store, const struct kiln_descriptor *top,
                        struct kiln_output_blobs *out, struct kiln_err **err);
void kiln_output_blobs_release(struct kiln_output_blobs *b);
#define _cleanup_output_blobs_ _cleanup_(kiln_output_blobs_release)

/* Adds the blobs of each referrer (artifact manifests) to out. */
int kiln_output_collect_referrers(struct kiln_store *store, const struct kiln_descriptor *refs,
                                  size_t n, struct kiln_output_blobs *out, struct kiln_err **err);
/* index.json entries for referrers: no ref name, their artifactType and
 * annotations. */
json_t *kiln_output_referrers_entries(const struct kiln_descriptor *refs, size_t n);
/* An index.json entry for top with the ref.name annotation set to tag. */
json_t *kiln_output_index_entry(const struct kiln_descriptor *top, const char *media_type,
                                int64_t size, const char *tag);
/* A complete index.json document holding the given entries. Caller frees. */
char *kiln_output_index_dump(json_t *manifests);

/* mtime for archive entries: SOURCE_DATE_EPOCH when valid, else 0. */
time_t kiln_output_source_date(void);

/* A tar archive written to a temp sibling of dest, renamed on commit. */
struct kiln_output_tar {
        struct archive *a;
        int fd;
        char *tmp;
        char *dest;
        time_t mtime;
};
int kiln_output_tar_begin(const char *dest, struct kiln_output_tar *t, struct kiln_err **err);
int kiln_output_tar_add_dir(struct kiln_output_tar *t, const char *name, struct kiln_err **err);
int kiln_output_tar_add_mem(struct kiln_output_tar *t, const char *name, const void *data,
                            size_t len, struct kiln_err **err);
/* Streams size bytes of fd (from its current offset). When digest is set the
 * bytes must hash to it (KILN_ERR_DIGEST otherwise). */
int kiln_output_tar_add_fd(struct kiln_output_tar *t, const char *name, int fd, uint64_t size,
                           const char *digest, struct kiln_err **err);
int kiln_output_tar_commit(struct kiln_output_tar *t, struct kiln_err **err);
/* Discards the temp file; safe after commit (then a no-op). */
void kiln_output_tar_abort(struct kiln_output_tar *t);
/* A cleanup variable of this type is initialised {.fd = -1}: abort closes
 * any fd >= 0. */
#define _cleanup_output_tar_ _cleanup_(kiln_output_tar_abort)

/* A libarchive reader a local owns. */
static inline void kiln_output_archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
        *a = NULL;
}
#define _cleanup_archive_read_ _cleanup_(kiln_output_archive_read_freep)

int kiln_output_write_oci(const struct kiln_image_loc *dest, struct kiln_store *store,
                          const struct kiln_descriptor *top, const struct kiln_descriptor *refs,
                          size_t n_refs, struct kiln_err **err);
int kiln_output_write_oci_archive(const struct kiln_image_loc *dest, struct kiln_store *store,
                                  const struct kiln_descriptor *top,
                                  const struct kiln_descriptor *refs, size_t n_refs,
                                  struct kiln_err **err);
int kiln_output_write_docker_archive(const struct kiln_image_loc *dest, struct kiln_store *store,
                                     const struct kiln_descriptor *top, const char *source_name,
                                     struct kiln_err **err);

#endif
