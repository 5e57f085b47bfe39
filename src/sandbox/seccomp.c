/* The system call filter and the capabilities of every sandboxed program.
 *
 * The profile is Docker's default (moby/profiles) for the capabilities a
 * step keeps, in Podman's shape: the calls Docker allows are allowed, the
 * calls Docker refuses for want of a capability a step never has fail with
 * EPERM, and everything else (calls newer than this list, obsolete ones)
 * fails with ENOSYS, which C libraries answer by falling back to an older
 * call, as they do on an older kernel. Docker answers EPERM there, which
 * breaks such fallbacks (glibc's clone3 and fchmodat2 paths).
 *
 * Single-id mode adds Charliecloud's trick: with only one id mapped,
 * dpkg's chown to other owners and apt's switch to the _apt user would fail,
 * so the chown family, set*id, setgroups and mknod of device nodes succeed
 * without doing anything; files stay owned by root (the user's own id on
 * the host), the only owner such a layer could record anyway.
 *
 * Rules on arguments only ever allow exact values or masked bits: a 32-bit
 * argument passed with garbage in the upper half of its register is seen
 * whole by the filter but truncated by the kernel, so "allow if greater
 * than" would let socket(0x100000028, ...) open AF_VSOCK. Such a value
 * matches no allow rule and gets the default answer. */
#include "kiln/sandbox.h"
#include "sandbox-internal.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <linux/capability.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define NAMES(a) (a), sizeof(a) / sizeof((a)[0])

/* Docker's allow list, less what the rules below decide (clone, clone3,
 * socket, personality, mknod) and the ownership calls of fake_ids. Names
 * this libseccomp does not know are left to the default answer. */
static const char *const allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chroot", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage",
    "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc",
    "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lgetxattr",
    "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack",
    "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "modify_ldt", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
    "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6",
    "pselect6_time64", "ptrace", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
    "sendto", "set_robust_list", "set_thread_area", "set_tid_address", "setitimer", "setpgid",
    "setpriority", "setrlimit", "setsid", "setsockopt", "setxattr", "setxattrat", "shmat", "shmctl",
    "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
    "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
    "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
    "write", "writev",
    /* aarch32 and arm64 */
    "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
    "set_tls"};

/* Docker allows these only with a capability no step has: the host's
 * keyrings, kernel modules, kexec, BPF and perf (kernel memory and
 * tracing), userfaultfd (exploit timing), file handles (open_by_handle_at
 * escaped Docker in 2014), mounts and namespaces (a nested user namespace
 * gets every capability back), swap, reboot, the clock, quotas, the
 * process-inspection calls beyond ptrace's rules, raw I/O ports, syslog. */
static const char *const refused[] = {"_sysctl",
                                      "acct",
                                      "add_key",
                                      "bdflush",
                                      "bpf",
                                      "clock_settime",
                                      "clock_settime64",
                                      "create_module",
                                      "delete_module",
                                      "fanotify_init",
                                      "finit_module",
                                      "fsconfig",
                                      "fsmount",
                                      "fsopen",
                                      "fspick",
                                      "get_kernel_syms",
                                      "init_module",
                                      "ioperm",
                                      "iopl",
                                      "kcmp",
                                      "kexec_file_load",
                                      "kexec_load",
                                      "keyctl",
                                      "lookup_dcookie",
                                      "lsm_get_self_attr",
                                      "lsm_list_modules",
                                      "lsm_set_self_attr",
                                      "migrate_pages",
                                      "mount",
                                      "mount_setattr",
                                      "move_mount",
                                      "move_pages",
                                      "nfsservctl",
                                      "open_by_handle_at",
                                      "open_tree",
                                      "open_tree_attr",
                                      "perf_event_open",
                                      "pidfd_getfd",
                                      "pivot_root",
                                      "process_madvise",
                                      "query_module",
                                      "quotactl",
                                      "quotactl_fd",
                                      "reboot",
                                      "request_key",
                                      "setdomainname",
                                      "sethostname",
                                      "setns",
                                      "settimeofday",
                                      "stime",
                                      "swapoff",
                                      "swapon",
                                      "sysfs",
                                      "syslog",
                                      "umount",
                                      "umount2",
                                      "unshare",
                                      "uselib",
                                      "userfaultfd",
                                      "ustat",
                                      "vhangup",
                                      "vm86",
                                      "vm86old"};

/* Ownership and identity changes, each ABI's names. */
static const char *const id_calls[] = {
    "chown",       "fchown",      "lchown",      "fchownat",   "setuid",
    "setgid",      "setreuid",    "setregid",    "setresuid",  "setresgid",
    "setgroups",   "setfsuid",    "setfsgid",    "chown32",    "fchown32",
    "lchown32",    "setuid32",    "setgid32",    "setreuid32", "setregid32",
    "setresuid32", "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
};

/* The namespaces clone must not create: Docker's CLONE_NEW* mask. */
static const unsigned long clone_ns[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                         CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

/* personality: Linux and 32-bit Linux, each with or without UNAME26, and
 * the query; READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the rest get the
 * default answer. */
static const unsigned long personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

#ifndef AF_MCTP
#define AF_MCTP 45
#endif

static void seccomp_ctx_releasep(scmp_filter_ctx *c)
{
        if (*c)
                seccomp_release(*c);
        *c = NULL;
}
#define _cleanup_scmp_filter_ _cleanup_(seccomp_ctx_releasep)

/* rc: a negative errno from libseccomp. */
static int filter_fail(struct kiln_err **err, const char *what, int rc)
{
        return kiln_err_set(err, KILN_ERR_SYSTEM, -rc, "seccomp filter: %s: %s", what,
                            strerror(-rc));
}

/* One rule for each name this libseccomp knows on some architecture of the
 * filter; the others are left to the default. */
static int add_names(scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n,
                     struct kiln_err **err)
{
        for (size_t i = 0; i < n; i++) {
                int nr = seccomp_syscall_resolve_name(names[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                int rc = seccomp_rule_add(ctx, action, nr, 0);
                /* a name only another architecture has: a pseudo number
                 * every architecture of the filter lacks */
                if (rc == -EDOM || rc == -EINVAL)
                        continue;
                if (rc < 0)
                        return filter_fail(err, names[i], rc);
        }
        return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, struct scmp_arg_cmp cmp,
                    const char *what, struct kiln_err **err)
{
        int rc = seccomp_rule_add(ctx, action, nr, 1, cmp);
        return rc < 0 ? filter_fail(err, what, rc) : 0;
}

/* clone without namespaces. clone3 hides its flags in memory the filter
 * cannot read: it is left to the default answer, "not there", and glibc
 * falls back to clone. */
static int add_clone(scmp_filter_ctx ctx, struct kiln_err **err)
{
        unsigned long all = 0;
        for (size_t i = 0; i < sizeof(clone_ns) / sizeof(clone_ns[0]); i++) {
                all |= clone_ns[i];
                if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone),
                             SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns[i], clone_ns[i]), "clone",
                             err) < 0)
                        return -1;
        }
        return add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, all, 0),
                        "clone", err);
}

/* Every address family but AF_ALG (the kernel's crypto API: attack
 * surface no build needs) and AF_VSOCK (a VM's line to its host, not
 * separated by network namespaces), as in moby's current profile. Only
 * values below AF_MAX exist; each is allowed by its exact value. */
static int add_socket(scmp_filter_ctx ctx, struct kiln_err **err)
{
        for (unsigned long af = 0; af <= AF_MCTP; af++) {
                bool deny = af == AF_ALG || af == AF_VSOCK;
                if (add_rule(ctx, deny ? SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_ALLOW, SCMP_SYS(socket),
                             SCMP_A0(SCMP_CMP_EQ, af, 0), "socket", err) < 0)
                        return -1;
        }
        return 0;
}

static int add_personality(scmp_filter_ctx ctx, struct kiln_err **err)
{
        for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++)
                if (add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality),
                             SCMP_A0(SCMP_CMP_EQ, personas[i], 0), "personality", err) < 0)
                        return -1;
        return 0;
}

/* mknod and mknodat: device nodes answer `device` (the kernel refuses them
 * without CAP_MKNOD; single-id mode pretends), every other type is real
 * (with `others`; without, the filter's default lets them be). The mode is
 * argument 1 of mknod and argument 2 of mknodat. */
static int add_mknod(scmp_filter_ctx ctx, uint32_t device, bool others, struct kiln_err **err)
{
        static const unsigned int types[] = {S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK,
                                             S_IFREG, S_IFDIR, S_IFLNK, 0};
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                bool dev = types[i] == S_IFCHR || types[i] == S_IFBLK;
                if (!dev && !others)
                        continue;
                uint32_t act = dev ? device : SCMP_ACT_ALLOW;
                if (add_rule(ctx, act, SCMP_SYS(mknod),
                             SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, types[i]), "mknod", err) < 0 ||
                    add_rule(ctx, act, SCMP_SYS(mknodat),
                             SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, types[i]), "mknodat", err) < 0)
                        return -1;
        }
        return 0;
}

/* The architectures a program on this host may use: x86_64 runs i386 and
 * x32 programs, arm64 runs 32-bit arm ones. */
static int add_arches(scmp_filter_ctx ctx, struct kiln_err **err)
{
        uint32_t extra[2] = {0, 0};
        if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
                extra[0] = SCMP_ARCH_X86;
                extra[1] = SCMP_ARCH_X32;
        } else if (seccomp_arch_native() == SCMP_ARCH_AARCH64) {
                extra[0] = SCMP_ARCH_ARM;
        }
        for (size_t i = 0; i < 2 && extra[i]; i++) {
                int rc = seccomp_arch_add(ctx, extra[i]);
                if (rc < 0 && rc != -EEXIST)
                        return filter_fail(err, "architecture", rc);
        }
        return 0;
}

/* The rules of the profile: what a step may do. */
static int add_profile(scmp_filter_ctx ctx, bool fake_ids, struct kiln_err **err)
{
        if (add_names(ctx, SCMP_ACT_ALLOW, NAMES(allowed), err) < 0 ||
            add_names(ctx, SCMP_ACT_ERRNO(EPERM), NAMES(refused), err) < 0 ||
            add_names(ctx, fake_ids ? SCMP_ACT_ERRNO(0) : SCMP_ACT_ALLOW, NAMES(id_calls), err) < 0)
                return -1;
        if (add_clone(ctx, err) < 0 || add_socket(ctx, err) < 0 || add_personality(ctx, err) < 0)
                return -1;
        return add_mknod(ctx, fake_ids ? SCMP_ACT_ERRNO(0) : SCMP_ACT_ALLOW, true, err);
}

int kiln_sandbox_seccomp_load(bool confined, bool fake_ids, struct kiln_err **err)
{
        if (!confined && !fake_ids)
                return 0;
        _cleanup_scmp_filter_ scmp_filter_ctx ctx =
            seccomp_init(confined ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW);
        if (!ctx)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "seccomp: cannot create filter");
        /* Loaded while still root (real, or of our user namespace), so
         * no_new_privs is not needed; leaving it off keeps setuid programs
         * of the image working as they would in Docker. */
        int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (rc < 0)
                return filter_fail(err, "no_new_privs", rc);
        if (add_arches(ctx, err) < 0)
                return -1;
        if (confined && add_profile(ctx, fake_ids, err) < 0)
                return -1;
        /* unconfined single-id mode: only the ownership calls pretend */
        if (!confined && (add_names(ctx, SCMP_ACT_ERRNO(0), NAMES(id_calls), err) < 0 ||
                          add_mknod(ctx, SCMP_ACT_ERRNO(0), false, err) < 0))
                return -1;
        rc = seccomp_load(ctx);
        if (rc < 0)
                return filter_fail(err, "load", rc);
        return 0;
}

/* Docker's default capability set without MKNOD and NET_RAW: what package
 * installers need, without the ability to mount, load modules, reach the
 * host's devices (there is no device cgroup here, so a device node made in
 * the build would open the host's real disk) or open raw and packet
 * sockets (as in Podman, ping then needs ICMP datagram sockets, which
 * net.ipv4.ping_group_range must allow). In a user namespace the same set
 * bounds what root of that namespace may do. */
static const int caps_kept[] = {0,  /* CHOWN */
                                1,  /* DAC_OVERRIDE */
                                3,  /* FOWNER */
                                4,  /* FSETID */
                                5,  /* KILL */
                                6,  /* SETGID */
                                7,  /* SETUID */
                                8,  /* SETPCAP */
                                10, /* NET_BIND_SERVICE */
                                18, /* SYS_CHROOT */
                                29, /* AUDIT_WRITE */
                                31 /* SETFCAP */};

/* The bound acts at exec; the effective, permitted, inheritable and
 * ambient sets are cut too, so a step run as a function (and whatever it
 * forks) holds no more than an exec'd one. */
int kiln_sandbox_drop_caps(struct kiln_err **err)
{
        uint64_t keep = 0;
        for (size_t i = 0; i < sizeof(caps_kept) / sizeof(caps_kept[0]); i++)
                keep |= UINT64_C(1) << caps_kept[i];
        for (int cap = 0; cap < 64; cap++) {
                if (keep & (UINT64_C(1) << cap))
                        continue;
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL) /* past the kernel's last capability */
                                break;
                        return kiln_err_sys(err, "drop capability %d", cap);
                }
        }
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
                return kiln_err_sys(err, "capget");
        for (int i = 0; i < 2; i++) {
                uint32_t k = (uint32_t)(keep >> (32 * i));
                d[i].effective &= k;
                d[i].permitted &= k;
                d[i].inheritable &= k;
        }
        if (syscall(SYS_capset, &h, d) < 0 ||
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                return kiln_err_sys(err, "drop capabilities");
        return 0;
}
