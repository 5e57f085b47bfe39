/* Single-id mode: with only one id mapped, dpkg's chown to other owners and
 * apt's switch to the _apt user fail with EINVAL/EPERM. Like Charliecloud's
 * seccomp mode, those calls are answered "success" without doing anything:
 * the files stay owned by root (the user's own id on the host), which is
 * the only owner such an image layer could record anyway. */
#include "kiln/sandbox.h"
#include "sandbox-internal.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <sys/stat.h>

static void seccomp_ctx_releasep(scmp_filter_ctx *c)
{
        if (*c)
                seccomp_release(*c);
        *c = NULL;
}
#define _cleanup_scmp_filter_ _cleanup_(seccomp_ctx_releasep)

/* rc: a negative errno from libseccomp. */
static int filter_fail(struct kiln_err **err, int rc)
{
        return kiln_err_set(err, KILN_ERR_SYSTEM, -rc, "seccomp filter for single-id mode: %s",
                            strerror(-rc));
}

/* Ownership and identity changes. */
static const char *const fake_ids[] = {
    "chown",    "fchown",    "lchown",    "fchownat",  "setuid",   "setgid",   "setreuid",
    "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
};
/* The same for the i386 ABI, which x86_64 kernels also accept. */
static const char *const fake_ids_compat[] = {
    "chown32",    "fchown32",    "lchown32",    "setuid32",    "setgid32",   "setreuid32",
    "setregid32", "setresuid32", "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
};

int kiln_sandbox_seccomp_fake_ids(struct kiln_err **err)
{
        _cleanup_scmp_filter_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "seccomp: cannot create filter");
        /* We are root in our user namespace, so no_new_privs is not needed to
         * load the filter; leaving it off keeps setuid programs behaving as
         * they would in the image. */
        int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (rc < 0)
                return filter_fail(err, rc);
        if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
                /* 32-bit binaries must keep working and get the same answers */
                rc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
                if (rc < 0 && rc != -EEXIST)
                        return filter_fail(err, rc);
                rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
                if (rc < 0 && rc != -EEXIST)
                        return filter_fail(err, rc);
        }
        for (size_t i = 0; i < sizeof(fake_ids) / sizeof(fake_ids[0]); i++) {
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0),
                                      seccomp_syscall_resolve_name(fake_ids[i]), 0);
                if (rc < 0)
                        return filter_fail(err, rc);
        }
        for (size_t i = 0; i < sizeof(fake_ids_compat) / sizeof(fake_ids_compat[0]); i++) {
                int nr = seccomp_syscall_resolve_name(fake_ids_compat[i]);
                /* absent from every architecture of the filter: nothing to fake */
                if (nr != __NR_SCMP_ERROR)
                        (void)seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), nr, 0);
        }
        /* Device nodes only: FIFOs, sockets and regular files via mknod are
         * real and must keep working. The mode is argument 1 of mknod and
         * argument 2 of mknodat. */
        static const unsigned int dev_types[] = {S_IFCHR, S_IFBLK};
        for (size_t i = 0; i < 2; i++) {
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(mknod), 1,
                                      SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, dev_types[i]));
                if (rc < 0)
                        return filter_fail(err, rc);
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(mknodat), 1,
                                      SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, dev_types[i]));
                if (rc < 0)
                        return filter_fail(err, rc);
        }
        rc = seccomp_load(ctx);
        if (rc < 0)
                return filter_fail(err, rc);
        return 0;
}
