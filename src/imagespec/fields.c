/* ImageSpec fields: the field table (fields[], one entry per YAML key, with
 * its command-line flags), the checks the entries name, and the strict
 * reading of the raw tree into the typed view the planner uses. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <string.h>
#include <strings.h>

#include "kiln/oci.h"
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

/* ---------- errors and small helpers ---------- */

int kiln_spec_field_error(const struct kiln_spec *s, const struct kiln_spec_value *at,
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

char *kiln_spec_path(const struct kiln_spec *s, const char *rel)
{
        if (rel[0] == '/')
                return kiln_xstrdup(rel);
        return kiln_xasprintf("%s/%s", s->dir, rel);
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

/* tag_format is str.format with only {spec_hash}; the result must be an
 * OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}), so literal braces ("{{")
 * are refused along with every other character a tag cannot hold.
 * Returns why fmt cannot be one, with *bad where, or NULL when it can. */
static const char *tag_format_problem(const char *fmt, const char **bad)
{
        size_t len = 0;

        for (const char *p = fmt; *p; p++) {
                *bad = p;
                if (!strncmp(p, "{spec_hash}", 11)) {
                        p += 10;
                        len += 22;
                        continue;
                }
                if (*p == '{' || *p == '}')
                        return "only the {spec_hash} placeholder is allowed";
                if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
                        return "a tag holds only letters, digits, '_', '.' and '-'";
                if (p == fmt && (*p == '.' || *p == '-'))
                        return "a tag cannot start with '.' or '-'";
                len++;
        }
        *bad = fmt;
        if (len > 128)
                return "the tag would be longer than 128 characters";
        return NULL;
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

/* ---------- validators ----------
 *
 * A field's check runs after its value has been read into the spec (so it
 * sees a value of the right type, never null): it refuses what flytekit
 * would refuse or what could not be built, may normalise the member it
 * checks (lowercasing), and fills the members derived from it. What it
 * derives is freed in derived_release. One check per kind of rule; fields
 * that follow the same rule share it. */

static char **str_member(struct kiln_spec *s, const struct spec_field *f)
{
        return (char **)((char *)s + f->offset);
}

/* A lowercased string must match re (extended regex), or it "is not WHAT". */
struct lowercase_rule {
        const char *re, *what;
};

/* A path component of a Docker reference. */
#define REF_PATH_COMPONENT "[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
/* name: a repository name, docker's path components. */
static const struct lowercase_rule repo_name_rule = {
    "^" REF_PATH_COMPONENT "(/" REF_PATH_COMPONENT ")*$",
    "a valid repository name (lowercase letters, digits, '.', '_', '-', '/' separators)"};
/* registry: the image name's prefix, host[:port][/path] in the grammar of
 * a Docker reference (what the push will parse): a host of dot-separated
 * labels, or a first path component; then path components, so "." and
 * ".." never pass as a component. */
#define REGISTRY_LABEL "[a-z0-9]([a-z0-9-]*[a-z0-9])?"
static const struct lowercase_rule registry_rule = {
    "^(" REGISTRY_LABEL "(\\." REGISTRY_LABEL ")*(:[0-9]{1,5})?|" REF_PATH_COMPONENT
    ")(/" REF_PATH_COMPONENT ")*$",
    "a registry (host[:port][/path], e.g. ghcr.io/org or localhost:30000)"};

/* Lowercases the string member, then checks it against rule. */
static int lowercase_matching(struct kiln_spec *s, const struct spec_field *f,
                              const struct kiln_spec_value *v, const struct lowercase_rule *rule,
                              struct kiln_err **err)
{
        char *text = *str_member(s, f);

        ascii_lower(text);
        if (!regex_match(rule->re, text))
                return kiln_spec_field_error(s, v, f->name, err, "'%s' is not %s", v->text,
                                             rule->what);
        return 0;
}

static int check_repo_name(struct kiln_spec *s, const struct spec_field *f,
                           const struct kiln_spec_value *v, struct kiln_err **err)
{
        return lowercase_matching(s, f, v, &repo_name_rule, err);
}

static int check_registry(struct kiln_spec *s, const struct spec_field *f,
                          const struct kiln_spec_value *v, struct kiln_err **err)
{
        char **reg = str_member(s, f);

        /* flytekit skips lowercasing and validation of an empty
         * registry and then leaves the prefix out */
        if (!**reg) {
                free(steal_pointer(reg));
                return 0;
        }
        return lowercase_matching(s, f, v, &registry_rule, err);
}

/* A string that must not be empty (source_root). */
static int check_not_empty(struct kiln_spec *s, const struct spec_field *f,
                           const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (!v->text[0])
                return kiln_spec_field_error(s, v, f->name, err, "is empty");
        return 0;
}

/* requirements: a file beside the spec; its name says how it installs. */
static int check_requirements(struct kiln_spec *s, const struct spec_field *f,
                              const struct kiln_spec_value *v, struct kiln_err **err)
{
        const char *base;

        if (check_not_empty(s, f, v, err) < 0)
                return -1;
        s->requirements_path = kiln_spec_path(s, v->text);
        base = strrchr(v->text, '/');
        base = base ? base + 1 : v->text;
        s->requirements_lock = !strcmp(base, "uv.lock") || !strcmp(base, "poetry.lock");
        s->requirements_pyproject = !strcmp(base, "pyproject.toml");
        return 0;
}

/* source_copy_mode: one of flytekit's CopyFileDetection values, by the
 * lowercased member name (hash.c hashes the enum's repr). */
static int check_copy_mode(struct kiln_spec *s, const struct spec_field *f,
                           const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (strcmp(v->text, "loaded_modules") && strcmp(v->text, "all") &&
            strcmp(v->text, "no_copy"))
                return kiln_spec_field_error(
                    s, v, f->name, err, "'%s' is not one of loaded_modules, all, no_copy", v->text);
        return 0;
}

/* platform: os/arch[/variant], several separated by ','; fills platforms. */
static int check_platform(struct kiln_spec *s, const struct spec_field *f,
                          const struct kiln_spec_value *v, struct kiln_err **err)
{
        const char *p = v->text;

        s->platforms = kiln_xcalloc(1, sizeof(char *));
        for (;;) {
                const char *end = strchr(p, ',');
                _cleanup_free_ char *one =
                    end ? kiln_xstrndup(p, (size_t)(end - p)) : kiln_xstrdup(p);
                _cleanup_platform_ struct kiln_platform plat = {0};
                _cleanup_err_ struct kiln_err *perr = NULL;
                int slashes = 0;
                for (const char *c = one; *c; c++)
                        slashes += *c == '/';
                if (!one[0])
                        return kiln_spec_field_error(s, v, f->name, err,
                                                     "is empty or has an empty entry");
                if (slashes < 1 || slashes > 2 || kiln_platform_parse(one, &plat, &perr) < 0)
                        return kiln_spec_field_error(s, v, f->name, err,
                                                     "'%s' is not os/arch[/variant] (e.g. "
                                                     "linux/amd64, linux/arm64)",
                                                     one);
                strv_push(&s->platforms, steal_pointer(&one));
                if (!end)
                        break;
                p = end + 1;
        }
        if (!s->platforms[0])
                return kiln_spec_field_error(s, v, f->name, err, "is empty");
        return 0;
}

/* tag_format: what str.format may make of it must be an OCI tag. */
static int check_tag_format(struct kiln_spec *s, const struct spec_field *f,
                            const struct kiln_spec_value *v, struct kiln_err **err)
{
        const char *bad = NULL, *why = tag_format_problem(v->text, &bad);

        if (why)
                return kiln_spec_field_error(s, v, f->name, err, "'%s': %s (at offset %zu)",
                                             v->text, why, (size_t)(bad - v->text));
        return 0;
}

/* copy: relative paths inside the spec's directory; fills copy_paths. */
static int check_copy(struct kiln_spec *s, const struct spec_field *f,
                      const struct kiln_spec_value *v, struct kiln_err **err)
{
        s->copy_paths = kiln_xcalloc(1, sizeof(char *));
        for (size_t i = 0; i < v->n; i++) {
                const char *p = v->items[i]->text;
                if (!p[0])
                        return kiln_spec_field_error(s, v->items[i], f->name, err,
                                                     "item %zu is empty", i + 1);
                if (p[0] == '/')
                        return kiln_spec_field_error(s, v->items[i], f->name, err,
                                                     "'%s' is absolute; copy takes paths "
                                                     "relative to the spec's directory",
                                                     p);
                if (path_has_dotdot(p))
                        return kiln_spec_field_error(s, v->items[i], f->name, err,
                                                     "'%s' contains '..'; copy takes paths "
                                                     "inside the spec's directory",
                                                     p);
                strv_push(&s->copy_paths, kiln_spec_path(s, p));
        }
        return 0;
}

/* What the validators (and the whole-spec checks) fill beside the fields. */
static void derived_release(struct kiln_spec *s)
{
        free(steal_pointer(&s->requirements_path));
        s->requirements_lock = false;
        s->requirements_pyproject = false;
        kiln_strv_free(steal_pointer(&s->platforms));
        kiln_strv_free(steal_pointer(&s->copy_paths));
        kiln_strv_free(steal_pointer(&s->warnings));
}

/* ---------- the fields ---------- */

/* offsetof(struct kiln_spec, member), refused at compile time unless the
 * member has the C type that the field's type reads into. */
#define MEMBER(m, ctype) _Generic(((struct kiln_spec *)0)->m, ctype : offsetof(struct kiln_spec, m))
#define STR(m)           .type = SPEC_STR, .offset = MEMBER(m, char *)
#define VERSION(m)       .type = SPEC_VERSION, .offset = MEMBER(m, char *)
#define STRLIST(m)       .type = SPEC_STRLIST, .offset = MEMBER(m, char **)
#define MAP(m)           .type = SPEC_MAP, .offset = MEMBER(m, const struct kiln_spec_value *)

/* Every ImageSpec field, in flytekit's dataclass order: the order of the
 * dict whose text the image tag hashes (hash.c), and of "did you mean"
 * suggestions. A field is read by its type into its member, then checked
 * by its check. env, pip_secret_mounts and base_image have shapes of their
 * own and are read by their own code below (read_env, read_mounts,
 * read_base_image).
 *
 * flags: the field's command-line flags, each {name, what it does, what
 * help shows after it, place among getopt's options, place in help}
 * (see struct kiln_spec_flag). The places keep the order the flags had
 * before they moved here; a new flag may leave them 0.
 *
 * A new field is a member in struct kiln_spec and an entry here, at its
 * place in flytekit's order, e.g.
 *     {"shm_size", STR(shm_size), .flags = {{"shm-size", KILN_SPEC_FLAG_SET, "SIZE"}}},
 * plus a check above when its rule is new. Reading, checking, freeing,
 * the builder API, the flag and its help, and hashing follow from the
 * entry; hash.c needs telling only if flytekit leaves the field out of the
 * hash or renders it in a way of its own. */
static const struct spec_field fields[] = {
    {"name", STR(name), .check = check_repo_name, .no_null = true,
     .flags = {{"name", KILN_SPEC_FLAG_SET, "NAME", 1, 1}}},
    {"python_version", VERSION(python_version),
     .flags = {{"python-version", KILN_SPEC_FLAG_SET, "V", 6, 6}}},
    {"builder", STR(builder)},
    {"source_root", STR(source_root), .check = check_not_empty,
     .flags = {{"source-root", KILN_SPEC_FLAG_SET, "DIR", 11, 22}}},
    {"env", .type = SPEC_ENV, .flags = {{"env", KILN_SPEC_FLAG_ENV, "K=V", 24, 19}}},
    {"registry", STR(registry), .check = check_registry,
     .flags = {{"registry", KILN_SPEC_FLAG_SET, "REG", 2, 2}}},
    {"packages", STRLIST(packages), .flags = {{"package", KILN_SPEC_FLAG_APPEND, "PKG", 15, 9}}},
    {"conda_packages", STRLIST(conda_packages),
     .flags = {{"conda-package", KILN_SPEC_FLAG_APPEND, "PKG", 17, 15}}},
    {"conda_channels", STRLIST(conda_channels),
     .flags = {{"conda-channel", KILN_SPEC_FLAG_APPEND, "CH", 18, 16}}},
    {"requirements", STR(requirements), .check = check_requirements,
     .flags = {{"requirements", KILN_SPEC_FLAG_SET, "FILE", 8, 8}}},
    {"apt_packages", STRLIST(apt_packages),
     .flags = {{"apt-package", KILN_SPEC_FLAG_APPEND, "PKG", 16, 10}}},
    {"cuda", VERSION(cuda), .flags = {{"cuda", KILN_SPEC_FLAG_SET, "V", 13, 17}}},
    {"cudnn", VERSION(cudnn), .flags = {{"cudnn", KILN_SPEC_FLAG_SET, "V", 14, 18}}},
    {"base_image", .type = SPEC_BASE, .flags = {{"base-image", KILN_SPEC_FLAG_SET, "REF", 3, 3}}},
    {"platform", STR(platform), .check = check_platform, .no_null = true,
     .flags = {{"platform", KILN_SPEC_FLAG_SET, "OS/ARCH", 4, 4}}},
    {"pip_index", STR(pip_index), .flags = {{"pip-index", KILN_SPEC_FLAG_SET, "URL", 9, 11}}},
    {"pip_extra_index_url", STRLIST(pip_extra_index_url),
     .flags = {{"pip-extra-index-url", KILN_SPEC_FLAG_APPEND, "URL", 19, 12}}},
    {"pip_secret_mounts", .type = SPEC_MOUNTS,
     .flags = {{"pip-secret-mount", KILN_SPEC_FLAG_MOUNT, "SRC:DST", 25, 14}}},
    {"pip_extra_args", STR(pip_extra_args),
     .flags = {{"pip-extra-args", KILN_SPEC_FLAG_SET, "A", 10, 13}}},
    {"registry_config", STR(registry_config)},
    {"entrypoint", STRLIST(entrypoint),
     .flags = {{"entrypoint", KILN_SPEC_FLAG_APPEND, "ARG (repeat for each)", 22, 24},
               {"no-entrypoint", KILN_SPEC_FLAG_EMPTY, NULL, 23, 25}}},
    {"commands", STRLIST(commands), .flags = {{"command", KILN_SPEC_FLAG_APPEND, "CMD", 20, 20}}},
    {"tag_format", STR(tag_format), .check = check_tag_format,
     .flags = {{"tag-format", KILN_SPEC_FLAG_SET, "F", 5, 5}}},
    {"source_copy_mode", STR(source_copy_mode), .check = check_copy_mode,
     .flags = {{"source-copy-mode", KILN_SPEC_FLAG_SET, "MODE", 12, 23}}},
    {"copy", STRLIST(copy), .check = check_copy,
     .flags = {{"copy", KILN_SPEC_FLAG_APPEND, "PATH", 21, 21}}},
    {"python_exec", STR(python_exec), .flags = {{"python-exec", KILN_SPEC_FLAG_SET, "PATH", 7, 7}}},
    {"runtime_packages", STRLIST(runtime_packages)},
    {"builder_options", MAP(builder_options)},
    {"builder_config", MAP(builder_config)},
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

const char *kiln_spec_field_name(size_t i)
{
        return i < N_FIELDS ? fields[i].name : NULL;
}

const struct kiln_spec_flag *kiln_spec_field_flags(size_t i)
{
        return fields[i].flags;
}

const struct spec_field *kiln_spec_field_find(const char *name)
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

/* ---------- reading a field by its type ---------- */

/* v must be of type t, or the field "must be WHAT, not (v's type)HINT". */
static int expect_type(struct kiln_spec *s, const struct spec_field *f,
                       const struct kiln_spec_value *v, enum kiln_spec_vtype t, const char *what,
                       const char *hint, struct kiln_err **err)
{
        if (v->type == t)
                return 0;
        return kiln_spec_field_error(s, v, f->name, err, "must be %s, not %s%s", what,
                                     kiln_spec_value_type_name(v), hint);
}

static int read_str(struct kiln_spec *s, const struct spec_field *f,
                    const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (expect_type(s, f, v, KILN_SPEC_STR, "a string", " (quote it)", err) < 0)
                return -1;
        *str_member(s, f) = kiln_xstrdup(v->text);
        return 0;
}

/* flytekit types these str, but YAML reads 3.10 as a float: kept as
 * Python's str() of the number (as flytekit would hash it), with a
 * warning, since it is rarely what the author meant. */
static int read_version(struct kiln_spec *s, const struct spec_field *f,
                        const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (v->type != KILN_SPEC_STR && v->type != KILN_SPEC_INT && v->type != KILN_SPEC_FLOAT)
                return kiln_spec_field_error(s, v, f->name, err, "must be a string, not %s",
                                             kiln_spec_value_type_name(v));
        if (v->type != KILN_SPEC_STR)
                warn(s,
                     "%s: YAML reads this as the number %s, which flytekit hashes "
                     "and uses as %s; quote it as written (e.g. %s: \"3.10\") to keep "
                     "it a string",
                     f->name, v->text, v->text, f->name);
        *str_member(s, f) = kiln_xstrdup(v->text);
        return 0;
}

static int read_strlist(struct kiln_spec *s, const struct spec_field *f,
                        const struct kiln_spec_value *v, struct kiln_err **err)
{
        _cleanup_strv_ char **list = NULL;

        if (expect_type(s, f, v, KILN_SPEC_LIST, "a list of strings",
                        v->type == KILN_SPEC_STR ? " (write [\"...\"])" : "", err) < 0)
                return -1;
        list = kiln_xcalloc(1, sizeof(char *));
        for (size_t i = 0; i < v->n; i++) {
                if (v->items[i]->type != KILN_SPEC_STR)
                        return kiln_spec_field_error(s, v->items[i], f->name, err,
                                                     "item %zu must be a string, not %s (quote it)",
                                                     i + 1, kiln_spec_value_type_name(v->items[i]));
                strv_push(&list, kiln_xstrdup(v->items[i]->text));
        }
        *(char ***)((char *)s + f->offset) = steal_pointer(&list);
        return 0;
}

/* Any mapping, kept as the raw value (builder options are the builder's
 * business; they only hash). */
static int read_map(struct kiln_spec *s, const struct spec_field *f,
                    const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (expect_type(s, f, v, KILN_SPEC_MAP, "a mapping", "", err) < 0)
                return -1;
        *(const struct kiln_spec_value **)((char *)s + f->offset) = v;
        return 0;
}

/* env: NAME: scalar, in YAML order, each value as Python's str() of it
 * (s->env, s->n_env). flytekit takes any scalar (`DEBUG: 1`, `ON: yes`,
 * `EMPTY:` is None), hashes its repr and writes str(value) into the
 * image's ENV ("1", "True", "None"), so kiln does the same. */
static int read_env(struct kiln_spec *s, const struct spec_field *f,
                    const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (expect_type(s, f, v, KILN_SPEC_MAP, "a mapping of NAME: value", "", err) < 0)
                return -1;
        s->env = kiln_xcalloc(v->n ? v->n : 1, sizeof(*s->env));
        for (size_t i = 0; i < v->n; i++) {
                const struct kiln_spec_value *k = v->keys[i], *val = v->items[i];
                if (k->type != KILN_SPEC_STR)
                        return kiln_spec_field_error(s, k, f->name, err,
                                                     "variable names must be strings, not %s",
                                                     kiln_spec_value_type_name(k));
                if (!k->text[0] || strchr(k->text, '='))
                        return kiln_spec_field_error(s, k, f->name, err,
                                                     "'%s' is not a variable name (empty or "
                                                     "contains '=')",
                                                     k->text);
                if (val->type == KILN_SPEC_LIST || val->type == KILN_SPEC_MAP)
                        return kiln_spec_field_error(s, val, f->name, err,
                                                     "%s: value must be a scalar (a string, "
                                                     "number, boolean or null), not %s",
                                                     k->text, kiln_spec_value_type_name(val));
                s->env[s->n_env].key = kiln_xstrdup(k->text);
                s->env[s->n_env].value = kiln_xstrdup(val->text);
                s->n_env++;
        }
        return 0;
}

/* pip_secret_mounts: [source, target] pairs, the source resolved against
 * the spec's directory (s->pip_secret_mounts, s->n_pip_secret_mounts).
 * Secrets never hash (hash.c leaves the field out). */
static int read_mounts(struct kiln_spec *s, const struct spec_field *f,
                       const struct kiln_spec_value *v, struct kiln_err **err)
{
        if (expect_type(s, f, v, KILN_SPEC_LIST, "a list of [source, target] pairs", "", err) < 0)
                return -1;
        s->pip_secret_mounts = kiln_xcalloc(v->n ? v->n : 1, sizeof(*s->pip_secret_mounts));
        for (size_t i = 0; i < v->n; i++) {
                const struct kiln_spec_value *it = v->items[i];
                if (it->type != KILN_SPEC_LIST || it->n != 2 ||
                    it->items[0]->type != KILN_SPEC_STR || it->items[1]->type != KILN_SPEC_STR)
                        return kiln_spec_field_error(s, it, f->name, err,
                                                     "item %zu must be a [source, target] pair of "
                                                     "strings",
                                                     i + 1);
                if (!it->items[0]->text[0] || it->items[1]->text[0] != '/')
                        return kiln_spec_field_error(s, it, f->name, err,
                                                     "item %zu: source must be non-empty and "
                                                     "target an absolute path",
                                                     i + 1);
                s->pip_secret_mounts[i].src = kiln_spec_path(s, it->items[0]->text);
                s->pip_secret_mounts[i].dst = kiln_xstrdup(it->items[1]->text);
                s->n_pip_secret_mounts++;
        }
        return 0;
}

/* base_image: other.yaml names another spec, built first and used as the
 * base; it hashes as flytekit hashes a nested ImageSpec (by its name). */
static bool is_spec_file_name(const char *t)
{
        return kiln_str_has_suffix(t, ".yaml") || kiln_str_has_suffix(t, ".yml");
}

/* base_image: an image reference (s->base_image), or another spec built
 * first and used as the base (s->base_spec): a mapping nested in this
 * one, or a spec file (other.yaml). flytekit hashes a nested ImageSpec by
 * its image name (hash.c). */
static int read_base_image(struct kiln_spec *s, const struct spec_field *f,
                           const struct kiln_spec_value *v, int depth, struct kiln_err **err)
{
        if (v->type == KILN_SPEC_STR && is_spec_file_name(v->text))
                return kiln_spec_load_base_file(s, v, err);
        if (v->type == KILN_SPEC_STR) {
                if (!v->text[0])
                        return kiln_spec_field_error(s, v, f->name, err, "is empty");
                s->base_image = kiln_xstrdup(v->text);
                return 0;
        }
        if (v->type != KILN_SPEC_MAP)
                return kiln_spec_field_error(s, v, f->name, err,
                                             "must be an image reference or a nested spec "
                                             "mapping, not %s",
                                             kiln_spec_value_type_name(v));
        struct kiln_spec *b = kiln_xcalloc(1, sizeof(*b));
        b->dir = kiln_xstrdup(s->dir);
        b->path = s->path ? kiln_xstrdup(s->path) : NULL;
        b->errname = kiln_xstrdup(s->errname);
        b->raw = (struct kiln_spec_value *)v;
        s->base_spec = b;
        if (depth >= 8)
                return kiln_spec_field_error(s, v, f->name, err, "nested specs go deeper than 8");
        if (kiln_spec_typed_build(b, depth + 1, err) < 0)
                return kiln_err_prefix(err, "base_image");
        return 0;
}

typedef int field_reader(struct kiln_spec *s, const struct spec_field *f,
                         const struct kiln_spec_value *v, struct kiln_err **err);

/* How each type reads a value into the spec. */
static field_reader *const readers[] = {
    [SPEC_STR] = read_str, [SPEC_VERSION] = read_version, [SPEC_STRLIST] = read_strlist,
    [SPEC_MAP] = read_map, [SPEC_ENV] = read_env,         [SPEC_MOUNTS] = read_mounts,
    [SPEC_BASE] = NULL, /* read_field: it needs the depth */
};

/* Reads v (not null) into f's member(s) by f's type. */
static int read_field(struct kiln_spec *s, const struct spec_field *f,
                      const struct kiln_spec_value *v, int depth, struct kiln_err **err)
{
        if (f->type == SPEC_BASE)
                return read_base_image(s, f, v, depth, err);
        return readers[f->type](s, f, v, err);
}

/* Frees the array of n structs holding two owned strings, a and b, and
 * zeroes array and count (env and pip_secret_mounts). */
#define FREE_PAIRS(array, n, a, b)                                                                 \
        do {                                                                                       \
                for (size_t i_ = 0; i_ < (n); i_++) {                                              \
                        free((array)[i_].a);                                                       \
                        free((array)[i_].b);                                                       \
                }                                                                                  \
                free(steal_pointer(&(array)));                                                     \
                (n) = 0;                                                                           \
        } while (0)

/* Frees what read_field put in f's member(s) and leaves them zeroed. */
static void release_field(struct kiln_spec *s, const struct spec_field *f)
{
        void *at = (char *)s + f->offset;

        switch (f->type) {
        case SPEC_STR:
        case SPEC_VERSION:
                free(steal_pointer((char **)at));
                break;
        case SPEC_STRLIST:
                kiln_strv_free(steal_pointer((char ***)at));
                break;
        case SPEC_MAP:
                *(const struct kiln_spec_value **)at = NULL; /* borrowed from raw */
                break;
        case SPEC_ENV:
                FREE_PAIRS(s->env, s->n_env, key, value);
                break;
        case SPEC_MOUNTS:
                FREE_PAIRS(s->pip_secret_mounts, s->n_pip_secret_mounts, src, dst);
                break;
        case SPEC_BASE:
                free(steal_pointer(&s->base_image));
                kiln_spec_free(steal_pointer(&s->base_spec));
                break;
        }
}

/* Frees the typed view (every field and what was derived from them) and
 * leaves it zeroed; raw, the pool, path, dir and errname stay. */
void kiln_spec_typed_release(struct kiln_spec *s)
{
        for (size_t i = 0; i < N_FIELDS; i++)
                release_field(s, &fields[i]);
        derived_release(s);
}
#define _cleanup_typed_ _cleanup_(typed_release)

static int check_field(struct kiln_spec *s, const struct spec_field *f,
                       const struct kiln_spec_value *v, int depth, struct kiln_err **err)
{
        if (v->type == KILN_SPEC_NULL) {
                if (f->no_null)
                        return kiln_spec_field_error(s, v, f->name, err,
                                                     "must be a string, not null");
                return 0; /* None: as if unset */
        }
        if (read_field(s, f, v, depth, err) < 0)
                return -1;
        if (f->check && f->check(s, f, v, err) < 0)
                return -1;
        return 0;
}

/* An unknown key: the error names the nearest field when one is close. */
static int unknown_field(struct kiln_spec *s, const struct kiln_spec_value *k,
                         struct kiln_err **err)
{
        const char *best = NULL;
        size_t bestd = 3;

        if (k->type != KILN_SPEC_STR)
                return kiln_spec_field_error(s, k, k->text ? k->text : "?", err,
                                             "unknown field (field names are strings, this is %s)",
                                             kiln_spec_value_type_name(k));
        for (size_t j = 0; j < N_FIELDS; j++) {
                size_t d = edit_distance(k->text, fields[j].name);
                if (d < bestd) {
                        bestd = d;
                        best = fields[j].name;
                }
        }
        if (best)
                return kiln_spec_field_error(s, k, k->text, err,
                                             "unknown field; did you mean '%s'?", best);
        return kiln_spec_field_error(s, k, k->text, err, "unknown field");
}

const char *kiln_spec_default_platform(const char *registry, const char *machine)
{
        /* ImageSpec.__post_init__: only a local registry on an arm64 client
         * gets arm64 (images pushed there run on that machine); the
         * registry is lowercased already, machine compared lowercased */
        if (registry && !strncmp(registry, "localhost:", 10) &&
            (!strcasecmp(machine, "arm64") || !strcasecmp(machine, "aarch64")))
                return "linux/arm64";
        return KILN_SPEC_DEFAULT_PLATFORM;
}

/* Checks between fields, and the defaults, once every field is read. */
static int check_spec(struct kiln_spec *s, struct kiln_err **err)
{
        const struct kiln_spec_value *raw = s->raw;

        if (!s->name)
                s->name = kiln_xstrdup(KILN_SPEC_DEFAULT_NAME);
        if (!s->platform) {
                struct utsname u;
                const char *p =
                    kiln_spec_default_platform(s->registry, uname(&u) == 0 ? u.machine : "");
                s->platform = kiln_xstrdup(p);
                s->platforms = kiln_xcalloc(2, sizeof(char *));
                s->platforms[0] = kiln_xstrdup(p);
        }
        if (s->source_copy_mode && strcmp(s->source_copy_mode, "no_copy") && !s->source_root) {
                const struct kiln_spec_value *mv = kiln_spec_value_get(raw, "source_copy_mode");
                return kiln_spec_field_error(s, mv, "source_copy_mode", err,
                                             "'%s' copies source_root, which is not set",
                                             s->source_copy_mode);
        }
        /* flytekit's __post_init__: a source_root without a mode means
         * CopyFileDetection.LOADED_MODULES, which then hashes (as its enum
         * repr) and decides what is copied */
        if (s->source_root && !s->source_copy_mode)
                s->source_copy_mode = kiln_xstrdup("loaded_modules");
        if (s->requirements_lock && s->packages) {
                const struct kiln_spec_value *pv = kiln_spec_value_get(raw, "packages");
                return kiln_spec_field_error(
                    s, pv, "packages", err,
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
                        return kiln_spec_field_error(
                            s, v, "requirements", err,
                            "%s needs the project's pyproject.toml beside it: %s: %s", base, pp,
                            errno ? strerror(errno) : "not a file");
        }
        if (s->base_spec && s->base_spec->warnings)
                for (char **w = s->base_spec->warnings; *w; w++)
                        warn(s, "base_image: %s", *w);
        return 0;
}

/* Builds the typed view from s->raw, field by field in the file's order. */
int kiln_spec_typed_build(struct kiln_spec *s, int depth, struct kiln_err **err)
{
        const struct kiln_spec_value *raw = s->raw;

        for (size_t i = 0; i < raw->n; i++) {
                const struct kiln_spec_value *k = raw->keys[i];
                const struct spec_field *f =
                    k->type == KILN_SPEC_STR ? kiln_spec_field_find(k->text) : NULL;

                if (!f)
                        return unknown_field(s, k, err);
                if (check_field(s, f, raw->items[i], depth, err) < 0)
                        return -1;
        }
        return check_spec(s, err);
}
