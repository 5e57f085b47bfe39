/* Following a blob while it is written: an unpack that starts with the
 * first bytes of a download instead of after its last.
 *
 * The writer (a download thread) says how far it got; the follower reads
 * the temporary file up to there, then waits. What the follower forwards
 * is not yet checked against the digest: whoever consumes it must also
 * wait for the writer's verdict (kiln_blob_watch_follow returns only once
 * the blob is committed) before trusting the result. */
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)256 << 10)

enum watch_state { W_WAITING, W_WRITING, W_DONE, W_FAILED };

struct kiln_blob_watch {
        pthread_mutex_t m;
        pthread_cond_t c;
        enum watch_state state;
        char *tmp_path;     /* while W_WRITING */
        uint64_t written;   /* bytes in the temporary file */
        uint64_t forwarded; /* bytes the follower passed on */
        bool cancelled;
};

struct kiln_blob_watch *kiln_blob_watch_new(void)
{
        struct kiln_blob_watch *w = kiln_xcalloc(1, sizeof(*w));
        pthread_mutex_init(&w->m, NULL);
        pthread_cond_init(&w->c, NULL);
        return w;
}

void kiln_blob_watch_free(struct kiln_blob_watch *w)
{
        if (!w)
                return;
        pthread_mutex_destroy(&w->m);
        pthread_cond_destroy(&w->c);
        free(w->tmp_path);
        free(w);
}

static void set_state(struct kiln_blob_watch *w, enum watch_state s)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->m);
        /* a verdict is final: the end of a fetch must not undo a failure */
        if (w->state != W_DONE && w->state != W_FAILED)
                w->state = s;
        pthread_cond_broadcast(&w->c);
        pthread_mutex_unlock(&w->m);
}

void kiln_blob_watch_done(struct kiln_blob_watch *w)
{
        set_state(w, W_DONE);
}

void kiln_blob_watch_failed(struct kiln_blob_watch *w)
{
        set_state(w, W_FAILED);
}

void watch_writer_started(struct kiln_blob_watch *w, const char *tmp_path)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->m);
        if (w->state == W_WAITING) {
                free(w->tmp_path);
                w->tmp_path = kiln_xstrdup(tmp_path);
                w->state = W_WRITING;
        }
        pthread_cond_broadcast(&w->c);
        pthread_mutex_unlock(&w->m);
}

void watch_writer_wrote(struct kiln_blob_watch *w, uint64_t size)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->m);
        w->written = size;
        pthread_cond_broadcast(&w->c);
        pthread_mutex_unlock(&w->m);
}

/* A download that starts over: what was passed on cannot be taken back. */
void watch_writer_reset(struct kiln_blob_watch *w)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->m);
        w->written = 0;
        if (w->forwarded > 0 && w->state == W_WRITING)
                w->state = W_FAILED;
        pthread_cond_broadcast(&w->c);
        pthread_mutex_unlock(&w->m);
}

void kiln_blob_watch_cancel(struct kiln_blob_watch *w)
{
        pthread_mutex_lock(&w->m);
        w->cancelled = true;
        pthread_cond_broadcast(&w->c);
        pthread_mutex_unlock(&w->m);
}

static int send_all(int out, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = send(out, p, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Copies [from, to) of fd to out; the mutex is not held. */
static int forward(int fd, uint64_t from, uint64_t to, int out, char *buf)
{
        while (from < to) {
                size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
                ssize_t k = pread(fd, buf, want, (off_t)from);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || send_all(out, buf, (size_t)k) < 0)
                        return -1;
                from += (uint64_t)k;
        }
        return 0;
}

int kiln_blob_watch_follow(struct kiln_blob_watch *w, struct kiln_store *store, const char *digest,
                           int out, bool *restart, struct kiln_err **err)
{
        *restart = false;
        _cleanup_free_ char *buf = kiln_xmalloc(CHUNK);
        _cleanup_close_ int fd = -1;
        uint64_t off = 0;
        pthread_mutex_lock(&w->m);
        for (;;) {
                if (w->cancelled || w->state == W_FAILED) {
                        bool cancelled = w->cancelled;
                        pthread_mutex_unlock(&w->m);
                        *restart = !cancelled;
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "blob %s: %s", digest,
                                            cancelled ? "no longer wanted"
                                                      : "its download failed or started over");
                }
                /* gone: renamed into the store, which W_DONE says next */
                if (fd < 0 && w->state == W_WRITING)
                        fd = open(w->tmp_path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 && w->state == W_DONE) {
                        /* from the store: fetched by another, or renamed meanwhile */
                        pthread_mutex_unlock(&w->m);
                        uint64_t size = 0;
                        if (kiln_store_open_blob(store, digest, &fd, &size, err) < 0)
                                return -1;
                        if (forward(fd, off, size, out, buf) < 0)
                                return kiln_err_sys(err, "blob %s: pass on", digest);
                        return 0;
                }
                uint64_t to = w->written;
                if (fd >= 0 && off < to) {
                        /* said before the bytes go: a reset from here on fails the follow */
                        w->forwarded = to;
                        pthread_mutex_unlock(&w->m);
                        int rc = forward(fd, off, to, out, buf);
                        int e = errno;
                        pthread_mutex_lock(&w->m);
                        if (rc < 0 && !w->cancelled && w->state != W_FAILED) {
                                pthread_mutex_unlock(&w->m);
                                errno = e;
                                return kiln_err_sys(err, "blob %s: pass on", digest);
                        }
                        off = to;
                        continue;
                }
                if (w->state == W_DONE && fd >= 0) {
                        pthread_mutex_unlock(&w->m);
                        return 0; /* every byte written was passed on */
                }
                pthread_cond_wait(&w->c, &w->m);
        }
}
