/* kiln build --progress tty: what is done scrolls up as lines; under it a
 * live block (the running step with its elapsed time and its program's
 * last lines, one bar per transfer) is redrawn in place with ANSI cursor
 * movement, at most every REDRAW_NS unless a step starts or ends. On a
 * failure the failing step's whole output is printed. The screen's width
 * is asked on every redraw (TIOCGWINSZ): a resized terminal is followed. */
#include "cli.h"
#include "progress-internal.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REDRAW_NS  (100 * 1000000ull)
#define TAIL_LINES 5
#define MAX_BARS   8

struct bar {
        char verb[8];
        char digest[24]; /* "sha256:" and 12 hex digits */
        uint64_t done;
        int64_t total;
        uint64_t elapsed_ns;
};

static struct {
        size_t step;
        char *title; /* "#3 apt: install jq" */
        uint64_t step_start_ns;
        char *tail[TAIL_LINES]; /* the running step's last lines, oldest first */
        struct bar bars[MAX_BARS];
        size_t n_bars;
        struct kiln_buf committed; /* lines to print above the block at the next redraw */
        size_t drawn;              /* lines of the block on screen */
        uint64_t last_draw_ns;
} tty;

static size_t width(void)
{
        struct winsize ws = {0};
        if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}

/* One screen line: cut to the width (a wrapped line would break the count
 * of lines to move up over). Bytes, not cells: a wide character only cuts
 * it shorter. */
static void put_line(struct kiln_buf *b, const char *s, size_t w)
{
        size_t n = strcspn(s, "\n\r\033");
        if (n > w - 1)
                n = w - 1;
        kiln_buf_append(b, s, n);
        kiln_buf_puts(b, "\033[K\n");
}

/* A step's title cut so that its state (suffix) stays on the line. */
static char *titled(const char *title, const char *suffix, size_t w)
{
        size_t room = w - 1 > strlen(suffix) ? w - 1 - strlen(suffix) : 0;
        if (strlen(title) > room)
                return kiln_xasprintf("%.*s...%s", (int)(room > 3 ? room - 3 : 0), title, suffix);
        return kiln_xasprintf("%s%s", title, suffix);
}

static void fmt_bar(const struct bar *r, size_t w, char *out, size_t n)
{
        char done[32], total[32], rate[32], eta[32] = "";
        double secs = (double)r->elapsed_ns / 1e9;
        uint64_t bps = secs > 0.001 ? (uint64_t)((double)r->done / secs) : 0;
        kiln_human_size(r->done, done, sizeof(done));
        kiln_human_size(bps, rate, sizeof(rate));
        if (r->total > 0)
                kiln_human_size((uint64_t)r->total, total, sizeof(total));
        else
                snprintf(total, sizeof(total), "?");
        if (r->total > 0 && bps && (uint64_t)r->total > r->done)
                snprintf(eta, sizeof(eta), "  ETA %llus",
                         (unsigned long long)(((uint64_t)r->total - r->done) / bps + 1));
        /* the bar takes what the text leaves, 10 to 30 cells */
        size_t cells = w > 90 ? 30 : 10;
        size_t fill =
            r->total > 0 ? (size_t)((double)cells * (double)r->done / (double)r->total) : 0;
        if (fill > cells)
                fill = cells;
        char bar[32];
        memset(bar, '=', fill);
        memset(bar + fill, ' ', cells - fill);
        bar[cells] = '\0';
        snprintf(out, n, "%s %s [%s] %s / %s  %s/s%s", r->verb, r->digest, bar, done, total, rate,
                 eta);
}

static void redraw(bool force)
{
        uint64_t now = kiln_now_ns();
        if (!force && now - tty.last_draw_ns < REDRAW_NS)
                return;
        tty.last_draw_ns = now;
        size_t w = width();
        _cleanup_buf_ struct kiln_buf b = {0};
        /* with no block on screen the cursor is at the start of a line:
         * no escapes then, so a line printed next (main's "kiln: error:")
         * starts with its text for whoever reads the stream by lines (the
         * flytekit plugin does) */
        if (tty.drawn)
                kiln_buf_printf(&b, "\033[%zuA\r\033[J", tty.drawn);
        if (tty.committed.len)
                kiln_buf_append(&b, tty.committed.data, tty.committed.len);
        tty.committed.len = 0;
        size_t lines = 0;
        if (tty.title) {
                char state[48];
                snprintf(state, sizeof(state), "  running %.1fs",
                         (double)(now - tty.step_start_ns) / 1e9);
                _cleanup_free_ char *l = titled(tty.title, state, w);
                put_line(&b, l, w);
                lines++;
                for (size_t i = 0; i < TAIL_LINES; i++) {
                        if (!tty.tail[i])
                                continue;
                        _cleanup_free_ char *t = kiln_xasprintf("  | %s", tty.tail[i]);
                        put_line(&b, t, w);
                        lines++;
                }
        }
        for (size_t i = 0; i < tty.n_bars; i++) {
                char l[256];
                fmt_bar(&tty.bars[i], w, l, sizeof(l));
                put_line(&b, l, w);
                lines++;
        }
        tty.drawn = lines;
        if (b.len)
                kiln_write_all(2, b.data, b.len);
}

static void commit(const char *s)
{
        kiln_buf_printf(&tty.committed, "%s\033[K\n", s);
}

static void clear_tail(void)
{
        for (size_t i = 0; i < TAIL_LINES; i++) {
                free(tty.tail[i]);
                tty.tail[i] = NULL;
        }
}

static struct bar *find_bar(const struct kiln_event *ev, bool add)
{
        char d[24];
        snprintf(d, sizeof(d), "%.19s", ev->digest);
        for (size_t i = 0; i < tty.n_bars; i++)
                if (!strcmp(tty.bars[i].digest, d) && !strcmp(tty.bars[i].verb, ev->verb))
                        return &tty.bars[i];
        if (!add || tty.n_bars == MAX_BARS)
                return NULL;
        struct bar *r = &tty.bars[tty.n_bars++];
        memset(r, 0, sizeof(*r));
        snprintf(r->digest, sizeof(r->digest), "%s", d);
        snprintf(r->verb, sizeof(r->verb), "%s", ev->verb);
        return r;
}

/* The transfer's bar with the event's numbers; NULL past MAX_BARS. */
static struct bar *update_bar(const struct kiln_event *ev)
{
        struct bar *r = find_bar(ev, true);
        if (r) {
                r->done = ev->done;
                r->total = ev->total;
                r->elapsed_ns = ev->elapsed_ns;
        }
        return r;
}

static void on_step(const struct kiln_event *ev)
{
        if (ev->kind == KILN_EVENT_STEP_START) {
                _cleanup_free_ char *title =
                    kiln_xasprintf("#%zu %s: %s", ev->step, ev->step_kind, ev->desc);
                if (ev->cached) {
                        _cleanup_free_ char *l = titled(title, "  CACHED", width());
                        commit(l);
                        return;
                }
                free(tty.title);
                tty.title = steal_pointer(&title);
                tty.step = ev->step;
                tty.step_start_ns = kiln_now_ns();
                cli_progress.step_output.len = 0;
                clear_tail();
                return;
        }
        if (ev->cached || !tty.title)
                return;
        double secs = (double)ev->duration_ns / 1e9;
        char state[64];
        if (ev->status == 0)
                snprintf(state, sizeof(state), "  DONE %.1fs", secs);
        else
                snprintf(state, sizeof(state), "  FAILED after %.1fs (status %d)", secs,
                         ev->status);
        _cleanup_free_ char *l = titled(tty.title, state, width());
        commit(l);
        if (ev->status != 0) {
                /* the whole output, not the last lines: the cause is often earlier */
                kiln_buf_append(&tty.committed, cli_progress.step_output.data,
                                cli_progress.step_output.len);
                cli_progress.step_output.len = 0;
        }
        free(tty.title);
        tty.title = NULL;
        clear_tail();
}

static void tty_sink(const struct kiln_event *ev, void *arg)
{
        (void)arg;
        pthread_mutex_lock(&cli_progress.lock);
        cli_progress_count(ev);
        bool force = true;
        switch (ev->kind) {
        case KILN_EVENT_LOG:
                commit(ev->text);
                break;
        case KILN_EVENT_BUILD: {
                _cleanup_free_ char *l =
                    kiln_xasprintf("building %s (%s)", ev->image, ev->platform);
                commit(l);
                break;
        }
        case KILN_EVENT_STEP_START:
        case KILN_EVENT_STEP_END:
                on_step(ev);
                break;
        case KILN_EVENT_OUTPUT:
                cli_progress_keep_output(ev);
                free(tty.tail[0]);
                memmove(tty.tail, tty.tail + 1, (TAIL_LINES - 1) * sizeof(char *));
                tty.tail[TAIL_LINES - 1] = kiln_xstrdup(ev->text);
                force = false;
                break;
        case KILN_EVENT_TRANSFER:
                update_bar(ev);
                force = false;
                break;
        case KILN_EVENT_TRANSFER_END: {
                /* a blob that moved stays on screen as its full bar */
                bool moved = !strcmp(ev->state, "done") || !strcmp(ev->state, "pushed");
                struct bar *r = moved ? update_bar(ev) : find_bar(ev, false);
                if (r && moved) {
                        char l[256];
                        fmt_bar(r, width(), l, sizeof(l));
                        _cleanup_free_ char *s = kiln_xasprintf("%s %s", l, ev->state);
                        commit(s);
                } else {
                        commit(ev->text);
                }
                if (r) {
                        memmove(r, r + 1, (size_t)(tty.bars + tty.n_bars - (r + 1)) * sizeof(*r));
                        tty.n_bars--;
                }
                break;
        }
        }
        redraw(force);
        pthread_mutex_unlock(&cli_progress.lock);
}

void cli_progress_tty_start(void)
{
        kiln_event_set_sink(tty_sink, NULL);
}

void cli_progress_tty_result(const struct kiln_build_result *r, uint64_t total_ms)
{
        pthread_mutex_lock(&cli_progress.lock);
        char pushed[32];
        kiln_human_size(cli_progress.bytes_pushed, pushed, sizeof(pushed));
        _cleanup_free_ char *s = kiln_xasprintf(
            "\nimage:   %s\ndigest:  %s\nlayers:  %zu new, %zu steps cached\npushed:  %s\n"
            "time:    %.1fs",
            r->name.full, r->manifest.digest ? r->manifest.digest : "(none)", r->n_new_layers,
            r->n_cached_steps, pushed, (double)total_ms / 1000);
        commit(s);
        redraw(true);
        pthread_mutex_unlock(&cli_progress.lock);
}

void cli_progress_tty_stop(void)
{
        pthread_mutex_lock(&cli_progress.lock);
        free(tty.title);
        tty.title = NULL;
        clear_tail();
        tty.n_bars = 0;
        bool bare = tty.drawn && !tty.committed.len;
        redraw(true);
        if (bare) /* the erased block left the cursor after escapes */
                kiln_write_all(2, "\n", 1);
        kiln_buf_release(&tty.committed);
        pthread_mutex_unlock(&cli_progress.lock);
}
