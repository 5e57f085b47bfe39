/* Internal helpers shared by the sandbox's source files. */
#ifndef KILN_SANDBOX_INTERNAL_H
#define KILN_SANDBOX_INTERNAL_H

#include "kiln/util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

/* Installs the single-id filter in the calling process: the chown family,
 * set*id, setgroups and mknod of device nodes return 0 without effect.
 * Called between fork and exec, so it reports through err like the rest of
 * the child's setup. */
int kiln_sandbox_seccomp_fake_ids(struct kiln_err **err);

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
