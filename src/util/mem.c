#include "kiln/util.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static _Noreturn void oom(void)
{
        static const char msg[] = "kiln: out of memory\n";
        ssize_t r = write(2, msg, sizeof(msg) - 1);
        (void)r;
        abort();
}

void *kiln_xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                oom();
        return p;
}

void *kiln_xcalloc(size_t n, size_t m)
{
        void *p = calloc(n ? n : 1, m ? m : 1);
        if (!p)
                oom();
        return p;
}

void *kiln_xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);
        if (!q)
                oom();
        return q;
}

char *kiln_xstrdup(const char *s)
{
        char *p = strdup(s ? s : "");
        if (!p)
                oom();
        return p;
}

char *kiln_xstrndup(const char *s, size_t n)
{
        char *p = strndup(s, n);
        if (!p)
                oom();
        return p;
}

char *kiln_xvasprintf(const char *fmt, va_list ap)
{
        char *p = NULL;
        if (vasprintf(&p, fmt, ap) < 0)
                oom();
        return p;
}

char *kiln_xasprintf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *p = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        return p;
}

void kiln_freep(void *p)
{
        free(*(void **)p);
}

void kiln_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -1;
}

void kiln_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
        *f = NULL;
}

void kiln_closedirp(DIR **d)
{
        if (*d) {
                int saved = errno;
                closedir(*d);
                errno = saved;
        }
        *d = NULL;
}

bool kiln_str_has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool kiln_str_case_prefix(const char *s, const char *prefix)
{
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool kiln_str_has_suffix(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

size_t kiln_strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

const char *kiln_strv_lookup(char *const *v, size_t n, const char *name)
{
        size_t nl = strlen(name);
        for (size_t i = n; i-- > 0;)
                if (!strncmp(v[i], name, nl) && v[i][nl] == '=')
                        return v[i] + nl + 1;
        return NULL;
}

void kiln_strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

void kiln_strv_freep(char ***v)
{
        kiln_strv_free(*v);
        *v = NULL;
}

static void buf_reserve(struct kiln_buf *b, size_t extra)
{
        size_t need = b->len + extra + 1;
        if (need <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap *= 2;
        b->data = kiln_xrealloc(b->data, cap);
        b->cap = cap;
}

void kiln_buf_append(struct kiln_buf *b, const void *p, size_t n)
{
        buf_reserve(b, n);
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

/* Where a URL's authority ends: RFC 3986's delimiters, and what ends a
 * URL in running text (space, quotes, brackets). */
static bool authority_end(char c)
{
        return c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '<' || c == '>' ||
               c == '(' || c == ')' || c == '[' || c == ']' || c == ' ' || c == '\t' || c == '\n' ||
               c == '\r' || c == '\0';
}

void kiln_buf_put_redacted(struct kiln_buf *b, const char *p, size_t n)
{
        size_t done = 0;
        for (size_t i = 0; i + 3 <= n; i++) {
                if (memcmp(p + i, "://", 3))
                        continue;
                size_t host = i + 3, end = host, at = 0;
                while (end < n && !authority_end(p[end])) {
                        if (p[end] == '@')
                                at = end;
                        end++;
                }
                if (!at)
                        continue;
                kiln_buf_append(b, p + done, host - done);
                kiln_buf_puts(b, "***");
                done = at;
                i = end - 1;
        }
        kiln_buf_append(b, p + done, n - done);
}

void kiln_buf_puts(struct kiln_buf *b, const char *s)
{
        kiln_buf_append(b, s, strlen(s));
}

void kiln_buf_printf(struct kiln_buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        kiln_buf_puts(b, s);
}

void kiln_buf_shell_quote(struct kiln_buf *b, const char *s)
{
        kiln_buf_puts(b, "'");
        for (; *s; s++) {
                if (*s == '\'')
                        kiln_buf_puts(b, "'\\''");
                else
                        kiln_buf_append(b, s, 1);
        }
        kiln_buf_puts(b, "'");
}

void kiln_buf_release(struct kiln_buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

void kiln_buf_releasep(struct kiln_buf *b)
{
        kiln_buf_release(b);
}

char *kiln_buf_steal(struct kiln_buf *b)
{
        if (!b->data)
                buf_reserve(b, 0);
        char *p = b->data;
        b->data = NULL;
        b->len = b->cap = 0;
        return p;
}
