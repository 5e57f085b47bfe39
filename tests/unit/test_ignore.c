/* Source trees: which files a build copies. gitignore matching is checked
 * by tables and, on real trees, against git itself (`git ls-files --others
 * --exclude-standard` in a fresh repository, flytekit's standard patterns
 * given with -x), including a seeded random differential run; dockerignore
 * matching by tables from moby's patternmatcher tests and by trees with
 * their expected listings. */
#include "kiln/imagespec.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static char tmp[] = "/tmp/kiln-test-ignore-XXXXXX";

#define WHL "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"

/* ---------- gitignore matching ---------- */

struct git_row {
        const char *gi;           /* the root .gitignore */
        const char *sub, *sub_gi; /* optional: a .gitignore in directory sub */
        const char *path;
        bool dir;
        bool want; /* excluded */
};

static const struct git_row git_rows[] = {
    /* names without '/' match at any depth; parents count */
    {"foo", NULL, NULL, "foo", false, true},
    {"foo", NULL, NULL, "a/foo", false, true},
    {"foo", NULL, NULL, "a/foo/b", false, true},
    {"foo", NULL, NULL, "foobar", false, false},
    {"foo", NULL, NULL, "xfoo", false, false},
    /* a '/' at the start or in the middle anchors */
    {"/foo", NULL, NULL, "foo", false, true},
    {"/foo", NULL, NULL, "a/foo", false, false},
    {"a/b", NULL, NULL, "a/b", false, true},
    {"a/b", NULL, NULL, "x/a/b", false, false},
    {"a/*.o", NULL, NULL, "a/x.o", false, true},
    {"a/*.o", NULL, NULL, "a/b/x.o", false, false},
    {"/a*b", NULL, NULL, "a/b", false, false},
    /* a trailing '/' matches directories only */
    {"foo/", NULL, NULL, "foo", false, false},
    {"foo/", NULL, NULL, "foo", true, true},
    {"foo/", NULL, NULL, "a/foo", true, true},
    {"foo/", NULL, NULL, "foo/x", false, true},
    {"a/b/", NULL, NULL, "a/b", true, true},
    {"a/b/", NULL, NULL, "a/b", false, false},
    /* wildcards never match '/' */
    {"*.o", NULL, NULL, "x.o", false, true},
    {"*.o", NULL, NULL, "d/e/x.o", false, true},
    {"*.o", NULL, NULL, "x.oo", false, false},
    {"*", NULL, NULL, ".hidden", false, true},
    {"?.c", NULL, NULL, "x.c", false, true},
    {"?.c", NULL, NULL, "xy.c", false, false},
    {"a?b", NULL, NULL, "a/b", false, false},
    {"/a?b", NULL, NULL, "a/b", false, false},
    {"/a[/]b", NULL, NULL, "a/b", false, false},
    /* classes */
    {"[abc].txt", NULL, NULL, "b.txt", false, true},
    {"[abc].txt", NULL, NULL, "d.txt", false, false},
    {"[a-c].txt", NULL, NULL, "c.txt", false, true},
    {"[a-c].txt", NULL, NULL, "d.txt", false, false},
    {"[!a-c].txt", NULL, NULL, "d.txt", false, true},
    {"[!a-c].txt", NULL, NULL, "a.txt", false, false},
    {"[^a].txt", NULL, NULL, "b.txt", false, true},
    {"[^a].txt", NULL, NULL, "a.txt", false, false},
    {"[]].txt", NULL, NULL, "].txt", false, true},
    {"[!]].txt", NULL, NULL, "a.txt", false, true},
    {"[!]].txt", NULL, NULL, "].txt", false, false},
    {"[a-].txt", NULL, NULL, "-.txt", false, true},
    {"[\\]]x", NULL, NULL, "]x", false, true},
    {"[[:digit:]]x", NULL, NULL, "1x", false, true},
    {"[[:digit:]]x", NULL, NULL, "ax", false, false},
    {"[[:alpha:][:digit:]]", NULL, NULL, "z", false, true},
    {"[[:upper:]]", NULL, NULL, "z", false, false},
    {"[[:nope:]]", NULL, NULL, "n", false, false}, /* malformed: matches nothing */
    {"a[", NULL, NULL, "a[", false, false},
    {"a\\[", NULL, NULL, "a[", false, true},
    /* comments, escapes, spaces */
    {"#x", NULL, NULL, "#x", false, false},
    {"\\#x", NULL, NULL, "#x", false, true},
    {" #x", NULL, NULL, " #x", false, true},
    {"\\!x", NULL, NULL, "!x", false, true},
    {"\\*", NULL, NULL, "*", false, true},
    {"\\*", NULL, NULL, "x", false, false},
    {"foo\\", NULL, NULL, "foo", false, false}, /* a trailing '\' matches nothing */
    {"foo  ", NULL, NULL, "foo", false, true},
    {"foo\\ ", NULL, NULL, "foo ", false, true},
    {"foo\\ ", NULL, NULL, "foo", false, false},
    {"foo\\  ", NULL, NULL, "foo ", false, true},
    {" foo", NULL, NULL, " foo", false, true},
    {" foo", NULL, NULL, "foo", false, false},
    {"foo\r\nbar\r\n", NULL, NULL, "foo", false, true},
    {"foo\r\nbar", NULL, NULL, "bar", false, true},
    {"\xef\xbb\xbf"
     "foo",
     NULL, NULL, "foo", false, true},
    {"\n\n   \nfoo\n", NULL, NULL, "foo", false, true},
    /* negation: the last match wins; nothing below an excluded dir returns */
    {"!x", NULL, NULL, "x", false, false},
    {"x\n!x", NULL, NULL, "x", false, false},
    {"!x\nx", NULL, NULL, "x", false, true},
    {"*.log\n!keep.log", NULL, NULL, "keep.log", false, false},
    {"*.log\n!keep.log", NULL, NULL, "a.log", false, true},
    {"dir/\n!dir/keep", NULL, NULL, "dir/keep", false, true},
    {"dir\n!dir/keep", NULL, NULL, "dir/keep", false, true},
    {"dir/*\n!dir/keep", NULL, NULL, "dir/keep", false, false},
    {"dir/*\n!dir/keep", NULL, NULL, "dir/other", false, true},
    {"/*\n!/foo\n/foo/*\n!/foo/bar", NULL, NULL, "foo/bar", false, false},
    {"/*\n!/foo\n/foo/*\n!/foo/bar", NULL, NULL, "foo/baz", false, true},
    {"/*\n!/foo\n/foo/*\n!/foo/bar", NULL, NULL, "x", false, true},
    /* ** */
    {"**/foo", NULL, NULL, "foo", false, true},
    {"**/foo", NULL, NULL, "a/b/foo", false, true},
    {"**/foo/bar", NULL, NULL, "foo/bar", false, true},
    {"**/foo/bar", NULL, NULL, "x/y/foo/bar", false, true},
    {"**/foo/bar", NULL, NULL, "x/foo/baz", false, false},
    {"abc/**", NULL, NULL, "abc/x", false, true},
    {"abc/**", NULL, NULL, "abc/x/y", false, true},
    {"abc/**", NULL, NULL, "abc", true, false},
    {"a/**/b", NULL, NULL, "a/b", false, true},
    {"a/**/b", NULL, NULL, "a/x/b", false, true},
    {"a/**/b", NULL, NULL, "a/x/y/b", false, true},
    {"a/**/b", NULL, NULL, "a/xb", false, false},
    {"a/**b", NULL, NULL, "a/xb", false, true}, /* not before '/': a plain '*' */
    {"a/**b", NULL, NULL, "a/x/b", false, false},
    {"a/x**/b", NULL, NULL, "a/x/y/b", false, true}, /* git splits "a/x" off first */
    {"a/**/", NULL, NULL, "a/b", true, true},
    {"a/**/", NULL, NULL, "a/b", false, false},
    {"a/**/", NULL, NULL, "a/b/c", false, true},
    {"**", NULL, NULL, "any/thing", false, true},
    {"a/**/**/b", NULL, NULL, "a/b", false, true},
    /* nested .gitignore files: their own subtree, deeper wins */
    {"*.txt", "sub", "!keep.txt", "sub/keep.txt", false, false},
    {"*.txt", "sub", "!keep.txt", "keep.txt", false, true},
    {"*.txt", "sub", "!keep.txt", "other/keep.txt", false, true},
    {"", "sub", "/x", "sub/x", false, true},
    {"", "sub", "/x", "sub/y/x", false, false},
    {"", "sub", "/x", "x", false, false},
    {"", "sub", "x", "sub/y/x", false, true},
    {"", "sub", "x", "x", false, false},
    {"", "sub", "x", "other/x", false, false},
    {"", "sub", "x", "subx/x", false, false},
    {"", "sub", "a/b", "sub/a/b", false, true},
    {"", "sub", "a/b", "a/b", false, false},
    {"!sub/x", "sub", "x", "sub/x", false, true},
    {"x", "sub", "!x", "sub/x", false, false},
    {"sub/", "sub", "!x", "sub/x", false, true},
    {"", "a/b", "c", "a/b/c", false, true},
    {"", "a/b", "c", "a/c", false, false},
};

/* A matcher of text (the root's ignore file) and, when sub is given,
 * sub_text (sub's .gitignore); NULL with *err set when adding fails. */
static struct kiln_ignore *matcher(enum kiln_ignore_syntax syn, const char *text, const char *sub,
                                   const char *sub_text, struct kiln_err **err)
{
        struct kiln_ignore *ig = kiln_ignore_new(syn);
        const char *origin = syn == KILN_IGNORE_GIT ? ".gitignore" : ".dockerignore";
        int rc = kiln_ignore_add(ig, "", text, strlen(text), origin, err);
        if (rc == 0 && sub)
                rc = kiln_ignore_add(ig, sub, sub_text, strlen(sub_text), "sub/.gitignore", err);
        if (rc < 0) {
                kiln_ignore_free(ig);
                return NULL;
        }
        return ig;
}

static void test_git_rows(void)
{
        for (size_t i = 0; i < sizeof(git_rows) / sizeof(git_rows[0]); i++) {
                const struct git_row *r = &git_rows[i];
                struct kiln_err *err = NULL;
                _cleanup_ignore_ struct kiln_ignore *ig =
                    matcher(KILN_IGNORE_GIT, r->gi, r->sub, r->sub_gi, &err);
                CHECK(ig, "row %zu: %s", i, err ? err->msg : "");
                kiln_err_free(err);
                bool got = ig && kiln_ignore_match(ig, r->path, r->dir);
                CHECK(got == r->want, "row %zu: gitignore \"%s\"%s%s%s path \"%s\"%s: got %s", i,
                      r->gi, r->sub ? " + " : "", r->sub ? r->sub : "", r->sub ? "/.gitignore" : "",
                      r->path, r->dir ? " (dir)" : "", got ? "excluded" : "included");
        }
}

/* ---------- dockerignore matching ---------- */

struct docker_row {
        const char *di; /* .dockerignore text */
        const char *path;
        bool want; /* excluded */
};

static const struct docker_row docker_rows[] = {
    /* moby patternmatcher TestMatches (MatchesOrParentMatches) */
    {"**", "file", true},
    {"**", "file/", true},
    {"**/", "file", true},
    {"**/", "file/", true},
    {"**", "/", true},
    {"**/", "/", true},
    {"**", "dir/file", true},
    {"**/", "dir/file", true},
    {"**", "dir/file/", true},
    {"**/", "dir/file/", true},
    {"**/**", "dir/file", true},
    {"**/**", "dir/file/", true},
    {"dir/**", "dir/file", true},
    {"dir/**", "dir/file/", true},
    {"dir/**", "dir/dir2/file", true},
    {"dir/**", "dir/dir2/file/", true},
    {"**/dir", "dir", true},
    {"**/dir", "dir/file", true},
    {"**/dir2/*", "dir/dir2/file", true},
    {"**/dir2/*", "dir/dir2/file/", true},
    {"**/dir2/**", "dir/dir2/dir3/file", true},
    {"**/dir2/**", "dir/dir2/dir3/file/", true},
    {"**file", "file", true},
    {"**file", "dir/file", true},
    {"**/file", "dir/file", true},
    {"**file", "dir/dir/file", true},
    {"**/file", "dir/dir/file", true},
    {"**/file*", "dir/dir/file", true},
    {"**/file*", "dir/dir/file.txt", true},
    {"**/file*txt", "dir/dir/file.txt", true},
    {"**/file*.txt", "dir/dir/file.txt", true},
    {"**/file*.txt*", "dir/dir/file.txt", true},
    {"**/**/*.txt", "dir/dir/file.txt", true},
    {"**/**/*.txt2", "dir/dir/file.txt", false},
    {"**/*.txt", "file.txt", true},
    {"**/**/*.txt", "file.txt", true},
    {"a**/*.txt", "a/file.txt", true},
    {"a**/*.txt", "a/dir/file.txt", true},
    {"a**/*.txt", "a/dir/dir/file.txt", true},
    {"a/*.txt", "a/dir/file.txt", false},
    {"a/*.txt", "a/file.txt", true},
    {"a/*.txt**", "a/file.txt", true},
    {"a[b-d]e", "ae", false},
    {"a[b-d]e", "ace", true},
    {"a[b-d]e", "aae", false},
    {"a[^b-d]e", "aze", true},
    {".*", ".foo", true},
    {".*", "foo", false},
    {"abc.def", "abcdef", false},
    {"abc.def", "abc.def", true},
    {"abc.def", "abcZdef", false},
    {"abc?def", "abcZdef", true},
    {"abc?def", "abcdef", false},
    {"a\\\\", "a\\", true},
    {"**/foo/bar", "foo/bar", true},
    {"**/foo/bar", "dir/foo/bar", true},
    {"**/foo/bar", "dir/dir2/foo/bar", true},
    {"abc/**", "abc", false},
    {"abc/**", "abc/def", true},
    {"abc/**", "abc/def/ghi", true},
    {"**/.foo", ".foo", true},
    {"**/.foo", "bar.foo", false},
    {"a(b)c/def", "a(b)c/def", true},
    {"a(b)c/def", "a(b)c/xyz", false},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
    {WHL, WHL, true},
    {"dist/*.whl", WHL, true},
    {"a\\*b", "a*b", true},
    {"**\n!util/docker/web", "util/docker/web/foo", false},
    {"**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true},
    {"**\n!" WHL, WHL, false},
    {"**\n!dist/*.whl", WHL, false},
    /* moby fileutils tests */
    {"*", "fileutils.go", true},
    {"*.go", "fileutils.go", true},
    {"!fileutils.go\n*.go", "fileutils.go", true},
    {"*.go\n!fileutils.go", "fileutils.go", false},
    {"docs\n!docs/README.md", "docs/README.md", false},
    {"docs/\n!docs/README.md", "docs/README.md", false},
    {"docs/*\n!docs/README.md", "docs/README.md", false},
    {"docs\n!docs/README.md", "docs/other.md", true},
    {"", "any/path/there", false},
    /* Go's filepath.Match tests as moby runs them */
    {"abc", "abc", true},
    {"*", "abc", true},
    {"*c", "abc", true},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "ab/c", true},
    {"a*/b", "abc/b", true},
    {"a*/b", "a/c/b", false},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
    {"a*b?c*x", "abxbbxdbxebxczzx", true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false},
    {"ab[c]", "abc", true},
    {"ab[b-d]", "abc", true},
    {"ab[e-g]", "abc", false},
    {"ab[^c]", "abc", false},
    {"ab[^b-d]", "abc", false},
    {"ab[^e-g]", "abc", true},
    {"a\\*b", "ab", false},
    {"a?b", "a\u263ab", true},
    {"a[^a]b", "a\u263ab", true},
    {"a???b", "a\u263ab", false},
    {"a[^a][^a][^a]b", "a\u263ab", false},
    {"[a-\u03b6]*", "\u03b1", true},
    {"*[a-\u03b6]", "A", false},
    {"a?b", "a/b", false},
    {"a*b", "a/b", false},
    {"[\\]a]", "]", true},
    {"[\\-]", "-", true},
    {"[x\\-]", "x", true},
    {"[x\\-]", "-", true},
    {"[x\\-]", "z", false},
    {"[\\-x]", "x", true},
    {"[\\-x]", "-", true},
    {"[\\-x]", "a", false},
    {"*x", "xxx", true},
    /* ignorefile.ReadAll: comments, trimming, cleaning, leading '/' */
    {"# comment\nfoo", "foo", true},
    {"# foo", "# foo", false},
    {" # foo", "# foo", true},
    {"  foo  ", "foo", true},
    {"\tfoo\r\n", "foo", true},
    {"/foo", "foo", true},
    {"/a/file/here", "a/file/here", true},
    {"a/../b", "b", true},
    {"a/./b//c/", "a/b/c", true},
    {"foo.py/", "foo.py", true}, /* no directory-only patterns */
    {"*\n! /inverted/abs/path", "inverted/abs/path", false},
    {"*\n!  inverted", "inverted", false},
    {"\xef\xbb\xbf"
     "foo",
     "foo", true},
    {".", "x", false},
    {"/", "x", false},
    {"../x", "x", false},
    {"foo", "a/foo", false}, /* no "any depth" without ** */
    {"a/b", "a/b/c/d", true},
    {"a/*/c", "a/b/c/d", true},
    {"*/*.md", "a/b.md", true},
    {"*/*.md", "a/b/c.md", false},
    {"\xff", "\xff", true}, /* invalid UTF-8 is fine in a literal pattern */
    {"\xff/**", "\xff/x", true},
};

/* Patterns moby refuses (filepath.Match syntax, Go's regexp for reversed
 * ranges and, past literals, invalid UTF-8), and lone "!"s. */
static const char *const docker_bad[] = {
    "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[z-a]", "\xff*",
};
static const char *const docker_bang[] = {"!", "! ", " !", "!\t"};

static void test_docker_rows(void)
{
        for (size_t i = 0; i < sizeof(docker_rows) / sizeof(docker_rows[0]); i++) {
                const struct docker_row *r = &docker_rows[i];
                struct kiln_err *err = NULL;
                _cleanup_ignore_ struct kiln_ignore *ig =
                    matcher(KILN_IGNORE_DOCKER, r->di, NULL, NULL, &err);
                CHECK(ig, "row %zu: \"%s\": %s", i, r->di, err ? err->msg : "");
                kiln_err_free(err);
                bool got = ig && kiln_ignore_match(ig, r->path, false);
                CHECK(got == r->want, "row %zu: dockerignore \"%s\" path \"%s\": got %s", i, r->di,
                      r->path, got ? "excluded" : "included");
        }
        for (size_t i = 0; i < sizeof(docker_bad) / sizeof(docker_bad[0]) +
                                   sizeof(docker_bang) / sizeof(docker_bang[0]);
             i++) {
                size_t nbad = sizeof(docker_bad) / sizeof(docker_bad[0]);
                const char *pat = i < nbad ? docker_bad[i] : docker_bang[i - nbad];
                _cleanup_free_ char *text = kiln_xasprintf("ok\n# c\n%s\nok2\n", pat);
                _cleanup_free_ char *want =
                    i < nbad
                        ? kiln_xasprintf(".dockerignore:3: syntax error in pattern \"%s\"", pat)
                        : kiln_xstrdup(".dockerignore:3: illegal exclusion pattern: \"!\"");
                struct kiln_err *err = NULL;
                struct kiln_ignore *ig = matcher(KILN_IGNORE_DOCKER, text, NULL, NULL, &err);
                CHECK(!ig && err && kiln_str_has_prefix(err->msg, want),
                      "\"%s\": want \"%s\", got %s", pat, want, err ? err->msg : "no error");
                kiln_ignore_free(ig);
                kiln_err_free(err);
        }
}

/* A pattern that makes a backtracking matcher take exponential time. */
static void test_pathological(void)
{
        char pat[256] = "", path[256];
        for (int i = 0; i < 30; i++)
                strcat(pat, "*a");
        strcat(pat, "*b");
        memset(path, 'a', 200);
        path[200] = '\0';
        for (int syn = 0; syn < 2; syn++) {
                _cleanup_ignore_ struct kiln_ignore *ig =
                    kiln_ignore_new(syn ? KILN_IGNORE_DOCKER : KILN_IGNORE_GIT);
                struct kiln_err *err = NULL;
                CHECK(kiln_ignore_add(ig, "", pat, strlen(pat), "x", &err) == 0, "add");
                kiln_err_free(err);
                CHECK(!kiln_ignore_match(ig, path, false), "no match");
        }
}

/* ---------- trees ---------- */

static void put(const char *root, const char *rel, const char *data)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/%s", root, rel);
        char *slash = strrchr(p, '/');
        *slash = '\0';
        struct kiln_err *err = NULL;
        if (kiln_mkdir_p(p, 0755, &err) < 0) {
                fprintf(stderr, "%s\n", err->msg);
                kiln_err_free(err);
        }
        *slash = '/';
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || kiln_write_all(fd, data, strlen(data)) < 0)
                perror(p);
        if (fd >= 0)
                close(fd);
}

static void put_link(const char *root, const char *rel, const char *target)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/%s", root, rel);
        if (symlink(target, p) < 0)
                perror(p);
}

static char *new_tree(const char *name)
{
        char *p = kiln_xasprintf("%s/%s", tmp, name);
        struct kiln_err *err = NULL;
        kiln_rm_rf(p, &err);
        kiln_mkdir_p(p, 0755, &err);
        kiln_err_free(err);
        return p;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `git ls-files` in dir (made a repository first), sorted. NULL if git
 * failed. */
static char **git_oracle(const char *dir)
{
        struct kiln_buf cmd = {0};
        kiln_buf_puts(&cmd, "cd ");
        kiln_buf_shell_quote(&cmd, dir);
        kiln_buf_puts(&cmd, " && git init -q . && git ls-files -z --cached --others "
                            "--exclude-standard -x '*.pyc' -x .cache -x '.cache/*' "
                            "-x __pycache__ -x '**/__pycache__'");
        FILE *f = popen(cmd.data, "r");
        kiln_buf_release(&cmd);
        if (!f)
                return NULL;
        struct kiln_buf out = {0};
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                kiln_buf_append(&out, chunk, n);
        int st = pclose(f);
        if (st != 0) {
                kiln_buf_release(&out);
                return NULL;
        }
        size_t cnt = 0, cap = 16;
        char **v = kiln_xcalloc(cap, sizeof(char *));
        for (size_t i = 0; i < out.len;) {
                size_t len = strlen(out.data + i);
                if (cnt + 2 > cap) {
                        cap *= 2;
                        v = kiln_xrealloc(v, cap * sizeof(char *));
                }
                v[cnt++] = kiln_xstrndup(out.data + i, len);
                v[cnt] = NULL;
                i += len + 1;
        }
        kiln_buf_release(&out);
        qsort(v, cnt, sizeof(char *), cmp_str);
        return v;
}

/* Reports the differences of two sorted lists; true when equal. */
static bool same_list(const char *what, char *const *got, char *const *want)
{
        size_t i = 0, j = 0, shown = 0;
        bool same = true;
        while ((got && got[i]) || (want && want[j])) {
                int c = !got[i] ? 1 : !want[j] ? -1 : strcmp(got[i], want[j]);
                if (c == 0) {
                        i++, j++;
                        continue;
                }
                same = false;
                if (shown++ < 12)
                        fprintf(stderr, "  %s: %s \"%s\"\n", what,
                                c < 0 ? "kiln lists, expected not" : "kiln misses",
                                c < 0 ? got[i] : want[j]);
                if (c < 0)
                        i++;
                else
                        j++;
        }
        return same;
}

static bool sorted_bytewise(char *const *v)
{
        for (size_t i = 1; v && v[0] && v[i]; i++)
                if (strcmp(v[i - 1], v[i]) >= 0)
                        return false;
        return true;
}

static char **list(const char *root, struct kiln_err **err)
{
        char **paths = NULL;
        if (kiln_source_list(root, &paths, err) < 0)
                return NULL;
        return paths;
}

/* kiln_source_list(root) must equal git's listing. */
static void check_oracle(const char *name, const char *root)
{
        /* git first: kiln then walks a tree with a real .git */
        _cleanup_strv_ char **want = git_oracle(root);
        CHECK(want, "%s: git ls-files failed (is git installed?)", name);
        struct kiln_err *err = NULL;
        _cleanup_strv_ char **got = list(root, &err);
        CHECK(got, "%s: %s", name, err ? err->msg : "");
        kiln_err_free(err);
        if (!got || !want)
                return;
        CHECK(sorted_bytewise(got), "%s: kiln's list is not sorted bytewise", name);
        CHECK(kiln_strv_len(want) > 0, "%s: git lists nothing", name);
        CHECK(same_list(name, got, want), "%s: kiln and git ls-files differ (above)", name);
}

/* A tree: files ('|'-separated paths, content "x"), ignore files
 * ("path" then its text, up to three), symlinks ("name>target", '|'). */
struct tree {
        const char *name;
        const char *files;
        const char *ign[6];
        const char *links;
};

static void build(const char *root, const struct tree *t)
{
        for (const char *p = t->files; p && *p;) {
                const char *e = strchrnul(p, '|');
                _cleanup_free_ char *rel = kiln_xstrndup(p, (size_t)(e - p));
                put(root, rel, "x");
                p = *e ? e + 1 : e;
        }
        for (size_t i = 0; i + 1 < 6 && t->ign[i]; i += 2)
                put(root, t->ign[i], t->ign[i + 1]);
        for (const char *p = t->links; p && *p;) {
                const char *e = strchrnul(p, '|');
                _cleanup_free_ char *l = kiln_xstrndup(p, (size_t)(e - p));
                char *gt = strchr(l, '>');
                *gt = '\0';
                put_link(root, l, gt + 1);
                p = *e ? e + 1 : e;
        }
}

static const struct tree oracle_trees[] = {
    {"basic",
     "a.log|keep.log|sub/keep.log|sub/b.log|build/out.o|sub/build/out.o|secret|sub/secret|"
     "docs/a.tmp|docs/x/y/b.tmp|docs/x/y/b.md|src/main.py|src/main.pyc|"
     "src/__pycache__/main.cpython-311.pyc|__pycache__/x|.cache/pip/y|src/.cache|README.md",
     {".gitignore", "*.log\n!keep.log\nbuild/\n/secret\ndocs/**/*.tmp\n"},
     "sym-dir>src|sym-file>README.md|sym-dangling>nowhere|sym-out>/etc"},
    /* nested files; a .gitignore inside an excluded directory is never read;
     * "dironly/" does not match the file dironly */
    {"nested",
     "a.txt|only-root|x/only-root|dironly|x/dironly/f|x/keep.txt|x/other.txt|x/local|"
     "x/y/local|x/y/keep.txt|x/nested/deep/f|x/y/nested/deep/f|x/y/z.txt|other/keep.txt|"
     "other/local|ex/f|.gitignore2",
     {".gitignore", "*.txt\n/only-root\ndironly/\nex/\n", "x/.gitignore",
      "!keep.txt\n/local\nnested/deep/\n", "x/y/.gitignore", "!*.txt\n"},
     NULL},
    {"nested-ex", "ex/f|ex/g", {".gitignore", "ex/\n", "ex/.gitignore", "!*\n"}, NULL},
    /* git's documented example: only foo/bar survives under / */
    {"doc",
     "foo/bar/x|foo/baz|top|other/y",
     {".gitignore", "/*\n!/foo\n/foo/*\n!/foo/bar\n"},
     NULL},
    /* an excluded parent cannot be re-included into; escapes */
    {"reinclude",
     "logs/important.log|logs/other.log|logs2/important.log|logs2/other.log|a.bak|keep.bak|"
     "d/keep.bak|Temp1/f|temporary/f|Tempfile|#hash|!bang|sp |sp",
     {".gitignore", "logs/\n!logs/important.log\nlogs2/*\n!logs2/important.log\n*.bak\n"
                    "!/keep.bak\n[Tt]emp*/\n\\#hash\n\\!bang\nsp\\ \n"},
     NULL},
};

static void test_oracle_trees(void)
{
        for (size_t i = 0; i < sizeof(oracle_trees) / sizeof(oracle_trees[0]); i++) {
                _cleanup_free_ char *root = new_tree(oracle_trees[i].name);
                build(root, &oracle_trees[i]);
                check_oracle(oracle_trees[i].name, root);
        }
        /* and kiln's own expectations for two of them */
        static const struct {
                const struct tree *t;
                char *want[4];
        } own[] = {
            {&oracle_trees[2], {".gitignore", NULL}},
            {&oracle_trees[3], {"foo/bar/x", NULL}},
        };
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
                _cleanup_free_ char *name = kiln_xasprintf("own-%s", own[i].t->name);
                _cleanup_free_ char *root = new_tree(name);
                build(root, own[i].t);
                struct kiln_err *err = NULL;
                _cleanup_strv_ char **got = list(root, &err);
                kiln_err_free(err);
                CHECK(got && same_list(name, got, own[i].want), "%s", name);
        }
}

/* ---------- random differential test against git ---------- */

static uint64_t rng_state;

static uint32_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state >> 11);
}

static const char *const rand_tokens[] = {
    "a",     "a",           "b",  "b",  "ab",  ".", "*", "*", "**", "?", "/", "/", "[ab]", "[!a]",
    "[a-b]", "[[:alpha:]]", "[]", "\\", "\\*", "!", "#", " ", "]",  "[", "-", "x", ".b",
};

static void rand_pattern(struct kiln_buf *b)
{
        unsigned n = 1 + rng() % 5;
        for (unsigned i = 0; i < n; i++)
                kiln_buf_puts(b,
                              rand_tokens[rng() % (sizeof(rand_tokens) / sizeof(rand_tokens[0]))]);
        kiln_buf_puts(b, "\n");
}

static const char *const rand_files[] = {
    "aa",  "ba",    ".a",     "a.b",     "a*b",  "a[b",     "!a",    "#a",      "a b",
    "a ",  "ab",    "a\\b",   "a/ab",    "a/b",  "a/.b",    "a/a/a", "a/a/b.b", "a/ba/a",
    "b/a", "b/b/a", "b/b/ab", "c/a/b/a", "c/ab", "x/y/z/a", "x/y/b", "b/b/.b",  "ab.x",
};

/* the directories of rand_files, parents first */
static const char *const rand_dirs[] = {"a",   "a/a",   "a/ba", "b",   "b/b",  "c",
                                        "c/a", "c/a/b", "x",    "x/y", "x/y/z"};

static const char *const rand_subdirs[] = {"a", "b/b", "c/a", "x"};

static void test_random_oracle(void)
{
        const char *seed_env = getenv("KILN_TEST_SEED");
        uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x6b696c6e;
        rng_state = seed ? seed : 1;
        _cleanup_free_ char *root = new_tree("random");
        bool created_ok = true;
        enum { CASES = 200 };
        for (unsigned c = 0; c < CASES; c++) {
                _cleanup_free_ char *dir = kiln_xasprintf("%s/c%03u", root, c);
                mkdir(dir, 0755);
                _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                for (size_t i = 0; i < sizeof(rand_dirs) / sizeof(rand_dirs[0]); i++)
                        mkdirat(dfd, rand_dirs[i], 0755);
                for (size_t i = 0; i < sizeof(rand_files) / sizeof(rand_files[0]); i++) {
                        int fd = openat(dfd, rand_files[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd < 0)
                                created_ok = false;
                        else
                                close(fd);
                }
                symlinkat("a", dfd, "la");
                symlinkat("zz", dfd, "lz");
                _cleanup_buf_ struct kiln_buf gi = {0};
                for (unsigned k = 1 + rng() % 3; k > 0; k--)
                        rand_pattern(&gi);
                put(dir, ".gitignore", gi.data);
                if (rng() % 2) {
                        _cleanup_buf_ struct kiln_buf sub = {0};
                        for (unsigned k = 1 + rng() % 2; k > 0; k--)
                                rand_pattern(&sub);
                        const char *sd = rand_subdirs[rng() % 4];
                        _cleanup_free_ char *rel = kiln_xasprintf("%s/.gitignore", sd);
                        put(dir, rel, sub.data);
                }
        }
        CHECK(created_ok, "random: could not create the tree's files");
        _cleanup_strv_ char **want = git_oracle(root);
        CHECK(want, "random: git ls-files failed");
        struct kiln_err *err = NULL;
        _cleanup_strv_ char **got = list(root, &err);
        CHECK(got, "random: %s", err ? err->msg : "");
        kiln_err_free(err);
        if (!got || !want)
                return;
        bool same = same_list("random", got, want);
        CHECK(same,
              "random differential test (seed %#llx, KILN_TEST_SEED to replay, tree "
              "%s kept) differs from git",
              (unsigned long long)seed, root);
        if (!same)
                setenv("KILN_TEST_KEEP", "1", 1);
        CHECK(kiln_strv_len(got) > CASES * 5, "random: suspiciously few files (%zu)",
              kiln_strv_len(got));
}

/* ---------- .dockerignore trees ---------- */

static const struct tree docker_base = {
    "docker",
    "a.go|b.txt|.env|docs/README.md|docs/other.md|docs/sub/x.md|"
    "node_modules/pkg/index.js|src/main.go|src/test/fix.txt|foo/a/keep|foo/a/other",
    {NULL},
    NULL};

struct docker_tree {
        const char *name, *di, *gi;
        const char *want[16];
};

static const struct docker_tree docker_trees[] = {
    {"plain",
     "docs\n!docs/README.md\nnode_modules\n*.txt\n.env\nfoo\n",
     NULL,
     {".dockerignore", "a.go", "docs/README.md", "src/main.go", "src/test/fix.txt", NULL}},
    /* .dockerignore does not exclude itself (docker-py adds !.dockerignore) */
    {"all-but-src", "*\n!src\n", NULL, {".dockerignore", "src/main.go", "src/test/fix.txt", NULL}},
    {"md",
     "**/*.md\n!**/README.md\n",
     NULL,
     {".dockerignore", ".env", "a.go", "b.txt", "docs/README.md", "foo/a/keep", "foo/a/other",
      "node_modules/pkg/index.js", "src/main.go", "src/test/fix.txt", NULL}},
    /* exceptions with wildcards: excluded directories are still walked */
    {"only-go", "**\n!**/*.go\n", NULL, {".dockerignore", "a.go", "src/main.go", NULL}},
    {"wild-exception",
     "foo\n!foo/*/keep\n*\n!foo\n!a.go\n",
     NULL,
     {".dockerignore", "a.go", "foo/a/keep", "foo/a/other", NULL}},
    {"dir-exception",
     "foo\n!foo/*/keep\n",
     NULL,
     {".dockerignore", ".env", "a.go", "b.txt", "docs/README.md", "docs/other.md", "docs/sub/x.md",
      "foo/a/keep", "node_modules/pkg/index.js", "src/main.go", "src/test/fix.txt", NULL}},
    /* all three apply: a file is copied only when none excludes it */
    {"with-git",
     "docs\n",
     "*.go\n!docs/\n.dockerignore\n",
     {".env", ".gitignore", "b.txt", "foo/a/keep", "foo/a/other", "node_modules/pkg/index.js",
      "src/test/fix.txt", NULL}},
    {"empty",
     "# nothing\n\n",
     NULL,
     {".dockerignore", ".env", "a.go", "b.txt", "docs/README.md", "docs/other.md", "docs/sub/x.md",
      "foo/a/keep", "foo/a/other", "node_modules/pkg/index.js", "src/main.go", "src/test/fix.txt",
      NULL}},
};

static void test_docker_trees(void)
{
        for (size_t i = 0; i < sizeof(docker_trees) / sizeof(docker_trees[0]); i++) {
                const struct docker_tree *t = &docker_trees[i];
                _cleanup_free_ char *name = kiln_xasprintf("docker-%s", t->name);
                _cleanup_free_ char *root = new_tree(name);
                build(root, &docker_base);
                put(root, ".dockerignore", t->di);
                if (t->gi)
                        put(root, ".gitignore", t->gi);
                struct kiln_err *err = NULL;
                _cleanup_strv_ char **got = list(root, &err);
                CHECK(got, "%s: %s", name, err ? err->msg : "");
                kiln_err_free(err);
                if (got)
                        CHECK(same_list(name, got, (char *const *)t->want), "%s: listing differs",
                              name);
        }
}

/* ---------- errors and limits ---------- */

static void check_error(const char *name, const char *root, const char *want1, const char *want2)
{
        struct kiln_err *err = NULL;
        char **got = list(root, &err);
        CHECK(!got && err && strstr(err->msg, want1) && (!want2 || strstr(err->msg, want2)),
              "%s: want an error with \"%s\" and \"%s\", got %s", name, want1, want2 ? want2 : "",
              err ? err->msg : "success");
        kiln_strv_free(got);
        kiln_err_free(err);
}

static void check_ok(const char *name, const char *root, size_t n)
{
        struct kiln_err *err = NULL;
        _cleanup_strv_ char **got = list(root, &err);
        CHECK(got && kiln_strv_len(got) == n, "%s: %s (%zu entries, want %zu)", name,
              err ? err->msg : "ok", got ? kiln_strv_len(got) : 0, n);
        kiln_err_free(err);
}

static void test_errors(void)
{
        /* the root */
        _cleanup_free_ char *missing = kiln_xasprintf("%s/does-not-exist", tmp);
        check_error("missing root", missing, missing, "No such file");

        /* ignore files are bounded */
        _cleanup_free_ char *big = new_tree("big");
        char *text = kiln_xmalloc((1 << 20) + 2);
        memset(text, '#', (1 << 20) + 1);
        text[(1 << 20) + 1] = '\0';
        put(big, "sub/.gitignore", text);
        _cleanup_free_ char *want =
            kiln_xasprintf("%s/sub/.gitignore: larger than 1048576 bytes", big);
        check_error("big .gitignore", big, want, NULL);
        text[1 << 20] = '\0'; /* exactly the limit */
        put(big, "sub/.gitignore", text);
        check_ok("1 MiB .gitignore", big, 1);
        put(big, ".dockerignore", text);
        check_ok("1 MiB .dockerignore", big, 2);
        text[1 << 20] = '#';
        put(big, ".dockerignore", text);
        _cleanup_free_ char *want_di = kiln_xasprintf("%s/.dockerignore: larger than", big);
        check_error("big .dockerignore", big, want_di, NULL);
        free(text);

        /* ignore files are read only as regular files */
        _cleanup_free_ char *ln = new_tree("link-ignore");
        put(ln, "real", "x\n");
        put(ln, "sub/f", "x");
        put_link(ln, "sub/.gitignore", "../real");
        _cleanup_free_ char *want_ln = kiln_xasprintf("%s/sub/.gitignore: is a symlink", ln);
        check_error("symlinked .gitignore", ln, want_ln, NULL);
        _cleanup_free_ char *ln2 = new_tree("link-dockerignore");
        put_link(ln2, ".dockerignore", "/etc/passwd");
        check_error("symlinked .dockerignore", ln2, ".dockerignore: is a symlink", NULL);
        _cleanup_free_ char *fifo_gi = new_tree("fifo-ignore");
        _cleanup_free_ char *fp = kiln_xasprintf("%s/.gitignore", fifo_gi);
        CHECK(mkfifo(fp, 0644) == 0, "mkfifo: %s", strerror(errno));
        check_error("fifo .gitignore", fifo_gi, ".gitignore: not a regular file", NULL);
        _cleanup_free_ char *dir_gi = new_tree("dir-ignore");
        put(dir_gi, ".gitignore/x", "x");
        check_error("directory .gitignore", dir_gi, ".gitignore: not a regular file", NULL);

        /* special files: an error unless excluded */
        _cleanup_free_ char *sp = new_tree("special");
        put(sp, "a", "x");
        _cleanup_free_ char *pipe = kiln_xasprintf("%s/d/pipe", sp);
        put(sp, "d/f", "x");
        CHECK(mkfifo(pipe, 0644) == 0, "mkfifo: %s", strerror(errno));
        check_error("fifo", sp, pipe, "a fifo cannot be copied");
        put(sp, ".gitignore", "pipe\n");
        check_ok("fifo excluded by .gitignore", sp, 3);
        put(sp, ".gitignore", "");
        put(sp, ".dockerignore", "d/p*\n");
        check_ok("fifo excluded by .dockerignore", sp, 4);

        /* .dockerignore patterns are checked */
        _cleanup_free_ char *bad = new_tree("bad-dockerignore");
        put(bad, ".dockerignore", "ok\n\n[a-\n");
        _cleanup_free_ char *want_bad = kiln_xasprintf("%s/.dockerignore:3: syntax error", bad);
        check_error("bad .dockerignore", bad, want_bad, NULL);

        /* depth */
        _cleanup_free_ char *deep = new_tree("deep");
        struct kiln_buf rel = {0};
        for (int i = 0; i < 256; i++)
                kiln_buf_puts(&rel, "d/");
        kiln_buf_puts(&rel, "f");
        put(deep, rel.data, "x");
        check_ok("256 directories deep", deep, 1);
        rel.len -= 1;
        kiln_buf_puts(&rel, "d/f");
        put(deep, rel.data, "x");
        check_error("257 directories deep", deep, "more than 256 directories deep", deep);
        kiln_buf_release(&rel);

        /* root given with a trailing slash, and as a symlink to a directory */
        _cleanup_free_ char *r = new_tree("slash");
        put(r, "sub/.gitignore", "[\n");
        put(r, "sub/f", "x");
        _cleanup_free_ char *r_slash = kiln_xasprintf("%s/", r);
        check_ok("trailing slash", r_slash, 2);
        _cleanup_free_ char *r_link = kiln_xasprintf("%s/slash-link", tmp);
        CHECK(symlink(r, r_link) == 0, "symlink");
        check_ok("root symlink", r_link, 2);
}

/* .git is never listed, at any depth; nor are directories. */
static void test_dot_git(void)
{
        _cleanup_free_ char *root = new_tree("dotgit");
        put(root, ".git/config", "x");
        put(root, "sub/.git", "gitdir: elsewhere\n");
        put(root, "sub/f", "x");
        put(root, "x/.git/HEAD", "x");
        put(root, "x/y", "x");
        _cleanup_free_ char *empty = kiln_xasprintf("%s/empty", root);
        mkdir(empty, 0755);
        struct kiln_err *err = NULL;
        _cleanup_strv_ char **got = list(root, &err);
        kiln_err_free(err);
        char *want[] = {"sub/f", "x/y", NULL};
        CHECK(got && same_list("dotgit", got, want), ".git entries must not be listed");
}

int main(void)
{
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        /* git must not read the machine's configuration or global ignores */
        setenv("HOME", tmp, 1);
        setenv("XDG_CONFIG_HOME", tmp, 1);
        setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
        setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
        unsetenv("GIT_DIR");
        unsetenv("GIT_WORK_TREE");
        test_git_rows();
        test_docker_rows();
        test_pathological();
        test_oracle_trees();
        test_random_oracle();
        test_docker_trees();
        test_errors();
        test_dot_git();
        struct kiln_err *err = NULL;
        if (!getenv("KILN_TEST_KEEP"))
                kiln_rm_rf(tmp, &err);
        kiln_err_free(err);
        TEST_DONE();
}
