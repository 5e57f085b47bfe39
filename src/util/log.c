#include "kiln/util.h"

#include <sched.h>
#include <string.h>
#include <time.h>

static enum kiln_log_level level = KILN_LOG_INFO;
static char *line_prefix;
static kiln_event_fn sink;
static void *sink_arg;

void kiln_event_set_sink(kiln_event_fn fn, void *arg)
{
        sink = fn;
        sink_arg = arg;
}

bool kiln_event_has_sink(void)
{
        return sink != NULL;
}

void kiln_event_emit(const struct kiln_event *ev)
{
        if (sink)
                sink(ev, sink_arg);
        else if (ev->text)
                kiln_info("%s", ev->text);
}

void kiln_event_output(const char *label, const char *text, size_t n)
{
        if (sink) {
                _cleanup_free_ char *t = kiln_xstrndup(text, n);
                sink(&(struct kiln_event){.kind = KILN_EVENT_OUTPUT, .label = label, .text = t},
                     sink_arg);
                return;
        }
        _cleanup_free_ char *line = kiln_xasprintf("%s%.*s\n", label, (int)n, text);
        kiln_write_all(2, line, strlen(line)); /* one write per line */
}

void kiln_log_set_prefix(const char *prefix)
{
        free(line_prefix);
        line_prefix = prefix && *prefix ? kiln_xstrdup(prefix) : NULL;
}

const char *kiln_log_prefix(void)
{
        return line_prefix ? line_prefix : "";
}

void kiln_log_set_level(enum kiln_log_level l)
{
        level = l;
}

enum kiln_log_level kiln_log_get_level(void)
{
        return level;
}

static void vlog(const char *lvl, const char *prefix, const char *fmt, va_list ap)
{
        /* One write per line so concurrent workers never interleave mid-line. */
        _cleanup_free_ char *line = kiln_xvasprintf(fmt, ap);
        if (sink) {
                _cleanup_free_ char *text =
                    kiln_xasprintf("%s%s%s", kiln_log_prefix(), prefix, line);
                sink(&(struct kiln_event){.kind = KILN_EVENT_LOG, .text = text, .level = lvl},
                     sink_arg);
                return;
        }
        _cleanup_free_ char *full = kiln_xasprintf("%s%s%s\n", kiln_log_prefix(), prefix, line);
        fputs(full, stderr);
        fflush(stderr);
}

void kiln_info(const char *fmt, ...)
{
        if (level < KILN_LOG_INFO)
                return;
        va_list ap;
        va_start(ap, fmt);
        vlog("info", "", fmt, ap);
        va_end(ap);
}

void kiln_warn(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog("warning", "kiln: warning: ", fmt, ap);
        va_end(ap);
}

void kiln_debug(const char *fmt, ...)
{
        if (level < KILN_LOG_DEBUG)
                return;
        va_list ap;
        va_start(ap, fmt);
        vlog("debug", "kiln: debug: ", fmt, ap);
        va_end(ap);
}

const char *kiln_human_size(uint64_t bytes, char *buf, size_t n)
{
        static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)bytes;
        unsigned u = 0;
        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, n, "%llu B", (unsigned long long)bytes);
        else
                snprintf(buf, n, "%.1f %s", v, units[u]);
        return buf;
}

uint64_t kiln_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kiln_cpu_count(void)
{
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0) {
                int n = CPU_COUNT(&set);
                if (n > 0)
                        return n;
        }
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
}
