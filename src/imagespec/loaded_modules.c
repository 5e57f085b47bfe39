/* source_copy_mode loaded_modules: flytekit copies (and hashes) the files
 * of the Python modules the pyflyte process imported from source_root, a
 * list only that process has. The flytekit plugin writes it to a file
 * (kiln --loaded-modules); this is how a spec takes it and which of its
 * files each source_root counts, judged as flytekit judges them
 * (flytekit/tools/script_mode.py, list_imported_modules_as_files). */
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* pyflyte passes its whole sys.modules through this list: thousands of
 * paths at most, far below this. */
#define LOADED_MODULES_MAX_BYTES ((size_t)16 << 20)

char *kiln_spec_lexical_path(const char *abs)
{
        _cleanup_free_ char *copy = kiln_xstrdup(abs);
        struct kiln_buf out = {0};
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (!strcmp(c, "."))
                        continue;
                if (!strcmp(c, "..")) {
                        char *slash = out.data ? strrchr(out.data, '/') : NULL;
                        if (slash) {
                                out.len = (size_t)(slash - out.data);
                                out.data[out.len] = '\0';
                        }
                        continue;
                }
                kiln_buf_printf(&out, "/%s", c);
        }
        if (!out.len)
                kiln_buf_puts(&out, "/");
        return kiln_buf_steal(&out);
}

static void set_chain(struct kiln_spec *s, char *const *paths)
{
        for (; s; s = s->base_spec) {
                kiln_strv_free(s->loaded_modules);
                size_t n = kiln_strv_len(paths);
                s->loaded_modules = kiln_xcalloc(n + 1, sizeof(char *));
                for (size_t i = 0; i < n; i++)
                        s->loaded_modules[i] = kiln_xstrdup(paths[i]);
        }
}

void kiln_spec_pass_loaded_modules(struct kiln_spec *s)
{
        if (s->loaded_modules && s->base_spec)
                set_chain(s->base_spec, s->loaded_modules);
}

int kiln_spec_set_loaded_modules(struct kiln_spec *s, const char *file, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_read_file(file, LOADED_MODULES_MAX_BYTES, &b, err) < 0)
                return kiln_err_prefix(err, "--loaded-modules");
        _cleanup_strv_ char **v = kiln_xcalloc(1, sizeof(char *));
        size_t n = 0, line = 0;
        for (const char *p = b.data ? b.data : "", *end = p + b.len; p < end; line++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
                const char *next = nl ? nl + 1 : end;
                if (len == 0) {
                        p = next;
                        continue;
                }
                if (memchr(p, '\0', len))
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "--loaded-modules %s:%zu: a path holds a NUL byte",
                                            file, line + 1);
                if (p[0] != '/')
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "--loaded-modules %s:%zu: \"%.*s\" is not an "
                                            "absolute path (module files are listed as Python's "
                                            "module.__file__ gives them)",
                                            file, line + 1, (int)(len > 200 ? 200 : len), p);
                v = kiln_xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = kiln_xstrndup(p, len);
                v[n] = NULL;
                p = next;
        }
        set_chain(s, v);
        return 0;
}

/* The path's components as os.path.commonpath sees them: '' and '.'
 * dropped, '..' kept. */
static size_t components(const char *path, char ***out)
{
        _cleanup_free_ char *copy = kiln_xstrdup(path);
        char **v = kiln_xcalloc(1, sizeof(char *));
        size_t n = 0;
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (!strcmp(c, "."))
                        continue;
                v = kiln_xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = kiln_xstrdup(c);
                v[n] = NULL;
        }
        *out = v;
        return n;
}

/* flytekit's _file_is_in_directory: os.path.commonpath([file, dir]) ==
 * dir, with dir compared as given. So a relative source_root (module
 * files are absolute: commonpath raises, which counts as outside) or one
 * written with a trailing '/', '//' or '.' holds no module file. */
static bool in_directory(const char *file, const char *dir)
{
        if (file[0] != '/' || dir[0] != '/')
                return false;
        _cleanup_strv_ char **f = NULL, **d = NULL;
        size_t nf = components(file, &f), nd = components(dir, &d);
        size_t k = 0;
        while (k < nf && k < nd && !strcmp(f[k], d[k]))
                k++;
        struct kiln_buf common = {0};
        for (size_t i = 0; i < k; i++)
                kiln_buf_printf(&common, "/%s", f[i]);
        if (!common.len)
                kiln_buf_puts(&common, "/");
        _cleanup_free_ char *c = kiln_buf_steal(&common);
        return !strcmp(c, dir);
}

int kiln_spec_loaded_files(const struct kiln_spec *s, char **root, char ***files,
                           struct kiln_err **err)
{
        _cleanup_free_ char *given = kiln_spec_path(s, s->source_root);
        _cleanup_free_ char *r = kiln_spec_lexical_path(given);
        size_t n = kiln_strv_len(s->loaded_modules), k = 0;
        _cleanup_strv_ char **keep = kiln_xcalloc(n + 1, sizeof(char *));
        size_t rlen = strcmp(r, "/") ? strlen(r) : 0;
        for (size_t i = 0; i < n; i++) {
                const char *m = s->loaded_modules[i];
                if (!in_directory(m, s->source_root))
                        continue;
                /* os.path.relpath(file, source_root): both normalized */
                _cleanup_free_ char *norm = kiln_spec_lexical_path(m);
                if (strncmp(norm, r, rlen) || norm[rlen] != '/')
                        return kiln_spec_field_error(
                            s, kiln_spec_value_get(s->raw, "source_root"), "source_root", err,
                            "loaded module %s (--loaded-modules) leads out of %s", m, r);
                struct stat st;
                if (stat(norm, &st) < 0)
                        return kiln_err_sys(err, "%s: source_root: loaded module %s", s->errname,
                                            m);
                if (!S_ISREG(st.st_mode))
                        return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                            "%s: source_root: loaded module %s is not a file",
                                            s->errname, m);
                bool dup = false;
                for (size_t j = 0; j < k && !dup; j++)
                        dup = !strcmp(keep[j], norm + rlen + 1);
                if (!dup)
                        keep[k++] = kiln_xstrdup(norm + rlen + 1);
        }
        /* flytekit sorts the absolute paths: under one root, the relative
         * ones in the same order */
        qsort(keep, k, sizeof(char *), kiln_spec_str_cmp);
        *files = steal_pointer(&keep);
        *root = steal_pointer(&r);
        return 0;
}
