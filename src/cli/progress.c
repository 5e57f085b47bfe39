/* kiln build --progress and -q: sinks for the build's events (kiln/util.h).
 *
 * Without a sink kiln prints what it always printed; that is what auto
 * gives when stderr is not a terminal, so scripts, CI logs and the tests
 * that read those lines see them unchanged. plain prefixes the lines of a
 * step with its number and closes each step with its time; json writes one
 * object per line; -q keeps everything back but warnings and, on failure,
 * the failing step's output. All of it goes to stderr: stdout keeps the
 * result (--json), and the flytekit plugin already reads stderr. */
#include "cli.h"
#include "progress-internal.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Kept of a running step's output for its failure: the last 4 MiB. */
#define STEP_OUTPUT_MAX (4u << 20)

struct cli_progress cli_progress;

static void write_line(const char *s, size_t n)
{
        kiln_write_all(2, s, n);
}

void cli_progress_keep_output(const struct kiln_event *ev)
{
        struct kiln_buf *b = &cli_progress.step_output;
        if (b->len > STEP_OUTPUT_MAX) {
                /* drop the oldest half, at a line boundary */
                const char *cut = memchr(b->data + b->len / 2, '\n', b->len - b->len / 2);
                size_t drop = cut ? (size_t)(cut + 1 - b->data) : b->len;
                memmove(b->data, b->data + drop, b->len - drop);
                b->len -= drop;
                b->data[b->len] = '\0';
        }
        kiln_buf_printf(b, "%s%s\n", ev->label ? ev->label : "", ev->text);
}

/* The failing step's whole output (as far as kept), then forgotten. */
void cli_progress_flush_output(void)
{
        struct kiln_buf *b = &cli_progress.step_output;
        if (b->len)
                write_line(b->data, b->len);
        b->len = 0;
}

/* ---------- -q ---------- */

static void quiet_sink(const struct kiln_event *ev, void *arg)
{
        (void)arg;
        pthread_mutex_lock(&cli_progress.lock);
        if (ev->kind == KILN_EVENT_OUTPUT) {
                cli_progress_keep_output(ev);
        } else if (ev->kind == KILN_EVENT_STEP_START) {
                cli_progress.step_output.len = 0;
        } else if (ev->kind == KILN_EVENT_STEP_END && ev->status != 0) {
                cli_progress_flush_output();
        } else if (ev->kind == KILN_EVENT_LOG && !strcmp(ev->level, "warning")) {
                _cleanup_free_ char *line = kiln_xasprintf("%s\n", ev->text);
                write_line(line, strlen(line));
        }
        pthread_mutex_unlock(&cli_progress.lock);
}

/* ---------- plain ---------- */

static void plain_sink(const struct kiln_event *ev, void *arg)
{
        (void)arg;
        pthread_mutex_lock(&cli_progress.lock);
        _cleanup_free_ char *line = NULL;
        size_t step = cli_progress.step;
        switch (ev->kind) {
        case KILN_EVENT_STEP_START:
                cli_progress.step = ev->step;
                line = kiln_xasprintf("#%zu %s%s\n", ev->step, kiln_log_prefix(), ev->text);
                break;
        case KILN_EVENT_STEP_END:
                cli_progress.step = 0;
                if (ev->cached)
                        break;
                if (ev->status == 0)
                        line = kiln_xasprintf("#%zu %sdone in %.1f s\n", ev->step,
                                              kiln_log_prefix(), (double)ev->duration_ns / 1e9);
                else
                        line = kiln_xasprintf("#%zu %sfailed after %.1f s (status %d)\n", ev->step,
                                              kiln_log_prefix(), (double)ev->duration_ns / 1e9,
                                              ev->status);
                break;
        case KILN_EVENT_OUTPUT:
                line = step ? kiln_xasprintf("#%zu %s%s\n", step, ev->label, ev->text)
                            : kiln_xasprintf("%s%s\n", ev->label, ev->text);
                break;
        case KILN_EVENT_LOG:
        case KILN_EVENT_TRANSFER_END:
                line = step ? kiln_xasprintf("#%zu %s\n", step, ev->text)
                            : kiln_xasprintf("%s\n", ev->text);
                break;
        case KILN_EVENT_BUILD:
        case KILN_EVENT_TRANSFER:
                break;
        }
        if (line)
                write_line(line, strlen(line));
        pthread_mutex_unlock(&cli_progress.lock);
}

/* ---------- json ---------- */

static void json_write(json_t *o)
{
        /* the build's label when several run side by side ("a.yaml: ") */
        const char *pfx = kiln_log_prefix();
        size_t n = strlen(pfx);
        if (n > 2 && !strcmp(pfx + n - 2, ": "))
                json_object_set_new(o, "build", json_stringn(pfx, n - 2));
        json_object_set_new(
            o, "time_ms",
            json_integer((json_int_t)((kiln_now_ns() - cli_progress.start_ns) / 1000000)));
        _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
                return;
        _cleanup_free_ char *line = kiln_xasprintf("%s\n", s);
        write_line(line, strlen(line));
}

static void set_str(json_t *o, const char *k, const char *v)
{
        if (v)
                json_object_set_new(o, k, json_string(v));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
        json_object_set_new(o, k, json_integer((json_int_t)v));
}

static json_t *json_event(const struct kiln_event *ev)
{
        static const char *const names[] = {
            [KILN_EVENT_LOG] = "log",
            [KILN_EVENT_OUTPUT] = "output",
            [KILN_EVENT_BUILD] = "build",
            [KILN_EVENT_STEP_START] = "step_start",
            [KILN_EVENT_STEP_END] = "step_end",
            [KILN_EVENT_TRANSFER] = "transfer",
            [KILN_EVENT_TRANSFER_END] = "transfer_end",
        };
        json_t *o = json_object();
        set_str(o, "event", names[ev->kind]);
        switch (ev->kind) {
        case KILN_EVENT_LOG:
                set_str(o, "level", ev->level);
                set_str(o, "message", ev->text);
                break;
        case KILN_EVENT_OUTPUT:
                if (cli_progress.step)
                        set_int(o, "step", (int64_t)cli_progress.step);
                set_str(o, "kind", cli_progress.step_kind);
                set_str(o, "line", ev->text);
                break;
        case KILN_EVENT_BUILD:
                set_str(o, "image", ev->image);
                set_str(o, "platform", ev->platform);
                break;
        case KILN_EVENT_STEP_START:
        case KILN_EVENT_STEP_END:
                set_int(o, "step", (int64_t)ev->step);
                set_str(o, "kind", ev->step_kind);
                if (ev->kind == KILN_EVENT_STEP_START)
                        set_str(o, "description", ev->desc);
                set_str(o, "key", ev->key);
                json_object_set_new(o, "cached", json_boolean(ev->cached));
                set_str(o, "cached_in", ev->cached_in);
                if (ev->kind == KILN_EVENT_STEP_START)
                        break;
                set_int(o, "duration_ms", (int64_t)(ev->duration_ns / 1000000));
                set_int(o, "status", ev->status);
                set_str(o, "error", ev->error);
                break;
        case KILN_EVENT_TRANSFER:
        case KILN_EVENT_TRANSFER_END: {
                set_str(o, "verb", ev->verb);
                set_str(o, "digest", ev->digest);
                set_str(o, "state", ev->state);
                set_int(o, "bytes", (int64_t)ev->done);
                set_int(o, "total", ev->total);
                double secs = (double)ev->elapsed_ns / 1e9;
                set_int(o, "rate", secs > 0.001 ? (int64_t)((double)ev->done / secs) : 0);
                set_int(o, "duration_ms", (int64_t)(ev->elapsed_ns / 1000000));
                break;
        }
        }
        return o;
}

void cli_progress_count(const struct kiln_event *ev)
{
        if (ev->kind == KILN_EVENT_TRANSFER_END && !strcmp(ev->verb, "push") && ev->state &&
            !strcmp(ev->state, "pushed"))
                cli_progress.bytes_pushed += ev->done;
}

static void json_sink(const struct kiln_event *ev, void *arg)
{
        (void)arg;
        pthread_mutex_lock(&cli_progress.lock);
        cli_progress_count(ev);
        if (ev->kind == KILN_EVENT_STEP_START) {
                cli_progress.step = ev->cached ? 0 : ev->step;
                free(cli_progress.step_kind);
                cli_progress.step_kind = kiln_xstrdup(ev->step_kind);
        } else if (ev->kind == KILN_EVENT_STEP_END) {
                cli_progress.step = 0;
        }
        json_write(json_event(ev));
        pthread_mutex_unlock(&cli_progress.lock);
}

/* ---------- choosing and ending ---------- */

int cli_progress_parse(const char *arg, enum cli_progress_mode *mode, struct kiln_err **err)
{
        static const char *const names[] = {"auto", "tty", "plain", "json"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (!strcmp(arg, names[i])) {
                        *mode = (enum cli_progress_mode)i;
                        return 0;
                }
        return kiln_err_set(err, KILN_ERR_USAGE, 0, "--progress %s: want auto, tty, plain or json",
                            arg);
}

static bool terminal(void)
{
        const char *term = getenv("TERM");
        return isatty(2) && term && *term && strcmp(term, "dumb") != 0;
}

void cli_progress_start(enum cli_progress_mode mode, bool quiet, bool several)
{
        pthread_mutex_init(&cli_progress.lock, NULL);
        cli_progress.start_ns = kiln_now_ns();
        /* side by side builds would redraw over each other: tty is one build's */
        if (mode == CLI_PROGRESS_TTY && (!terminal() || several))
                mode = CLI_PROGRESS_PLAIN;
        if (mode == CLI_PROGRESS_AUTO)
                mode = terminal() && !several ? CLI_PROGRESS_TTY : CLI_PROGRESS_AUTO;
        cli_progress.mode = quiet ? CLI_PROGRESS_AUTO : mode;
        if (quiet)
                kiln_event_set_sink(quiet_sink, NULL);
        else if (mode == CLI_PROGRESS_PLAIN)
                kiln_event_set_sink(plain_sink, NULL);
        else if (mode == CLI_PROGRESS_JSON)
                kiln_event_set_sink(json_sink, NULL);
        else if (mode == CLI_PROGRESS_TTY)
                cli_progress_tty_start();
}

void cli_progress_result(const struct kiln_build_result *r)
{
        uint64_t total_ms = (kiln_now_ns() - cli_progress.start_ns) / 1000000;
        if (cli_progress.mode == CLI_PROGRESS_TTY) {
                cli_progress_tty_result(r, total_ms);
                return;
        }
        if (cli_progress.mode != CLI_PROGRESS_JSON)
                return;
        json_t *o = json_object();
        set_str(o, "event", "result");
        set_str(o, "image", r->name.full);
        set_str(o, "digest", r->manifest.digest);
        json_object_set_new(o, "skipped", json_boolean(r->skipped));
        set_int(o, "new_layers", (int64_t)r->n_new_layers);
        set_int(o, "cached_steps", (int64_t)r->n_cached_steps);
        set_int(o, "bytes_pushed", (int64_t)cli_progress.bytes_pushed);
        set_int(o, "total_ms", (int64_t)total_ms);
        pthread_mutex_lock(&cli_progress.lock);
        json_write(o);
        pthread_mutex_unlock(&cli_progress.lock);
}

void cli_print_error(const struct kiln_err *err)
{
        const char *msg = err ? err->msg : "unknown failure";
        if (cli_progress.mode == CLI_PROGRESS_TTY)
                cli_progress_tty_stop();
        if (cli_progress.mode != CLI_PROGRESS_JSON) {
                fprintf(stderr, "kiln: error: %s\n", msg);
                return;
        }
        json_t *o = json_object();
        set_str(o, "event", "error");
        set_str(o, "message", msg);
        set_int(o, "exit_code", err ? kiln_err_exit_code(err) : 1);
        json_write(o);
}

void cli_progress_stop(void)
{
        if (cli_progress.mode == CLI_PROGRESS_TTY)
                cli_progress_tty_stop();
        kiln_event_set_sink(NULL, NULL);
        kiln_buf_release(&cli_progress.step_output);
        free(cli_progress.step_kind);
        cli_progress.step_kind = NULL;
}
