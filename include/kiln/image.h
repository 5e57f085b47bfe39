/* Image assembly: a new OCI config and manifest from a base image plus the
 * layers and config changes of a build. Exact bytes are produced once,
 * stored, and described by a descriptor. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include "kiln/archive.h"
#include "kiln/oci.h"
#include "kiln/store.h"

struct kiln_image {
        json_t *config; /* the whole config document; history and rootfs inside */
        struct kiln_descriptor *layers;
        size_t n_layers;
        char *created; /* RFC 3339, the build's one timestamp */
};

/* Starts from the image described by manifest (blobs in the store). */
int kiln_image_from_base(struct kiln_image *img, struct kiln_store *store,
                         const struct kiln_descriptor *manifest, struct kiln_err **err);
/* Starts from nothing (FROM scratch) for platform. */
void kiln_image_scratch(struct kiln_image *img, const struct kiln_platform *platform);
void kiln_image_release(struct kiln_image *img);
#define _cleanup_image_ _cleanup_(kiln_image_release)

/* created = SOURCE_DATE_EPOCH when set (epoch < 0: now). */
void kiln_image_set_created(struct kiln_image *img, int64_t epoch);
/* Appends a layer and its history entry. */
void kiln_image_add_layer(struct kiln_image *img, const struct kiln_archive_result *l,
                          const char *created_by);
/* A history entry for a config-only change (empty_layer). */
void kiln_image_add_history(struct kiln_image *img, const char *created_by);
/* A layer whose result comes later (written in the background): its place
 * in the layers, the diff_ids and the history is kept in order with what
 * is added after it; kiln_image_settle_layer fills it in (an empty result
 * becomes an empty_layer history entry). Settle before the image is used. */
struct kiln_image_slot {
        size_t layer, history;
};
void kiln_image_reserve_layer(struct kiln_image *img, const char *created_by,
                              struct kiln_image_slot *slot);
void kiln_image_settle_layer(struct kiln_image *img, const struct kiln_image_slot *slot,
                             const struct kiln_archive_result *l);
/* Replaces KEY=... in Env, or appends KEY=value. */
void kiln_image_set_env(struct kiln_image *img, const char *key, const char *value);
/* The value of KEY in Env, or NULL. */
const char *kiln_image_get_env(const struct kiln_image *img, const char *key);
/* argv NULL-terminated; an empty argv ([]) clears the field. */
void kiln_image_set_entrypoint(struct kiln_image *img, char *const *argv);
void kiln_image_set_cmd(struct kiln_image *img, char *const *argv);
void kiln_image_set_shell(struct kiln_image *img, char *const *argv);
void kiln_image_set_string(struct kiln_image *img, const char *field, const char *value);
void kiln_image_set_label(struct kiln_image *img, const char *key, const char *value);
/* Env of the config as a NULL-terminated array (for the sandbox). */
char **kiln_image_env(const struct kiln_image *img);
const char *kiln_image_config_string(const struct kiln_image *img, const char *field);

/* Serialises config and manifest (OCI media types; Docker layer types are
 * renamed to their OCI equivalents, same bytes), stores both, and fills out
 * with the manifest's descriptor (platform from the config). */
int kiln_image_commit(struct kiln_image *img, struct kiln_store *store, struct kiln_descriptor *out,
                      struct kiln_err **err);

#endif
