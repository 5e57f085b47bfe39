/* The step-kind API: everything a step kind of layers/ may call, and the
 * kinds themselves (the planner's half of the contract).
 *
 * A step kind sees a narrow context: the spec, the rootfs so far, and
 * three ways to change the image — run a command in the sandbox over the
 * rootfs so far, write host files as a layer, or edit the config. It
 * never holds the image, the store, the sandbox or a registry: the builder
 * does that work for it. Adding a kind is one file in layers/ and one
 * entry in the planner's table. */
#ifndef KILN_STEP_H
#define KILN_STEP_H

#include "kiln/imagespec.h"
#include "kiln/oci.h"
#include "kiln/util.h"

#include <sys/types.h>

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

/* The planner's table, in the order flytekit's default builder lays an
 * image out (src/builder/build.c). */
extern const struct kiln_step_kind kiln_step_apt;
extern const struct kiln_step_kind kiln_step_cacerts;
extern const struct kiln_step_kind kiln_step_user;
extern const struct kiln_step_kind kiln_step_python;
extern const struct kiln_step_kind kiln_step_env;
extern const struct kiln_step_kind kiln_step_pip;
extern const struct kiln_step_kind kiln_step_runtime_env;
extern const struct kiln_step_kind kiln_step_source;
extern const struct kiln_step_kind kiln_step_copy;
extern const struct kiln_step_kind kiln_step_commands;
extern const struct kiln_step_kind kiln_step_user_config;
extern const struct kiln_step_kind kiln_step_profile;

const struct kiln_spec *kiln_step_spec(const struct kiln_step_ctx *ctx);
/* The spec's platform (what the image runs on). */
const struct kiln_platform *kiln_step_platform(const struct kiln_step_ctx *ctx);

/* ---------- the layer part: a sandbox run or host files ---------- */

/* A host path mounted into one sandboxed run (caches, secrets, scratch
 * files): nothing of it, not even its mount point, reaches the layer. */
struct kiln_step_bind {
        const char *source; /* host path (file or directory) */
        const char *target; /* absolute path inside the sandbox */
        bool readonly;
};

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

/* A host file or directory a host-file step puts into the image at dest
 * (relative to /, e.g. "root/src/pkg"). */
struct kiln_step_file {
        const char *src;
        const char *dest;
};

/* The cache key input of a host-file step: a digest of exactly what its
 * layer would hold (every path, type, normalised mode, link target and
 * file content). */
int kiln_step_files_key(const struct kiln_step_file *files, size_t n, struct kiln_buf *b,
                        struct kiln_err **err);
/* Writes host files as a layer with normalised metadata (owner uid:gid,
 * modes 0644/0755 by the owner-execute bit, directories 0755, mtime
 * fixed), so identical inputs give a bit-identical layer; the parent
 * directories of each dest come too. Symlinks are kept as symlinks;
 * sockets, fifos and devices are refused. No sandbox is needed. */
int kiln_step_host_layer(struct kiln_step_ctx *ctx, const struct kiln_step_file *files, size_t n,
                         uid_t uid, gid_t gid, const char *created_by, struct kiln_err **err);

/* A scratch directory of this build (removed when it ends), for files a
 * step binds into its sandbox run: nothing of it reaches a layer. Caller
 * frees. */
char *kiln_step_scratch_dir(struct kiln_step_ctx *ctx, const char *name, struct kiln_err **err);
/* An installer cache that outlives builds (apt's .debs and lists, pip's
 * cache), STORE_ROOT/cache/NAME/KEY, created if missing; caller frees.
 * Build code (the base's sitecustomize.py, a package's setup.py) can write
 * into what a step mounts, so one is shared only by builds that already
 * trust the same inputs: KEY hashes the base image's chain id and sources,
 * what the installer fetches from (index URLs without credentials, options
 * naming more; "" when the base's own settings decide, as apt's sources
 * do). Mount it with a kiln_step_bind: nothing of it reaches the layer. */
char *kiln_step_cache_dir(struct kiln_step_ctx *ctx, const char *name, const char *sources,
                          struct kiln_err **err);

/* ---------- what a step knows of the image so far ---------- */

/* Facts a step learns about the image as it builds it (name=value), kept
 * with its cached result so later steps know them without the rootfs:
 * "user.NAME" = "UID:GID" is what kiln_step_lookup_user answers from. */
void kiln_step_set_fact(struct kiln_step_ctx *ctx, const char *name, const char *value);
const char *kiln_step_get_fact(const struct kiln_step_ctx *ctx, const char *name);
/* Opens a regular file of the rootfs so far (path relative to /, resolved
 * inside it); *fd is -1 when there is none. */
int kiln_step_rootfs_open(struct kiln_step_ctx *ctx, const char *path, int *fd,
                          struct kiln_err **err);
/* Looks a user up in the rootfs so far (/etc/passwd). */
int kiln_step_lookup_user(struct kiln_step_ctx *ctx, const char *name, uid_t *uid, gid_t *gid,
                          bool *found, struct kiln_err **err);
/* Does url answer at all (any HTTP status), within timeout_ms? An error
 * naming url and the transport's reason otherwise. Sends no credentials:
 * for telling a user which host a step would need cannot be reached. */
int kiln_step_probe_url(const char *url, long timeout_ms, struct kiln_err **err);

/* ---------- the config part ---------- */

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
void kiln_step_set_shell(struct kiln_step_ctx *ctx, char *const *argv);

#endif
