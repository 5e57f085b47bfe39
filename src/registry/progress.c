/* Transfer progress: a live block of per-blob lines on a terminal, one line
 * per finished blob otherwise (CI logs), nothing with -q. With an event
 * sink (kiln build --progress) it draws nothing itself: it reports each
 * blob's progress (at most every REDRAW_NS per blob) and its end. */
#include "kiln/registry.h"

#include <pthread.h>
#include <string.h>

#define REDRAW_NS (100 * 1000000ull)

struct slot {
        char label[24]; /* "sha256:0123456789ab" */
        int64_t total;
        uint64_t done;
        uint64_t start_ns;
        uint64_t end_ns;
        uint64_t emit_ns;  /* last event sent */
        const char *state; /* NULL while running */
        char digest[80];
};

struct kiln_progress {
        pthread_mutex_t lock;
        char *verb;
        bool quiet;
        bool tty;
        struct slot *slots;
        size_t n;
        size_t drawn; /* lines of the block currently on screen */
        uint64_t last_draw_ns;
};

struct kiln_progress *kiln_progress_new(const char *verb, bool quiet)
{
        struct kiln_progress *p = kiln_xcalloc(1, sizeof(*p));
        pthread_mutex_init(&p->lock, NULL);
        p->verb = kiln_xstrdup(verb);
        p->quiet = quiet || kiln_log_get_level() == KILN_LOG_QUIET;
        const char *term = getenv("TERM");
        p->tty = isatty(2) && !(term && !strcmp(term, "dumb"));
        return p;
}

static void format_line(const struct slot *s, const char *verb, uint64_t now, char *out, size_t n)
{
        char done[32], total[32], rate[32];
        uint64_t end = s->end_ns ? s->end_ns : now;
        double secs = (double)(end - s->start_ns) / 1e9;
        kiln_human_size(s->done, done, sizeof(done));
        if (s->total >= 0)
                kiln_human_size((uint64_t)s->total, total, sizeof(total));
        else
                snprintf(total, sizeof(total), "?");
        kiln_human_size(secs > 0.001 ? (uint64_t)((double)s->done / secs) : 0, rate, sizeof(rate));
        if (s->state && !strcmp(s->state, "cached"))
                snprintf(out, n, "%s %s: already in the cache (%s)", verb, s->label, total);
        else if (s->state)
                snprintf(out, n, "%s %s: %s %s in %.1f s (%s/s)", verb, s->label, s->state, done,
                         secs, rate);
        else
                snprintf(out, n, "%s %s: %s / %s  %s/s", verb, s->label, done, total, rate);
}

static void redraw_locked(struct kiln_progress *p)
{
        struct kiln_buf b = {0};
        uint64_t now = kiln_now_ns();
        if (p->drawn)
                kiln_buf_printf(&b, "\033[%zuA", p->drawn);
        for (size_t i = 0; i < p->n; i++) {
                char line[160];
                format_line(&p->slots[i], p->verb, now, line, sizeof(line));
                kiln_buf_printf(&b, "\r\033[2K%s\n", line);
        }
        p->drawn = p->n;
        p->last_draw_ns = now;
        if (b.len)
                fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        kiln_buf_release(&b);
}

int kiln_progress_add(struct kiln_progress *p, const char *label, int64_t total)
{
        if (!p)
                return -1;
        pthread_mutex_lock(&p->lock);
        p->slots = kiln_xrealloc(p->slots, (p->n + 1) * sizeof(*p->slots));
        struct slot *s = &p->slots[p->n];
        memset(s, 0, sizeof(*s));
        /* "sha256:" plus 12 hex digits identifies a blob to a human. */
        snprintf(s->label, sizeof(s->label), "%.19s", label);
        snprintf(s->digest, sizeof(s->digest), "%s", label);
        s->total = total;
        s->start_ns = kiln_now_ns();
        int slot = (int)p->n++;
        pthread_mutex_unlock(&p->lock);
        return slot;
}

static void emit(const struct kiln_progress *p, const struct slot *s, uint64_t now)
{
        char text[160];
        format_line(s, p->verb, now, text, sizeof(text));
        kiln_event_emit(&(struct kiln_event){
            .kind = s->state ? KILN_EVENT_TRANSFER_END : KILN_EVENT_TRANSFER,
            .text = text,
            .verb = p->verb,
            .digest = s->digest,
            .state = s->state,
            .done = s->done,
            .total = s->total,
            .elapsed_ns = now - s->start_ns,
        });
}

void kiln_progress_update(struct kiln_progress *p, int slot, uint64_t done)
{
        if (!p || slot < 0)
                return;
        pthread_mutex_lock(&p->lock);
        struct slot *s = &p->slots[slot];
        s->done = done;
        uint64_t now = kiln_now_ns();
        if (!p->quiet && kiln_event_has_sink() && now - s->emit_ns > REDRAW_NS) {
                s->emit_ns = now;
                emit(p, s, now);
        } else if (!p->quiet && !kiln_event_has_sink() && p->tty &&
                   now - p->last_draw_ns > REDRAW_NS)
                redraw_locked(p);
        pthread_mutex_unlock(&p->lock);
}

void kiln_progress_finish(struct kiln_progress *p, int slot, const char *state)
{
        if (!p || slot < 0)
                return;
        pthread_mutex_lock(&p->lock);
        struct slot *s = &p->slots[slot];
        s->state = state;
        s->end_ns = kiln_now_ns();
        if (!p->quiet) {
                if (kiln_event_has_sink()) {
                        emit(p, s, s->end_ns);
                } else if (p->tty) {
                        redraw_locked(p);
                } else {
                        char line[160];
                        format_line(s, p->verb, s->end_ns, line, sizeof(line));
                        kiln_info("%s", line);
                }
        }
        pthread_mutex_unlock(&p->lock);
}

void kiln_progress_free(struct kiln_progress *p)
{
        if (!p)
                return;
        pthread_mutex_destroy(&p->lock);
        free(p->slots);
        free(p->verb);
        free(p);
}

void kiln_progress_freep(struct kiln_progress **p)
{
        kiln_progress_free(*p);
        *p = NULL;
}
