/* The sandbox: installers and user commands run in new user, mount, pid, uts,
 * ipc and (unless told to share the host's) network namespaces over an
 * overlay of the image's rootfs. Everything they write lands in the step's
 * upper directory. */
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

/* The network a sandboxed run sees. */
enum kiln_network {
        /* A network namespace of its own, outbound through slirp4netns (a
         * user-mode TCP/IP stack; DNS at 10.0.2.3): the host's loopback
         * services, abstract unix sockets and traffic are out of reach,
         * except the forwarded ports. */
        KILN_NETWORK_PRIVATE,
        KILN_NETWORK_HOST, /* the host's network namespace, shared */
        KILN_NETWORK_NONE, /* a namespace of its own: loopback and the forwarded ports */
};
const char *kiln_network_name(enum kiln_network n);
/* "private", "host" or "none". */
int kiln_network_parse(const char *s, enum kiln_network *out, struct kiln_err **err);

/* A port of the host's loopback that a run with a network of its own
 * reaches at the same address: kiln listens there inside the run's
 * namespace and relays each connection to the host's. */
struct kiln_net_port {
        char addr[48]; /* numeric: "127.0.0.1", "::1" */
        unsigned short port;
};
struct kiln_net_ports {
        struct kiln_net_port *v;
        size_t n;
};
void kiln_net_ports_release(struct kiln_net_ports *p);
#define _cleanup_net_ports_ _cleanup_(kiln_net_ports_release)
/* Adds "HOST:PORT" (--allow-host): HOST is 127.0.0.0/8, [::1] or
 * localhost (both of those); anything else is refused, since a run with
 * the private network reaches every other host anyway. */
int kiln_net_ports_add(struct kiln_net_ports *p, const char *host_port, struct kiln_err **err);
/* Adds the loopback host and port of every http:// and https:// URL in
 * text (80 and 443 when none is given); credentials in a URL are skipped,
 * never kept. */
void kiln_net_ports_add_urls(struct kiln_net_ports *p, const char *text);
/* All of from's ports. */
void kiln_net_ports_add_all(struct kiln_net_ports *p, const struct kiln_net_ports *from);

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
        /* The zero value is the private network. */
        enum kiln_network network;
        const struct kiln_net_ports *ports; /* forwarded (private and none) */
        /* No system call filter (--security-opt seccomp=unconfined): only
         * single-id mode's ownership no-ops stay. The capability bound and
         * the namespaces stay either way. */
        bool seccomp_unconfined;
};

/* Runs argv in the sandbox, streaming its stdout and stderr to kiln's stderr
 * line by line with the label prefixed. *status is the exit code, or 128+N
 * when killed by signal N. A non-zero status is not an error here (the
 * caller names the step); failing to set up the sandbox is. */
int kiln_sandbox_run(const struct kiln_sandbox_opts *o, int *status, struct kiln_err **err);

#endif
