/* Running one build step in a sandbox.
 *
 * Process layout: kiln forks a "keeper" that unshares mount, pid, uts and
 * ipc namespaces and forks "init" (pid 1 of the new pid namespace). Init
 * mounts the root, pivots into it, forks the command and reaps every
 * process until the command exits; when init exits the kernel kills what is
 * left in the namespace, so daemons started by postinst scripts die too.
 *
 * Real root (KILN_IDMAP_HOST) does not get a user namespace: overlayfs then
 * uses trusted.overlay.* xattrs, which is what the layer writer expects from
 * a rootful build, and the command's capabilities are cut to Docker's
 * default set instead. In the other modes kiln already is root in its own
 * user namespace (kiln_userns_enter) and the new namespaces belong to it;
 * overlay needs `userxattr` there (user.overlay.* xattrs).
 *
 * Mount points that the image lacks (bind targets, /etc/resolv.conf, /proc,
 * /dev) are never created in the overlay, where they would land in the upper
 * directory and hence in the layer. They are created in a private skeleton
 * directory added as the bottom-most lower layer: the image wins wherever it
 * has an entry, and the skeleton only fills the holes. Where they go is
 * decided on a first read-only overlay of the lowers, resolving symlinks
 * inside the image, so the skeleton never changes under a mounted overlay. */
#include "kiln/sandbox.h"
#include "sandbox-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif

#define SB_LINE_MAX     (64 * 1024) /* a longer line is cut into pieces */
#define SB_SETUP_FAILED 126         /* exit code of a child that reported an error */

/* What a child writes to the report pipe when setup fails. */
struct sb_report {
        int domain;
        int code;
        char msg[1000];
};

struct sb_ctx {
        const struct kiln_sandbox_opts *o;
        const char *dir;  /* the scratch directory, absolute */
        const char *mnt;  /* absolute, symlink-free: the overlay mount point */
        const char *skel; /* bottom lower layer holding missing mount points */
        /* The overlay's layers as named to the kernel, relative to dir:
         * each lower bound at l/N, the skeleton, upper and work. */
        char **layers; /* n_lowers + 1, the skeleton last */
        const char *upper, *work;
        bool userxattr;
        struct sb_net *net;
        int out_w;    /* command output pipe, write end */
        int report_w; /* setup error pipe, write end (close-on-exec) */
};

static _Noreturn void child_fail(const struct sb_ctx *c, struct kiln_err *e)
{
        struct sb_report r = {0};
        r.domain = e ? (int)e->domain : KILN_ERR_SYSTEM;
        r.code = e ? e->code : 0;
        snprintf(r.msg, sizeof(r.msg), "%s", e && e->msg ? e->msg : "sandbox setup failed");
        kiln_write_all(c->report_w, &r, sizeof(r));
        _exit(SB_SETUP_FAILED);
}

static int status_of(int wstatus)
{
        if (WIFEXITED(wstatus))
                return WEXITSTATUS(wstatus);
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return 255;
}

/* ---------- path resolution inside the image ---------- */

/* The path of an fd under the mount point, "" for the root itself. */
static int path_in_root(const struct sb_ctx *c, int fd, char **out, struct kiln_err **err)
{
        char link[64], buf[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);
        if (n < 0)
                return kiln_err_sys(err, "readlink %s", link);
        buf[n] = '\0';
        size_t ml = strlen(c->mnt);
        if (strncmp(buf, c->mnt, ml) != 0 || (buf[ml] != '\0' && buf[ml] != '/'))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "%s resolved outside the root", buf);
        *out = kiln_xstrdup(buf + ml);
        return 0;
}

/* Splits a path into its components, dropping empty ones and ".". */
static char **split_path(const char *path, size_t *n)
{
        size_t cap = 8, len = 0;
        char **v = kiln_xcalloc(cap + 1, sizeof(char *));
        _cleanup_free_ char *copy = kiln_xstrdup(path);
        char *save = NULL;
        for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
                if (!strcmp(s, "."))
                        continue;
                if (len == cap) {
                        cap *= 2;
                        v = kiln_xrealloc(v, (cap + 1) * sizeof(char *));
                }
                v[len++] = kiln_xstrdup(s);
                v[len] = NULL;
        }
        *n = len;
        return v;
}

static char *join_prefix(char *const *comps, size_t n)
{
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, ".");
        for (size_t i = 0; i < n; i++) {
                kiln_buf_puts(&b, "/");
                kiln_buf_puts(&b, comps[i]);
        }
        return kiln_buf_steal(&b);
}

/* Makes sure `target` will exist in the merged root: if the image lacks it
 * (or a parent), the missing part is created in the skeleton at the place
 * the image's symlinks lead to. */
static int plan_mountpoint(const struct sb_ctx *c, int rootfd, const char *target, bool is_dir,
                           struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xstrdup(target);
        for (int hop = 0; hop < 32; hop++) {
                size_t n = 0;
                _cleanup_strv_ char **comps = split_path(path, &n);
                size_t i = 0;
                for (; i < n; i++) {
                        _cleanup_free_ char *prefix = join_prefix(comps, i + 1);
                        int fd = kiln_open_in_root(rootfd, prefix, O_PATH);
                        if (fd >= 0) {
                                close(fd);
                                continue;
                        }
                        if (errno == ENOENT)
                                break;
                        return kiln_err_sys(err, "mount point %s: resolve %s", target, prefix + 1);
                }
                if (i == n)
                        return 0;
                _cleanup_free_ char *parent_path = join_prefix(comps, i);
                _cleanup_close_ int parent =
                    kiln_open_in_root(rootfd, parent_path, O_PATH | O_DIRECTORY);
                if (parent < 0)
                        return kiln_err_sys(err, "mount point %s: open %s", target,
                                            parent_path + 1);
                _cleanup_free_ char *rel = NULL;
                if (path_in_root(c, parent, &rel, err) < 0)
                        return kiln_err_prefix(err, "mount point %s", target);
                struct stat st;
                if (fstatat(parent, comps[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode)) {
                        /* a dangling symlink in the image: create where it points */
                        char link[4096];
                        ssize_t ln = readlinkat(parent, comps[i], link, sizeof(link) - 1);
                        if (ln < 0)
                                return kiln_err_sys(err, "mount point %s: readlink", target);
                        link[ln] = '\0';
                        struct kiln_buf nb = {0};
                        if (link[0] != '/')
                                kiln_buf_printf(&nb, "%s/", rel);
                        kiln_buf_puts(&nb, link);
                        for (size_t j = i + 1; j < n; j++)
                                kiln_buf_printf(&nb, "/%s", comps[j]);
                        free(path);
                        path = kiln_buf_steal(&nb);
                        continue;
                }
                _cleanup_free_ char *sk = kiln_xasprintf("%s%s", c->skel, rel);
                if (kiln_mkdir_p(sk, 0755, err) < 0)
                        return kiln_err_prefix(err, "mount point %s", target);
                for (size_t j = i; j < n; j++) {
                        if (!strcmp(comps[j], ".."))
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "mount point %s: \"..\" below a missing "
                                                    "directory",
                                                    target);
                        char *next = kiln_xasprintf("%s/%s", sk, comps[j]);
                        free(sk);
                        sk = next;
                        if (j + 1 < n || is_dir) {
                                if (mkdir(sk, 0755) < 0 && errno != EEXIST)
                                        return kiln_err_sys(err, "create mount point %s", sk);
                        } else {
                                int fd = open(sk, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                                if (fd < 0)
                                        return kiln_err_sys(err, "create mount point %s", sk);
                                close(fd);
                        }
                }
                return 0;
        }
        return kiln_err_set(err, KILN_ERR_USAGE, ELOOP, "mount point %s: too many symlinks",
                            target);
}

/* ---------- mounting ---------- */

/* Adds the kernel's explanation (the fs context log) to a failed fsconfig. */
__attribute__((format(printf, 3, 4))) static int fs_fail(int fsfd, struct kiln_err **err,
                                                         const char *fmt, ...)
{
        int saved = errno;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *what = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        char log[512];
        ssize_t n = fsfd >= 0 ? read(fsfd, log, sizeof(log) - 1) : -1;
        if (n > 2) {
                log[n] = '\0';
                char *nl = strchr(log, '\n');
                if (nl)
                        *nl = '\0';
                return kiln_err_set(err, KILN_ERR_SYSTEM, saved, "%s: %s (%s)", what,
                                    strerror(saved), log + 2);
        }
        errno = saved;
        return kiln_err_sys(err, "%s", what);
}

static int fs_create_mount(int fs, unsigned int attrs, const char *what, struct kiln_err **err)
{
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return fs_fail(fs, err, "%s", what);
        int m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
        if (m < 0)
                return fs_fail(fs, err, "%s", what);
        return m;
}

/* Legacy "lowerdir=" needs ':' ',' and '\\' escaped; only used on kernels
 * older than 6.8, which lack "lowerdir+". */
static char *escaped_lowers(char *const *layers)
{
        struct kiln_buf b = {0};
        for (size_t i = 0; layers[i]; i++) {
                if (i)
                        kiln_buf_puts(&b, ":");
                for (const char *p = layers[i]; *p; p++) {
                        if (*p == ':' || *p == ',' || *p == '\\')
                                kiln_buf_puts(&b, "\\");
                        kiln_buf_append(&b, p, 1);
                }
        }
        return kiln_buf_steal(&b);
}

/* The lowers, each bound read-only, nosuid and nodev at l/N in the scratch
 * directory (our cwd from here on) and given to the overlay by that name:
 * the overlay's options in the step's /proc/self/mountinfo then name l/N
 * rather than where the cache is on the host. What a step opens goes
 * through the overlay, whose own flags decide (mount_overlay). */
static int bind_lowers(const struct sb_ctx *c, struct kiln_err **err)
{
        const struct kiln_sandbox_opts *o = c->o;
        if (chdir(c->dir) < 0)
                return kiln_err_sys(err, "chdir %s", c->dir);
        if (mkdir("l", 0700) < 0)
                return kiln_err_sys(err, "create %s/l", c->dir);
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        for (size_t i = 0; i < o->n_lowers; i++) {
                _cleanup_close_ int tree =
                    open_tree(AT_FDCWD, o->lowers[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (tree < 0)
                        return kiln_err_sys(err, "overlay: lower layer %s", o->lowers[i]);
                if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ||
                    mkdir(c->layers[i], 0700) < 0 ||
                    move_mount(tree, "", AT_FDCWD, c->layers[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return kiln_err_sys(err, "overlay: bind lower layer %s", o->lowers[i]);
        }
        return 0;
}

/* Read-only for the first look at the image; the real root is nodev: a
 * device node that reached a layer anyway (a snapshot made by an older
 * kiln) opens nothing. */
static int mount_overlay(const struct sb_ctx *c, bool writable, struct kiln_err **err)
{
        const struct kiln_sandbox_opts *o = c->o;
        _cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs < 0)
                return kiln_err_sys(err, "overlay: fsopen");
        bool legacy = false;
        for (size_t i = 0; c->layers[i]; i++) {
                if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", c->layers[i], 0) == 0)
                        continue;
                if (i == 0 && errno == EINVAL) {
                        legacy = true;
                        break;
                }
                return fs_fail(fs, err, "overlay: lower layer %s",
                               i < o->n_lowers ? o->lowers[i] : c->skel);
        }
        if (legacy) {
                _cleanup_free_ char *s = escaped_lowers(c->layers);
                if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", s, 0) < 0)
                        return fs_fail(fs, err, "overlay: lowerdir (kernel without lowerdir+)");
        }
        if (writable) {
                if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", c->upper, 0) < 0)
                        return fs_fail(fs, err, "overlay: upperdir %s", o->upper);
                if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", c->work, 0) < 0)
                        return fs_fail(fs, err, "overlay: workdir %s", o->work);
        }
        if (c->userxattr && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
                return fs_fail(fs, err, "overlay: userxattr");
        /* A layer is written from the upper dir alone: renamed directories
         * (redirect) and metadata-only copy-ups (metacopy) would leave
         * content behind in the lowers. Both default off, but a host may
         * have turned them on. With userxattr the kernel keeps them off and
         * refuses the options. */
        if (!c->userxattr) {
                (void)fsconfig(fs, FSCONFIG_SET_STRING, "redirect_dir", "off", 0);
                (void)fsconfig(fs, FSCONFIG_SET_STRING, "metacopy", "off", 0);
        }
        unsigned int attrs = MOUNT_ATTR_NODEV;
        if (!writable)
                attrs |= MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
        _cleanup_close_ int m = fs_create_mount(fs, attrs, "overlay: mount", err);
        if (m < 0)
                return -1;
        if (move_mount(m, "", AT_FDCWD, c->mnt, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return kiln_err_sys(err, "overlay: attach at %s", c->mnt);
        return 0;
}

static int attach_at(int tree, int rootfd, const char *target, const char *what,
                     struct kiln_err **err)
{
        _cleanup_close_ int t = kiln_open_in_root(rootfd, target, O_PATH);
        if (t < 0)
                return kiln_err_sys(err, "%s: open mount point %s", what, target);
        if (move_mount(tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return kiln_err_sys(err, "%s: mount at %s", what, target);
        return 0;
}

static int bind_host(int rootfd, const char *source, const char *target, bool ro, bool user,
                     struct kiln_err **err)
{
        _cleanup_close_ int tree =
            open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return kiln_err_sys(err, "bind %s", source);
        struct mount_attr attr = {0};
        if (ro)
                attr.attr_set |= MOUNT_ATTR_RDONLY;
        if (user) /* caches and secrets are data, never devices or setuid programs */
                attr.attr_set |= MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if (attr.attr_set &&
            mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return kiln_err_sys(err, "bind %s: set mount flags", source);
        return attach_at(tree, rootfd, target, source, err);
}

/* A file kiln wrote for this run in the scratch directory (the private
 * network's resolv.conf) is bound from a tmpfs at f/ instead: mountinfo
 * shows a bind's source path inside its filesystem, and the scratch
 * directory's names the cache. cwd is the scratch directory. */
static char *neutral_source(const struct sb_ctx *c, const char *source, size_t i,
                            struct kiln_err **err)
{
        size_t n = strlen(c->dir);
        struct stat st;
        if (strncmp(source, c->dir, n) != 0 || source[n] != '/' || stat(source, &st) < 0 ||
            !S_ISREG(st.st_mode))
                return kiln_xstrdup(source);
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_read_file(source, 1 << 20, &b, err) < 0)
                return NULL;
        if (access("f", F_OK) < 0) {
                _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
                if (fs < 0) {
                        kiln_err_sys(err, "tmpfs: fsopen");
                        return NULL;
                }
                _cleanup_close_ int m = fs_create_mount(
                    fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, "tmpfs", err);
                if (m < 0)
                        return NULL;
                if (mkdir("f", 0700) < 0 ||
                    move_mount(m, "", AT_FDCWD, "f", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                        kiln_err_sys(err, "mount a tmpfs at %s/f", c->dir);
                        return NULL;
                }
        }
        char *staged = kiln_xasprintf("f/%zu", i);
        if (kiln_write_file_atomic(staged, b.data ? b.data : "", b.len, 0644, err) < 0) {
                free(staged);
                return NULL;
        }
        return staged;
}

static int mount_proc(int rootfd, struct kiln_err **err)
{
        _cleanup_close_ int fs = fsopen("proc", FSOPEN_CLOEXEC);
        if (fs < 0)
                return kiln_err_sys(err, "proc: fsopen");
        _cleanup_close_ int m = fs_create_mount(
            fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, "mount proc", err);
        if (m < 0 || attach_at(m, rootfd, "/proc", "proc", err) < 0)
                return -1;
        /* Kernel knobs stay read-only: a postinst writing /proc/sys would
         * change the host for real root. */
        _cleanup_close_ int proc = kiln_open_in_root(rootfd, "/proc", O_PATH | O_DIRECTORY);
        if (proc < 0)
                return kiln_err_sys(err, "open /proc");
        static const char *const ro[] = {"sys", "sysrq-trigger", "irq", "bus"};
        for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
                _cleanup_close_ int t =
                    open_tree(proc, ro[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                if (t < 0) {
                        if (errno == ENOENT)
                                continue;
                        return kiln_err_sys(err, "/proc/%s: bind", ro[i]);
                }
                struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
                if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0 ||
                    move_mount(t, "", proc, ro[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return kiln_err_sys(err, "/proc/%s: make read-only", ro[i]);
        }
        return 0;
}

static int mount_fs_at(int dirfd, const char *name, const char *type, const char *const *opts,
                       unsigned int attrs, struct kiln_err **err)
{
        _cleanup_close_ int fs = fsopen(type, FSOPEN_CLOEXEC);
        if (fs < 0)
                return kiln_err_sys(err, "/dev/%s: fsopen %s", name, type);
        for (size_t i = 0; opts[i]; i += 2) {
                int rc = opts[i + 1] ? fsconfig(fs, FSCONFIG_SET_STRING, opts[i], opts[i + 1], 0)
                                     : fsconfig(fs, FSCONFIG_SET_FLAG, opts[i], NULL, 0);
                if (rc < 0)
                        return fs_fail(fs, err, "%s option %s", type, opts[i]);
        }
        _cleanup_close_ int m = fs_create_mount(fs, attrs, type, err);
        if (m < 0)
                return -1;
        if (move_mount(m, "", dirfd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return kiln_err_sys(err, "mount %s at /dev/%s", type, name);
        return 0;
}

static int mount_dev(int rootfd, struct kiln_err **err)
{
        static const char *const tmpfs_opts[] = {"mode", "0755", "size", "65536k", NULL};
        {
                _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
                if (fs < 0)
                        return kiln_err_sys(err, "/dev: fsopen tmpfs");
                for (size_t i = 0; tmpfs_opts[i]; i += 2)
                        if (fsconfig(fs, FSCONFIG_SET_STRING, tmpfs_opts[i], tmpfs_opts[i + 1], 0) <
                            0)
                                return fs_fail(fs, err, "/dev: tmpfs option");
                _cleanup_close_ int m =
                    fs_create_mount(fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev tmpfs", err);
                if (m < 0 || attach_at(m, rootfd, "/dev", "/dev", err) < 0)
                        return -1;
        }
        _cleanup_close_ int dev = kiln_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
        if (dev < 0)
                return kiln_err_sys(err, "open /dev");
        static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                int fd = openat(dev, nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
                if (fd < 0)
                        return kiln_err_sys(err, "create /dev/%s", nodes[i]);
                close(fd);
                _cleanup_free_ char *host = kiln_xasprintf("/dev/%s", nodes[i]);
                _cleanup_close_ int tree =
                    open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (tree < 0)
                        return kiln_err_sys(err, "bind %s", host);
                if (move_mount(tree, "", dev, nodes[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return kiln_err_sys(err, "bind %s", host);
        }
        if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0)
                return kiln_err_sys(err, "create /dev/pts and /dev/shm");
        static const char *const pts_opts[] = {"newinstance", NULL,   "ptmxmode", "0666",
                                               "mode",        "0620", NULL};
        if (mount_fs_at(dev, "pts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                        err) < 0)
                return -1;
        static const char *const shm_opts[] = {"mode", "1777", NULL};
        if (mount_fs_at(dev, "shm", "tmpfs", shm_opts,
                        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err) < 0)
                return -1;
        static const char *const links[][2] = {
            {"pts/ptmx", "ptmx"},          {"/proc/self/fd", "fd"},
            {"/proc/self/fd/0", "stdin"},  {"/proc/self/fd/1", "stdout"},
            {"/proc/self/fd/2", "stderr"},
        };
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                if (symlinkat(links[i][0], dev, links[i][1]) < 0)
                        return kiln_err_sys(err, "symlink /dev/%s", links[i][1]);
        return 0;
}

/* ---------- the child side ---------- */

static bool host_file_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *const host_files[] = {"/etc/resolv.conf", "/etc/hosts"};

/* Builds the root under c->mnt and pivots into it. Runs as init. */
static int setup_root(const struct sb_ctx *c, struct kiln_err **err)
{
        const struct kiln_sandbox_opts *o = c->o;

        /* 1. decide the skeleton on a read-only view of the image */
        if (bind_lowers(c, err) < 0 || mount_overlay(c, false, err) < 0)
                return kiln_err_prefix(err, "inspect image");
        {
                _cleanup_close_ int rootfd = open(c->mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (rootfd < 0)
                        return kiln_err_sys(err, "open %s", c->mnt);
                if (plan_mountpoint(c, rootfd, "/proc", true, err) < 0 ||
                    plan_mountpoint(c, rootfd, "/dev", true, err) < 0)
                        return -1;
                for (size_t i = 0; i < 2; i++)
                        if (host_file_exists(host_files[i]) &&
                            plan_mountpoint(c, rootfd, host_files[i], false, err) < 0)
                                return -1;
                for (size_t i = 0; i < o->n_binds; i++) {
                        struct stat st;
                        if (stat(o->binds[i].source, &st) < 0)
                                return kiln_err_sys(err, "bind source %s", o->binds[i].source);
                        if (plan_mountpoint(c, rootfd, o->binds[i].target, S_ISDIR(st.st_mode),
                                            err) < 0)
                                return -1;
                }
        }
        if (umount2(c->mnt, MNT_DETACH) < 0)
                return kiln_err_sys(err, "unmount %s", c->mnt);

        /* 2. the real root */
        if (mount_overlay(c, true, err) < 0)
                return -1;
        _cleanup_close_ int rootfd = open(c->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return kiln_err_sys(err, "open %s", c->mnt);
        if (mount_proc(rootfd, err) < 0 || mount_dev(rootfd, err) < 0)
                return -1;
        for (size_t i = 0; i < 2; i++)
                if (host_file_exists(host_files[i]) &&
                    bind_host(rootfd, host_files[i], host_files[i], true, true, err) < 0)
                        return -1;
        for (size_t i = 0; i < o->n_binds; i++) {
                _cleanup_free_ char *source = neutral_source(c, o->binds[i].source, i, err);
                if (!source || bind_host(rootfd, source, o->binds[i].target, o->binds[i].readonly,
                                         true, err) < 0)
                        return -1;
        }

        /* 3. pivot: the old root is stacked on "." and detached at once */
        if (fchdir(rootfd) < 0)
                return kiln_err_sys(err, "chdir %s", c->mnt);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return kiln_err_sys(err, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                return kiln_err_sys(err, "detach the old root");
        if (chdir("/") < 0)
                return kiln_err_sys(err, "chdir /");
        const char *host = o->hostname && *o->hostname ? o->hostname : "kiln";
        if (sethostname(host, strlen(host)) < 0)
                return kiln_err_sys(err, "sethostname %s", host);
        /* installers expect the conventional umask, whatever kiln's is */
        umask(022);
        const char *cwd = o->cwd && *o->cwd ? o->cwd : "/";
        if (kiln_mkdir_p(cwd, 0755, err) < 0)
                return kiln_err_prefix(err, "working directory");
        return 0;
}

/* In a single-id namespace setgroups is denied for good; then the groups
 * stay what they are. */
static bool setgroups_denied(void)
{
        char buf[16] = "";
        int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        return n > 0 && kiln_str_has_prefix(buf, "deny");
}

static int prepare_command(const struct sb_ctx *c, struct kiln_err **err)
{
        const struct kiln_sandbox_opts *o = c->o;
        if (setsid() < 0)
                return kiln_err_sys(err, "setsid");
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0)
                return kiln_err_sys(err, "open /dev/null");
        if (dup2(null, 0) < 0 || dup2(c->out_w, 1) < 0 || dup2(c->out_w, 2) < 0)
                return kiln_err_sys(err, "redirect output");
        close(null);
        /* whatever kiln left open must not leak into the build */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        signal(SIGPIPE, SIG_DFL);

        bool fake = o->idmap == KILN_IDMAP_SINGLE;
        /* the filter goes in before the capabilities go: loading it needs
         * CAP_SYS_ADMIN or no_new_privs, and the latter would disable the
         * image's setuid programs */
        if (kiln_sandbox_seccomp_load(!o->seccomp_unconfined, fake, err) < 0 ||
            kiln_sandbox_drop_caps(err) < 0)
                return -1;
        if (fake && (o->uid != 0 || o->gid != 0)) {
                /* only root exists in this namespace: run as root, files are
                 * root-owned in the layer anyway */
                dprintf(1, "kiln: single-id user namespace: running as root instead of %u:%u\n",
                        (unsigned)o->uid, (unsigned)o->gid);
        } else {
                if (!fake && setgroups(1, &o->gid) < 0 && !(errno == EPERM && setgroups_denied()))
                        return kiln_err_sys(err, "setgroups %u", (unsigned)o->gid);
                if (setresgid(o->gid, o->gid, o->gid) < 0)
                        return kiln_err_sys(err, "setgid %u", (unsigned)o->gid);
                if (setresuid(o->uid, o->uid, o->uid) < 0)
                        return kiln_err_sys(err, "setuid %u", (unsigned)o->uid);
        }
        const char *cwd = o->cwd && *o->cwd ? o->cwd : "/";
        if (chdir(cwd) < 0)
                return kiln_err_sys(err, "chdir %s", cwd);
        return 0;
}

static _Noreturn void run_command(const struct sb_ctx *c)
{
        _cleanup_err_ struct kiln_err *e = NULL;
        if (prepare_command(c, &e) < 0)
                child_fail(c, e);
        if (c->o->fn) {
                if (c->o->fn(c->o->fn_arg, &e) < 0)
                        child_fail(c, e);
                _exit(0);
        }
        /* execvpe searches the PATH of the current environment */
        environ = (char **)c->o->env;
        execvpe(c->o->argv[0], c->o->argv, c->o->env);
        kiln_err_sys(&e, "run %s", c->o->argv[0]);
        e->domain = KILN_ERR_BUILD;
        child_fail(c, e);
}

static _Noreturn void run_init(const struct sb_ctx *c, pid_t keeper)
{
        _cleanup_err_ struct kiln_err *e = NULL;
        /* the keeper lives outside our pid namespace (getppid() is 0), and it
         * only dies after us unless killed: then so are we */
        (void)keeper;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
                kiln_err_sys(&e, "prctl");
                child_fail(c, e);
        }
        if (setup_root(c, &e) < 0)
                child_fail(c, e);
        pid_t cmd = fork();
        if (cmd < 0) {
                kiln_err_sys(&e, "fork");
                child_fail(c, e);
        }
        if (cmd == 0)
                run_command(c);
        close(c->out_w);
        close(c->report_w);
        for (;;) {
                int st = 0;
                pid_t p = wait(&st);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p < 0)
                        _exit(255);
                if (p == cmd)
                        _exit(status_of(st));
        }
}

static _Noreturn void run_keeper(const struct sb_ctx *c, pid_t kiln)
{
        _cleanup_err_ struct kiln_err *e = NULL;
        /* kiln dying (SIGINT, SIGTERM, crash) takes the whole tree along */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != kiln)
                _exit(SB_SETUP_FAILED);
        if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                    kiln_sandbox_net_clone_flags(c->net)) < 0) {
                kiln_err_sys(&e, "unshare namespaces");
                child_fail(c, e);
        }
        if (kiln_sandbox_net_enter(c->net, &e) < 0)
                child_fail(c, e);
        /* nothing mounted from here on may propagate to the host */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                kiln_err_sys(&e, "make mounts private");
                child_fail(c, e);
        }
        pid_t self = getpid();
        pid_t init = fork();
        if (init < 0) {
                kiln_err_sys(&e, "fork");
                child_fail(c, e);
        }
        if (init == 0)
                run_init(c, self);
        close(c->out_w);
        close(c->report_w);
        int st = 0;
        while (waitpid(init, &st, 0) < 0)
                if (errno != EINTR)
                        _exit(255);
        _exit(status_of(st));
}

/* ---------- the parent side ---------- */

struct line_sink {
        const char *label;
        struct kiln_buf pending;
};

static void line_sink_release(struct line_sink *s)
{
        kiln_buf_release(&s->pending);
}
#define _cleanup_line_sink_ _cleanup_(line_sink_release)

static void sink_emit(struct line_sink *s, const char *p, size_t n)
{
        _cleanup_buf_ struct kiln_buf line = {0};
        /* pip prints a requirement's URL as given, password and all */
        kiln_buf_put_redacted(&line, p, n);
        kiln_event_output(s->label, line.data ? line.data : "", line.len);
}

static void sink_feed(struct line_sink *s, const char *p, size_t n)
{
        kiln_buf_append(&s->pending, p, n);
        size_t start = 0;
        for (size_t i = 0; i < s->pending.len; i++) {
                if (s->pending.data[i] == '\n' || i - start + 1 >= SB_LINE_MAX) {
                        size_t len = i - start + (s->pending.data[i] == '\n' ? 0 : 1);
                        sink_emit(s, s->pending.data + start, len);
                        start = i + 1;
                }
        }
        memmove(s->pending.data, s->pending.data + start, s->pending.len - start);
        s->pending.len -= start;
        s->pending.data[s->pending.len] = '\0';
}

static bool in_initial_userns(void)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_read_file("/proc/self/uid_map", 4096, &b, &e) < 0 || !b.data)
                return false;
        unsigned long a = 1, bb = 1, n = 0;
        return sscanf(b.data, "%lu %lu %lu", &a, &bb, &n) == 3 && a == 0 && bb == 0 &&
               n == 4294967295UL;
}

static int check_opts(const struct kiln_sandbox_opts *o, struct kiln_err **err)
{
        if (!o->n_lowers || !o->lowers || !o->upper || !o->work ||
            (!o->fn && (!o->argv || !o->argv[0])) || !o->env)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "sandbox: lowers, upper, work, argv or fn, and env are "
                                    "required");
        if (o->cwd && *o->cwd && o->cwd[0] != '/')
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "working directory %s: must be absolute",
                                    o->cwd);
        for (size_t i = 0; i < o->n_binds; i++)
                if (!o->binds[i].target || o->binds[i].target[0] != '/' || !o->binds[i].source)
                        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                            "bind %s: target must be an absolute path",
                                            o->binds[i].target ? o->binds[i].target : "(null)");
        return 0;
}

/* The sandbox's scratch directory: removed on the way out (nothing is
 * mounted there outside the child). */
static void scratch_removep(char **dir)
{
        if (*dir) {
                _cleanup_err_ struct kiln_err *rm_err = NULL;
                kiln_rm_rf(*dir, &rm_err);
        }
        free(*dir);
        *dir = NULL;
}

/* Passes the command's output on line by line and keeps the first setup
 * report, until the children close both pipes. A failed poll kills the
 * keeper. */
static int pump(int out_r, int rep_r, pid_t keeper, struct line_sink *sink,
                struct sb_report *report, size_t *report_len, struct kiln_err **err)
{
        struct pollfd pf[2] = {{.fd = out_r, .events = POLLIN}, {.fd = rep_r, .events = POLLIN}};
        while (pf[0].fd >= 0 || pf[1].fd >= 0) {
                if (poll(pf, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        kiln_err_sys(err, "sandbox: poll");
                        kill(keeper, SIGKILL);
                        return -1;
                }
                if (pf[0].revents) {
                        char buf[16384];
                        ssize_t n = read(out_r, buf, sizeof(buf));
                        if (n > 0)
                                sink_feed(sink, buf, (size_t)n);
                        else if (n == 0 || errno != EINTR)
                                pf[0].fd = -1;
                }
                if (pf[1].revents) {
                        ssize_t n = -1;
                        if (*report_len < sizeof(*report))
                                n = read(rep_r, (char *)report + *report_len,
                                         sizeof(*report) - *report_len);
                        else {
                                char drain[256]; /* a later report: the first is the cause */
                                n = read(rep_r, drain, sizeof(drain));
                        }
                        if (n > 0 && *report_len < sizeof(*report))
                                *report_len += (size_t)n;
                        else if (n == 0 || (n < 0 && errno != EINTR))
                                pf[1].fd = -1;
                }
        }
        return 0;
}

/* Waits for the keeper (then -1); its wait status, 255 << 8 when waiting
 * fails. */
static int wait_keeper(pid_t *keeper)
{
        int st = 0;
        while (waitpid(*keeper, &st, 0) < 0)
                if (errno != EINTR) {
                        st = 255 << 8;
                        break;
                }
        *keeper = -1;
        return st;
}

/* path as seen from the scratch directory, a child of `parent`: "../NAME"
 * when path is a child of parent too, else path itself. */
static char *name_from_scratch(const char *path, const char *parent)
{
        _cleanup_free_ char *copy = kiln_xstrdup(path);
        const char *slash = strrchr(path, '/');
        if (!slash || !slash[1] || strcmp(dirname(copy), parent) != 0)
                return kiln_xstrdup(path);
        return kiln_xasprintf("..%s", slash);
}

int kiln_sandbox_run(const struct kiln_sandbox_opts *o, int *status, struct kiln_err **err)
{
        if (check_opts(o, err) < 0)
                return -1;

        /* private scratch: the mount point and the skeleton lower layer */
        _cleanup_free_ char *work_copy = kiln_xstrdup(o->work);
        const char *work_parent = dirname(work_copy);
        _cleanup_free_ char *tmpl = kiln_xasprintf("%s/.kiln-sandbox-XXXXXX", work_parent);
        if (!mkdtemp(tmpl))
                return kiln_err_sys(err, "create sandbox directory in %s", work_parent);
        _cleanup_(scratch_removep) char *tmp = realpath(tmpl, NULL);
        if (!tmp) {
                kiln_err_sys(err, "resolve %s", tmpl);
                rmdir(tmpl);
                return -1;
        }
        _cleanup_free_ char *mnt = kiln_xasprintf("%s/root", tmp);
        _cleanup_free_ char *skel = kiln_xasprintf("%s/skel", tmp);
        if (mkdir(mnt, 0700) < 0 || mkdir(skel, 0755) < 0)
                return kiln_err_sys(err, "create %s", mnt);
        _cleanup_pipe_ int rep[2] = {-1, -1};
        _cleanup_pipe_ int out[2] = {-1, -1};
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
                return kiln_err_sys(err, "sandbox: pipe");
        _cleanup_(kiln_sandbox_net_release) struct sb_net net = SB_NET_INIT;
        if (kiln_sandbox_net_prepare(&net, o, tmp, err) < 0)
                return -1;
        _cleanup_strv_ char **layers = kiln_xcalloc(o->n_lowers + 2, sizeof(char *));
        for (size_t i = 0; i < o->n_lowers; i++)
                layers[i] = kiln_xasprintf("l/%zu", i);
        layers[o->n_lowers] = kiln_xstrdup("skel");
        _cleanup_free_ char *upper_rel = name_from_scratch(o->upper, work_parent);
        _cleanup_free_ char *work_rel = name_from_scratch(o->work, work_parent);
        struct sb_ctx ctx = {
            .o = &net.opts,
            .net = &net,
            .dir = tmp,
            .mnt = mnt,
            .skel = skel,
            .layers = layers,
            .upper = upper_rel,
            .work = work_rel,
            .userxattr = o->idmap != KILN_IDMAP_HOST || !in_initial_userns(),
            .out_w = out[1],
            .report_w = rep[1],
        };
        pid_t self = getpid();
        /* killed and reaped on the way out unless waited for below */
        _cleanup_kill_ pid_t keeper = fork();
        if (keeper < 0)
                return kiln_err_sys(err, "sandbox: fork");
        if (keeper == 0) {
                /* the child's code from here on is unchanged by the cleanups
                 * above: run_keeper ends in _exit, so none of them runs */
                close(out[0]);
                close(rep[0]);
                run_keeper(&ctx, self);
        }
        close(out[1]);
        close(rep[1]);
        out[1] = rep[1] = -1;
        if (kiln_sandbox_net_start(&net, keeper, err) < 0)
                return -1;

        _cleanup_line_sink_ struct line_sink sink = {.label = o->label ? o->label : ""};
        struct sb_report report = {0};
        size_t report_len = 0;
        int rc = pump(out[0], rep[0], keeper, &sink, &report, &report_len, err);
        if (sink.pending.len)
                sink_emit(&sink, sink.pending.data, sink.pending.len);
        int st = wait_keeper(&keeper);
        if (rc < 0)
                return -1;
        if (report_len > 0) {
                report.msg[sizeof(report.msg) - 1] = '\0';
                /* KILN_ERR_BUILD when the command could not be started, the
                 * sandbox's own failures otherwise */
                return kiln_err_set(err, (enum kiln_err_domain)report.domain, report.code,
                                    "sandbox: %s", report.msg);
        }
        *status = status_of(st);
        return 0;
}
