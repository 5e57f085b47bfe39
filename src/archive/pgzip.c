/* gzip on every core: the stream is cut into fixed blocks, each
 * compressed on its own into a gzip member of its own by libdeflate (about
 * twice zlib's speed at the same level, for the same ratio), and the
 * members follow one another. RFC 1952 makes a series of members one gzip
 * file: gzip -d, Python's gzip and Go's compress/gzip (docker, containerd,
 * podman, skopeo, umoci) read it whole, as they read eStargz layers, which
 * are built the same way. The block size is fixed: the bytes depend on the
 * input and the level only, never on the number of threads, and a layer
 * built on 2 cores has the digest of one built on 64.
 *
 * Memory is bounded: at most 2 blocks per worker are in flight. */
#include "archive-internal.h"

#include <libdeflate.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define PGZ_BLOCK  ((size_t)256 << 10)
#define PGZ_MAX_TH 16

enum job_state { JOB_FREE, JOB_FILLING, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct pgz_job {
        enum job_state state;
        unsigned char *in;
        size_t in_len;
        unsigned char *out;
        size_t out_len, out_cap;
        bool failed;
};

struct kiln_pgzip {
        int level;
        int n_threads; /* 0: compress in the caller's thread */
        pthread_t threads[PGZ_MAX_TH];
        pthread_mutex_t mu;
        pthread_cond_t work, done;
        bool stop;
        struct pgz_job *jobs;
        size_t n_jobs;
        size_t filling, writing; /* sequence numbers; slot = seq % n_jobs */
        struct libdeflate_compressor *inline_c;
        bool any; /* a member was written */
        kiln_pgzip_sink sink;
        void *ud;
        int failed; /* a sink or deflate error: everything after is refused */
};

/* One block, one gzip member. */
static bool compress_job(struct libdeflate_compressor *c, struct pgz_job *j)
{
        if (!c)
                return false;
        size_t need = libdeflate_gzip_compress_bound(c, j->in_len);
        if (j->out_cap < need) {
                free(j->out);
                j->out = kiln_xmalloc(need);
                j->out_cap = need;
        }
        j->out_len = libdeflate_gzip_compress(c, j->in, j->in_len, j->out, j->out_cap);
        return j->out_len > 0;
}

static void *worker(void *arg)
{
        struct kiln_pgzip *p = arg;
        struct libdeflate_compressor *comp = libdeflate_alloc_compressor(p->level);
        pthread_mutex_lock(&p->mu);
        for (;;) {
                struct pgz_job *j = NULL;
                /* the oldest queued block first: the writer waits on it */
                for (size_t s = p->writing; s < p->filling + 1 && !j; s++) {
                        struct pgz_job *c = &p->jobs[s % p->n_jobs];
                        if (c->state == JOB_QUEUED)
                                j = c;
                }
                if (!j) {
                        if (p->stop)
                                break;
                        pthread_cond_wait(&p->work, &p->mu);
                        continue;
                }
                j->state = JOB_RUNNING;
                pthread_mutex_unlock(&p->mu);
                j->failed = !compress_job(comp, j);
                pthread_mutex_lock(&p->mu);
                j->state = JOB_DONE;
                pthread_cond_broadcast(&p->done);
        }
        pthread_mutex_unlock(&p->mu);
        libdeflate_free_compressor(comp);
        return NULL;
}

struct kiln_pgzip *kiln_pgzip_new(int level, int threads, kiln_pgzip_sink sink, void *ud)
{
        struct kiln_pgzip *p = kiln_xcalloc(1, sizeof(*p));
        /* gzip's own scale: 6 by default, 9 at most */
        p->level = level < 0 ? 6 : level > 9 ? 9 : level;
        p->sink = sink;
        p->ud = ud;
        if (threads > PGZ_MAX_TH)
                threads = PGZ_MAX_TH;
        /* one core: the caller's thread compresses, no hand-offs */
        p->n_threads = threads > 1 ? threads : 0;
        p->n_jobs = p->n_threads ? (size_t)p->n_threads * 2 : 1;
        p->jobs = kiln_xcalloc(p->n_jobs, sizeof(*p->jobs));
        for (size_t i = 0; i < p->n_jobs; i++)
                p->jobs[i].in = kiln_xmalloc(PGZ_BLOCK);
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->done, NULL);
        p->jobs[0].state = JOB_FILLING; /* before any worker looks */
        if (!p->n_threads) {
                p->inline_c = libdeflate_alloc_compressor(p->level);
        } else {
                int started = 0;
                for (int i = 0; i < p->n_threads; i++)
                        if (pthread_create(&p->threads[i], NULL, worker, p) == 0)
                                started++;
                        else
                                break;
                if (started == 0) { /* no threads to be had: do it inline */
                        p->n_threads = 0;
                        p->inline_c = libdeflate_alloc_compressor(p->level);
                } else {
                        p->n_threads = started;
                }
        }
        return p;
}

static int emit(struct kiln_pgzip *p, const void *d, size_t n)
{
        if (p->failed)
                return -1;
        if (n && p->sink(p->ud, d, n) < 0)
                p->failed = 1;
        return p->failed ? -1 : 0;
}

/* Writes finished blocks in order. With upto, waits until every block
 * before that sequence number is written; without, writes what is ready. */
static int drain(struct kiln_pgzip *p, bool wait, size_t upto)
{
        for (;;) {
                pthread_mutex_lock(&p->mu);
                struct pgz_job *j = &p->jobs[p->writing % p->n_jobs];
                bool want = p->writing < p->filling && (!wait || p->writing < upto);
                while (want && wait && j->state != JOB_DONE)
                        pthread_cond_wait(&p->done, &p->mu);
                bool ready = want && j->state == JOB_DONE;
                pthread_mutex_unlock(&p->mu);
                if (!ready)
                        return p->failed ? -1 : 0;
                if (j->failed)
                        p->failed = 1;
                if (emit(p, j->out, j->out_len) < 0)
                        return -1;
                pthread_mutex_lock(&p->mu);
                j->state = JOB_FREE;
                p->writing++;
                pthread_mutex_unlock(&p->mu);
        }
}

/* Hands the filling block to the workers (or compresses it here) and
 * starts the next one. Only the last block may be short. */
static int submit(struct kiln_pgzip *p, bool last)
{
        struct pgz_job *j = &p->jobs[p->filling % p->n_jobs];
        /* an empty last block adds nothing, unless the stream is empty:
         * gzip of nothing is still one member */
        if (last && j->in_len == 0 && p->any)
                return 0;
        p->any = true;
        if (!p->n_threads) {
                j->failed = !compress_job(p->inline_c, j);
                j->state = JOB_DONE;
                p->filling++;
        } else {
                pthread_mutex_lock(&p->mu);
                j->state = JOB_QUEUED;
                p->filling++;
                pthread_cond_signal(&p->work);
                pthread_mutex_unlock(&p->mu);
        }
        if (drain(p, false, 0) < 0)
                return -1;
        if (last)
                return 0;
        /* the next slot is written out before it is filled again */
        if (p->filling >= p->n_jobs && drain(p, true, p->filling - p->n_jobs + 1) < 0)
                return -1;
        struct pgz_job *next = &p->jobs[p->filling % p->n_jobs];
        pthread_mutex_lock(&p->mu);
        next->state = JOB_FILLING;
        pthread_mutex_unlock(&p->mu);
        next->in_len = 0;
        return 0;
}

int kiln_pgzip_write(struct kiln_pgzip *p, const void *data, size_t n)
{
        if (p->failed)
                return -1;
        const unsigned char *d = data;
        while (n > 0) {
                struct pgz_job *j = &p->jobs[p->filling % p->n_jobs];
                size_t room = PGZ_BLOCK - j->in_len;
                size_t take = n < room ? n : room;
                memcpy(j->in + j->in_len, d, take);
                j->in_len += take;
                d += take;
                n -= take;
                if (j->in_len == PGZ_BLOCK && submit(p, false) < 0)
                        return -1;
        }
        return 0;
}

int kiln_pgzip_finish(struct kiln_pgzip *p)
{
        if (submit(p, true) < 0 || drain(p, true, p->filling) < 0)
                return -1;
        return p->failed ? -1 : 0;
}

void kiln_pgzip_free(struct kiln_pgzip *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        libdeflate_free_compressor(p->inline_c);
        for (size_t i = 0; i < p->n_jobs; i++) {
                free(p->jobs[i].in);
                free(p->jobs[i].out);
        }
        free(p->jobs);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
        free(p);
}
