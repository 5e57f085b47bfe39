/* A layer written from an upper directory in a process of its own: the
 * build's next step runs its programs (mostly one busy core: apt, pip)
 * while this one tars, hashes and compresses on the others.
 *
 * A process rather than a thread because the build forks sandboxes
 * meanwhile, and a fork taken while another thread holds a library's lock
 * (stdio, zlib's allocator, the logger) leaves the child with that lock
 * held forever. The job is forked between steps, when kiln runs no thread
 * of its own. */
#include "archive-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_MAX ((size_t)64 << 10)

struct kiln_archive_job {
        pid_t pid;
        int fd; /* the report's read end */
        char *what;
};

/* What the child writes, then its error message (rc < 0). media_type is a
 * static string of this very program, so its address means the same in
 * the parent (a fork, no exec). */
struct job_report {
        int32_t rc;
        int32_t domain, code;
        struct kiln_archive_result res;
        uint64_t ns;
};

static _Noreturn void run_child(const char *upper, const char *what, struct kiln_store *store,
                                const struct kiln_archive_opts *opts, int fd)
{
        /* Nothing of the parent's stays open here: a lock it holds (apt's
         * cache, a step, a blob) is released when the parent closes it, not
         * when this writer ends. */
        if (dup2(fd, 3) < 0)
                _exit(1);
        fd = 3;
        close_range(4, ~0U, 0);
        struct job_report rep = {0};
        struct kiln_err *e = NULL;
        uint64_t t0 = kiln_now_ns();
        int upperfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (upperfd < 0)
                rep.rc = kiln_err_sys(&e, "%s: open %s", what, upper);
        else
                rep.rc = kiln_archive_from_upper(upperfd, what, store, opts, &rep.res, &e);
        rep.ns = kiln_now_ns() - t0;
        if (e) {
                rep.domain = (int32_t)e->domain;
                rep.code = e->code;
        }
        int ok = kiln_write_all(fd, &rep, sizeof(rep)) == 0 &&
                 (!e || kiln_write_all(fd, e->msg, strlen(e->msg)) == 0);
        _exit(ok ? 0 : 1);
}

int kiln_archive_job_start(const char *upper, const char *what, struct kiln_store *store,
                           const struct kiln_archive_opts *opts, struct kiln_archive_job **job,
                           struct kiln_err **err)
{
        *job = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return kiln_err_sys(err, "%s: pipe", what);
        fflush(NULL); /* nothing buffered gets written twice */
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return kiln_err_sys(err, "%s: fork the layer writer", what);
        }
        if (pid == 0) {
                close(p[0]);
                run_child(upper, what, store, opts, p[1]);
        }
        close(p[1]);
        struct kiln_archive_job *j = kiln_xcalloc(1, sizeof(*j));
        j->pid = pid;
        j->fd = p[0];
        j->what = kiln_xstrdup(what);
        *job = j;
        return 0;
}

static int wait_child(pid_t pid, int *status)
{
        while (waitpid(pid, status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return 0;
}

int kiln_archive_job_finish(struct kiln_archive_job *j, struct kiln_archive_result *out,
                            uint64_t *ns, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_buf_ struct kiln_buf b = {0};
        struct kiln_err *rerr = NULL;
        /* read to the end first: the child may block on a full pipe */
        int rrc = kiln_read_fd(j->fd, j->what, REPORT_MAX, &b, &rerr);
        close(j->fd);
        int status = 0;
        int wrc = wait_child(j->pid, &status);
        _cleanup_free_ char *what = j->what;
        free(j);
        if (rrc < 0) {
                kiln_err_prefix(&rerr, "%s: the layer writer's report", what);
                *err = rerr;
                return -1;
        }
        if (wrc < 0)
                return kiln_err_sys(err, "%s: wait for the layer writer", what);
        struct job_report rep;
        if (b.len < sizeof(rep)) {
                if (WIFSIGNALED(status))
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                            "%s: the layer writer was killed by signal %d", what,
                                            WTERMSIG(status));
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "%s: the layer writer exited with status %d and no result",
                                    what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        memcpy(&rep, b.data, sizeof(rep));
        if (ns)
                *ns = rep.ns;
        if (rep.rc < 0)
                return kiln_err_set(err, (enum kiln_err_domain)rep.domain, rep.code, "%.*s",
                                    (int)(b.len - sizeof(rep)), b.data + sizeof(rep));
        *out = rep.res;
        return 0;
}

void kiln_archive_job_abandon(struct kiln_archive_job *j)
{
        if (!j)
                return;
        struct kiln_archive_result r;
        struct kiln_err *e = NULL;
        kiln_archive_job_finish(j, &r, NULL, &e);
        kiln_err_free(e);
}
