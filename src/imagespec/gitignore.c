/* .gitignore patterns as git reads them (gitignore(5), wildmatch):
 * comments, trailing spaces, `\` escapes, `!` re-includes, directory-only
 * and anchored patterns, `**`, and [...] classes with [:name:], compiled
 * to the pattern language of ignore.c. */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <stdint.h>
#include <string.h>

static const struct {
        const char *name;
        uint8_t t;
} ctypes[] = {
    {"alnum", C_ALNUM}, {"alpha", C_ALPHA}, {"blank", C_BLANK}, {"cntrl", C_CNTRL},
    {"digit", C_DIGIT}, {"graph", C_GRAPH}, {"lower", C_LOWER}, {"print", C_PRINT},
    {"punct", C_PUNCT}, {"space", C_SPACE}, {"upper", C_UPPER}, {"xdigit", C_XDIGIT},
};

/* A wildmatch class starting at s ('['), as git reads it: `!` or `^`
 * negates, a leading `]` is literal, `a-z` ranges, `\` escapes, [:name:].
 * Returns the end, or NULL when malformed (git then matches nothing). */
static const char *git_class(struct prog *p, const char *s, const char *end)
{
        const char *q = s + 1;
        kiln_ignore_prog_push(p, T_CLASS, 0);
        struct tok *t = &p->t[p->n - 1];
        t->cls = (uint32_t)p->nitems;
        if (q < end && (*q == '!' || *q == '^')) {
                t->neg = true;
                q++;
        }
        bool first = true, have_prev = false;
        unsigned char prev = 0;
        for (;; first = false) {
                if (q >= end)
                        return NULL;
                unsigned char c = (unsigned char)*q;
                if (c == ']' && !first)
                        return q + 1;
                if (c == '\\') {
                        if (++q >= end)
                                return NULL;
                        c = (unsigned char)*q++;
                        kiln_ignore_prog_item(p, c, c, 0);
                        prev = c;
                        have_prev = true;
                } else if (c == '-' && have_prev && q + 1 < end && q[1] != ']') {
                        unsigned char hi = (unsigned char)*++q;
                        if (hi == '\\') {
                                if (++q >= end)
                                        return NULL;
                                hi = (unsigned char)*q;
                        }
                        q++;
                        if (prev <= hi)
                                kiln_ignore_prog_item(p, prev, hi, 0);
                        have_prev = false;
                } else if (c == '[' && q + 1 < end && q[1] == ':') {
                        const char *name = q + 2, *r = name;
                        while (r < end && *r != ']')
                                r++;
                        if (r >= end)
                                return NULL;
                        if (r - name < 1 || r[-1] != ':') {
                                /* no ":]": a literal '[' */
                                kiln_ignore_prog_item(p, '[', '[', 0);
                                prev = '[';
                                have_prev = true;
                                q++;
                                continue;
                        }
                        size_t len = (size_t)(r - name) - 1;
                        uint8_t ct = 0;
                        for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++)
                                if (strlen(ctypes[i].name) == len &&
                                    !memcmp(ctypes[i].name, name, len))
                                        ct = ctypes[i].t;
                        if (!ct)
                                return NULL;
                        kiln_ignore_prog_item(p, 0, 0, ct);
                        have_prev = false;
                        q = r + 1;
                } else {
                        kiln_ignore_prog_item(p, c, c, 0);
                        prev = c;
                        have_prev = true;
                        q++;
                }
        }
}

/* Compiles pattern[0..len) as git matches it: the bytes before the first
 * glob character literally, then the rest as wildmatch with WM_PATHNAME,
 * where `**` is special only at the start of that rest or after a '/', and
 * before a '/' or the end. (git splits the literal prefix off first, so
 * "foo" "**" "/bar" matches "foo/x/bar" as "foo/" "**" "/bar" does.) */
static void git_compile(struct prog *p, const char *pattern, size_t len)
{
        const char *s = pattern, *end = pattern + len;
        while (s < end && !strchr("*?[\\", *s))
                kiln_ignore_prog_push(p, T_LIT, (unsigned char)*s++);
        const char *start = s;
        while (s < end && !p->never) {
                char c = *s;
                if (c == '\\') {
                        if (s + 1 >= end) {
                                p->never = true; /* a trailing '\' matches nothing */
                                break;
                        }
                        kiln_ignore_prog_push(p, T_LIT, (unsigned char)s[1]);
                        s += 2;
                } else if (c == '?') {
                        kiln_ignore_prog_push(p, T_ANY1, 0);
                        s++;
                } else if (c == '[') {
                        s = git_class(p, s, end);
                        if (!s)
                                p->never = true;
                } else if (c == '*') {
                        const char *first = s;
                        while (s < end && *s == '*')
                                s++;
                        bool special =
                            s - first >= 2 && (first == start || first[-1] == '/') &&
                            (s == end || *s == '/' || (s[0] == '\\' && s + 1 < end && s[1] == '/'));
                        if (!special) {
                                kiln_ignore_prog_push(p, T_STAR, 0);
                        } else if (s < end && *s == '/') {
                                kiln_ignore_prog_push(p, T_OPTDIRS, 0);
                                s++;
                        } else {
                                kiln_ignore_prog_push(p, T_ANYSTR, 0);
                        }
                } else {
                        kiln_ignore_prog_push(p, T_LIT, (unsigned char)c);
                        s++;
                }
        }
        if (!p->never)
                kiln_ignore_prog_finish(p);
}

/* git's trim_trailing_spaces: unescaped trailing spaces go. */
static void git_trim(char *s)
{
        char *last_space = NULL;
        for (char *p = s; *p; p++) {
                if (*p == ' ') {
                        if (!last_space)
                                last_space = p;
                } else if (*p == '\\') {
                        if (!*++p)
                                return;
                        last_space = NULL;
                } else {
                        last_space = NULL;
                }
        }
        if (last_space)
                *last_space = '\0';
}

void kiln_ignore_git_add_line(struct kiln_ignore *ig, const char *base, char *line)
{
        if (line[0] == '#')
                return;
        git_trim(line);
        if (!line[0])
                return;
        unsigned flags = 0;
        char *p = line;
        if (*p == '!') {
                flags |= P_NEG;
                p++;
        }
        size_t len = strlen(p);
        if (len && p[len - 1] == '/') {
                flags |= P_DIRONLY;
                len--;
        }
        if (!memchr(p, '/', len)) {
                flags |= P_BASENAME;
        } else if (*p == '/') {
                p++;
                len--;
        }
        struct pat *pt = kiln_ignore_push_pat(ig);
        pt->flags = flags;
        pt->base = kiln_xstrdup(base);
        pt->baselen = strlen(base);
        git_compile(&pt->prog, p, len);
}

/* Whether one pattern matches path (basename: its last component). */
static bool git_pat_match(const struct pat *pt, const char *path, size_t plen, const char *basename,
                          bool is_dir)
{
        if ((pt->flags & P_DIRONLY) && !is_dir)
                return false;
        const char *name = path;
        size_t nlen = plen;
        if (pt->baselen) {
                if (plen <= pt->baselen || path[pt->baselen] != '/' ||
                    memcmp(path, pt->base, pt->baselen))
                        return false;
                name = path + pt->baselen + 1;
                nlen = plen - pt->baselen - 1;
        }
        if (pt->flags & P_BASENAME)
                return kiln_ignore_prog_run(&pt->prog, basename, strlen(basename), false);
        return kiln_ignore_prog_run(&pt->prog, name, nlen, false);
}

/* The last matching pattern decides: 1 excluded, 0 re-included, -1 none
 * matched. Only path itself is looked at, not its parents. */
int kiln_ignore_git_decide(const struct kiln_ignore *ig, const char *path, bool is_dir)
{
        size_t plen = strlen(path);
        const char *slash = strrchr(path, '/');
        const char *basename = slash ? slash + 1 : path;
        for (size_t i = ig->n; i-- > 0;)
                if (git_pat_match(&ig->v[i], path, plen, basename, is_dir))
                        return (ig->v[i].flags & P_NEG) ? 0 : 1;
        return -1;
}
