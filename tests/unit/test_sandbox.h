/* Shared by the sandbox's unit tests (test_sandbox.c, test_sandbox_profile.c):
 * as root each runs its suite in host mode, then re-runs its own binary as
 * two unprivileged users, one with /etc/subuid ranges (range mode) and one
 * without (single mode), plus the range user forced into single mode. */
#ifndef KILN_TEST_SANDBOX_H
#define KILN_TEST_SANDBOX_H

#include "kiln/sandbox.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void die(const char *what)
{
        fprintf(stderr, "test setup: %s: %s\n", what, strerror(errno));
        exit(2);
}

/* Whole file (up to 64 MiB), NULL when unreadable; *len gets its size. */
static char *read_bytes(const char *path, size_t *len)
{
        struct kiln_buf b = {0};
        struct kiln_err *e = NULL;
        if (kiln_read_file(path, 64 << 20, &b, &e) < 0) {
                kiln_err_free(e);
                kiln_buf_release(&b);
                return NULL;
        }
        *len = b.len;
        if (!b.data)
                return kiln_xstrdup("");
        return kiln_buf_steal(&b);
}

static char *read_text(const char *path)
{
        size_t len = 0;
        return read_bytes(path, &len);
}

static void copy_file(const char *from, const char *to, mode_t m)
{
        struct kiln_buf b = {0};
        struct kiln_err *e = NULL;
        if (kiln_read_file(from, 64 << 20, &b, &e) < 0) {
                fprintf(stderr, "test setup: %s (install busybox-static)\n", e->msg);
                exit(2);
        }
        int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, m);
        if (fd < 0 || kiln_write_all(fd, b.data, b.len) < 0)
                die(to);
        close(fd);
        kiln_buf_release(&b);
}

static unsigned long subid_start(const char *file, const char *user)
{
        char *t = read_text(file);
        unsigned long start = 0;
        size_t ul = strlen(user);
        for (char *l = t; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
                if (!strncmp(l, user, ul) && l[ul] == ':')
                        start = strtoul(l + ul + 1, NULL, 10);
        free(t);
        return start;
}

static int sh(const char *cmd)
{
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* kilnsb-range with subordinate ids, kilnsb-single without. */
static bool ensure_test_users(void)
{
        if (access("/usr/bin/newuidmap", X_OK) < 0 && sh("apt-get install -y -q uidmap") != 0) {
                CHECK(false, "uidmap is needed for range mode");
                return false;
        }
        if (!getpwnam("kilnsb-range"))
                sh("useradd -m kilnsb-range");
        if (!subid_start("/etc/subuid", "kilnsb-range"))
                sh("usermod --add-subuids 700000-765535 --add-subgids 700000-765535 "
                   "kilnsb-range");
        if (!getpwnam("kilnsb-single"))
                sh("useradd -m kilnsb-single");
        sh("sed -i '/^kilnsb-single:/d' /etc/subuid /etc/subgid");
        CHECK(subid_start("/etc/subuid", "kilnsb-range") > 0, "kilnsb-range has no subuid range");
        return true;
}

/* Runs a copy of this binary as `user` with `--as-user MODE DIR` in a new
 * directory the user owns (the build tree may sit below a directory the
 * user cannot enter, a checkout in /root); returns DIR for the caller to
 * look into and remove. */
static char *run_as_user_in(const char *user, const char *env, const char *expect_mode)
{
        char *dir = kiln_xstrdup("/tmp/kiln-sbtest-XXXXXX");
        if (!mkdtemp(dir))
                die("mkdtemp");
        struct passwd *pw = getpwnam(user);
        if (!pw || chown(dir, pw->pw_uid, pw->pw_gid) < 0)
                die(user);
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                die("readlink /proc/self/exe");
        exe[n] = '\0';
        const char *name = strrchr(exe, '/') + 1;
        char *copy = kiln_xasprintf("%s/%s", dir, name);
        copy_file(exe, copy, 0755);
        char *cmd = kiln_xasprintf("runuser -u %s -- env %s %s --as-user %s %s", user, env, copy,
                                   expect_mode, dir);
        free(copy);
        printf("== %s\n", cmd);
        fflush(stdout);
        int st = sh(cmd);
        free(cmd);
        CHECK(st == 0, "suite as %s (%s) failed with %d", user, expect_mode, st);
        return dir;
}

static void remove_dir(char *dir)
{
        struct kiln_err *e = NULL;
        kiln_rm_rf(dir, &e);
        kiln_err_free(e);
        free(dir);
}

/* kiln_sandbox_run with kiln's stderr (the step's labelled output) in
 * the file outpath. */
static int run_to_file(const struct kiln_sandbox_opts *o, const char *outpath, int *status,
                       struct kiln_err **err)
{
        fflush(stderr);
        int saved = dup(2);
        int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (saved < 0 || fd < 0)
                die("capture output");
        dup2(fd, 2);
        close(fd);
        *status = -1;
        int rc = kiln_sandbox_run(o, status, err);
        dup2(saved, 2);
        close(saved);
        return rc;
}

/* The suite in the mode this process may use (host mode as root), in a
 * child, under a fresh scratch directory *base. */
static void run_own_suite(enum kiln_idmap *mode, const char **base, int (*suite)(void))
{
        char dir[] = "/tmp/kiln-sbtest-XXXXXX";
        if (!mkdtemp(dir))
                die("mkdtemp");
        *base = dir;
        struct kiln_err *e = NULL;
        if (kiln_userns_enter(mode, &e) < 0) {
                fprintf(stderr, "kiln_userns_enter: %s\n", e->msg);
                exit(1);
        }
        pid_t pid = fork();
        if (pid == 0)
                exit(suite());
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "suite in %s mode failed",
              kiln_idmap_name(*mode));
        kiln_rm_rf(dir, &e);
        kiln_err_free(e);
        *base = NULL;
}

#endif
