/* Which files of a source tree a build copies (ImageSpec source_root): a
 * walk that applies the root's .dockerignore, every .gitignore (each to
 * its subtree) and flytekit's standard ignores (ignore.c matches them),
 * and the view of it that flytekit hashes. */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define IGNORE_FILE_MAX ((size_t)1 << 20)
#define WALK_DEPTH_MAX  256

/* How long a pattern list was: patterns added after it (a subtree's
 * .gitignore) go when the mark goes out of scope (the walk leaves it). */
struct ignore_mark {
        struct kiln_ignore *ig;
        size_t n;
};

static void ignore_mark_restore(struct ignore_mark *m)
{
        kiln_ignore_truncate(m->ig, m->n);
}
#define _cleanup_ignore_mark_ _cleanup_(ignore_mark_restore)

/* flytekit's STANDARD_IGNORE_PATTERNS, read as gitignore patterns. */
static const char standard_ignores[] = "*.pyc\n.cache\n.cache/*\n__pycache__\n**/__pycache__\n";

struct walk {
        const char *root; /* for messages, without trailing '/' */
        struct kiln_ignore *std, *git, *docker;
        char **v; /* the files found so far, NULL-terminated */
        size_t n, cap;
};

static void walk_release(struct walk *w)
{
        kiln_strv_free(w->v);
        *w = (struct walk){0};
}
#define _cleanup_walk_ _cleanup_(walk_release)

static char *walk_shown(const struct walk *w, const char *rel)
{
        return kiln_xasprintf("%s%s%s", w->root, *rel ? "/" : "", rel);
}

/* Reads an ignore file named name in dirfd, bounded. *found is false when
 * there is none. Ignore files are read only as regular files: a symlink
 * (which could lead out of the tree) or a fifo is an error, not skipped,
 * so that what the user meant to exclude is never copied silently. */
static int read_ignore_file(const struct walk *w, int dirfd, const char *rel, const char *name,
                            struct kiln_buf *out, bool *found, struct kiln_err **err)
{
        *found = false;
        _cleanup_free_ char *relname =
            *rel ? kiln_xasprintf("%s/%s", rel, name) : kiln_xstrdup(name);
        _cleanup_free_ char *shown = walk_shown(w, relname);
        _cleanup_close_ int fd =
            openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ELOOP)
                        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                            "%s: is a symlink; ignore files are read only as "
                                            "regular files (replace the link with a copy)",
                                            shown);
                return kiln_err_sys(err, "open %s", shown);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", shown);
        if (!S_ISREG(st.st_mode))
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: not a regular file", shown);
        if ((uint64_t)st.st_size > IGNORE_FILE_MAX)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: larger than %zu bytes", shown,
                                    IGNORE_FILE_MAX);
        if (kiln_read_fd(fd, shown, IGNORE_FILE_MAX, out, err) < 0)
                return -1;
        *found = true;
        return 0;
}

static void walk_push(struct walk *w, const char *rel)
{
        if (w->n + 2 > w->cap) {
                w->cap = w->cap ? w->cap * 2 : 64;
                w->v = kiln_xrealloc(w->v, w->cap * sizeof(char *));
        }
        w->v[w->n++] = kiln_xstrdup(rel);
        w->v[w->n] = NULL;
}

int kiln_spec_str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *file_kind(mode_t m)
{
        return S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket" : "device node";
}

static int walk_dir(struct walk *w, int dirfd, const char *rel, unsigned depth,
                    struct kiln_err **err);

static int walk_entry(struct walk *w, int dirfd, const char *rel, const char *name, unsigned depth,
                      struct kiln_err **err)
{
        _cleanup_free_ char *child = *rel ? kiln_xasprintf("%s/%s", rel, name) : kiln_xstrdup(name);
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT) /* removed while we walk: as if never there */
                        return 0;
                _cleanup_free_ char *shown = walk_shown(w, child);
                return kiln_err_sys(err, "stat %s", shown);
        }
        bool is_dir = S_ISDIR(st.st_mode);
        if (kiln_ignore_git_decide(w->std, child, is_dir) == 1 ||
            kiln_ignore_git_decide(w->git, child, is_dir) == 1)
                return 0;
        /* docker-py's PatternMatcher never lets .dockerignore exclude itself */
        bool dex = !(!*rel && !strcmp(name, ".dockerignore")) &&
                   kiln_ignore_docker_excluded(w->docker, child);
        if (is_dir) {
                if (dex && !kiln_ignore_docker_may_reinclude(w->docker, child))
                        return 0;
                _cleanup_free_ char *shown = walk_shown(w, child);
                if (depth + 1 > WALK_DEPTH_MAX)
                        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                            "%s: more than %d directories deep", shown,
                                            WALK_DEPTH_MAX);
                _cleanup_close_ int fd =
                    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return kiln_err_sys(err, "open %s", shown);
                return walk_dir(w, fd, child, depth + 1, err);
        }
        if (dex)
                return 0;
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                _cleanup_free_ char *shown = walk_shown(w, child);
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "%s: a %s cannot be copied into an image (only regular "
                                    "files, directories and symlinks); exclude it in "
                                    ".dockerignore or .gitignore",
                                    shown, file_kind(st.st_mode));
        }
        walk_push(w, child);
        return 0;
}

static int walk_dir(struct walk *w, int dirfd, const char *rel, unsigned depth,
                    struct kiln_err **err)
{
        /* only its cleanup uses it (clang: unused) */
        _cleanup_ignore_mark_ struct ignore_mark mark
            __attribute__((unused)) = {w->git, kiln_ignore_len(w->git)};
        _cleanup_buf_ struct kiln_buf gi = {0};
        bool found = false;
        if (read_ignore_file(w, dirfd, rel, ".gitignore", &gi, &found, err) < 0)
                return -1;
        if (found) {
                _cleanup_free_ char *relname =
                    *rel ? kiln_xasprintf("%s/.gitignore", rel) : kiln_xstrdup(".gitignore");
                _cleanup_free_ char *origin = walk_shown(w, relname);
                if (kiln_ignore_add(w->git, rel, gi.data, gi.len, origin, err) < 0)
                        return -1;
        }
        _cleanup_free_ char *shown = walk_shown(w, rel);
        _cleanup_strv_ char **names = NULL;
        size_t n = 0;
        if (kiln_dir_names(dirfd, shown, &names, &n, err) < 0)
                return -1;
        qsort(names, n, sizeof(char *), kiln_spec_str_cmp);
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], ".git") != 0 && /* never copied, at any depth */
                    walk_entry(w, dirfd, rel, names[i], depth, err) < 0)
                        return -1;
        return 0;
}

int kiln_source_list(const char *root, char ***paths, struct kiln_err **err)
{
        *paths = NULL;
        _cleanup_free_ char *shown_root = kiln_xstrdup(root);
        for (size_t n = strlen(shown_root); n > 1 && shown_root[n - 1] == '/';)
                shown_root[--n] = '\0';
        _cleanup_ignore_ struct kiln_ignore *std = kiln_ignore_new(KILN_IGNORE_GIT);
        _cleanup_ignore_ struct kiln_ignore *git = kiln_ignore_new(KILN_IGNORE_GIT);
        _cleanup_ignore_ struct kiln_ignore *docker = kiln_ignore_new(KILN_IGNORE_DOCKER);
        _cleanup_walk_ struct walk w = {
            .root = shown_root, .std = std, .git = git, .docker = docker};
        kiln_ignore_add(std, "", standard_ignores, sizeof(standard_ignores) - 1, "flytekit", NULL);
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open source directory %s", shown_root);
        _cleanup_buf_ struct kiln_buf di = {0};
        bool found = false;
        if (read_ignore_file(&w, fd, "", ".dockerignore", &di, &found, err) < 0)
                return -1;
        if (found) {
                _cleanup_free_ char *shown = walk_shown(&w, ".dockerignore");
                if (kiln_ignore_add(docker, "", di.data, di.len, shown, err) < 0)
                        return -1;
        }
        if (walk_dir(&w, fd, "", 0, err) < 0)
                return -1;
        if (!w.v)
                w.v = kiln_xcalloc(1, sizeof(char *));
        qsort(w.v, w.n, sizeof(char *), kiln_spec_str_cmp);
        *paths = steal_pointer(&w.v);
        return 0;
}

/* ---------- what source_root contributes ---------- */

bool kiln_spec_copies_source(const struct kiln_spec *s)
{
        return s->source_root && s->source_copy_mode && strcmp(s->source_copy_mode, "no_copy");
}

int kiln_spec_source_files(const struct kiln_spec *s, char **root, char ***files,
                           struct kiln_err **err)
{
        *root = NULL;
        *files = NULL;
        if (!kiln_spec_copies_source(s))
                return 0;
        /* loaded_modules copies the files of the modules pyflyte imported
         * from source_root: a list only the pyflyte process has (the
         * flytekit plugin passes it). Copying every file instead would
         * build an image under a name flytekit never computes (its tag
         * hashes those files only), which flytekit then never finds; so
         * without the list kiln refuses and says how to choose. */
        if (!strcmp(s->source_copy_mode, "loaded_modules")) {
                if (s->loaded_modules)
                        return kiln_spec_loaded_files(s, root, files, err);
                const struct kiln_spec_value *mode =
                    kiln_spec_value_get(s->raw, "source_copy_mode");
                if (mode && mode->type != KILN_SPEC_NULL)
                        return kiln_spec_field_error(
                            s, mode, "source_copy_mode", err,
                            "loaded_modules copies the Python modules pyflyte imported from "
                            "source_root, which only pyflyte knows (the flytekit plugin passes "
                            "them with --loaded-modules); set source_copy_mode to all (every "
                            "file not ignored) or no_copy (none)");
                return kiln_spec_field_error(
                    s, kiln_spec_value_get(s->raw, "source_root"), "source_root", err,
                    "without source_copy_mode flytekit copies the Python modules pyflyte "
                    "imported from it (loaded_modules), which only pyflyte knows (the flytekit "
                    "plugin passes them with --loaded-modules); set source_copy_mode to all "
                    "(every file not ignored) or no_copy (none)");
        }
        _cleanup_free_ char *r = kiln_spec_path(s, s->source_root);
        _cleanup_strv_ char **all = NULL;
        if (kiln_source_list(r, &all, err) < 0)
                return kiln_err_prefix(err, "%s: source_root", s->errname);
        /* flytekit's walk lists what exists as a file when followed: a
         * symlink to a file counts (as its target's bytes), a symlink to a
         * directory or nowhere does not, nor does a socket */
        size_t n = kiln_strv_len(all), k = 0;
        char **keep = kiln_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                /* each entry leaves all: a kept one moves to keep, the
                 * rest are freed here (all's cleanup stops at a NULL) */
                _cleanup_free_ char *rel = steal_pointer(&all[i]);
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", r, rel);
                struct stat st;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
                        keep[k++] = steal_pointer(&rel);
        }
        *files = keep;
        *root = steal_pointer(&r);
        return 0;
}
