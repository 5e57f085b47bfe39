/* Ignore patterns: the pattern language both syntaxes compile to, run as
 * an NFA so that a hostile pattern costs time linear in the path, never
 * exponential; pattern lists; and the public matcher. The syntaxes are
 * gitignore.c and dockerignore.c; the walk that applies them to a source
 * tree is source.c. */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <stdint.h>
#include <string.h>

/* ---------- the pattern language ---------- */

void kiln_ignore_prog_push(struct prog *p, enum tok_kind k, uint32_t c)
{
        if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 16;
                p->t = kiln_xrealloc(p->t, p->cap * sizeof(*p->t));
        }
        p->t[p->n++] = (struct tok){.kind = (uint8_t)k, .c = c};
}

void kiln_ignore_prog_item(struct prog *p, uint32_t lo, uint32_t hi, uint8_t ctype)
{
        if (p->nitems == p->capitems) {
                p->capitems = p->capitems ? p->capitems * 2 : 8;
                p->items = kiln_xrealloc(p->items, p->capitems * sizeof(*p->items));
        }
        p->items[p->nitems++] = (struct citem){lo, hi, ctype};
        p->t[p->n - 1].ncls++;
}

void kiln_ignore_prog_release(struct prog *p)
{
        free(p->t);
        free(p->items);
        free(p->lit);
        *p = (struct prog){0};
}

static void buf_put_sym(struct kiln_buf *b, uint32_t c, bool runes)
{
        char u[4];
        size_t n = 1;
        if (!runes || c < 0x80 || (c & 0x80000000u)) {
                u[0] = (char)(c & 0xff); /* a byte, or an invalid byte kept as is */
        } else if (c < 0x800) {
                u[0] = (char)(0xc0 | (c >> 6));
                u[1] = (char)(0x80 | (c & 0x3f));
                n = 2;
        } else if (c < 0x10000) {
                u[0] = (char)(0xe0 | (c >> 12));
                u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
                u[2] = (char)(0x80 | (c & 0x3f));
                n = 3;
        } else {
                u[0] = (char)(0xf0 | (c >> 18));
                u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
                u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
                u[3] = (char)(0x80 | (c & 0x3f));
                n = 4;
        }
        kiln_buf_append(b, u, n);
}

/* Records the literal bytes when the whole program is literals, so the
 * common patterns ("node_modules", ".env") match by memcmp. */
void kiln_ignore_prog_finish(struct prog *p)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->t[i].kind != T_LIT)
                        return;
        struct kiln_buf b = {0};
        for (size_t i = 0; i < p->n; i++)
                buf_put_sym(&b, p->t[i].c, p->runes);
        p->litlen = b.len;
        p->lit = b.data ? kiln_buf_steal(&b) : kiln_xstrdup("");
}

/* One UTF-8 rune at s (n > 0 bytes left) as Go decodes it: an invalid
 * byte is one symbol of its own (kept apart from every valid rune). */
uint32_t kiln_ignore_next_rune(const unsigned char *s, size_t n, size_t *len)
{
        unsigned char c = s[0];
        size_t want = c < 0x80             ? 1
                      : (c & 0xe0) == 0xc0 ? 2
                      : (c & 0xf0) == 0xe0 ? 3
                      : (c & 0xf8) == 0xf0 ? 4
                                           : 0;
        uint32_t r = want == 1 ? c : want == 2 ? c & 0x1fu : want == 3 ? c & 0x0fu : c & 0x07u;
        bool ok = want > 1 && want <= n;
        for (size_t i = 1; ok && i < want; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        ok = false;
                r = (r << 6) | (s[i] & 0x3fu);
        }
        if (want == 1) {
                *len = 1;
                return c;
        }
        /* overlong forms, surrogates and values past U+10FFFF are invalid */
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (ok && (r < min[want] || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)))
                ok = false;
        if (!ok) {
                *len = 1;
                return 0x80000000u | c;
        }
        *len = want;
        return r;
}

static uint32_t next_sym(const struct prog *p, const char *s, size_t n, size_t *len)
{
        if (!p->runes) {
                *len = 1;
                return (unsigned char)s[0];
        }
        return kiln_ignore_next_rune((const unsigned char *)s, n, len);
}

/* ASCII only, as git's wildmatch (it does not use the locale). */
static bool ctype_is(uint8_t t, uint32_t c)
{
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        bool digit = c >= '0' && c <= '9', alpha = lower || upper;
        switch (t) {
        case C_ALNUM:
                return alpha || digit;
        case C_ALPHA:
                return alpha;
        case C_BLANK:
                return c == ' ' || c == '\t';
        case C_CNTRL:
                return c < 0x20 || c == 0x7f;
        case C_DIGIT:
                return digit;
        case C_GRAPH:
                return c > 0x20 && c < 0x7f;
        case C_LOWER:
                return lower;
        case C_PRINT:
                return c >= 0x20 && c < 0x7f;
        case C_PUNCT:
                return c > 0x20 && c < 0x7f && !alpha && !digit;
        case C_SPACE:
                return c == ' ' || c == '\t' || c == '\n' || c == '\r';
        case C_UPPER:
                return upper;
        case C_XDIGIT:
                return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        }
        return false;
}

static bool class_has(const struct prog *p, const struct tok *t, uint32_t c)
{
        bool in = false;
        for (uint32_t i = 0; i < t->ncls && !in; i++) {
                const struct citem *it = &p->items[t->cls + i];
                in = it->ctype ? ctype_is(it->ctype, c) : c >= it->lo && c <= it->hi;
        }
        if (in == t->neg)
                return false;
        return c != '/' || p->class_sep;
}

/* Sets of NFA states as bit words: at[i] "about to match token i", in[i]
 * "inside the directories of a T_OPTDIRS token i" (which, unlike at[i],
 * must reach a '/' before moving on). State n accepts. */
struct nfa {
        uint64_t *at, *in, *nat, *nin;
        size_t words;
};

#define BIT_GET(v, i) (((v)[(i) >> 6] >> ((i)&63)) & 1u)
#define BIT_SET(v, i) ((v)[(i) >> 6] |= (uint64_t)1 << ((i)&63))

static void nfa_close(const struct prog *p, uint64_t *at)
{
        for (size_t i = 0; i < p->n; i++)
                if (BIT_GET(at, i) && (p->t[i].kind == T_STAR || p->t[i].kind == T_ANYSTR ||
                                       p->t[i].kind == T_OPTDIRS))
                        BIT_SET(at, i + 1);
}

static bool nfa_step(const struct prog *p, struct nfa *m, uint32_t c)
{
        memset(m->nat, 0, m->words * sizeof(uint64_t));
        memset(m->nin, 0, m->words * sizeof(uint64_t));
        for (size_t i = 0; i < p->n; i++) {
                const struct tok *t = &p->t[i];
                if (BIT_GET(m->in, i)) {
                        BIT_SET(m->nin, i);
                        if (c == '/')
                                BIT_SET(m->nat, i + 1);
                }
                if (!BIT_GET(m->at, i))
                        continue;
                switch (t->kind) {
                case T_LIT:
                        if (c == t->c)
                                BIT_SET(m->nat, i + 1);
                        break;
                case T_ANY1:
                        if (c != '/')
                                BIT_SET(m->nat, i + 1);
                        break;
                case T_CLASS:
                        if (class_has(p, t, c))
                                BIT_SET(m->nat, i + 1);
                        break;
                case T_STAR:
                        if (c != '/')
                                BIT_SET(m->nat, i);
                        break;
                case T_ANYSTR:
                        BIT_SET(m->nat, i);
                        break;
                case T_OPTDIRS:
                        BIT_SET(m->nin, i);
                        if (c == '/')
                                BIT_SET(m->nat, i + 1);
                        break;
                }
        }
        nfa_close(p, m->nat);
        uint64_t *x = m->at;
        m->at = m->nat;
        m->nat = x;
        x = m->in;
        m->in = m->nin;
        m->nin = x;
        bool alive = false;
        for (size_t w = 0; w < m->words && !alive; w++)
                alive = m->at[w] || m->in[w];
        return alive;
}

/* Whether the program matches all of s[0..n). partial: whether it matches
 * s followed by something (an over-approximation: any live state counts). */
bool kiln_ignore_prog_run(const struct prog *p, const char *s, size_t n, bool partial)
{
        if (p->never)
                return false;
        if (p->lit) {
                if (partial)
                        return p->litlen >= n && !memcmp(p->lit, s, n);
                return p->litlen == n && !memcmp(p->lit, s, n);
        }
        if (p->n && p->t[0].kind == T_LIT && !p->runes && (!n || (unsigned char)s[0] != p->t[0].c))
                return partial && !n;
        uint64_t small[4 * 8] = {0};
        struct nfa m = {.words = (p->n + 1 + 63) / 64};
        uint64_t *mem = m.words * 4 <= sizeof(small) / sizeof(small[0])
                            ? small
                            : kiln_xcalloc(m.words * 4, sizeof(uint64_t));
        m.at = mem;
        m.in = mem + m.words;
        m.nat = mem + 2 * m.words;
        m.nin = mem + 3 * m.words;
        BIT_SET(m.at, 0);
        nfa_close(p, m.at);
        bool alive = true;
        for (size_t i = 0; i < n && alive;) {
                size_t len;
                uint32_t c = next_sym(p, s + i, n - i, &len);
                alive = nfa_step(p, &m, c);
                i += len;
        }
        bool r = partial ? alive : BIT_GET(m.at, p->n) != 0;
        if (mem != small)
                free(mem);
        return r;
}

/* ---------- pattern lists ---------- */

struct pat *kiln_ignore_push_pat(struct kiln_ignore *ig)
{
        if (ig->n == ig->cap) {
                ig->cap = ig->cap ? ig->cap * 2 : 16;
                ig->v = kiln_xrealloc(ig->v, ig->cap * sizeof(*ig->v));
        }
        struct pat *pt = &ig->v[ig->n++];
        *pt = (struct pat){0};
        return pt;
}

/* ---------- the public matcher ---------- */

struct kiln_ignore *kiln_ignore_new(enum kiln_ignore_syntax syntax)
{
        struct kiln_ignore *ig = kiln_xcalloc(1, sizeof(*ig));
        ig->syntax = syntax;
        return ig;
}

size_t kiln_ignore_len(const struct kiln_ignore *ig)
{
        return ig->n;
}

void kiln_ignore_truncate(struct kiln_ignore *ig, size_t n)
{
        while (ig->n > n) {
                struct pat *pt = &ig->v[--ig->n];
                kiln_ignore_prog_release(&pt->prog);
                free(pt->base);
        }
}

void kiln_ignore_free(struct kiln_ignore *ig)
{
        if (!ig)
                return;
        kiln_ignore_truncate(ig, 0);
        free(ig->v);
        free(ig);
}

void kiln_ignore_freep(struct kiln_ignore **ig)
{
        kiln_ignore_free(*ig);
}

int kiln_ignore_add(struct kiln_ignore *ig, const char *base, const char *text, size_t len,
                    const char *origin, struct kiln_err **err)
{
        if (!base)
                base = "";
        if (ig->syntax == KILN_IGNORE_DOCKER && *base)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "%s: .dockerignore patterns apply to the root only", origin);
        _cleanup_free_ char *b = kiln_xstrdup(base);
        for (size_t n = strlen(b); n && b[n - 1] == '/';)
                b[--n] = '\0';
        size_t at = 0;
        /* both git and Go drop a UTF-8 byte order mark */
        if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
                at = 3;
        for (unsigned lineno = 1; at < len; lineno++) {
                const char *nl = memchr(text + at, '\n', len - at);
                size_t end = nl ? (size_t)(nl - text) : len;
                size_t l = end - at;
                if (l && text[at + l - 1] == '\r')
                        l--;
                /* a NUL ends the line's pattern, as in git's C strings */
                _cleanup_free_ char *line = kiln_xstrndup(text + at, l);
                at = end + 1;
                if (ig->syntax == KILN_IGNORE_GIT)
                        kiln_ignore_git_add_line(ig, b, line);
                else if (kiln_ignore_docker_add_line(ig, line, origin, lineno, err) < 0)
                        return -1;
        }
        return 0;
}

bool kiln_ignore_match(const struct kiln_ignore *ig, const char *relpath, bool is_dir)
{
        if (!*relpath)
                return false;
        if (ig->syntax == KILN_IGNORE_DOCKER)
                return kiln_ignore_docker_excluded(ig, relpath);
        /* git never looks inside an excluded directory */
        _cleanup_free_ char *p = kiln_xstrdup(relpath);
        for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                bool excluded = kiln_ignore_git_decide(ig, p, true) == 1;
                *s = '/';
                if (excluded)
                        return true;
        }
        return kiln_ignore_git_decide(ig, p, is_dir) == 1;
}
