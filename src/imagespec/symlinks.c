/* Symlinks that lead out of the tree a spec copies. A source_root file
 * that is a symlink is copied as its target's bytes (flytekit's
 * shutil.copy follows it), so `leak -> /etc/shadow` or `-> ~/.docker/
 * config.json` in an untrusted repository would publish a host secret in
 * the image; a symlink under a copy entry is kept as a link, which then
 * points the image at the build host's layout, and a copy entry reached
 * through a symlinked directory reads files from outside the spec's
 * directory. kiln_build refuses all of them unless asked
 * (--follow-external-symlinks). Links that stay inside keep their
 * behaviour, and nothing here changes what the tag hashes. */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_DEPTH_MAX 256

static bool inside(const char *tree, const char *path)
{
        size_t n = strlen(tree);
        if (!strcmp(tree, "/"))
                return true;
        return !strncmp(path, tree, n) && (path[n] == '/' || path[n] == '\0');
}

struct found {
        const char *tree; /* real path */
        struct kiln_buf *list;
        size_t n;
};

/* Notes the link at path (shown as what -> its target) when it resolves
 * outside f->tree: by its real path, or lexically when it dangles. */
static int check_link(struct found *f, const char *path, const char *what, struct kiln_err **err)
{
        char target[PATH_MAX];
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len < 0)
                return kiln_err_sys(err, "read symlink %s", path);
        target[len] = '\0';
        _cleanup_free_ char *dest = realpath(path, NULL);
        if (!dest) {
                _cleanup_free_ char *dir = kiln_xstrdup(path);
                char *slash = strrchr(dir, '/');
                *slash = '\0';
                _cleanup_free_ char *joined =
                    target[0] == '/' ? kiln_xstrdup(target) : kiln_xasprintf("%s/%s", dir, target);
                dest = kiln_spec_lexical_path(joined);
        }
        if (inside(f->tree, dest))
                return 0;
        kiln_buf_printf(f->list, "%s  %s -> %s", f->n ? "\n" : "", what, target);
        f->n++;
        return 0;
}

/* Every symlink below dir (not followed), shown as rel/NAME. */
static int walk(struct found *f, const char *dir, const char *rel, unsigned depth,
                struct kiln_err **err)
{
        if (depth > WALK_DEPTH_MAX)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "copy: %s: more than %d directories deep", rel, WALK_DEPTH_MAX);
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return kiln_err_sys(err, "open %s", dir);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, de->d_name);
                _cleanup_free_ char *r = kiln_xasprintf("%s/%s", rel, de->d_name);
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return kiln_err_sys(err, "stat %s", p);
                if (S_ISLNK(st.st_mode) && check_link(f, p, r, err) < 0)
                        return -1;
                if (S_ISDIR(st.st_mode) && walk(f, p, r, depth + 1, err) < 0)
                        return -1;
        }
        return 0;
}

/* source_root's files that are symlinks leading out of it. */
static int source_links(const struct kiln_spec *s, struct found *f, struct kiln_err **err)
{
        _cleanup_free_ char *root = NULL;
        _cleanup_strv_ char **files = NULL;
        if (kiln_spec_source_files(s, &root, &files, err) < 0)
                return -1;
        if (!root)
                return 0;
        _cleanup_free_ char *real = realpath(root, NULL);
        if (!real)
                return kiln_err_sys(err, "source_root: %s", root);
        f->tree = real;
        for (size_t i = 0; files[i]; i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", root, files[i]);
                _cleanup_free_ char *what = kiln_xasprintf("source_root: %s", files[i]);
                struct stat st;
                if (lstat(p, &st) < 0)
                        return kiln_err_sys(err, "source_root: %s", p);
                if (S_ISLNK(st.st_mode) && check_link(f, p, what, err) < 0)
                        return -1;
        }
        f->tree = NULL;
        return 0;
}

/* copy entries reached through a symlinked directory out of the spec's
 * directory, and symlinks at or below them that lead out of it. */
static int copy_links(const struct kiln_spec *s, struct found *f, struct kiln_err **err)
{
        if (!s->copy || !s->copy[0])
                return 0;
        _cleanup_free_ char *real = realpath(s->dir, NULL);
        if (!real)
                return kiln_err_sys(err, "copy: %s", s->dir);
        f->tree = real;
        for (size_t i = 0; s->copy[i]; i++) {
                const char *path = s->copy_paths[i];
                _cleanup_free_ char *what = kiln_xasprintf("copy: %s", s->copy[i]);
                _cleanup_free_ char *parent = kiln_xstrdup(path);
                *strrchr(parent, '/') = '\0';
                _cleanup_free_ char *preal = realpath(*parent ? parent : "/", NULL);
                if (preal && !inside(real, preal)) {
                        kiln_buf_printf(f->list, "%s  %s -> %s (its directory)", f->n ? "\n" : "",
                                        what, preal);
                        f->n++;
                        continue;
                }
                struct stat st;
                if (lstat(path, &st) < 0)
                        continue; /* the copy step names what is missing */
                if (S_ISLNK(st.st_mode) && check_link(f, path, what, err) < 0)
                        return -1;
                if (S_ISDIR(st.st_mode) && walk(f, path, what, 0, err) < 0)
                        return -1;
        }
        f->tree = NULL;
        return 0;
}

int kiln_spec_check_symlinks(const struct kiln_spec *s, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf list = {0};
        struct found f = {.list = &list};
        if (source_links(s, &f, err) < 0 || copy_links(s, &f, err) < 0)
                return kiln_err_prefix(err, "%s", s->errname);
        if (!f.n)
                return 0;
        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                            "%s: %zu symlink%s lead%s outside the tree copied into the image "
                            "(source_root, or the spec's directory for copy); its target would "
                            "be copied, or the image would point at the build host's files:\n%s\n"
                            "build with --follow-external-symlinks to copy %s as before",
                            s->errname, f.n, f.n == 1 ? "" : "s", f.n == 1 ? "s" : "", list.data,
                            f.n == 1 ? "it" : "them");
}
