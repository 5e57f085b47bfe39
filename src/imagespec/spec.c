/* ImageSpec fields: strict validation of the raw tree and the typed view
 * the planner uses, plus the builder API for command-line flags. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <sys/stat.h>
#include <string.h>

#include "kiln/oci.h"
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

enum field_kind {
        F_STR,     /* str */
        F_VERSION, /* str, int or float (flytekit types it str; YAML may not) */
        F_STRLIST, /* list of str */
        F_ENV,     /* mapping str -> scalar */
        F_MOUNTS,  /* list of [src, dst] */
        F_BASE,    /* str or a nested spec mapping */
        F_MAP,     /* any mapping */
};

struct field {
        const char *name;
        enum field_kind kind;
};

/* flytekit's dataclass field order: the order of the hashed dict. */
static const struct field fields[] = {
    {"name", F_STR},
    {"python_version", F_VERSION},
    {"builder", F_STR},
    {"source_root", F_STR},
    {"env", F_ENV},
    {"registry", F_STR},
    {"packages", F_STRLIST},
    {"conda_packages", F_STRLIST},
    {"conda_channels", F_STRLIST},
    {"requirements", F_STR},
    {"apt_packages", F_STRLIST},
    {"cuda", F_VERSION},
    {"cudnn", F_VERSION},
    {"base_image", F_BASE},
    {"platform", F_STR},
    {"pip_index", F_STR},
    {"pip_extra_index_url", F_STRLIST},
    {"pip_secret_mounts", F_MOUNTS},
    {"pip_extra_args", F_STR},
    {"registry_config", F_STR},
    {"entrypoint", F_STRLIST},
    {"commands", F_STRLIST},
    {"tag_format", F_STR},
    {"source_copy_mode", F_STR},
    {"copy", F_STRLIST},
    {"python_exec", F_STR},
    {"runtime_packages", F_STRLIST},
    {"builder_options", F_MAP},
    {"builder_config", F_MAP},
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

const char *kiln_spec_field_name(size_t i)
{
        return i < N_FIELDS ? fields[i].name : NULL;
}

static const struct field *field_find(const char *name)
{
        for (size_t i = 0; i < N_FIELDS; i++)
                if (!strcmp(fields[i].name, name))
                        return &fields[i];
        return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        size_t prev[64], cur[64];

        if (la >= 63 || lb >= 63)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                }
                memcpy(prev, cur, (lb + 1) * sizeof(*prev));
        }
        return prev[lb];
}

/* ---------- errors ---------- */

/* "FILE:LINE:COL: field: reason", or "FILE: field: reason" for a value
 * made by the builder API (it has no position). */
static int field_error(const struct kiln_spec *s, const struct kiln_spec_value *at,
                       const char *field, struct kiln_err **err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int field_error(const struct kiln_spec *s, const struct kiln_spec_value *at,
                       const char *field, struct kiln_err **err, const char *fmt, ...)
{
        va_list ap;
        _cleanup_free_ char *msg = NULL;

        va_start(ap, fmt);
        msg = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        if (at && at->line > 0)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s:%d:%d: %s: %s", s->errname, at->line,
                                    at->col, field, msg);
        return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: %s: %s", s->errname, field, msg);
}

static const char *type_name(const struct kiln_spec_value *v)
{
        switch (v->type) {
        case KILN_SPEC_NULL:
                return "null";
        case KILN_SPEC_BOOL:
                return "a boolean";
        case KILN_SPEC_INT:
                return "an integer";
        case KILN_SPEC_FLOAT:
                return "a float";
        case KILN_SPEC_STR:
                return "a string";
        case KILN_SPEC_LIST:
                return "a list";
        case KILN_SPEC_MAP:
                return "a mapping";
        }
        return "?";
}

/* ---------- typed extraction ---------- */

static void typed_clear(struct kiln_spec *s)
{
        free(s->name);
        free(s->python_version);
        free(s->builder);
        free(s->source_root);
        free(s->source_copy_mode);
        for (size_t i = 0; i < s->n_env; i++) {
                free(s->env[i].key);
                free(s->env[i].value);
        }
        free(s->env);
        free(s->registry);
        kiln_strv_free(s->packages);
        kiln_strv_free(s->conda_packages);
        kiln_strv_free(s->conda_channels);
        free(s->requirements);
        free(s->requirements_path);
        kiln_strv_free(s->apt_packages);
        free(s->cuda);
        free(s->cudnn);
        free(s->base_image);
        kiln_spec_free(s->base_spec);
        free(s->platform);
        kiln_strv_free(s->platforms);
        free(s->pip_index);
        kiln_strv_free(s->pip_extra_index_url);
        for (size_t i = 0; i < s->n_pip_secret_mounts; i++) {
                free(s->pip_secret_mounts[i].src);
                free(s->pip_secret_mounts[i].dst);
        }
        free(s->pip_secret_mounts);
        free(s->pip_extra_args);
        free(s->registry_config);
        kiln_strv_free(s->entrypoint);
        kiln_strv_free(s->commands);
        free(s->tag_format);
        kiln_strv_free(s->copy);
        kiln_strv_free(s->copy_paths);
        free(s->python_exec);
        kiln_strv_free(s->runtime_packages);
        kiln_strv_free(s->warnings);

        s->name = s->python_version = s->builder = s->source_root = s->source_copy_mode = NULL;
        s->env = NULL;
        s->n_env = 0;
        s->registry = s->requirements = s->requirements_path = NULL;
        s->requirements_lock = false;
        s->requirements_pyproject = false;
        s->packages = s->conda_packages = s->conda_channels = s->apt_packages = NULL;
        s->cuda = s->cudnn = s->base_image = NULL;
        s->base_spec = NULL;
        s->platform = NULL;
        s->platforms = NULL;
        s->pip_index = NULL;
        s->pip_extra_index_url = NULL;
        s->pip_secret_mounts = NULL;
        s->n_pip_secret_mounts = 0;
        s->pip_extra_args = s->registry_config = NULL;
        s->entrypoint = s->commands = NULL;
        s->tag_format = NULL;
        s->copy = s->copy_paths = NULL;
        s->python_exec = NULL;
        s->runtime_packages = NULL;
        s->builder_options = s->builder_config = NULL;
        s->warnings = NULL;
}

static void strv_push(char ***v, char *s)
{
        size_t n = *v ? kiln_strv_len(*v) : 0;
        *v = kiln_xrealloc(*v, (n + 2) * sizeof(**v));
        (*v)[n] = s;
        (*v)[n + 1] = NULL;
}

static void warn(struct kiln_spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct kiln_spec *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        strv_push(&s->warnings, kiln_xvasprintf(fmt, ap));
        va_end(ap);
}

static char *join_path(const char *dir, const char *rel)
{
        if (rel[0] == '/')
                return kiln_xstrdup(rel);
        return kiln_xasprintf("%s/%s", dir, rel);
}

static bool regex_match(const char *re, const char *s)
{
        regex_t rx;
        bool ok;

        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB))
                return false;
        ok = regexec(&rx, s, 0, NULL, 0) == 0;
        regfree(&rx);
        return ok;
}

static void ascii_lower(char *s)
{
        for (; *s; s++)
                *s = (char)tolower((unsigned char)*s);
}

/* tag_format is str.format with only {spec_hash}; the result must be an
 * OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}), so literal braces ("{{")
 * are refused along with every other character a tag cannot hold. */
static int tag_format_check(const char *fmt, const char **bad, const char **why)
{
        size_t len = 0;

        for (const char *p = fmt; *p; p++) {
                if (!strncmp(p, "{spec_hash}", 11)) {
                        p += 10;
                        len += 22;
                        continue;
                }
                if (*p == '{' || *p == '}') {
                        *bad = p;
                        *why = "only the {spec_hash} placeholder is allowed";
                        return -1;
                }
                if (!isalnum((unsigned char)*p) && !strchr("_.-", *p)) {
                        *bad = p;
                        *why = "a tag holds only letters, digits, '_', '.' and '-'";
                        return -1;
                }
                if (p == fmt && (*p == '.' || *p == '-')) {
                        *bad = p;
                        *why = "a tag cannot start with '.' or '-'";
                        return -1;
                }
                len++;
        }
        if (len > 128) {
                *bad = fmt;
                *why = "the tag would be longer than 128 characters";
                return -1;
        }
        return 0;
}

char *kiln_spec_apply_tag_format(const char *fmt, const char *hash)
{
        struct kiln_buf b = {0};

        for (const char *p = fmt; *p; p++) {
                if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
                        kiln_buf_append(&b, p, 1);
                        p++;
                } else if (!strncmp(p, "{spec_hash}", 11)) {
                        kiln_buf_puts(&b, hash);
                        p += 10;
                } else {
                        kiln_buf_append(&b, p, 1);
                }
        }
        kiln_buf_puts(&b, "");
        return kiln_buf_steal(&b);
}

static int typed_build(struct kiln_spec *s, int depth, struct kiln_err **err);

/* base_image: other.yaml names another spec, built first and used as the
 * base; it hashes as flytekit hashes a nested ImageSpec (by its name). */
static bool is_spec_file_name(const char *t)
{
        return kiln_str_has_suffix(t, ".yaml") || kiln_str_has_suffix(t, ".yml");
}

#define BASE_FILES_MAX 8

/* The spec files being loaded as bases, outermost first: a file that names
 * one of them again is a cycle. */
static __thread char *base_files[BASE_FILES_MAX];
static __thread int n_base_files;

static int load_base_file(struct kiln_spec *s, const struct kiln_spec_value *v,
                          struct kiln_err **err)
{
        _cleanup_free_ char *path = join_path(s->dir, v->text);
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return field_error(s, v, "base_image", err, "spec file %s: %s", path,
                                   strerror(errno));
        bool cycle = false;
        for (int i = 0; i < n_base_files && !cycle; i++)
                cycle = !strcmp(base_files[i], real);
        if (cycle)
                return field_error(s, v, "base_image", err,
                                   "%s is already being read as a base of this spec (a cycle)",
                                   path);
        if (n_base_files >= BASE_FILES_MAX)
                return field_error(s, v, "base_image", err,
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

static int get_strlist(struct kiln_spec *s, const char *field, const struct kiln_spec_value *v,
                       char ***out, struct kiln_err **err)
{
        if (v->type != KILN_SPEC_LIST)
                return field_error(s, v, field, err, "must be a list of strings, not %s%s",
                                   type_name(v),
                                   v->type == KILN_SPEC_STR ? " (write [\"...\"])" : "");
        *out = kiln_xcalloc(1, sizeof(char *));
        for (size_t i = 0; i < v->n; i++) {
                if (v->items[i]->type != KILN_SPEC_STR)
                        return field_error(s, v->items[i], field, err,
                                           "item %zu must be a string, not %s (quote it)", i + 1,
                                           type_name(v->items[i]));
                strv_push(out, kiln_xstrdup(v->items[i]->text));
        }
        return 0;
}

static bool path_has_dotdot(const char *p)
{
        for (const char *c = p; *c;) {
                const char *e = strchr(c, '/');
                size_t n = e ? (size_t)(e - c) : strlen(c);
                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return true;
                if (!e)
                        break;
                c = e + 1;
        }
        return false;
}

static int check_field(struct kiln_spec *s, const struct field *f, const struct kiln_spec_value *v,
                       int depth, struct kiln_err **err)
{
        const char *fn = f->name;

        if (v->type == KILN_SPEC_NULL) {
                if (!strcmp(fn, "name") || !strcmp(fn, "platform"))
                        return field_error(s, v, fn, err, "must be a string, not null");
                return 0; /* None: as if unset */
        }

        switch (f->kind) {
        case F_STR:
                if (v->type != KILN_SPEC_STR)
                        return field_error(s, v, fn, err, "must be a string, not %s (quote it)",
                                           type_name(v));
                break;
        case F_VERSION:
                if (v->type != KILN_SPEC_STR && v->type != KILN_SPEC_INT &&
                    v->type != KILN_SPEC_FLOAT)
                        return field_error(s, v, fn, err, "must be a string, not %s", type_name(v));
                if (v->type != KILN_SPEC_STR)
                        warn(s,
                             "%s: YAML reads this as the number %s, which flytekit hashes "
                             "and uses as %s; quote it as written (e.g. %s: \"3.10\") to keep "
                             "it a string",
                             fn, v->text, v->text, fn);
                break;
        case F_STRLIST:
        case F_ENV:
        case F_MOUNTS:
        case F_BASE:
        case F_MAP:
                break;
        }

        if (!strcmp(fn, "name")) {
                s->name = kiln_xstrdup(v->text);
                ascii_lower(s->name);
                if (!regex_match("^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
                                 "(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$",
                                 s->name))
                        return field_error(s, v, fn, err,
                                           "'%s' is not a valid repository name (lowercase "
                                           "letters, digits, '.', '_', '-', '/' separators)",
                                           v->text);
        } else if (!strcmp(fn, "python_version")) {
                s->python_version = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "cuda")) {
                s->cuda = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "cudnn")) {
                s->cudnn = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "builder")) {
                s->builder = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "source_root")) {
                if (!v->text[0])
                        return field_error(s, v, fn, err, "is empty");
                s->source_root = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "source_copy_mode")) {
                if (strcmp(v->text, "loaded_modules") && strcmp(v->text, "all") &&
                    strcmp(v->text, "no_copy"))
                        return field_error(s, v, fn, err,
                                           "'%s' is not one of loaded_modules, all, no_copy",
                                           v->text);
                s->source_copy_mode = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "registry")) {
                /* flytekit skips lowercasing and validation of an empty
                 * registry and then leaves the prefix out */
                if (v->text[0] == '\0')
                        return 0;
                s->registry = kiln_xstrdup(v->text);
                ascii_lower(s->registry);
                if (!regex_match("^(localhost:[0-9]{1,5}|([a-z0-9._-]+)(:[0-9]{1,5})?)"
                                 "(/[A-Za-z0-9_.-]+)*$",
                                 s->registry))
                        return field_error(s, v, fn, err,
                                           "'%s' is not a registry (host[:port][/path], e.g. "
                                           "ghcr.io/org or localhost:30000)",
                                           v->text);
        } else if (!strcmp(fn, "requirements")) {
                const char *base;
                if (v->text[0] == '\0')
                        return field_error(s, v, fn, err, "is empty");
                s->requirements = kiln_xstrdup(v->text);
                s->requirements_path = join_path(s->dir, v->text);
                base = strrchr(v->text, '/');
                base = base ? base + 1 : v->text;
                s->requirements_lock = !strcmp(base, "uv.lock") || !strcmp(base, "poetry.lock");
                s->requirements_pyproject = !strcmp(base, "pyproject.toml");
        } else if (!strcmp(fn, "platform")) {
                const char *p = v->text;
                s->platform = kiln_xstrdup(v->text);
                s->platforms = kiln_xcalloc(1, sizeof(char *));
                for (;;) {
                        const char *end = strchr(p, ',');
                        _cleanup_free_ char *one =
                            end ? kiln_xstrndup(p, (size_t)(end - p)) : kiln_xstrdup(p);
                        struct kiln_platform plat = {0};
                        _cleanup_err_ struct kiln_err *perr = NULL;
                        int slashes = 0;
                        for (const char *c = one; *c; c++)
                                slashes += *c == '/';
                        if (!one[0])
                                return field_error(s, v, fn, err, "is empty or has an empty entry");
                        if (slashes < 1 || slashes > 2 ||
                            kiln_platform_parse(one, &plat, &perr) < 0)
                                return field_error(s, v, fn, err,
                                                   "'%s' is not os/arch[/variant] (e.g. "
                                                   "linux/amd64, linux/arm64)",
                                                   one);
                        kiln_platform_release(&plat);
                        strv_push(&s->platforms, steal_pointer(&one));
                        if (!end)
                                break;
                        p = end + 1;
                }
                if (!s->platforms[0])
                        return field_error(s, v, fn, err, "is empty");
        } else if (!strcmp(fn, "pip_index")) {
                s->pip_index = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "pip_extra_args")) {
                s->pip_extra_args = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "registry_config")) {
                s->registry_config = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "python_exec")) {
                s->python_exec = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "tag_format")) {
                const char *bad = NULL, *why = NULL;
                if (tag_format_check(v->text, &bad, &why) < 0)
                        return field_error(s, v, fn, err, "'%s': %s (at offset %zu)", v->text, why,
                                           (size_t)(bad - v->text));
                s->tag_format = kiln_xstrdup(v->text);
        } else if (!strcmp(fn, "env")) {
                if (v->type != KILN_SPEC_MAP)
                        return field_error(s, v, fn, err,
                                           "must be a mapping of NAME: value, not %s",
                                           type_name(v));
                s->env = kiln_xcalloc(v->n ? v->n : 1, sizeof(*s->env));
                for (size_t i = 0; i < v->n; i++) {
                        const struct kiln_spec_value *k = v->keys[i], *val = v->items[i];
                        if (k->type != KILN_SPEC_STR)
                                return field_error(s, k, fn, err,
                                                   "variable names must be strings, not %s",
                                                   type_name(k));
                        if (!k->text[0] || strchr(k->text, '='))
                                return field_error(s, k, fn, err,
                                                   "'%s' is not a variable name (empty or "
                                                   "contains '=')",
                                                   k->text);
                        if (val->type == KILN_SPEC_NULL || val->type == KILN_SPEC_LIST ||
                            val->type == KILN_SPEC_MAP)
                                return field_error(s, val, fn, err,
                                                   "%s: value must be a string, not %s", k->text,
                                                   type_name(val));
                        s->env[s->n_env].key = kiln_xstrdup(k->text);
                        s->env[s->n_env].value = kiln_xstrdup(val->text);
                        s->n_env++;
                }
        } else if (!strcmp(fn, "pip_secret_mounts")) {
                if (v->type != KILN_SPEC_LIST)
                        return field_error(s, v, fn, err,
                                           "must be a list of [source, target] pairs, "
                                           "not %s",
                                           type_name(v));
                s->pip_secret_mounts = kiln_xcalloc(v->n ? v->n : 1, sizeof(*s->pip_secret_mounts));
                for (size_t i = 0; i < v->n; i++) {
                        const struct kiln_spec_value *it = v->items[i];
                        if (it->type != KILN_SPEC_LIST || it->n != 2 ||
                            it->items[0]->type != KILN_SPEC_STR ||
                            it->items[1]->type != KILN_SPEC_STR)
                                return field_error(s, it, fn, err,
                                                   "item %zu must be a [source, target] pair of "
                                                   "strings",
                                                   i + 1);
                        if (!it->items[0]->text[0] || it->items[1]->text[0] != '/')
                                return field_error(s, it, fn, err,
                                                   "item %zu: source must be non-empty and "
                                                   "target an absolute path",
                                                   i + 1);
                        s->pip_secret_mounts[i].src = join_path(s->dir, it->items[0]->text);
                        s->pip_secret_mounts[i].dst = kiln_xstrdup(it->items[1]->text);
                        s->n_pip_secret_mounts++;
                }
        } else if (!strcmp(fn, "base_image")) {
                if (v->type == KILN_SPEC_STR && is_spec_file_name(v->text)) {
                        if (load_base_file(s, v, err) < 0)
                                return -1;
                } else if (v->type == KILN_SPEC_STR) {
                        if (!v->text[0])
                                return field_error(s, v, fn, err, "is empty");
                        s->base_image = kiln_xstrdup(v->text);
                } else if (v->type == KILN_SPEC_MAP) {
                        struct kiln_spec *b = kiln_xcalloc(1, sizeof(*b));
                        b->dir = kiln_xstrdup(s->dir);
                        b->path = s->path ? kiln_xstrdup(s->path) : NULL;
                        b->errname = kiln_xstrdup(s->errname);
                        b->raw = (struct kiln_spec_value *)v;
                        s->base_spec = b;
                        if (depth >= 8)
                                return field_error(s, v, fn, err, "nested specs go deeper than 8");
                        if (typed_build(b, depth + 1, err) < 0)
                                return kiln_err_prefix(err, "base_image");
                } else {
                        return field_error(s, v, fn, err,
                                           "must be an image reference or a nested spec "
                                           "mapping, not %s",
                                           type_name(v));
                }
        } else if (!strcmp(fn, "builder_options") || !strcmp(fn, "builder_config")) {
                if (v->type != KILN_SPEC_MAP)
                        return field_error(s, v, fn, err, "must be a mapping, not %s",
                                           type_name(v));
                if (!strcmp(fn, "builder_options"))
                        s->builder_options = v;
                else
                        s->builder_config = v;
        } else if (f->kind == F_STRLIST) {
                char **list = NULL;
                int r = get_strlist(s, fn, v, &list, err);
                if (!strcmp(fn, "packages"))
                        s->packages = list;
                else if (!strcmp(fn, "conda_packages"))
                        s->conda_packages = list;
                else if (!strcmp(fn, "conda_channels"))
                        s->conda_channels = list;
                else if (!strcmp(fn, "apt_packages"))
                        s->apt_packages = list;
                else if (!strcmp(fn, "pip_extra_index_url"))
                        s->pip_extra_index_url = list;
                else if (!strcmp(fn, "entrypoint"))
                        s->entrypoint = list;
                else if (!strcmp(fn, "commands"))
                        s->commands = list;
                else if (!strcmp(fn, "copy"))
                        s->copy = list;
                else if (!strcmp(fn, "runtime_packages"))
                        s->runtime_packages = list;
                else
                        kiln_strv_free(list);
                if (r < 0)
                        return -1;
                if (!strcmp(fn, "copy")) {
                        s->copy_paths = kiln_xcalloc(1, sizeof(char *));
                        for (size_t i = 0; i < v->n; i++) {
                                const char *p = v->items[i]->text;
                                if (!p[0])
                                        return field_error(s, v->items[i], fn, err,
                                                           "item %zu is empty", i + 1);
                                if (p[0] == '/')
                                        return field_error(s, v->items[i], fn, err,
                                                           "'%s' is absolute; copy takes paths "
                                                           "relative to the spec's directory",
                                                           p);
                                if (path_has_dotdot(p))
                                        return field_error(s, v->items[i], fn, err,
                                                           "'%s' contains '..'; copy takes paths "
                                                           "inside the spec's directory",
                                                           p);
                                strv_push(&s->copy_paths, join_path(s->dir, p));
                        }
                }
        }
        return 0;
}

static int typed_build(struct kiln_spec *s, int depth, struct kiln_err **err)
{
        const struct kiln_spec_value *raw = s->raw;

        for (size_t i = 0; i < raw->n; i++) {
                const struct kiln_spec_value *k = raw->keys[i];
                const struct field *f;

                if (k->type != KILN_SPEC_STR)
                        return field_error(s, k, k->text ? k->text : "?", err,
                                           "unknown field (field names are strings, this is %s)",
                                           type_name(k));
                f = field_find(k->text);
                if (!f) {
                        const char *best = NULL;
                        size_t bestd = 3;
                        for (size_t j = 0; j < N_FIELDS; j++) {
                                size_t d = edit_distance(k->text, fields[j].name);
                                if (d < bestd) {
                                        bestd = d;
                                        best = fields[j].name;
                                }
                        }
                        if (best)
                                return field_error(s, k, k->text, err,
                                                   "unknown field; did you mean '%s'?", best);
                        return field_error(s, k, k->text, err, "unknown field");
                }
                if (check_field(s, f, raw->items[i], depth, err) < 0)
                        return -1;
        }
        if (!s->name)
                s->name = kiln_xstrdup(KILN_SPEC_DEFAULT_NAME);
        if (!s->platform) {
                s->platform = kiln_xstrdup(KILN_SPEC_DEFAULT_PLATFORM);
                s->platforms = kiln_xcalloc(2, sizeof(char *));
                s->platforms[0] = kiln_xstrdup(KILN_SPEC_DEFAULT_PLATFORM);
        }
        if (s->source_copy_mode && strcmp(s->source_copy_mode, "no_copy") && !s->source_root) {
                const struct kiln_spec_value *mv = kiln_spec_value_get(raw, "source_copy_mode");
                return field_error(s, mv, "source_copy_mode", err,
                                   "'%s' copies source_root, which is not set",
                                   s->source_copy_mode);
        }
        if (s->source_copy_mode && !strcmp(s->source_copy_mode, "loaded_modules"))
                warn(s, "source_copy_mode: loaded_modules copies the modules pyflyte imported, "
                        "which only pyflyte knows; kiln copies (and hashes) every file that is "
                        "not ignored, as 'all' does");
        if (s->requirements_lock && s->packages) {
                const struct kiln_spec_value *pv = kiln_spec_value_get(raw, "packages");
                return field_error(s, pv, "packages", err,
                                   "cannot be combined with the lock file '%s' in requirements; "
                                   "add the packages to the project instead",
                                   s->requirements);
        }
        if (s->requirements_lock) {
                /* locked installs read the project beside the lock */
                const struct kiln_spec_value *v = kiln_spec_value_get(raw, "requirements");
                const char *base = strrchr(s->requirements_path, '/');
                base = base ? base + 1 : s->requirements_path;
                size_t dl = strlen(s->requirements_path) - strlen(base);
                _cleanup_free_ char *pp =
                    kiln_xasprintf("%.*spyproject.toml", (int)dl, s->requirements_path);
                struct stat st;
                errno = 0;
                if (stat(pp, &st) < 0 || !S_ISREG(st.st_mode))
                        return field_error(
                            s, v, "requirements", err,
                            "%s needs the project's pyproject.toml beside it: %s: %s", base, pp,
                            errno ? strerror(errno) : "not a file");
        }
        if (s->base_spec && s->base_spec->warnings)
                for (char **w = s->base_spec->warnings; *w; w++)
                        warn(s, "base_image: %s", *w);
        return 0;
}

/* Rebuilds the typed view from raw; on error the typed view is the old
 * one and raw is restored to old_raw. */
static int refresh(struct kiln_spec *s, struct kiln_spec_value *new_raw, struct kiln_err **err)
{
        struct kiln_spec tmp = {
            .path = s->path, .dir = s->dir, .raw = new_raw, .errname = s->errname};
        int r = typed_build(&tmp, 0, err);

        /* the typed fields of tmp are all owned; move them over */
        tmp.path = NULL;
        tmp.dir = NULL;
        tmp.errname = NULL;
        if (r < 0) {
                typed_clear(&tmp);
                return -1;
        }
        typed_clear(s);
        {
                char *path = s->path, *dir = s->dir, *errname = s->errname;
                struct kiln_spec_value **pool = s->pool;
                size_t n_pool = s->n_pool, cap_pool = s->cap_pool;
                *s = tmp;
                s->path = path;
                s->dir = dir;
                s->errname = errname;
                s->pool = pool;
                s->n_pool = n_pool;
                s->cap_pool = cap_pool;
        }
        return 0;
}

/* ---------- lifecycle ---------- */

static struct kiln_spec *spec_alloc(const char *path, const char *errname, const char *base_dir,
                                    struct kiln_err **err)
{
        struct kiln_spec *s = kiln_xcalloc(1, sizeof(*s));
        char cwd[PATH_MAX];

        s->path = path ? kiln_xstrdup(path) : NULL;
        s->errname = kiln_xstrdup(errname);
        if (base_dir && base_dir[0] == '/') {
                s->dir = kiln_xstrdup(base_dir);
        } else {
                if (!getcwd(cwd, sizeof(cwd))) {
                        kiln_err_sys(err, "getcwd");
                        kiln_spec_free(s);
                        return NULL;
                }
                s->dir = base_dir && *base_dir && strcmp(base_dir, ".")
                             ? kiln_xasprintf("%s/%s", cwd, base_dir)
                             : kiln_xstrdup(cwd);
        }
        return s;
}

int kiln_spec_load_string(const char *yaml, size_t len, const char *name_for_errors,
                          const char *base_dir, struct kiln_spec **out, struct kiln_err **err)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        struct kiln_spec_value *root = NULL;
        const char *name = name_for_errors ? name_for_errors : "<spec>";

        s = spec_alloc(NULL, name, base_dir, err);
        if (!s)
                return -1;
        if (kiln_spec_yaml_parse(s, yaml, len, name, &root, err) < 0)
                return -1;
        if (refresh(s, root, err) < 0)
                return -1;
        *out = steal_pointer(&s);
        return 0;
}

int kiln_spec_load_file(const char *path, struct kiln_spec **out, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_free_ char *dir = NULL;
        struct kiln_spec *s = NULL;

        if (!strcmp(path, "-")) {
                if (kiln_read_fd(0, "<stdin>", KILN_SPEC_MAX_BYTES, &b, err) < 0)
                        return kiln_err_prefix(err, "reading the spec");
                return kiln_spec_load_string(b.data ? b.data : "", b.len, "<stdin>", NULL, out,
                                             err);
        }
        if (kiln_read_file(path, KILN_SPEC_MAX_BYTES, &b, err) < 0)
                return -1;
        {
                const char *slash = strrchr(path, '/');
                dir = slash ? (slash == path ? kiln_xstrdup("/")
                                             : kiln_xstrndup(path, (size_t)(slash - path)))
                            : kiln_xstrdup(".");
        }
        /* while it loads, a base_image naming this file again is a cycle */
        char *real = n_base_files < BASE_FILES_MAX ? realpath(path, NULL) : NULL;
        if (real)
                base_files[n_base_files++] = real;
        int r = kiln_spec_load_string(b.data ? b.data : "", b.len, path, dir, &s, err);
        if (real)
                free(base_files[--n_base_files]);
        if (r < 0)
                return -1;
        s->path = kiln_xstrdup(path);
        *out = s;
        return 0;
}

void kiln_spec_free(struct kiln_spec *s)
{
        if (!s)
                return;
        typed_clear(s);
        for (size_t i = 0; i < s->n_pool; i++) {
                free(s->pool[i]->text);
                free(s->pool[i]->items);
                free(s->pool[i]->keys);
                free(s->pool[i]);
        }
        free(s->pool);
        free(s->path);
        free(s->dir);
        free(s->errname);
        free(s);
}

void kiln_spec_freep(struct kiln_spec **s)
{
        kiln_spec_free(*s);
}

/* ---------- builder API ---------- */

struct kiln_spec *kiln_spec_new(const char *base_dir)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_spec *s = spec_alloc(NULL, "<command line>", base_dir, &err);

        if (!s) /* getcwd failed: fall back to "." which the OS resolves */
                s = spec_alloc(NULL, "<command line>", "/", &err);
        s->raw = kiln_spec_value_new(s, KILN_SPEC_MAP, 0, 0);
        if (refresh(s, s->raw, &err) < 0)
                abort(); /* an empty spec is always valid */
        return s;
}

static struct kiln_spec_value *map_shallow_copy(struct kiln_spec *s,
                                                const struct kiln_spec_value *m)
{
        struct kiln_spec_value *c = kiln_spec_value_new(s, m->type, m->line, m->col);

        for (size_t i = 0; i < m->n; i++) {
                if (m->type == KILN_SPEC_MAP)
                        kiln_spec_map_put(c, m->keys[i], m->items[i]);
                else
                        kiln_spec_list_push(c, m->items[i]);
        }
        return c;
}

static void map_remove(struct kiln_spec_value *m, const char *key)
{
        for (size_t i = 0; i < m->n; i++) {
                if (m->keys[i]->type == KILN_SPEC_STR && !strcmp(m->keys[i]->text, key)) {
                        memmove(m->keys + i, m->keys + i + 1, (m->n - i - 1) * sizeof(*m->keys));
                        memmove(m->items + i, m->items + i + 1, (m->n - i - 1) * sizeof(*m->items));
                        m->n--;
                        return;
                }
        }
}

static int check_known(struct kiln_spec *s, const char *field, enum field_kind want1,
                       enum field_kind want2, struct kiln_err **err)
{
        const struct field *f = field_find(field);

        if (!f)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: unknown field", field);
        if (f->kind != want1 && f->kind != want2)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: cannot be set this way", field);
        (void)s;
        return 0;
}

int kiln_spec_set_str(struct kiln_spec *s, const char *field, const char *value,
                      struct kiln_err **err)
{
        struct kiln_spec_value *raw;

        if (check_known(s, field, F_STR, !strcmp(field, "base_image") ? F_BASE : F_VERSION, err) <
            0)
                return -1;
        raw = map_shallow_copy(s, s->raw);
        if (value)
                kiln_spec_map_put(raw, kiln_spec_value_str(s, field),
                                  kiln_spec_value_str(s, value));
        else
                map_remove(raw, field);
        return refresh(s, raw, err);
}

static int list_edit(struct kiln_spec *s, const char *field, const char *value,
                     struct kiln_err **err)
{
        const struct kiln_spec_value *old = kiln_spec_value_get(s->raw, field);
        struct kiln_spec_value *raw, *list;

        if (old && old->type != KILN_SPEC_LIST && old->type != KILN_SPEC_NULL)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: is %s, cannot append", field,
                                    type_name(old));
        list = old && old->type == KILN_SPEC_LIST ? map_shallow_copy(s, old)
                                                  : kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0);
        if (value)
                kiln_spec_list_push(list, kiln_spec_value_str(s, value));
        raw = map_shallow_copy(s, s->raw);
        kiln_spec_map_put(raw, kiln_spec_value_str(s, field), list);
        return refresh(s, raw, err);
}

int kiln_spec_append(struct kiln_spec *s, const char *field, const char *value,
                     struct kiln_err **err)
{
        if (check_known(s, field, F_STRLIST, F_STRLIST, err) < 0)
                return -1;
        return list_edit(s, field, value, err);
}

int kiln_spec_set_empty_list(struct kiln_spec *s, const char *field, struct kiln_err **err)
{
        struct kiln_spec_value *raw;

        if (check_known(s, field, F_STRLIST, F_MOUNTS, err) < 0)
                return -1;
        raw = map_shallow_copy(s, s->raw);
        kiln_spec_map_put(raw, kiln_spec_value_str(s, field),
                          kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0));
        return refresh(s, raw, err);
}

int kiln_spec_set_env(struct kiln_spec *s, const char *key, const char *value,
                      struct kiln_err **err)
{
        const struct kiln_spec_value *old = kiln_spec_value_get(s->raw, "env");
        struct kiln_spec_value *raw, *env;

        if (old && old->type != KILN_SPEC_MAP && old->type != KILN_SPEC_NULL)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "env: is %s, cannot add to it",
                                    type_name(old));
        env = old && old->type == KILN_SPEC_MAP ? map_shallow_copy(s, old)
                                                : kiln_spec_value_new(s, KILN_SPEC_MAP, 0, 0);
        kiln_spec_map_put(env, kiln_spec_value_str(s, key), kiln_spec_value_str(s, value));
        raw = map_shallow_copy(s, s->raw);
        kiln_spec_map_put(raw, kiln_spec_value_str(s, "env"), env);
        return refresh(s, raw, err);
}

int kiln_spec_add_secret_mount(struct kiln_spec *s, const char *src, const char *dst,
                               struct kiln_err **err)
{
        const struct kiln_spec_value *old = kiln_spec_value_get(s->raw, "pip_secret_mounts");
        struct kiln_spec_value *raw, *list, *pair;

        if (old && old->type != KILN_SPEC_LIST && old->type != KILN_SPEC_NULL)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "pip_secret_mounts: is %s, cannot append", type_name(old));
        list = old && old->type == KILN_SPEC_LIST ? map_shallow_copy(s, old)
                                                  : kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0);
        pair = kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0);
        kiln_spec_list_push(pair, kiln_spec_value_str(s, src));
        kiln_spec_list_push(pair, kiln_spec_value_str(s, dst));
        kiln_spec_list_push(list, pair);
        raw = map_shallow_copy(s, s->raw);
        kiln_spec_map_put(raw, kiln_spec_value_str(s, "pip_secret_mounts"), list);
        return refresh(s, raw, err);
}

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
        _cleanup_free_ char *r = join_path(s->dir, s->source_root);
        _cleanup_strv_ char **all = NULL;
        if (kiln_source_list(r, &all, err) < 0)
                return kiln_err_prefix(err, "%s: source_root", s->errname);
        /* flytekit's walk lists what exists as a file when followed: a
         * symlink to a file counts (as its target's bytes), a symlink to a
         * directory or nowhere does not, nor does a socket */
        size_t n = kiln_strv_len(all), k = 0;
        char **keep = kiln_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", r, all[i]);
                struct stat st;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
                        keep[k++] = steal_pointer(&all[i]);
        }
        *files = keep;
        *root = steal_pointer(&r);
        return 0;
}
