/* Runs one function per blob on a few worker threads, each with its own
 * curl handle so its connection stays open from one blob to the next. The
 * first failure cancels the rest and is the one reported. */
#include "client-internal.h"

#include <stdatomic.h>

struct pool {
        size_t n;
        atomic_size_t next;
        registry_item_fn fn;
        void *ctx;
        volatile int *cancel;
        pthread_mutex_t lock;
        struct kiln_err *err;
};

static void *worker(void *arg)
{
        struct pool *p = arg;
        _cleanup_curl_ CURL *h = curl_easy_init();
        for (;;) {
                size_t k = atomic_fetch_add(&p->next, 1);
                if (k >= p->n || *p->cancel)
                        break;
                struct kiln_err *e = NULL;
                if (!h)
                        kiln_err_set(&e, KILN_ERR_INTERNAL, 0, "curl_easy_init failed");
                else if (p->fn(p->ctx, h, k, &e) == 0)
                        continue;
                pthread_mutex_lock(&p->lock);
                /* Keep the first real failure, not the cancellations it caused. */
                if (!p->err)
                        p->err = e;
                else
                        kiln_err_free(e);
                *p->cancel = 1;
                pthread_mutex_unlock(&p->lock);
                break;
        }
        return NULL;
}

int registry_parallel(struct kiln_registry *r, size_t n, registry_item_fn fn, void *ctx,
                      volatile int *cancel, struct kiln_err **err)
{
        if (n == 0)
                return 0;
        struct pool p = {.n = n, .fn = fn, .ctx = ctx, .cancel = cancel};
        pthread_mutex_init(&p.lock, NULL);
        size_t want = (size_t)r->parallel < n ? (size_t)r->parallel : n;
        pthread_t tids[64];
        size_t started = 0;
        while (started < want && started < 64 &&
               pthread_create(&tids[started], NULL, worker, &p) == 0)
                started++;
        if (started == 0)
                worker(&p);
        for (size_t i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        pthread_mutex_destroy(&p.lock);
        if (p.err) {
                *err = p.err;
                return -1;
        }
        return 0;
}
