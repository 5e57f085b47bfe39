/* The build module: image assembly (a new OCI config and manifest from a
 * base image plus the layers and config changes of a build; exact bytes are
 * produced once, stored, and described by a descriptor) and, on top of it,
 * the planner and executor of ImageSpec steps. */
#ifndef KILN_BUILDER_H
#define KILN_BUILDER_H

#include "kiln/archive.h"
#include "kiln/oci.h"
#include "kiln/output.h"
#include "kiln/registry.h"
#include "kiln/sandbox.h"
#include "kiln/imagespec.h"
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

/* ---------- building an ImageSpec ---------- */

struct kiln_build_opts {
        struct kiln_registry_opts reg;        /* pulls and pushes */
        const char *cache_dir;                /* NULL: the default cache */
        bool push;                            /* push to the spec's registry */
        const struct kiln_image_loc *outputs; /* -o destinations */
        size_t n_outputs;
        bool dry_run;                      /* print the plan and the name, build nothing */
        enum kiln_compression compression; /* of new layers */
        /* With push: build even when the registry already has the image
         * name (also FLYTE_FORCE_PUSH_IMAGE_SPEC=true, as in flytekit). */
        bool force;
        /* Keep the image in the store only, with no push or output (a base
         * built for another spec). */
        bool local_only;
        /* Run every step even when the cache has its result (results are
         * still recorded). */
        bool no_cache;
        /* A registry repository that holds step results for every builder
         * that uses it (NULL: $KILN_CACHE_REPO, unset: none). Looked up on
         * a local miss; written after a step runs. Failing to write only
         * warns. */
        const char *cache_repo;
};

struct kiln_build_result {
        struct kiln_image_name name;
        struct kiln_descriptor manifest; /* the built image (unset on dry run) */
        size_t n_new_layers;             /* layers built by this run */
        size_t n_cached_steps;           /* steps whose result came from the cache */
        size_t n_remote_hits;            /* ... of them from the registry cache */
        bool skipped;                    /* the image existed: nothing was built */
};
void kiln_build_result_release(struct kiln_build_result *r);
#define _cleanup_build_result_ _cleanup_(kiln_build_result_release)

/* Does the registry already have the spec's image name? An unreachable
 * registry is an error, never "assume it exists". */
int kiln_build_exists(const struct kiln_spec *spec, const struct kiln_image_name *name,
                      const struct kiln_registry_opts *reg, bool *exists,
                      char digest[KILN_DIGEST_MAX], struct kiln_err **err);

/* Builds spec: pulls the base, runs the steps (installers in the sandbox,
 * copies straight from the host), assembles the image and writes it to
 * every output and, with push, to the registry under the flytekit name.
 * Nothing is tagged unless every step succeeded. Call before any thread
 * is started (it may enter a user namespace). */
int kiln_build(const struct kiln_spec *spec, const struct kiln_build_opts *o,
               struct kiln_build_result *res, struct kiln_err **err);

/* ---------- several specs in one run ---------- */

struct kiln_build_job {
        const struct kiln_spec *spec;
        const char *label; /* names the spec in log lines and errors (its file) */
        struct kiln_build_result res;
        struct kiln_err *err; /* set when this spec did not build */
};

/* Builds several specs (Flyte's multi-image workflows) in one run:
 * - each distinct base is resolved once before any build starts, its
 *   layers downloaded once and unpacked once when a build first needs
 *   them (the others wait for that one and share it);
 * - specs with the same image name are built once;
 * - a spec whose base_image is another spec of the run waits for it;
 * - up to `parallel` builds run at once (0: one per CPU), each in a
 *   process of its own whose log lines start with its label; the step
 *   cache's per-key locks make identical steps run once and be reused;
 * - outputs are written after every build, each image tagged with its
 *   own tag when the destination names none.
 * A spec that fails sets its job's err and the others go on. Returns -1
 * only when the run could not start. Call before any thread is started. */
int kiln_build_many(struct kiln_build_job *jobs, size_t n, const struct kiln_build_opts *o,
                    int parallel, struct kiln_err **err);

/* ---------- step kinds (layers/) ----------
 *
 * A step kind sees a narrow context: the spec, the image being assembled,
 * and three ways to change it — run a command in the sandbox over the
 * rootfs so far, write host files as a layer, or edit the config. Adding a
 * kind is one file in layers/ and one entry in the planner's table. */

struct kiln_step_ctx;

struct kiln_step_kind {
        const char *name;
        /* Does the spec ask for this step? */
        bool (*wanted)(const struct kiln_spec *s);
        /* One line for --dry-run. Caller frees. */
        char *(*describe)(const struct kiln_spec *s);
        /* Appends the step's canonical inputs to its cache key: everything
         * that decides what its layer holds (the commands it runs, package
         * lists, the content of files it reads), never a secret (index
         * URLs go in without credentials). NULL: no inputs of its own. */
        int (*key)(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err);
        /* The layer part: at most one sandbox run or host-file layer. It is
         * skipped when the cache has the step's result. NULL: none. */
        int (*run)(struct kiln_step_ctx *ctx, struct kiln_err **err);
        /* Config changes (env, PATH, entrypoint, user ...), made after the
         * layer part whether it ran or came from the cache. NULL: none. */
        int (*config)(struct kiln_step_ctx *ctx, struct kiln_err **err);
};

const struct kiln_spec *kiln_step_spec(const struct kiln_step_ctx *ctx);

/* A host path mounted into one sandboxed run (caches, secrets, scratch
 * files): nothing of it, not even its mount point, reaches the layer. */
struct kiln_step_bind {
        const char *source; /* host path (file or directory) */
        const char *target; /* absolute path inside the sandbox */
        bool readonly;
};

/* A host file or directory a host-file step puts into the image at dest
 * (relative to /, e.g. "root/src/pkg"). */
struct kiln_step_file {
        const char *src;
        const char *dest;
};

/* Config changes, each recorded by a history entry the step adds: the
 * image itself stays the builder's (a step kind cannot commit it). */
void kiln_step_add_history(struct kiln_step_ctx *ctx, const char *created_by);
/* Replaces KEY=... in Env, or appends KEY=value. */
void kiln_step_set_env(struct kiln_step_ctx *ctx, const char *key, const char *value);
/* The value of KEY in Env so far, or NULL. */
const char *kiln_step_get_env(const struct kiln_step_ctx *ctx, const char *key);
/* A string field of the container config (WorkingDir, User). */
void kiln_step_set_string(struct kiln_step_ctx *ctx, const char *field, const char *value);
/* argv NULL-terminated; an empty argv ([]) clears the field. */
void kiln_step_set_entrypoint(struct kiln_step_ctx *ctx, char *const *argv);
void kiln_step_set_cmd(struct kiln_step_ctx *ctx, char *const *argv);

/* Runs argv as uid 0 in the sandbox over the rootfs so far, with the
 * image's Env (plus extra_env, not recorded), cwd the image's WorkingDir.
 * What changed becomes a layer recorded with created_by; a command that
 * fails is a KILN_ERR_BUILD error naming the step and its exit status. */
int kiln_step_sandbox(struct kiln_step_ctx *ctx, char *const *argv, char *const *extra_env,
                      const struct kiln_step_bind *binds, size_t n_binds, const char *created_by,
                      struct kiln_err **err);
/* Like kiln_step_sandbox, but runs fn (kiln's own code, in the sandbox's
 * child, root of the image as /) instead of a program: no emulation is
 * needed for a foreign platform. */
int kiln_step_sandbox_fn(struct kiln_step_ctx *ctx, int (*fn)(void *arg, struct kiln_err **err),
                         void *arg, const struct kiln_step_bind *binds, size_t n_binds,
                         const char *created_by, struct kiln_err **err);
/* The cache key input of a host-file step: a digest of exactly what its
 * layer would hold (kiln_archive_host_digest). */
int kiln_step_files_key(const struct kiln_step_file *files, size_t n, struct kiln_buf *b,
                        struct kiln_err **err);
/* Writes host files as a layer (see kiln_archive_from_host). */
int kiln_step_host_layer(struct kiln_step_ctx *ctx, const struct kiln_step_file *files, size_t n,
                         uid_t uid, gid_t gid, const char *created_by, struct kiln_err **err);
/* A scratch directory of this build (removed when it ends), for files a
 * step binds into its sandbox run: nothing of it reaches a layer. Caller
 * frees. */
char *kiln_step_scratch_dir(struct kiln_step_ctx *ctx, const char *name, struct kiln_err **err);
/* A cache directory that outlives builds (apt's .debs, pip's wheels),
 * STORE_ROOT/cache/NAME, or with per_base one per base image (package lists
 * belong to the base's sources). Created if missing; caller frees. Mount it
 * into a step with a kiln_step_bind: nothing of it reaches the layer. */
char *kiln_step_cache_dir(struct kiln_step_ctx *ctx, const char *name, bool per_base,
                          struct kiln_err **err);
/* Facts a step learns about the image as it builds it (name=value), kept
 * with its cached result so later steps know them without the rootfs:
 * "user.NAME" = "UID:GID" is what kiln_step_lookup_user answers from. */
void kiln_step_set_fact(struct kiln_step_ctx *ctx, const char *name, const char *value);
const char *kiln_step_get_fact(const struct kiln_step_ctx *ctx, const char *name);
/* The spec's platform (what the image runs on). */
const struct kiln_platform *kiln_step_platform(const struct kiln_step_ctx *ctx);
/* Opens a regular file of the rootfs so far (path relative to /, resolved
 * inside it); *fd is -1 when there is none. */
int kiln_step_rootfs_open(struct kiln_step_ctx *ctx, const char *path, int *fd,
                          struct kiln_err **err);
/* Does url answer at all (any HTTP status), within timeout_ms? An error
 * naming url and the transport's reason otherwise. Sends no credentials:
 * for telling a user which host a step would need cannot be reached. */
int kiln_step_probe_url(const char *url, long timeout_ms, struct kiln_err **err);
/* Looks a user up in the rootfs so far (/etc/passwd). */
int kiln_step_lookup_user(struct kiln_step_ctx *ctx, const char *name, uid_t *uid, gid_t *gid,
                          bool *found, struct kiln_err **err);

extern const struct kiln_step_kind kiln_step_apt;
extern const struct kiln_step_kind kiln_step_cacerts;
extern const struct kiln_step_kind kiln_step_user;
extern const struct kiln_step_kind kiln_step_python;
extern const struct kiln_step_kind kiln_step_pip;
extern const struct kiln_step_kind kiln_step_env;
extern const struct kiln_step_kind kiln_step_source;
extern const struct kiln_step_kind kiln_step_copy;
extern const struct kiln_step_kind kiln_step_commands;
extern const struct kiln_step_kind kiln_step_user_config;

#endif
