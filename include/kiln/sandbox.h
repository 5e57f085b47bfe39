/* The sandbox: installers and user commands run in new user, mount, pid, uts
 * and ipc namespaces over an overlay of the image's rootfs, sharing only the
 * host's network. Everything they write lands in the step's upper directory. */
#ifndef KILN_SANDBOX_H
#define KILN_SANDBOX_H

#include "kiln/util.h"

#include <sys/types.h>

enum kiln_idmap {
        KILN_IDMAP_HOST,   /* real root: container ids are host ids (0..2^32-2) */
        KILN_IDMAP_RANGE,  /* ordinary user with /etc/subuid and /etc/subgid ranges */
        KILN_IDMAP_SINGLE, /* ordinary user, only their own id maps to root */
};
const char *kiln_idmap_name(enum kiln_idmap m);

/* Puts the whole process into a user namespace (and a private mount
 * namespace) where it is root, so unpacking can chown and overlay can be
 * mounted. As real root this is a no-op returning KILN_IDMAP_HOST. As an
 * ordinary user the widest mapping available is used: newuidmap/newgidmap
 * with the user's subordinate ranges, else the single id. Must be called
 * before any thread is started. Idempotent. */
int kiln_userns_enter(enum kiln_idmap *mode, struct kiln_err **err);

/* A host path mounted into the sandbox for one run only (caches, secrets):
 * nothing of it, not even its mount point, stays in the upper directory. */
struct kiln_bind {
        const char *source; /* host path (file or directory) */
        const char *target; /* absolute path inside the sandbox */
        bool readonly;
};

struct kiln_sandbox_opts {
        char *const *lowers; /* rootfs layers, top-most first (overlay lowerdir order) */
        size_t n_lowers;
        const char *upper; /* empty directory that receives the changes */
        const char *work;  /* overlay workdir, same filesystem as upper */
        char *const *argv; /* e.g. {"/bin/sh", "-c", "apt-get ...", NULL} */
        /* Instead of argv: a function of kiln's own run in the sandbox's
         * child, after the root is set up and ids and cwd are applied. It
         * runs no program of the image, so a foreign architecture needs no
         * emulation. An error it sets is the sandbox run's error. */
        int (*fn)(void *arg, struct kiln_err **err);
        void *fn_arg;
        char *const *env; /* complete environment, NULL-terminated */
        const char *cwd;  /* inside the sandbox; created if missing (and kept: it is
                             part of the image config) */
        uid_t uid;        /* inside the sandbox */
        gid_t gid;
        const struct kiln_bind *binds;
        size_t n_binds;
        const char *label; /* prefix for every output line, e.g. "[apt] " */
        const char *hostname;
        /* With a single-id mapping, ownership changes (chown family, and
         * setuid/setgid/setgroups to other ids) become successful no-ops via
         * seccomp, so dpkg and apt's _apt sandbox user work; files stay root. */
        enum kiln_idmap idmap;
};

/* Runs argv in the sandbox, streaming its stdout and stderr to kiln's stderr
 * line by line with the label prefixed. *status is the exit code, or 128+N
 * when killed by signal N. A non-zero status is not an error here (the
 * caller names the step); failing to set up the sandbox is. */
int kiln_sandbox_run(const struct kiln_sandbox_opts *o, int *status, struct kiln_err **err);

#endif
