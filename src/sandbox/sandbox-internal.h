/* Internal helpers shared by the sandbox's source files. */
#ifndef KILN_SANDBOX_INTERNAL_H
#define KILN_SANDBOX_INTERNAL_H

#include "kiln/util.h"

/* Installs the single-id filter in the calling process: the chown family,
 * set*id, setgroups and mknod of device nodes return 0 without effect.
 * Called between fork and exec, so it reports through err like the rest of
 * the child's setup. */
int kiln_sandbox_seccomp_fake_ids(struct kiln_err **err);

#endif
