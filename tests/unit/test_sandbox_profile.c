/* What a sandboxed step may not do, asked of the kernel itself: every
 * escape the seccomp profile and the capability bound close is tried by a
 * function run in the sandbox, and the errno it gets is compared with the
 * profile's answer (Docker's EPERM; ENOSYS for what the profile does not
 * know). Also: the root is nodev, a device node in a layer opens nothing,
 * and /proc/self/mountinfo names no host path. In every mode (as root, then
 * re-run as unprivileged users, test_sandbox.h). */
#include "test_sandbox.h"

#include <linux/bpf.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <time.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef ETH_P_ALL
#define ETH_P_ALL 0x0003
#endif

static enum kiln_idmap mode;
static const char *base; /* per-run scratch directory */
static int case_no;

/* ---------- the probes, run inside the sandbox ---------- */

/* r: what a fork-like call returned; the child leaves at once */
static long forked(long r)
{
        if (r == 0)
                _exit(0);
        if (r > 0)
                waitpid((pid_t)r, NULL, 0);
        return r < 0 ? -1 : 0;
}
static long clone_flags(unsigned long flags)
{
        return forked(syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0));
}

static long p_keyctl(void)
{
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
}
static long p_add_key(void)
{
        return syscall(SYS_add_key, "user", "kiln-test", "v", 1, KEY_SPEC_PROCESS_KEYRING);
}
static long p_request_key(void)
{
        return syscall(SYS_request_key, "user", "kiln-test", NULL, KEY_SPEC_PROCESS_KEYRING);
}
static long p_bpf(void)
{
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        return syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
}
static long p_perf(void)
{
        struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE,
                                    .size = sizeof(a),
                                    .config = PERF_COUNT_SW_TASK_CLOCK,
                                    .exclude_kernel = 1};
        return syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}
static long p_userfaultfd(void)
{
        return syscall(SYS_userfaultfd, 0);
}
static long p_kexec(void)
{
        return syscall(SYS_kexec_load, 0, 0, NULL, 0);
}
static long p_init_module(void)
{
        return syscall(SYS_init_module, NULL, 0, "");
}
static long p_finit_module(void)
{
        return syscall(SYS_finit_module, -1, "", 0);
}
static long p_delete_module(void)
{
        return syscall(SYS_delete_module, "kiln_no_such_module", O_NONBLOCK);
}
static long p_open_by_handle(void)
{
        return syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, O_RDONLY);
}
static long p_unshare_user(void)
{
        return unshare(CLONE_NEWUSER);
}
static long p_unshare_mnt(void)
{
        return unshare(CLONE_NEWNS);
}
static long p_clone_user(void)
{
        return clone_flags(CLONE_NEWUSER);
}
static long p_clone_net(void)
{
        return clone_flags(CLONE_NEWNET);
}
static long p_clone_plain(void)
{
        return clone_flags(0);
}
static long p_clone3(void)
{
        struct clone_args a = {.exit_signal = SIGCHLD};
        return forked(syscall(SYS_clone3, &a, sizeof(a)));
}
static long p_mount(void)
{
        return mount("none", "/tmp", "tmpfs", 0, NULL);
}
static long p_umount(void)
{
        return umount2("/proc/sys", MNT_DETACH);
}
static long p_fsopen(void)
{
        return syscall(SYS_fsopen, "tmpfs", 0);
}
static long p_fsmount(void)
{
        return syscall(SYS_fsmount, -1, 0, 0);
}
static long p_fsconfig(void)
{
        return syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0);
}
static long p_fspick(void)
{
        return syscall(SYS_fspick, AT_FDCWD, "/", 0);
}
static long p_move_mount(void)
{
        return syscall(SYS_move_mount, -1, "", -1, "", 0);
}
static long p_open_tree(void)
{
        return syscall(SYS_open_tree, AT_FDCWD, "/", 0);
}
static long p_mount_setattr(void)
{
        return syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
}
static long p_pivot_root(void)
{
        return syscall(SYS_pivot_root, "/tmp", "/tmp");
}
static long p_swapon(void)
{
        return syscall(SYS_swapon, "/no-such-swap", 0);
}
static long p_swapoff(void)
{
        return syscall(SYS_swapoff, "/no-such-swap");
}
static long p_reboot(void)
{
        /* in a pid namespace this would only ever end the namespace */
        return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                       LINUX_REBOOT_CMD_CAD_ON, NULL);
}
static long p_settimeofday(void)
{
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return settimeofday(&tv, NULL);
}
static long p_clock_settime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return clock_settime(CLOCK_REALTIME, &ts);
}
static long p_adjtimex_read(void)
{
        struct timex t = {0};
        return adjtimex(&t) < 0 ? -1 : 0;
}
static long p_adjtimex_set(void)
{
        struct timex t = {0};
        if (adjtimex(&t) < 0)
                return -1;
        t.modes = ADJ_STATUS; /* the same status again */
        return adjtimex(&t) < 0 ? -1 : 0;
}
static long p_personality_aslr(void)
{
        return syscall(SYS_personality, ADDR_NO_RANDOMIZE) < 0 ? -1 : 0;
}
static long p_personality_exec(void)
{
        return syscall(SYS_personality, READ_IMPLIES_EXEC) < 0 ? -1 : 0;
}
static long p_personality_query(void)
{
        return syscall(SYS_personality, 0xffffffffUL) < 0 ? -1 : 0;
}
static long p_personality_linux32(void)
{
        long old = syscall(SYS_personality, 0xffffffffUL);
        if (syscall(SYS_personality, PER_LINUX32) < 0)
                return -1;
        return syscall(SYS_personality, (unsigned long)old) < 0 ? -1 : 0;
}
static long p_ptrace_init(void)
{
        return ptrace(PTRACE_ATTACH, 1, NULL, NULL);
}
static long p_ptrace_child(void)
{
        pid_t c = fork();
        if (c == 0) {
                pause();
                _exit(0);
        }
        long r = ptrace(PTRACE_ATTACH, c, NULL, NULL);
        int saved = errno;
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        errno = saved;
        return r;
}
static long p_vm_readv_init(void)
{
        char buf[8];
        struct iovec l = {buf, sizeof(buf)}, r = {(void *)0x400000, sizeof(buf)};
        return process_vm_readv(1, &l, 1, &r, 1, 0);
}
static long p_kcmp(void)
{
        return syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0);
}
static long p_pidfd_getfd(void)
{
        return syscall(SYS_pidfd_getfd, -1, 0, 0);
}
static long p_setns(void)
{
        return setns(-1, 0);
}
static long p_sethostname(void)
{
        return sethostname("x", 1);
}
static long p_syslog(void)
{
        return klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
}
static long p_iopl(void)
{
#ifdef SYS_iopl
        return syscall(SYS_iopl, 3);
#else
        errno = EPERM;
        return -1;
#endif
}
static long p_acct(void)
{
        return syscall(SYS_acct, NULL);
}
static long p_io_uring(void)
{
        char params[120] = {0};
        return syscall(SYS_io_uring_setup, 1, params);
}
static long p_get_mempolicy(void)
{
        return syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0);
}
static long p_raw_socket(void)
{
        return socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
}
static long p_packet_socket(void)
{
        return socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
}
static long p_vsock(void)
{
        return socket(AF_VSOCK, SOCK_STREAM, 0);
}
static long p_alg(void)
{
        return socket(AF_ALG, SOCK_SEQPACKET, 0);
}
static long p_vsock_high(void)
{
        /* the kernel takes the low 32 bits: AF_VSOCK */
        return syscall(SYS_socket, 0x100000000L | AF_VSOCK, SOCK_STREAM, 0);
}
static long p_tcp_socket(void)
{
        return socket(AF_INET, SOCK_STREAM, 0);
}
static long p_unix_socket(void)
{
        return socket(AF_UNIX, SOCK_STREAM, 0);
}
static long p_mknod_dev(void)
{
        return mknod("/tmp/kiln-cdev", S_IFCHR | 0600, makedev(1, 8));
}
static long p_mknod_fifo(void)
{
        return mknod("/tmp/kiln-fifo", S_IFIFO | 0600, 0);
}
static long p_nosuch(void)
{
        return syscall(1000);
}

#define OK        0
#define NOT_EPERM (-1) /* whatever the kernel says, but not the filter's EPERM */

struct probe {
        const char *name;
        long (*call)(void);
        int want[3]; /* errno (OK: success) in host, range, single mode */
};

#define ALL(e)                                                                                     \
        {                                                                                          \
                e, e, e                                                                            \
        }

static const struct probe probes[] = {
    {"keyctl", p_keyctl, ALL(EPERM)},
    {"add_key", p_add_key, ALL(EPERM)},
    {"request_key", p_request_key, ALL(EPERM)},
    {"bpf", p_bpf, ALL(EPERM)},
    {"perf_event_open", p_perf, ALL(EPERM)},
    {"userfaultfd", p_userfaultfd, ALL(EPERM)},
    {"kexec_load", p_kexec, ALL(EPERM)},
    {"init_module", p_init_module, ALL(EPERM)},
    {"finit_module", p_finit_module, ALL(EPERM)},
    {"delete_module", p_delete_module, ALL(EPERM)},
    {"open_by_handle_at", p_open_by_handle, ALL(EPERM)},
    {"unshare(CLONE_NEWUSER)", p_unshare_user, ALL(EPERM)},
    {"unshare(CLONE_NEWNS)", p_unshare_mnt, ALL(EPERM)},
    {"clone(CLONE_NEWUSER)", p_clone_user, ALL(EPERM)},
    {"clone(CLONE_NEWNET)", p_clone_net, ALL(EPERM)},
    {"clone()", p_clone_plain, ALL(OK)},
    {"clone3", p_clone3, ALL(ENOSYS)},
    {"mount", p_mount, ALL(EPERM)},
    {"umount2", p_umount, ALL(EPERM)},
    {"fsopen", p_fsopen, ALL(EPERM)},
    {"fsmount", p_fsmount, ALL(EPERM)},
    {"fsconfig", p_fsconfig, ALL(EPERM)},
    {"fspick", p_fspick, ALL(EPERM)},
    {"move_mount", p_move_mount, ALL(EPERM)},
    {"open_tree", p_open_tree, ALL(EPERM)},
    {"mount_setattr", p_mount_setattr, ALL(EPERM)},
    {"pivot_root", p_pivot_root, ALL(EPERM)},
    {"swapon", p_swapon, ALL(EPERM)},
    {"swapoff", p_swapoff, ALL(EPERM)},
    {"reboot", p_reboot, ALL(EPERM)},
    {"settimeofday", p_settimeofday, ALL(EPERM)},
    {"clock_settime", p_clock_settime, ALL(EPERM)},
    {"adjtimex(read)", p_adjtimex_read, ALL(OK)},
    {"adjtimex(set)", p_adjtimex_set, ALL(EPERM)},
    {"personality(ADDR_NO_RANDOMIZE)", p_personality_aslr, ALL(ENOSYS)},
    {"personality(READ_IMPLIES_EXEC)", p_personality_exec, ALL(ENOSYS)},
    {"personality(query)", p_personality_query, ALL(OK)},
    {"personality(PER_LINUX32)", p_personality_linux32, ALL(OK)},
    {"ptrace(init)", p_ptrace_init, ALL(EPERM)},
    {"ptrace(own child)", p_ptrace_child, ALL(OK)},
    {"process_vm_readv(init)", p_vm_readv_init, ALL(EPERM)},
    {"kcmp", p_kcmp, ALL(EPERM)},
    {"pidfd_getfd", p_pidfd_getfd, ALL(EPERM)},
    {"setns", p_setns, ALL(EPERM)},
    {"sethostname", p_sethostname, ALL(EPERM)},
    {"syslog", p_syslog, ALL(EPERM)},
    {"iopl", p_iopl, ALL(EPERM)},
    {"acct", p_acct, ALL(EPERM)},
    {"io_uring_setup", p_io_uring, ALL(ENOSYS)},
    {"get_mempolicy", p_get_mempolicy, ALL(ENOSYS)},
    {"socket(AF_INET, SOCK_RAW)", p_raw_socket, ALL(EPERM)},
    {"socket(AF_PACKET)", p_packet_socket, ALL(EPERM)},
    {"socket(AF_VSOCK)", p_vsock, ALL(EPERM)},
    {"socket(AF_ALG)", p_alg, ALL(EPERM)},
    {"socket(AF_VSOCK | 1 << 32)", p_vsock_high, ALL(ENOSYS)},
    {"socket(AF_INET, SOCK_STREAM)", p_tcp_socket, ALL(OK)},
    {"socket(AF_UNIX)", p_unix_socket, ALL(OK)},
    /* no CAP_MKNOD as root; none in a user namespace; single-id pretends */
    {"mknod(char 1:8)", p_mknod_dev, {EPERM, EPERM, OK}},
    {"mknod(fifo)", p_mknod_fifo, ALL(OK)},
    {"syscall 1000", p_nosuch, ALL(ENOSYS)},
};

static int run_probes(void *arg, struct kiln_err **err)
{
        (void)arg;
        (void)err;
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                errno = 0;
                long r = probes[i].call();
                dprintf(1, "%s=%d\n", probes[i].name, r < 0 ? errno : 0);
        }
        return 0;
}

/* ---------- running the sandbox ---------- */

/* Runs fn (or argv) over lowers with fresh upper/work; returns kiln's
 * stderr (the labelled output), NULL when the sandbox failed. */
static char *run(char *const *lowers, size_t n_lowers, char *const *argv,
                 int (*fn)(void *, struct kiln_err **), bool unconfined)
{
        case_no++;
        _cleanup_free_ char *dir = kiln_xasprintf("%s/case%d", base, case_no);
        _cleanup_free_ char *upper = kiln_xasprintf("%s/upper", dir);
        _cleanup_free_ char *work = kiln_xasprintf("%s/work", dir);
        _cleanup_free_ char *out = kiln_xasprintf("%s/out", dir);
        struct kiln_err *e = NULL;
        if (kiln_mkdir_p(upper, 0755, &e) < 0 || kiln_mkdir_p(work, 0755, &e) < 0)
                die("mkdir");
        static char *const env[] = {"PATH=/bin", NULL};
        struct kiln_sandbox_opts o = {.lowers = lowers, .n_lowers = n_lowers, .argv = argv};
        o.upper = upper;
        o.work = work;
        o.fn = fn;
        o.env = env;
        o.label = "[p] ";
        o.idmap = mode;
        o.seccomp_unconfined = unconfined;
        int status = -1;
        int rc = run_to_file(&o, out, &status, &e);
        if (rc < 0 || status != 0) {
                CHECK(false, "case %d: rc %d status %d %s", case_no, rc, status, e ? e->msg : "");
                kiln_err_free(e);
                return NULL;
        }
        return read_text(out);
}

static int got_errno(const char *out, const char *name)
{
        _cleanup_free_ char *key = kiln_xasprintf("\n[p] %s=", name);
        _cleanup_free_ char *all = kiln_xasprintf("\n%s", out ? out : "");
        const char *p = strstr(all, key);
        return p ? atoi(p + strlen(key)) : -2;
}

static void test_profile(char *const *lowers)
{
        int m = mode == KILN_IDMAP_HOST ? 0 : mode == KILN_IDMAP_RANGE ? 1 : 2;
        _cleanup_free_ char *out = run(lowers, 1, NULL, run_probes, false);
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                int want = probes[i].want[m], got = got_errno(out, probes[i].name);
                CHECK(got == want, "[%s] %s: got %s (%d), want %s", kiln_idmap_name(mode),
                      probes[i].name,
                      got > 0    ? strerror(got)
                      : got == 0 ? "success"
                                 : "nothing",
                      got, want ? strerror(want) : "success");
        }
        /* unconfined: the calls only the filter refuses go through (the
         * capability bound and the namespaces stay) */
        _cleanup_free_ char *free_out = run(lowers, 1, NULL, run_probes, true);
        static const char *const filter_only[] = {"personality(ADDR_NO_RANDOMIZE)", "clone3",
                                                  "get_mempolicy", "kcmp"};
        for (size_t i = 0; i < sizeof(filter_only) / sizeof(filter_only[0]); i++)
                CHECK(got_errno(free_out, filter_only[i]) == 0, "[%s] unconfined %s: %d",
                      kiln_idmap_name(mode), filter_only[i], got_errno(free_out, filter_only[i]));
}

/* The root is nodev and the layers appear under neutral names. */
static void test_mounts(char *const *lowers)
{
        char *argv[] = {"/bin/busybox", "cat", "/proc/self/mountinfo", NULL};
        _cleanup_free_ char *out = run(lowers, 1, argv, NULL, false);
        const char *root = out ? strstr(out, " / / ") : NULL;
        const char *eol = root ? strchr(root, '\n') : NULL;
        _cleanup_free_ char *line = root && eol ? kiln_xstrndup(root, (size_t)(eol - root)) : NULL;
        CHECK(line && strstr(line, "nodev") && strstr(line, "lowerdir") && strstr(line, "l/0"),
              "[%s] root mount: %s", kiln_idmap_name(mode), line ? line : out);
        CHECK(out && !strstr(out, base), "[%s] mountinfo names the host path %s:\n%s",
              kiln_idmap_name(mode), base, out);
}

/* A device node in a layer (as snapshots of older kilns hold them) opens
 * nothing: the kernel answers EACCES on a nodev mount. Only real root can
 * make one here. */
static void test_device_in_layer(char *const *lowers)
{
        if (mode != KILN_IDMAP_HOST)
                return;
        _cleanup_free_ char *devlower = kiln_xasprintf("%s/devlower", base);
        _cleanup_free_ char *node = kiln_xasprintf("%s/rnd", devlower);
        if (mkdir(devlower, 0755) < 0 || mknod(node, S_IFCHR | 0666, makedev(1, 8)) < 0)
                die(node);
        char *both[] = {devlower, lowers[0]};
        char *argv[] = {"/bin/busybox", "sh", "-c",
                        "busybox head -c 1 /rnd >/dev/null 2>&1 && echo readable || echo refused",
                        NULL};
        _cleanup_free_ char *out = run(both, 2, argv, NULL, false);
        CHECK(out && !strcmp(out, "[p] refused\n"), "device node from a layer: %s", out);
}

static int suite(void)
{
        printf("sandbox profile in %s mode (uid %u) under %s\n", kiln_idmap_name(mode),
               (unsigned)getuid(), base);
        _cleanup_free_ char *lower = kiln_xasprintf("%s/lower", base);
        _cleanup_free_ char *bin = kiln_xasprintf("%s/bin", lower);
        _cleanup_free_ char *bb = kiln_xasprintf("%s/busybox", bin);
        _cleanup_free_ char *tmpdir = kiln_xasprintf("%s/tmp", lower);
        struct kiln_err *e = NULL;
        if (kiln_mkdir_p(bin, 0755, &e) < 0 || mkdir(tmpdir, 01777) < 0 || chmod(tmpdir, 01777) < 0)
                die("mkdir lower");
        copy_file("/bin/busybox", bb, 0755);
        char *lowers[] = {lower};
        test_profile(lowers);
        test_mounts(lowers);
        test_device_in_layer(lowers);
        TEST_DONE();
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        struct kiln_err *e = NULL;
        if (argc == 4 && !strcmp(argv[1], "--as-user")) {
                if (kiln_userns_enter(&mode, &e) < 0) {
                        fprintf(stderr, "kiln_userns_enter: %s\n", e->msg);
                        return 1;
                }
                CHECK_STR(kiln_idmap_name(mode), argv[2]);
                base = argv[3];
                return suite();
        }
        run_own_suite(&mode, &base, suite);
        if (geteuid() == 0 && ensure_test_users()) {
                remove_dir(run_as_user_in("kilnsb-range", "", "range"));
                remove_dir(run_as_user_in("kilnsb-single", "", "single"));
                remove_dir(run_as_user_in("kilnsb-range", "KILN_USERNS=single", "single"));
        }
        TEST_DONE();
}
