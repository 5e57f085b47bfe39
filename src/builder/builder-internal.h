/* Private to the build module: what the single and the many-spec build
 * share, and the step cache in a registry. */
#ifndef KILN_BUILDER_INTERNAL_H
#define KILN_BUILDER_INTERNAL_H

#include "kiln/archive.h"
#include "kiln/builder.h"
#include "kiln/image.h"
#include "kiln/output.h"
#include "kiln/registry.h"
#include "kiln/sandbox.h"
#include "kiln/step.h"
#include "kiln/store.h"

/* The base image's reference: base_image, the name of a base spec, or
 * the default (debian, or an NVIDIA CUDA image). Caller frees. */
int kiln_build_base_name(const struct kiln_spec *spec, char **out, struct kiln_err **err);
/* Pulls base for platform into store (a no-op transfer when it is
 * there); with manifest_only its manifest and config, and where its layers
 * are noted for a fetch on first need. */
int kiln_build_pull_base(const struct kiln_build_opts *o, const char *base,
                         const struct kiln_platform *platform, bool manifest_only,
                         struct kiln_store *store, struct kiln_ref *base_ref,
                         struct kiln_descriptor *top, struct kiln_err **err);
/* The base's manifest digest, its manifest and config in store and its
 * layers left where they are (the dry run's keys, a run of many specs). */
int kiln_build_resolve_base(const struct kiln_build_opts *o, const char *base,
                            const struct kiln_platform *platform, struct kiln_store *store,
                            char digest[KILN_DIGEST_MAX], struct kiln_err **err);
/* --force or FLYTE_FORCE_PUSH_IMAGE_SPEC: build even when the image exists. */
bool kiln_build_forced(const struct kiln_build_opts *o);

struct kiln_remote_cache;

/* ref names the cache repository (domain/path; a tag is ignored). */
int kiln_remote_cache_open(const char *ref, const struct kiln_registry_opts *ro,
                           struct kiln_remote_cache **out, struct kiln_err **err);
void kiln_remote_cache_free(struct kiln_remote_cache *rc);
/* "domain/path", for messages. */
const char *kiln_remote_cache_name(const struct kiln_remote_cache *rc);
const char *kiln_remote_cache_domain(const struct kiln_remote_cache *rc);
const char *kiln_remote_cache_repo(const struct kiln_remote_cache *rc);
/* The step result under key: the entry into store, its layer noted as
 * being in the cache repository (kiln_remote_cache_fetch it when needed).
 * Not there is *found = false, not an error. */
int kiln_remote_cache_get(struct kiln_remote_cache *rc, struct kiln_store *store, const char *key,
                          struct kiln_step_entry *e, bool *found, struct kiln_err **err);
/* Is there a result under key (one HEAD)? */
int kiln_remote_cache_has(struct kiln_remote_cache *rc, const char *key, bool *found,
                          struct kiln_err **err);
/* Stores e (its layer from store) under its key; mount_from is a
 * repository on the same registry that may hold the layer already. */
int kiln_remote_cache_put(struct kiln_remote_cache *rc, struct kiln_store *store,
                          const struct kiln_step_entry *e, const char *mount_from,
                          struct kiln_err **err);

/* The image a fully cached chain assembles, under its image key: its
 * manifest and config into the store, its layers noted as being in the
 * cache repository (kiln_remote_cache_fetch them when needed). */
int kiln_remote_cache_get_image(struct kiln_remote_cache *rc, struct kiln_store *store,
                                const char *key, struct kiln_descriptor *out, bool *found,
                                struct kiln_err **err);
/* Fetches blobs (known to be in the cache repository) into store. */
int kiln_remote_cache_fetch(struct kiln_remote_cache *rc, struct kiln_store *store,
                            const struct kiln_descriptor *blobs, size_t n, struct kiln_err **err);
int kiln_remote_cache_put_image(struct kiln_remote_cache *rc, struct kiln_store *store,
                                const char *key, const struct kiln_descriptor *image,
                                const char *mount_from, struct kiln_err **err);

#endif
