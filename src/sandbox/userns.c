/* Entering kiln's own user namespace as an ordinary user.
 *
 * A process cannot write its own uid_map with more than its own id, so a
 * helper forked before the unshare (still in the host namespace, where the
 * setuid newuidmap/newgidmap work) maps the parent once it has unshared. */
#include "kiln/sandbox.h"
#include "sandbox-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

static bool userns_entered;
static enum kiln_idmap userns_mode;

const char *kiln_idmap_name(enum kiln_idmap m)
{
        switch (m) {
        case KILN_IDMAP_HOST:
                return "host";
        case KILN_IDMAP_RANGE:
                return "range";
        case KILN_IDMAP_SINGLE:
                return "single";
        }
        return "unknown";
}

struct subid_range {
        unsigned long start;
        unsigned long count;
};

/* Finds the first "name-or-uid:start:count" line for the user. A missing
 * file simply means no ranges. */
static bool subid_lookup(const char *file, const char *name, unsigned long id,
                         struct subid_range *out)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_read_file(file, 1 << 20, &b, &e) < 0 || !b.data)
                return false;
        char idstr[32];
        snprintf(idstr, sizeof(idstr), "%lu", id);
        char *save = NULL;
        for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':');
                if (!c1)
                        continue;
                *c1 = '\0';
                if (strcmp(line, idstr) != 0 && (!name || strcmp(line, name) != 0))
                        continue;
                char *end = NULL;
                errno = 0;
                unsigned long start = strtoul(c1 + 1, &end, 10);
                if (errno || !end || *end != ':')
                        continue;
                unsigned long count = strtoul(end + 1, &end, 10);
                if (errno || count == 0 || (*end && *end != '\r' && *end != ' '))
                        continue;
                out->start = start;
                out->count = count;
                return true;
        }
        return false;
}

char *kiln_sandbox_find_tool(const char *name)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *dirs =
            kiln_xasprintf("%s:/usr/bin:/usr/sbin:/bin:/sbin", path ? path : "");
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (*d != '/')
                        continue;
                char *p = kiln_xasprintf("%s/%s", d, name);
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

static int count_threads(void)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_read_file("/proc/self/status", 1 << 16, &b, &e) < 0 || !b.data)
                return -1;
        const char *t = strstr(b.data, "\nThreads:");
        if (!t)
                return -1;
        return atoi(t + strlen("\nThreads:"));
}

/* Helper-side result: first byte 0 ok / 1 failed, then a message. */
static void helper_report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void helper_report(int fd, const char *fmt, ...)
{
        char msg[512];
        msg[0] = 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + 1, sizeof(msg) - 1, fmt, ap);
        va_end(ap);
        kiln_write_all(fd, msg, 1 + strlen(msg + 1));
}

/* Reads fd until EOF or until buf (n bytes) is full, and NUL-terminates
 * what it read; its length. */
static size_t read_upto(int fd, char *buf, size_t n)
{
        size_t len = 0;
        for (;;) {
                ssize_t r = read(fd, buf + len, n - 1 - len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                len += (size_t)r;
                if (len == n - 1)
                        break;
        }
        buf[len] = '\0';
        return len;
}

/* Runs newuidmap/newgidmap; on failure reports the first line of its stderr. */
static int helper_run_map(int report, const char *tool, pid_t pid, unsigned long id,
                          const struct subid_range *r)
{
        char a_pid[32], a_id[32], a_start[32], a_count[32];
        snprintf(a_pid, sizeof(a_pid), "%d", (int)pid);
        snprintf(a_id, sizeof(a_id), "%lu", id);
        snprintf(a_start, sizeof(a_start), "%lu", r->start);
        snprintf(a_count, sizeof(a_count), "%lu", r->count);
        char *const argv[] = {(char *)tool, a_pid, "0", a_id, "1", "1", a_start, a_count, NULL};
        int ep[2];
        if (pipe2(ep, O_CLOEXEC) < 0) {
                helper_report(report, "pipe: %s", strerror(errno));
                return -1;
        }
        pid_t c = fork();
        if (c < 0) {
                helper_report(report, "fork: %s", strerror(errno));
                return -1;
        }
        if (c == 0) {
                dup2(ep[1], 2);
                execv(tool, argv);
                dprintf(2, "exec: %s\n", strerror(errno));
                _exit(127);
        }
        close(ep[1]);
        char buf[1024];
        size_t len = read_upto(ep[0], buf, sizeof(buf));
        close(ep[0]);
        int st = 0;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
                ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return 0;
        char *nl = strchr(buf, '\n');
        if (nl)
                *nl = '\0';
        const char *base = strrchr(tool, '/');
        helper_report(report, "%s: %s", base ? base + 1 : tool,
                      len ? buf : (WIFEXITED(st) ? "failed" : "killed"));
        return -1;
}

static int helper_write_file(int report, pid_t pid, const char *name, const char *data)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
                helper_report(report, "write %s: %s", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        close(fd);
        return 0;
}

struct map_plan {
        enum kiln_idmap mode;
        unsigned long uid, gid;
        struct subid_range uids, gids;
        char *newuidmap, *newgidmap;
};

static _Noreturn void helper_main(int go, int report, pid_t parent, const struct map_plan *p)
{
        char c;
        ssize_t n;
        while ((n = read(go, &c, 1)) < 0 && errno == EINTR)
                ;
        if (n != 1)
                _exit(1); /* the parent failed to unshare and said so itself */
        if (p->mode == KILN_IDMAP_RANGE) {
                if (helper_run_map(report, p->newuidmap, parent, p->uid, &p->uids) < 0 ||
                    helper_run_map(report, p->newgidmap, parent, p->gid, &p->gids) < 0)
                        _exit(1);
        } else {
                char map[64];
                snprintf(map, sizeof(map), "0 %lu 1\n", p->uid);
                if (helper_write_file(report, parent, "uid_map", map) < 0 ||
                    helper_write_file(report, parent, "setgroups", "deny") < 0)
                        _exit(1);
                snprintf(map, sizeof(map), "0 %lu 1\n", p->gid);
                if (helper_write_file(report, parent, "gid_map", map) < 0)
                        _exit(1);
        }
        c = 0;
        kiln_write_all(report, &c, 1);
        _exit(0);
}

static void plan_release(struct map_plan *p)
{
        free(p->newuidmap);
        free(p->newgidmap);
}

/* Unshares the user (and mount) namespace and has the helper, forked
 * before in the host's namespace, write the id maps. */
static int map_ids(const struct map_plan *plan, struct kiln_err **err)
{
        /* reaped last: it leaves once the pipes below are closed */
        _cleanup_reap_ pid_t helper = -1;
        _cleanup_pipe_ int go[2] = {-1, -1};
        _cleanup_pipe_ int rep[2] = {-1, -1};
        if (pipe2(go, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
                return kiln_err_sys(err, "enter user namespace: pipe");
        pid_t parent = getpid();
        helper = fork();
        if (helper < 0)
                return kiln_err_sys(err, "enter user namespace: fork");
        if (helper == 0) {
                /* never returns: no cleanup of this scope runs in the helper */
                close(go[1]);
                close(rep[0]);
                helper_main(go[0], rep[1], parent, plan);
        }
        close(go[0]);
        close(rep[1]);
        go[0] = rep[1] = -1;

        /* on failure go is closed on the way out: the helper sees EOF and leaves */
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return kiln_err_sys(err, "enter user namespace: unshare");
        char c = 1;
        kiln_write_all(go[1], &c, 1);
        close(go[1]);
        go[1] = -1;
        char msg[512];
        size_t len = read_upto(rep[0], msg, sizeof(msg));
        if (len == 0)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0,
                                    "enter user namespace: the id-mapping helper died");
        if (msg[0] != 0)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0,
                                    "enter user namespace (%s mapping): %s",
                                    kiln_idmap_name(plan->mode), msg + 1);
        return 0;
}

int kiln_userns_enter(enum kiln_idmap *mode, struct kiln_err **err)
{
        if (userns_entered) {
                *mode = userns_mode;
                return 0;
        }
        if (geteuid() == 0) {
                userns_entered = true;
                userns_mode = KILN_IDMAP_HOST;
                *mode = userns_mode;
                return 0;
        }
        int threads = count_threads();
        if (threads != 1)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "enter user namespace: the process has %d threads; it must "
                                    "be entered before any thread starts",
                                    threads);

        _cleanup_(plan_release) struct map_plan plan = {.mode = KILN_IDMAP_SINGLE};
        plan.uid = geteuid();
        plan.gid = getegid();
        struct passwd *pw = getpwuid((uid_t)plan.uid);
        const char *name = pw ? pw->pw_name : NULL;
        const char *force = getenv("KILN_USERNS");
        bool want_range = !(force && !strcmp(force, "single"));
        /* /etc/subgid is keyed by user name or uid as well, not by group */
        if (want_range && subid_lookup("/etc/subuid", name, plan.uid, &plan.uids) &&
            subid_lookup("/etc/subgid", name, plan.uid, &plan.gids)) {
                plan.newuidmap = kiln_sandbox_find_tool("newuidmap");
                plan.newgidmap = kiln_sandbox_find_tool("newgidmap");
                if (plan.newuidmap && plan.newgidmap)
                        plan.mode = KILN_IDMAP_RANGE;
        }

        /* after a failed mapping the process sits in an unusable namespace
         * (ids shown as overflow ids); the caller can only report and exit */
        if (map_ids(&plan, err) < 0)
                return -1;

        if (setresgid(0, 0, 0) < 0)
                return kiln_err_sys(err, "enter user namespace: setresgid(0)");
        if (plan.mode == KILN_IDMAP_RANGE && setgroups(0, NULL) < 0)
                return kiln_err_sys(err, "enter user namespace: setgroups");
        if (setresuid(0, 0, 0) < 0)
                return kiln_err_sys(err, "enter user namespace: setresuid(0)");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return kiln_err_sys(err, "enter user namespace: make / private");
        userns_entered = true;
        userns_mode = plan.mode;
        *mode = userns_mode;
        return 0;
}
