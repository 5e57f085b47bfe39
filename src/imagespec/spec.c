/* Loading a spec: from a file, stdin or a string, through the YAML composer
 * (yaml.c) and the field table (fields.c) into a struct kiln_spec; base
 * specs named by file; and the spec's lifecycle. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

int kiln_spec_refresh(struct kiln_spec *s, struct kiln_spec_value *new_raw, struct kiln_err **err)
{
        _cleanup_spec_typed_ struct kiln_spec next = {
            .path = s->path, .dir = s->dir, .raw = new_raw, .errname = s->errname};

        if (kiln_spec_typed_build(&next, 0, err) < 0)
                return -1;
        /* s takes next's typed view; next takes the old one, freed on return */
        struct kiln_spec old = *s;
        *s = next;
        s->path = old.path;
        s->dir = old.dir;
        s->errname = old.errname;
        s->pool = old.pool;
        s->n_pool = old.n_pool;
        s->cap_pool = old.cap_pool;
        s->loaded_modules = old.loaded_modules;
        old.loaded_modules = NULL;
        kiln_spec_pass_loaded_modules(s);
        next = old;
        return 0;
}

#define BASE_FILES_MAX 8

/* The spec files being loaded as bases, outermost first: a file that names
 * one of them again is a cycle. */
static __thread char *base_files[BASE_FILES_MAX];
static __thread int n_base_files;

int kiln_spec_load_base_file(struct kiln_spec *s, const struct kiln_spec_value *v,
                             struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_spec_path(s, v->text);
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return kiln_spec_field_error(s, v, "base_image", err, "spec file %s: %s", path,
                                             strerror(errno));
        bool cycle = false;
        for (int i = 0; i < n_base_files && !cycle; i++)
                cycle = !strcmp(base_files[i], real);
        if (cycle)
                return kiln_spec_field_error(
                    s, v, "base_image", err,
                    "%s is already being read as a base of this spec (a cycle)", path);
        if (n_base_files >= BASE_FILES_MAX)
                return kiln_spec_field_error(s, v, "base_image", err,
                                             "spec files name each other as base deeper than %d",
                                             BASE_FILES_MAX);
        if (kiln_spec_load_file(path, &s->base_spec, err) < 0) {
                if (v->line > 0)
                        return kiln_err_prefix(err, "%s:%d:%d: base_image", s->errname, v->line,
                                               v->col);
                return kiln_err_prefix(err, "%s: base_image", s->errname);
        }
        return 0;
}

/* ---------- lifecycle ---------- */

static int spec_alloc(const char *errname, const char *base_dir, struct kiln_spec **out,
                      struct kiln_err **err)
{
        _cleanup_spec_ struct kiln_spec *s = kiln_xcalloc(1, sizeof(*s));
        char cwd[PATH_MAX];

        s->errname = kiln_xstrdup(errname);
        if (base_dir && base_dir[0] == '/') {
                s->dir = kiln_xstrdup(base_dir);
        } else {
                if (!getcwd(cwd, sizeof(cwd)))
                        return kiln_err_sys(err, "getcwd");
                s->dir = base_dir && *base_dir && strcmp(base_dir, ".")
                             ? kiln_xasprintf("%s/%s", cwd, base_dir)
                             : kiln_xstrdup(cwd);
        }
        *out = steal_pointer(&s);
        return 0;
}

int kiln_spec_load_string(const char *yaml, size_t len, const char *name_for_errors,
                          const char *base_dir, struct kiln_spec **out, struct kiln_err **err)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        struct kiln_spec_value *root = NULL;
        const char *name = name_for_errors ? name_for_errors : "<spec>";

        if (spec_alloc(name, base_dir, &s, err) < 0)
                return -1;
        if (kiln_spec_yaml_parse(s, yaml, len, name, &root, err) < 0)
                return -1;
        if (kiln_spec_refresh(s, root, err) < 0)
                return -1;
        *out = steal_pointer(&s);
        return 0;
}

/* While a spec file loads, its real path is on base_files, so that a
 * base_image naming it again is a cycle (kiln_spec_load_base_file).
 * Returns whether it was pushed: past BASE_FILES_MAX,
 * kiln_spec_load_base_file refuses to go on. */
static bool base_files_push(const char *path)
{
        char *real = n_base_files < BASE_FILES_MAX ? realpath(path, NULL) : NULL;
        if (real)
                base_files[n_base_files++] = real;
        return real != NULL;
}

static void base_files_popp(bool *pushed)
{
        if (*pushed)
                free(base_files[--n_base_files]);
}

int kiln_spec_load_file(const char *path, struct kiln_spec **out, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_free_ char *dir = NULL;
        _cleanup_spec_ struct kiln_spec *s = NULL;

        /* one byte over the limit is read, so that the parser refuses a
         * spec too large as an invalid spec (exit 8) naming the file */
        if (!strcmp(path, "-")) {
                if (kiln_read_fd(0, "<stdin>", KILN_SPEC_MAX_BYTES + 1, &b, err) < 0)
                        return kiln_err_prefix(err, "reading the spec");
                return kiln_spec_load_string(b.data ? b.data : "", b.len, "<stdin>", NULL, out,
                                             err);
        }
        if (kiln_read_file(path, KILN_SPEC_MAX_BYTES + 1, &b, err) < 0)
                return -1;
        const char *slash = strrchr(path, '/');
        dir = slash ? (slash == path ? kiln_xstrdup("/")
                                     : kiln_xstrndup(path, (size_t)(slash - path)))
                    : kiln_xstrdup(".");
        /* only its cleanup uses it (clang: unused) */
        _cleanup_(base_files_popp) bool pushed __attribute__((unused)) = base_files_push(path);
        if (kiln_spec_load_string(b.data ? b.data : "", b.len, path, dir, &s, err) < 0)
                return -1;
        s->path = kiln_xstrdup(path);
        *out = steal_pointer(&s);
        return 0;
}

void kiln_spec_free(struct kiln_spec *s)
{
        if (!s)
                return;
        kiln_spec_typed_release(s);
        kiln_spec_pool_release(s);
        kiln_strv_free(s->loaded_modules);
        free(s->path);
        free(s->dir);
        free(s->errname);
        free(s);
}

void kiln_spec_freep(struct kiln_spec **s)
{
        kiln_spec_free(*s);
}

/* ---------- the builder API's empty spec ---------- */

struct kiln_spec *kiln_spec_new(const char *base_dir)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_spec *s = NULL;

        /* when getcwd fails, fall back to "/", which needs none */
        if (spec_alloc("<command line>", base_dir, &s, &err) < 0)
                spec_alloc("<command line>", "/", &s, &err);
        s->raw = kiln_spec_value_new(s, KILN_SPEC_MAP, 0, 0);
        if (kiln_spec_refresh(s, s->raw, &err) < 0)
                abort(); /* an empty spec is always valid */
        return s;
}
