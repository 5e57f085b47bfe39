/* Durations as people write them on a command line: "90s", "10m", "1h30m". */
#include "kiln/util.h"

#include <ctype.h>
#include <string.h>

/* A bound far beyond any use, so sums and products cannot overflow. */
#define DURATION_MAX_MS ((uint64_t)100 * 365 * 24 * 3600 * 1000)

static const struct {
        const char *name;
        uint64_t ms;
} units[] = {
    /* "ms" before "m": the longest unit that matches wins */
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000},
};

static int bad_duration(const char *s, const char *why, struct kiln_err **err)
{
        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                            "\"%s\" is not a duration (%s; write e.g. 90s, 10m or 1h30m)", s, why);
}

int kiln_duration_parse(const char *s, uint64_t *ms, struct kiln_err **err)
{
        *ms = 0;
        if (!*s)
                return bad_duration(s, "it is empty", err);
        uint64_t total = 0;
        const char *p = s;
        while (*p) {
                if (!isdigit((unsigned char)*p))
                        return bad_duration(s, "expected a number", err);
                uint64_t n = 0;
                for (; isdigit((unsigned char)*p); p++) {
                        n = n * 10 + (uint64_t)(*p - '0');
                        if (n > DURATION_MAX_MS)
                                return bad_duration(s, "too long", err);
                }
                /* A bare number is seconds, as kiln cache prune --older-than
                 * takes it; only alone, so "1h30" is not quietly 1h0m30s. */
                uint64_t mul = 0;
                if (!*p && p == s + strspn(s, "0123456789")) {
                        mul = 1000;
                } else {
                        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !mul; i++) {
                                size_t l = strlen(units[i].name);
                                if (!strncmp(p, units[i].name, l) &&
                                    !(l == 1 && p[1] && isalpha((unsigned char)p[1]))) {
                                        mul = units[i].ms;
                                        p += l;
                                }
                        }
                }
                if (!mul)
                        return bad_duration(s, "units are ms, s, m, h and d", err);
                if (n > DURATION_MAX_MS / mul || total + n * mul > DURATION_MAX_MS)
                        return bad_duration(s, "too long", err);
                total += n * mul;
        }
        *ms = total;
        return 0;
}

char *kiln_duration_format(uint64_t ms)
{
        if (ms == 0)
                return kiln_xstrdup("0s");
        struct kiln_buf b = {0};
        for (size_t i = sizeof(units) / sizeof(units[0]); i-- > 0;) {
                uint64_t n = ms / units[i].ms;
                if (!n)
                        continue;
                kiln_buf_printf(&b, "%llu%s", (unsigned long long)n, units[i].name);
                ms -= n * units[i].ms;
        }
        return kiln_buf_steal(&b);
}
