/* .dockerignore patterns as moby's ignorefile and patternmatcher read them
 * (Go's filepath.Clean and filepath.Match syntax, `**`, `!` exceptions),
 * compiled to the pattern language of ignore.c. */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <stdint.h>
#include <string.h>

static bool go_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* strings.TrimSpace (ASCII white space only). */
static char *go_trim(char *s)
{
        while (go_space(*s))
                s++;
        size_t n = strlen(s);
        while (n && go_space(s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* Go's filepath.Clean on Unix: the shortest equivalent path ("." if empty). */
static char *go_clean(const char *s)
{
        size_t n = strlen(s);
        if (!n)
                return kiln_xstrdup(".");
        bool rooted = s[0] == '/';
        char *out = kiln_xmalloc(n + 2);
        size_t w = 0, r = 0, dotdot = 0;
        if (rooted) {
                out[w++] = '/';
                r = 1;
                dotdot = 1;
        }
        while (r < n) {
                if (s[r] == '/') {
                        r++;
                } else if (s[r] == '.' && (r + 1 == n || s[r + 1] == '/')) {
                        r++;
                } else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == n || s[r + 2] == '/')) {
                        r += 2;
                        if (w > dotdot) {
                                w--;
                                while (w > dotdot && out[w] != '/')
                                        w--;
                        } else if (!rooted) {
                                if (w > 0)
                                        out[w++] = '/';
                                out[w++] = '.';
                                out[w++] = '.';
                                dotdot = w;
                        }
                } else {
                        if ((rooted && w != 1) || (!rooted && w != 0))
                                out[w++] = '/';
                        while (r < n && s[r] != '/')
                                out[w++] = s[r++];
                }
        }
        if (!w)
                out[w++] = '.';
        out[w] = '\0';
        return out;
}

/* filepath.Match's syntax rules for a class's characters: a '-' or ']'
 * where a character is due, a trailing '\', or invalid UTF-8 is an error. */
static const char *go_class_char(const char *s, uint32_t *r)
{
        if (!*s || *s == '-' || *s == ']')
                return NULL;
        if (*s == '\\' && !*++s)
                return NULL;
        size_t len;
        *r = kiln_ignore_next_rune((const unsigned char *)s, strlen(s), &len);
        if (*r & 0x80000000u)
                return NULL;
        return s + len;
}

/* A class at s ('['), checked as filepath.Match checks it (and, for
 * reversed ranges, as Go's regexp compiler that moby hands it to does).
 * Inside the class `*` and `?` are plain characters, as in filepath.Match
 * (moby's regexp translation mangles them). */
static const char *docker_class(struct prog *p, const char *s)
{
        kiln_ignore_prog_push(p, T_CLASS, 0);
        struct tok *t = &p->t[p->n - 1];
        t->cls = (uint32_t)p->nitems;
        s++;
        if (*s == '^') {
                t->neg = true;
                s++;
        }
        for (size_t nrange = 0;; nrange++) {
                if (*s == ']' && nrange > 0)
                        return s + 1;
                uint32_t lo, hi;
                if (!(s = go_class_char(s, &lo)))
                        return NULL;
                hi = lo;
                if (*s == '-' && !(s = go_class_char(s + 1, &hi)))
                        return NULL;
                if (hi < lo)
                        return NULL;
                kiln_ignore_prog_item(p, lo, hi, 0);
        }
}

static bool utf8_valid(const char *s)
{
        size_t n = strlen(s);
        for (size_t i = 0, len; i < n; i += len)
                if (kiln_ignore_next_rune((const unsigned char *)s + i, n - i, &len) & 0x80000000u)
                        return false;
        return true;
}

/* Compiles a cleaned pattern as moby's Pattern.compile classifies and
 * translates it: `*` any run without '/', `?` one rune but '/', `**`
 * followed by '/' or more pattern T_OPTDIRS, a trailing `**` anything; a
 * pattern that is only literals after a leading `**` matches by suffix
 * ("**" "foo" matches "xfoo"). */
static int docker_compile(struct prog *p, const char *pattern, struct kiln_err **err)
{
        enum { EXACT, PREFIX, SUFFIX, REGEX } type = EXACT;
        bool lead_no_slash = false;
        const char *s = pattern;
        for (bool first = true; *s; first = false) {
                if (s[0] == '*' && s[1] == '*') {
                        s += 2;
                        bool slash = *s == '/';
                        if (slash)
                                s++;
                        if (!*s) {
                                kiln_ignore_prog_push(p, T_ANYSTR, 0);
                                type = type == EXACT ? PREFIX : REGEX;
                        } else {
                                kiln_ignore_prog_push(p, T_OPTDIRS, 0);
                                type = REGEX;
                        }
                        if (first) {
                                type = SUFFIX;
                                lead_no_slash = !slash && *s;
                        }
                } else if (*s == '*' || *s == '?') {
                        kiln_ignore_prog_push(p, *s == '*' ? T_STAR : T_ANY1, 0);
                        type = REGEX;
                        s++;
                } else if (*s == '\\') {
                        if (!s[1]) /* filepath.Match refuses it */
                                return kiln_err_set(err, KILN_ERR_SPEC, 0, "a trailing '\\'");
                        size_t len;
                        kiln_ignore_prog_push(p, T_LIT,
                                              kiln_ignore_next_rune((const unsigned char *)s + 1,
                                                                    strlen(s + 1), &len));
                        type = REGEX;
                        s += 1 + len;
                } else if (*s == '[') {
                        if (!(s = docker_class(p, s)))
                                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                                    "a malformed [...] class");
                        type = REGEX;
                } else {
                        size_t len;
                        kiln_ignore_prog_push(
                            p, T_LIT,
                            kiln_ignore_next_rune((const unsigned char *)s, strlen(s), &len));
                        if (*s == ']')
                                type = REGEX;
                        s += len;
                }
        }
        if (type == REGEX && !utf8_valid(pattern))
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid UTF-8");
        /* "**foo": strings.HasSuffix(path, "foo") */
        if (type == SUFFIX && lead_no_slash)
                p->t[0].kind = T_ANYSTR;
        kiln_ignore_prog_finish(p);
        return 0;
}

/* One line of a .dockerignore, through moby's ignorefile.ReadAll and then
 * patternmatcher.New. */
int kiln_ignore_docker_add_line(struct kiln_ignore *ig, char *line, const char *origin,
                                unsigned lineno, struct kiln_err **err)
{
        if (line[0] == '#')
                return 0;
        char *p = go_trim(line);
        if (!*p)
                return 0;
        bool invert = *p == '!';
        if (invert)
                p = go_trim(p + 1);
        _cleanup_free_ char *read = NULL;
        if (*p) {
                _cleanup_free_ char *c = go_clean(p);
                const char *q = c[0] == '/' && c[1] ? c + 1 : c;
                read = kiln_xasprintf("%s%s", invert ? "!" : "", q);
        } else {
                read = kiln_xstrdup(invert ? "!" : "");
        }
        /* patternmatcher.New: trim, clean again, then the '!' */
        _cleanup_free_ char *cleaned = go_clean(read);
        const char *pat = cleaned;
        bool excl = false;
        if (pat[0] == '!') {
                if (!pat[1])
                        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                            "%s:%u: illegal exclusion pattern: \"!\"", origin,
                                            lineno);
                excl = true;
                pat++;
        }
        _cleanup_prog_ struct prog prog = {.runes = true, .class_sep = true};
        if (docker_compile(&prog, pat, err) < 0)
                return kiln_err_prefix(err, "%s:%u: syntax error in pattern \"%s\"", origin, lineno,
                                       pat);
        struct pat *pt = kiln_ignore_push_pat(ig);
        pt->prog = prog;
        prog = (struct prog){0};
        pt->flags = excl ? P_NEG : 0;
        if (excl)
                ig->exclusions++;
        return 0;
}

/* MatchesOrParentMatches: each pattern in turn, against the path and each
 * of its parent directories; the last that matches decides. */
bool kiln_ignore_docker_excluded(const struct kiln_ignore *ig, const char *path)
{
        size_t n = strlen(path);
        bool matched = false;
        for (size_t i = 0; i < ig->n; i++) {
                const struct pat *pt = &ig->v[i];
                bool excl = pt->flags & P_NEG;
                if (excl != matched)
                        continue;
                bool m = kiln_ignore_prog_run(&pt->prog, path, n, false);
                for (size_t k = 0; !m && k < n; k++)
                        if (path[k] == '/')
                                m = kiln_ignore_prog_run(&pt->prog, path, k, false);
                if (m)
                        matched = !excl;
        }
        return matched;
}

/* Whether an exclusion pattern might re-include something below dir, so
 * an excluded directory must still be walked. */
bool kiln_ignore_docker_may_reinclude(const struct kiln_ignore *ig, const char *dir)
{
        if (!ig->exclusions)
                return false;
        _cleanup_free_ char *s = kiln_xasprintf("%s/", dir);
        size_t n = strlen(s);
        for (size_t i = 0; i < ig->n; i++)
                if ((ig->v[i].flags & P_NEG) && kiln_ignore_prog_run(&ig->v[i].prog, s, n, true))
                        return true;
        return false;
}
