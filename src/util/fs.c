#include "kiln/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int kiln_open_in_root(int rootfd, const char *path, int flags)
{
#ifdef SYS_openat2
        while (*path == '/')
                path++;
        struct open_how how = {
            .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd;
        do
                fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
        while (fd < 0 && errno == EAGAIN);
        return fd;
#else
        (void)rootfd;
        (void)path;
        (void)flags;
        errno = ENOSYS;
        return -1;
#endif
}

int kiln_lock_file(const char *path, int *fd, struct kiln_err **err)
{
        *fd = -1;
        _cleanup_close_ int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f < 0)
                return kiln_err_sys(err, "open %s", path);
        while (flock(f, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kiln_err_sys(err, "lock %s", path);
        *fd = steal_fd(&f);
        return 0;
}

int kiln_write_all(int fd, const void *data, size_t len)
{
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int kiln_read_fd(int fd, const char *what, size_t max, struct kiln_buf *out, struct kiln_err **err)
{
        char chunk[65536];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return kiln_err_sys(err, "read %s", what);
                }
                if (n == 0)
                        break;
                if (out->len + (size_t)n > max)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: larger than the %zu-byte limit", what, max);
                kiln_buf_append(out, chunk, (size_t)n);
        }
        if (!out->data)
                kiln_buf_append(out, "", 0);
        return 0;
}

int kiln_read_file(const char *path, size_t max, struct kiln_buf *out, struct kiln_err **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", path);
        return kiln_read_fd(fd, path, max, out, err);
}

char *kiln_tmp_sibling(const char *path)
{
        return kiln_xasprintf("%s.tmp-XXXXXX", path);
}

static int fsync_parent(const char *path)
{
        _cleanup_free_ char *dir = kiln_xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = '\0';
        else if (slash)
                *slash = '\0';
        else
                strcpy(dir, ".");
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        return fsync(fd);
}

int kiln_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                           struct kiln_err **err)
{
        _cleanup_free_ char *tmp = kiln_tmp_sibling(path);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "create temporary file for %s", path);
        if (kiln_write_all(fd, data, len) < 0 || fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
                kiln_err_sys(err, "write %s", path);
                unlink(tmp);
                return -1;
        }
        close(steal_fd(&fd));
        if (rename(tmp, path) < 0) {
                kiln_err_sys(err, "rename %s into place", path);
                unlink(tmp);
                return -1;
        }
        fsync_parent(path);
        return 0;
}

int kiln_mkdir_p(const char *path, int mode, struct kiln_err **err)
{
        _cleanup_free_ char *p = kiln_xstrdup(path);
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                        return kiln_err_sys(err, "create directory %s", p);
                *s = '/';
        }
        if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                return kiln_err_sys(err, "create directory %s", p);
        struct stat st;
        if (stat(p, &st) < 0)
                return kiln_err_sys(err, "stat %s", p);
        if (!S_ISDIR(st.st_mode))
                return kiln_err_set(err, KILN_ERR_SYSTEM, ENOTDIR, "%s: not a directory", p);
        return 0;
}

int kiln_dir_names(int dirfd, const char *what, char ***names, size_t *n, struct kiln_err **err)
{
        *names = NULL;
        *n = 0;
        /* fdopendir takes the descriptor: give it a fresh one for "." so the
         * caller's stays usable and keeps its position. */
        _cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d)
                return kiln_err_sys(err, "open %s", what);
        (void)steal_fd(&fd); /* d owns it */
        _cleanup_strv_ char **v = kiln_xcalloc(1, sizeof(char *));
        size_t k = 0, cap = 1;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (k + 2 > cap) {
                        cap *= 2;
                        v = kiln_xrealloc(v, cap * sizeof(char *));
                }
                v[k++] = kiln_xstrdup(de->d_name);
                v[k] = NULL;
        }
        if (errno)
                return kiln_err_sys(err, "read %s", what);
        *names = steal_pointer(&v);
        *n = k;
        return 0;
}

/* Removes what the directory name in parent holds; the directory is closed
 * again before its caller removes it. */
static int rm_rf_at(int parent, const char *name, const char *shown, struct kiln_err **err);

static int rm_rf_children(int parent, const char *name, const char *shown, struct kiln_err **err)
{
        _cleanup_close_ int fd =
            openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", shown);
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d)
                return kiln_err_sys(err, "open %s", shown);
        (void)steal_fd(&fd); /* d owns it */
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = kiln_xasprintf("%s/%s", shown, de->d_name);
                if (rm_rf_at(dirfd(d), de->d_name, child, err) < 0)
                        return -1;
        }
        return 0;
}

static int rm_rf_at(int parent, const char *name, const char *shown, struct kiln_err **err)
{
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return kiln_err_sys(err, "remove %s", shown);
        if (rm_rf_children(parent, name, shown, err) < 0)
                return -1;
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return kiln_err_sys(err, "remove %s", shown);
        return 0;
}

int kiln_rm_rf(const char *path, struct kiln_err **err)
{
        return rm_rf_at(AT_FDCWD, path, path, err);
}
