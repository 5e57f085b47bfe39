/* gzip on every core, as pigz does it: the stream is cut into fixed blocks
 * that are deflated independently (each primed with the 32 KiB before it,
 * so the ratio stays close to one stream's) and ended with a sync flush, so
 * their concatenation is one valid deflate stream in one gzip member. The
 * block size and priming are fixed: the bytes depend on the input and the
 * level only, never on the number of threads, and a layer built on 2 cores
 * has the digest of one built on 64.
 *
 * Memory is bounded: at most 2 blocks per worker are in flight. */
#include "layer-internal.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PGZ_BLOCK  ((size_t)128 << 10)
#define PGZ_DICT   ((size_t)32 << 10)
#define PGZ_MAX_TH 16

enum job_state { JOB_FREE, JOB_FILLING, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct pgz_job {
        enum job_state state;
        bool last;
        unsigned char *in;
        size_t in_len;
        unsigned char *dict;
        size_t dict_len;
        unsigned char *out;
        size_t out_len, out_cap;
        int zerr;
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
        unsigned char prev_tail[PGZ_DICT];
        size_t prev_tail_len;
        z_stream inline_z;
        bool inline_init;
        uLong crc;
        uint64_t isize;
        bool header_done;
        kiln_pgzip_sink sink;
        void *ud;
        int failed; /* a sink or deflate error: everything after is refused */
};

/* One block, raw deflate, primed with the dictionary. */
static int compress_job(z_stream *z, struct pgz_job *j)
{
        if (deflateReset(z) != Z_OK)
                return Z_STREAM_ERROR;
        if (j->dict_len && deflateSetDictionary(z, j->dict, (uInt)j->dict_len) != Z_OK)
                return Z_STREAM_ERROR;
        size_t need = deflateBound(z, (uLong)j->in_len) + 64;
        if (j->out_cap < need) {
                free(j->out);
                j->out = kiln_xmalloc(need);
                j->out_cap = need;
        }
        z->next_in = j->in;
        z->avail_in = (uInt)j->in_len;
        z->next_out = j->out;
        z->avail_out = (uInt)j->out_cap;
        int zr = deflate(z, j->last ? Z_FINISH : Z_SYNC_FLUSH);
        if (zr == Z_STREAM_ERROR || z->avail_in != 0 || (j->last && zr != Z_STREAM_END))
                return Z_BUF_ERROR;
        j->out_len = j->out_cap - z->avail_out;
        return Z_OK;
}

static int z_init(z_stream *z, int level)
{
        memset(z, 0, sizeof(*z));
        return deflateInit2(z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}

static void *worker(void *arg)
{
        struct kiln_pgzip *p = arg;
        z_stream z;
        bool ok = z_init(&z, p->level) == Z_OK;
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
                j->zerr = ok ? compress_job(&z, j) : Z_MEM_ERROR;
                pthread_mutex_lock(&p->mu);
                j->state = JOB_DONE;
                pthread_cond_broadcast(&p->done);
        }
        pthread_mutex_unlock(&p->mu);
        if (ok)
                deflateEnd(&z);
        return NULL;
}

struct kiln_pgzip *kiln_pgzip_new(int level, int threads, kiln_pgzip_sink sink, void *ud)
{
        struct kiln_pgzip *p = kiln_xcalloc(1, sizeof(*p));
        p->level = level < 0 ? Z_DEFAULT_COMPRESSION : level > 9 ? 9 : level;
        p->sink = sink;
        p->ud = ud;
        p->crc = crc32(0, NULL, 0);
        if (threads > PGZ_MAX_TH)
                threads = PGZ_MAX_TH;
        /* one core: the caller's thread compresses, no hand-offs */
        p->n_threads = threads > 1 ? threads : 0;
        p->n_jobs = p->n_threads ? (size_t)p->n_threads * 2 : 1;
        p->jobs = kiln_xcalloc(p->n_jobs, sizeof(*p->jobs));
        for (size_t i = 0; i < p->n_jobs; i++) {
                p->jobs[i].in = kiln_xmalloc(PGZ_BLOCK);
                p->jobs[i].dict = kiln_xmalloc(PGZ_DICT);
        }
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->done, NULL);
        if (!p->n_threads) {
                p->inline_init = z_init(&p->inline_z, p->level) == Z_OK;
        } else {
                int started = 0;
                for (int i = 0; i < p->n_threads; i++)
                        if (pthread_create(&p->threads[i], NULL, worker, p) == 0)
                                started++;
                        else
                                break;
                if (started == 0) { /* no threads to be had: do it inline */
                        p->n_threads = 0;
                        p->inline_init = z_init(&p->inline_z, p->level) == Z_OK;
                } else {
                        p->n_threads = started;
                }
        }
        p->jobs[0].state = JOB_FILLING;
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

static int header(struct kiln_pgzip *p)
{
        if (p->header_done)
                return 0;
        p->header_done = true;
        /* no name, mtime 0, OS unix: the bytes depend on the content only */
        static const unsigned char h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        return emit(p, h, sizeof(h));
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
                if (j->zerr != Z_OK)
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
        j->last = last;
        memcpy(j->dict, p->prev_tail, p->prev_tail_len);
        j->dict_len = p->prev_tail_len;
        p->prev_tail_len = j->in_len < PGZ_DICT ? j->in_len : PGZ_DICT;
        memcpy(p->prev_tail, j->in + j->in_len - p->prev_tail_len, p->prev_tail_len);
        if (!p->n_threads) {
                j->zerr = p->inline_init ? compress_job(&p->inline_z, j) : Z_MEM_ERROR;
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
        next->state = JOB_FILLING;
        next->in_len = 0;
        return 0;
}

int kiln_pgzip_write(struct kiln_pgzip *p, const void *data, size_t n)
{
        if (header(p) < 0)
                return -1;
        const unsigned char *d = data;
        p->crc = crc32_z(p->crc, d, n);
        p->isize += n;
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
        if (header(p) < 0 || submit(p, true) < 0 || drain(p, true, p->filling) < 0)
                return -1;
        unsigned char t[8];
        for (int i = 0; i < 4; i++) {
                t[i] = (unsigned char)(p->crc >> (8 * i));
                t[4 + i] = (unsigned char)((p->isize & 0xffffffffu) >> (8 * i));
        }
        return emit(p, t, sizeof(t));
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
        if (p->inline_init)
                deflateEnd(&p->inline_z);
        for (size_t i = 0; i < p->n_jobs; i++) {
                free(p->jobs[i].in);
                free(p->jobs[i].dict);
                free(p->jobs[i].out);
        }
        free(p->jobs);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
        free(p);
}
