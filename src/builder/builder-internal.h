/* Private to the build module: what the single and the many-spec build
 * share, the step cache in a registry, and the state of one spec's build
 * (struct kiln_step_ctx), which the files of the builder share. */
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

/* ---------- build.c, rootfs.c: what kiln_build and kiln_build_many share ---------- */

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
/* The platform a build makes: the one of a multi-platform build's child,
 * else the spec's first (or the default). */
const char *builder_platform(const struct kiln_spec *spec, const struct kiln_build_opts *o);
/* Does this build make an index over several platforms? */
bool builder_several_platforms(const struct kiln_spec *spec, const struct kiln_build_opts *o);
/* platforms.c: each platform built (side by side), an index of them
 * written and pushed like one image. */
int builder_build_platforms(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                            struct kiln_build_result *res, struct kiln_err **err);
/* Writes res->manifest with its referrers refs to every -o destination (none
 * when untagged), recording each in res; with push, opens the registry the
 * image name goes to (*reg stays NULL without push). */
int builder_write_image(const struct kiln_build_opts *o, struct kiln_store *store,
                        struct kiln_build_result *res, const struct kiln_descriptor *refs,
                        size_t n_refs, struct kiln_ref *dest, struct kiln_registry **reg,
                        struct kiln_err **err);
/* Puts image (pushed by digest already, with everything it refers to)
 * under dest's tag: one PUT of its bytes, no blob checked again. */
int builder_tag_manifest(struct kiln_registry *reg, const struct kiln_ref *dest,
                         const struct kiln_descriptor *image, struct kiln_store *store,
                         struct kiln_err **err);
/* Records in res that the image was written to dest. */
void builder_result_add_output(struct kiln_build_result *res, const struct kiln_image_loc *dest);

/* ---------- remote_cache.c: the step cache in a registry ---------- */

struct kiln_remote_cache;

/* ref names the cache repository (domain/path; a tag is ignored). */
int kiln_remote_cache_open(const char *ref, const struct kiln_registry_opts *ro,
                           struct kiln_remote_cache **out, struct kiln_err **err);
void kiln_remote_cache_free(struct kiln_remote_cache *rc);
void kiln_remote_cache_freep(struct kiln_remote_cache **rc);
#define _cleanup_remote_cache_ _cleanup_(kiln_remote_cache_freep)
/* "domain/path", for messages. */
const char *kiln_remote_cache_name(const struct kiln_remote_cache *rc);
const char *kiln_remote_cache_domain(const struct kiln_remote_cache *rc);
/* The step result under key: the entry into store, its layer noted as
 * being in the cache repository (kiln_remote_cache_fetch it when needed).
 * Not there is *found = false, not an error. */
int kiln_remote_cache_get(struct kiln_remote_cache *rc, struct kiln_store *store, const char *key,
                          struct kiln_step_entry *e, bool *found, struct kiln_err **err);
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
/* A manifest (an attestation) and its blobs, stored by digest, and
 * fetched back into store. */
int kiln_remote_cache_put_manifest(struct kiln_remote_cache *rc, struct kiln_store *store,
                                   const struct kiln_descriptor *m, struct kiln_err **err);
int kiln_remote_cache_get_manifest(struct kiln_remote_cache *rc, struct kiln_store *store,
                                   const char *digest, struct kiln_err **err);

/* ---------- the build of one spec, which the files below share ---------- */

/* A host-file layer, or a layer of the registry cache, that later
 * sandboxed steps see only once it is unpacked from the store. */
struct builder_pending_layer {
        struct kiln_descriptor d;
        char *diff_id;
};

/* A sandboxed step's layer being written in the background. */
struct builder_bg_layer {
        struct kiln_archive_job *job;
        struct kiln_image_slot slot;
        size_t step_no;
        char *label, *created_by;
        bool has_entry; /* the step's entry and lock were handed over */
        struct kiln_step_entry out;
        int lock;
};

/* Writers at once: a step that takes no time (the user step) must not
 * make the next one wait for the apt layer; more would only share cores. */
#define BUILDER_BG_MAX 3

/* What the builder keeps for one spec's build. Step kinds get a pointer
 * and reach it only through kiln/step.h; the fields are the builder's. */
struct builder_step_note {
        const struct kiln_step_kind *kind;
        char key[KILN_HEX_MAX];
        bool ran; /* its layer part ran in this build (not from the cache) */
};

struct kiln_step_ctx {
        /* The build as a whole. img is assembled here, never by a step
         * kind: a kind's config changes go through the step API. */
        const struct kiln_spec *spec;
        const struct kiln_build_opts *o;
        struct kiln_store *store;
        struct kiln_image img;
        struct kiln_archive_opts lopts; /* how new layers are written */
        struct kiln_platform platform;
        enum kiln_idmap idmap;
        char *build_dir; /* scratch of this build, removed when it ends */
        /* The host loopback ports every sandboxed step reaches, found when
         * the first one runs (a lock file may be large: read once). */
        struct kiln_net_ports net_ports;
        bool net_ports_known;

        /* The running step: names it in messages, directories, entries. */
        const struct kiln_step_kind *kind;
        size_t step_no;
        uint64_t step_start_ns; /* for its end event's duration */
        bool step_open;         /* started, not cached, no end event yet */

        /* The base. Its layers are fetched on first need (a sandboxed
         * step, an output, a push that cannot mount them), so the
         * reference stays to fetch them from, and its layers and diff_ids
         * for the snapshot made on first need. */
        struct kiln_ref base_ref;
        struct kiln_descriptor *base_layers;
        char **base_diff_ids;
        size_t n_base;

        /* The rootfs of sandboxed steps, prepared lazily: a copy-only spec
         * never unpacks the base. Overlay lowers top-most first; host-file
         * layers join them only when a sandboxed step needs them. */
        bool rootfs_ready;
        char **lowers;
        size_t n_lowers;
        struct builder_pending_layer *pending;
        size_t n_pending;

        /* The step cache: the running step's key, and what it produced. */
        char key[KILN_HEX_MAX];
        struct kiln_step_entry out;
        /* "name=value" recorded by steps so far, latest last: later steps
         * know them without the rootfs, even when every step hit. */
        char **facts;
        size_t n_facts;
        /* The keys of the steps with a layer part, known before anything
         * runs: a cached image is trusted only while their layers are. */
        char (*layer_keys)[KILN_HEX_MAX];
        size_t n_layer_keys;

        /* The registry cache (--cache-repo), or NULL. */
        struct kiln_remote_cache *remote;
        const char *mount_from; /* the base's repository on the cache's registry */
        bool image_remote;      /* the whole image is the registry cache's */
        /* after the first failure the registry cache is left alone for the
         * rest of the build: one warning, not one per step */
        bool remote_read_failed, remote_write_failed;

        /* Sandboxed steps' layers, written in the background while later
         * steps run, oldest first; each is settled (its place in the image
         * filled, its cache entry put) in order, before the image is
         * assembled. A step's lock is held until then, so a concurrent build
         * of the same step waits for the entry instead of running it. */
        struct builder_bg_layer bg[BUILDER_BG_MAX];
        size_t n_bg;

        /* For the provenance (attest.c): every step's key as chained, the
         * base's manifest digest, when the build started (unix seconds). */
        struct builder_step_note *notes;
        size_t n_notes;
        char *base_digest;
        int64_t started_at;

        /* For the result, and for the debug line on where the time went. */
        size_t n_new_layers;
        size_t n_cached;
        size_t n_remote_hits;
        uint64_t sandbox_ns;   /* time inside sandboxed programs (the installers) */
        uint64_t commit_ns;    /* time the build waited for layers to be written */
        uint64_t commit_bg_ns; /* time the layer writers took, mostly behind later steps */
};

/* ---------- rootfs.c: the rootfs of sandboxed steps, blobs on first need ---------- */

/* The base's layers and diff_ids, from the image started from it. */
int builder_capture_base(struct kiln_step_ctx *c, struct kiln_err **err);
void builder_rootfs_release(struct kiln_step_ctx *c);
/* The base snapshot and every pending layer unpacked into the lowers. */
int builder_ensure_rootfs(struct kiln_step_ctx *c, struct kiln_err **err);
/* dir (taken) becomes the top-most lower. */
void builder_push_lower(struct kiln_step_ctx *c, char *dir);
/* A layer of the image that later sandboxed steps see once unpacked. */
void builder_add_pending(struct kiln_step_ctx *c, const char *digest, const char *media_type,
                         const char *diff_id, int64_t size);
/* Can this host run the spec's platform's programs? */
int builder_check_can_run(const struct kiln_step_ctx *c, struct kiln_err **err);
/* Fetches what writing image to dest_domain (NULL: an output) needs. */
int builder_fetch_for(struct kiln_step_ctx *c, const struct kiln_descriptor *image,
                      const char *dest_domain, struct kiln_err **err);
/* Can a cached image be used as it is (its blobs here, or the base's)? */
bool builder_image_usable(struct kiln_step_ctx *c, const char *digest);

/* ---------- step.c: the step API, layers written in the background ---------- */

/* Waits for every layer written in the background, in order; each fills
 * its place in the image and puts its step's cache entry. */
int builder_settle_layers(struct kiln_step_ctx *c, struct kiln_err **err);
/* The writers stopped, their results unwanted (a build that failed). */
void builder_abandon_layers(struct kiln_step_ctx *c);

/* ---------- step_cache.c: step keys, step results, the image cache ---------- */

/* The key the chain starts from: the base and what shapes every layer. */
/* The host loopback ports a step with a network of its own reaches: those
 * of the URLs pip is given (an index the spec names is the spec's to use)
 * and --allow-host's. */
void builder_net_ports(const struct kiln_spec *s, const struct kiln_build_opts *o,
                       struct kiln_net_ports *p);
void builder_base_key(const struct kiln_platform *platform, enum kiln_idmap idmap,
                      const struct kiln_archive_opts *lo, const char *base_digest,
                      char out[KILN_HEX_MAX]);
/* key (the parent's) becomes step k's. */
int builder_step_key(const struct kiln_step_kind *k, const struct kiln_spec *s,
                     char key[KILN_HEX_MAX], struct kiln_err **err);
/* The assembled image's key: the last step's and the image id. */
void builder_image_key(const char *last_key, const char *id, char out[KILN_HEX_MAX]);
/* The running step's layer part, from the cache or run (kind->run). */
int builder_layer_part(struct kiln_step_ctx *c, bool use_cache, const char *desc,
                       struct kiln_err **err);
/* A step's result into the local cache and the registry cache. */
void builder_put_entry(struct kiln_step_ctx *c, struct kiln_step_entry *e);
/* The image of a chain whose every step hit, under its image key. */
int builder_image_get(struct kiln_step_ctx *c, const char *key, const char *id,
                      struct kiln_descriptor *out, bool *hit, struct kiln_err **err);
void builder_image_put(struct kiln_step_ctx *c, const char *key, const char *id,
                       const struct kiln_descriptor *image);

/* ---------- attest.c: provenance (and SBOM) attached as OCI 1.1 referrers ---------- */

/* Artifact manifests in the store whose subject is the image. */
struct builder_referrers {
        struct kiln_descriptor *v;
        size_t n;
};
void builder_referrers_release(struct builder_referrers *r);
/* A step's key as chained (every wanted step, before any runs), that its
 * layer part ran, and the base (also starts the build's clock). */
void builder_note_step(struct kiln_step_ctx *c, const struct kiln_step_kind *kind, const char *key);
void builder_note_step_ran(struct kiln_step_ctx *c, const char *key);
void builder_note_base(struct kiln_step_ctx *c, const struct kiln_descriptor *base);
void builder_attest_release(struct kiln_step_ctx *c);
/* The attestations the options ask for, made after the image is committed
 * (or found in the cache): stored, described in out. name is the image's
 * full name. */
int builder_attest(struct kiln_step_ctx *c, const struct kiln_descriptor *image, const char *name,
                   struct builder_referrers *out, struct kiln_err **err);
/* The attestations builder_attest made for image (in another process, a
 * platform's build) added to out, when the store still has them. */
void builder_attest_find(struct kiln_store *store, const struct kiln_build_opts *o,
                         const char *image, const char *name, struct builder_referrers *out);
/* Pushes them to repo (the image's manifest must be there, or follow
 * before its tag). */
int builder_attest_push(struct kiln_registry *reg, const char *repo,
                        const struct kiln_descriptor *image, const struct builder_referrers *refs,
                        struct kiln_store *store, struct kiln_err **err);

/* ---------- progress events (events.c) ---------- */

void builder_event_build(const struct kiln_build_result *res, const char *platform);
/* A step starts (its line); a cached one ends at once. */
void builder_event_step(struct kiln_step_ctx *c, size_t no, const struct kiln_step_kind *kind,
                        const char *key, const char *desc, bool cached, const char *cached_in);
/* The running step (c->step_no) ends, if it is open; e its error, NULL
 * when it succeeded. */
void builder_event_step_end(struct kiln_step_ctx *c, const struct kiln_err *e);

#endif
