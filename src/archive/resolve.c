#include "archive-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

bool kiln_archive_force_no_openat2 = false;

/* Emulates RESOLVE_IN_ROOT for kernels before 5.6: one component at a time
 * with O_NOFOLLOW; a symlink's target is spliced into the remaining path,
 * an absolute one restarts at rootfd and ".." never climbs above it. The
 * stack holds the fd of every directory entered so ".." can go back. */
static int walk_in_root(int rootfd, const char *rel)
{
        _cleanup_free_ char *rest = kiln_xstrdup(rel);
        size_t cap = 16, depth = 0;
        _cleanup_free_ int *stack = kiln_xmalloc(cap * sizeof(int));
        int links = 0, rc = -1, saved = 0;

        for (;;) {
                char *p = rest;
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                _cleanup_free_ char *comp = kiln_xstrndup(p, len);
                char *next = kiln_xstrdup(slash ? slash : "");
                free(rest);
                rest = next;
                if (!strcmp(comp, "."))
                        continue;
                if (!strcmp(comp, "..")) {
                        if (depth > 0)
                                close(stack[--depth]);
                        continue;
                }
                int cur = depth ? stack[depth - 1] : rootfd;
                int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        saved = errno;
                        goto out;
                }
                struct stat st;
                if (fstat(fd, &st) < 0) {
                        saved = errno;
                        close(fd);
                        goto out;
                }
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
                        close(fd);
                        if (n < 0) {
                                saved = errno;
                                goto out;
                        }
                        target[n] = '\0';
                        if (++links > 40) {
                                saved = ELOOP;
                                goto out;
                        }
                        if (target[0] == '/')
                                while (depth > 0)
                                        close(stack[--depth]);
                        char *spliced = kiln_xasprintf("%s%s", target, rest);
                        free(rest);
                        rest = spliced;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        close(fd);
                        saved = ENOTDIR;
                        goto out;
                }
                if (depth == cap) {
                        cap *= 2;
                        stack = kiln_xrealloc(stack, cap * sizeof(int));
                }
                stack[depth++] = fd;
        }
        if (depth > 0) {
                rc = stack[--depth];
        } else {
                rc = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
                saved = errno;
        }
out:
        while (depth > 0)
                close(stack[--depth]);
        if (rc < 0)
                errno = saved;
        return rc;
}

int kiln_archive_open_in_root(int rootfd, const char *rel)
{
        int fd = -1;
        errno = ENOSYS;
        if (!kiln_archive_force_no_openat2)
                fd = kiln_open_in_root(rootfd, rel, O_PATH | O_DIRECTORY);
        if (fd >= 0 || errno != ENOSYS)
                return fd;
        return walk_in_root(rootfd, rel);
}

int kiln_archive_rm_rf_at(int parent, const char *name)
{
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -1;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -1;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
        }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                rc = kiln_archive_rm_rf_at(dirfd(d), de->d_name);
        }
        int e = errno;
        closedir(d);
        if (rc < 0) {
                errno = e;
                return -1;
        }
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -1;
        return 0;
}

int kiln_archive_path_cmp(const char *a, const char *b)
{
        const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
        for (;; x++, y++) {
                int cx = *x ? (*x == '/' ? 0 : *x + 1) : -1;
                int cy = *y ? (*y == '/' ? 0 : *y + 1) : -1;
                if (cx != cy)
                        return cx < cy ? -1 : 1;
                if (cx < 0)
                        return 0;
        }
}
