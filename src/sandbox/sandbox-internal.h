/* Internal helpers shared by the sandbox's source files. */
#ifndef KILN_SANDBOX_INTERNAL_H
#define KILN_SANDBOX_INTERNAL_H

#include "kiln/sandbox.h"
#include "kiln/util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

/* Installs the system call filter in the calling process (seccomp.c):
 * with `confined`, Docker's default profile; with `fake_ids` (single-id
 * mode), the chown family, set*id, setgroups and mknod of device nodes
 * return 0 without effect. Neither: nothing to install. Called between fork
 * and exec while still root, so it reports through err like the rest of
 * the child's setup. */
int kiln_sandbox_seccomp_load(bool confined, bool fake_ids, struct kiln_err **err);

/* Cuts the capabilities to Docker's default set less MKNOD and NET_RAW:
 * the bound, and the effective, permitted, inheritable and ambient sets
 * (seccomp.c: the rest of the profile). */
int kiln_sandbox_drop_caps(struct kiln_err **err);

/* The full path of an executable found in PATH or the usual system
 * directories, or NULL. Caller frees. */
char *kiln_sandbox_find_tool(const char *name);

/* ---------- network.c: a run's network namespace ---------- */

/* The state of one run's network, set up by three calls: prepare in kiln
 * before the keeper is forked, enter in the keeper once it has unshared
 * its namespaces, start in kiln once the keeper has forked; released by
 * kiln when the run ends. */
struct sb_net {
        enum kiln_network mode;
        const struct kiln_net_ports *ports;
        /* The run's options as the sandbox uses them: private binds its
         * own /etc/resolv.conf over the host's. */
        struct kiln_sandbox_opts opts;
        struct kiln_bind *binds;
        int chan[2];       /* handshake socket pair: [0] kiln's end, [1] the keeper's */
        char *resolv_conf; /* the run's /etc/resolv.conf; NULL: the host's */
        char *log;         /* slirp4netns's output */
        char *slirp_path;  /* the slirp4netns program */
        pid_t slirp;       /* the user-mode stack (private) */
        int slirp_exit;    /* closing it stops slirp4netns */
        pid_t forwarder;   /* relays the forwarded ports */
};
#define SB_NET_INIT                                                                                \
        {                                                                                          \
                .chan = {-1, -1}, .slirp = -1, .slirp_exit = -1, .forwarder = -1                   \
        }
/* The namespaces to unshare besides the sandbox's others. */
int kiln_sandbox_net_clone_flags(const struct sb_net *n);
int kiln_sandbox_net_prepare(struct sb_net *n, const struct kiln_sandbox_opts *o,
                             const char *scratch, struct kiln_err **err);
/* In the keeper, after unshare: loopback up, the forwarded ports listened
 * on and handed to kiln; returns once kiln says the network is ready.
 * Called between fork and exec. */
int kiln_sandbox_net_enter(struct sb_net *n, struct kiln_err **err);
/* In kiln, once the keeper is forked: the user-mode stack and the
 * forwarder started, then the keeper told to go on. A keeper that ended
 * before the handshake is no error here: its report says why. */
int kiln_sandbox_net_start(struct sb_net *n, pid_t keeper, struct kiln_err **err);
void kiln_sandbox_net_release(struct sb_net *n);

/* Both ends of a pipe a local owns ({-1, -1}: none yet), closed at scope
 * exit. */
static inline void kiln_sandbox_close_pipep(int (*p)[2])
{
        for (int i = 0; i < 2; i++) {
                if ((*p)[i] >= 0)
                        close((*p)[i]);
                (*p)[i] = -1;
        }
}
#define _cleanup_pipe_ _cleanup_(kiln_sandbox_close_pipep)

/* A child process a local owns (-1: none), reaped at scope exit: waited
 * for, or killed first. Declared before the pipes a child waits on, so
 * those are closed before the wait. Only the parent ever leaves such a
 * scope: a child runs code that ends in _exit. */
static inline void kiln_sandbox_reapp(pid_t *pid)
{
        if (*pid > 0)
                while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        *pid = -1;
}
#define _cleanup_reap_ _cleanup_(kiln_sandbox_reapp)
static inline void kiln_sandbox_killp(pid_t *pid)
{
        if (*pid > 0) {
                kill(*pid, SIGKILL);
                waitpid(*pid, NULL, 0);
        }
        *pid = -1;
}
#define _cleanup_kill_ _cleanup_(kiln_sandbox_killp)

#endif
