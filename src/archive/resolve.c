#include "archive-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

bool kiln_archive_force_no_openat2 = false;

/* The fds of the directories walk_in_root has entered. */
struct fd_stack {
        int *v;
        size_t n, cap;
};

static void fd_stack_push(struct fd_stack *s, int fd)
{
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                s->v = kiln_xrealloc(s->v, s->cap * sizeof(int));
        }
        s->v[s->n++] = fd;
}

static void fd_stack_pop(struct fd_stack *s)
{
        if (s->n > 0)
                close(s->v[--s->n]);
}

/* Keeps errno: walk_in_root reports through it. */
static void fd_stack_release(struct fd_stack *s)
{
        int saved = errno;
        while (s->n > 0)
                fd_stack_pop(s);
        free(s->v);
        *s = (struct fd_stack){0};
        errno = saved;
}
#define _cleanup_fd_stack_ _cleanup_(fd_stack_release)

/* Emulates RESOLVE_IN_ROOT for kernels before 5.6: one component at a time
 * with O_NOFOLLOW; a symlink's target is spliced into the remaining path,
 * an absolute one restarts at rootfd and ".." never climbs above it. The
 * stack holds the fd of every directory entered so ".." can go back.
 * Returns -1 with errno set on failure. */
static int walk_in_root(int rootfd, const char *rel)
{
        _cleanup_free_ char *rest = kiln_xstrdup(rel);
        _cleanup_fd_stack_ struct fd_stack stack = {0};
        int links = 0;

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
                        fd_stack_pop(&stack);
                        continue;
                }
                int cur = stack.n ? stack.v[stack.n - 1] : rootfd;
                _cleanup_close_ int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -1;
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return -1;
                if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
                        close(steal_fd(&fd));
                        if (n < 0)
                                return -1;
                        target[n] = '\0';
                        if (++links > 40) {
                                errno = ELOOP;
                                return -1;
                        }
                        if (target[0] == '/')
                                while (stack.n > 0)
                                        fd_stack_pop(&stack);
                        char *spliced = kiln_xasprintf("%s%s", target, rest);
                        free(rest);
                        rest = spliced;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        errno = ENOTDIR;
                        return -1;
                }
                fd_stack_push(&stack, steal_fd(&fd));
        }
        if (stack.n > 0)
                return stack.v[--stack.n];
        return openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
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

/* Removes what the directory name in parent holds; the directory is closed
 * again before its caller removes it. -1 with errno set on failure. */
static int rm_rf_children(int parent, const char *name)
{
        _cleanup_close_ int fd =
            openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -1;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d)
                return -1;
        (void)steal_fd(&fd); /* d owns it */
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (kiln_archive_rm_rf_at(dirfd(d), de->d_name) < 0)
                        return -1;
        }
        return 0;
}

int kiln_archive_rm_rf_at(int parent, const char *name)
{
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -1;
        if (rm_rf_children(parent, name) < 0)
                return -1;
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
