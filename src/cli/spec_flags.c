/* ImageSpec fields as command-line flags, shared by the commands that take
 * a spec (build, name): each flag edits the spec as the same YAML key would,
 * so a spec from flags hashes to the name flytekit gives the YAML. The flags
 * are defined with their fields (kiln_spec_field_flags); this file only
 * hands them to getopt, lists them in help and applies them. */
#include "cli.h"

#include <string.h>

/* Help lists the flags as a paragraph of lines at most this wide. */
#define SPEC_HELP_WIDTH 83

/* getopt gets OPT_SPEC_FIRST + id for a flag, id = field index *
 * KILN_SPEC_FIELD_FLAGS + the flag's index in its field. */
struct spec_flag {
        const char *field;
        const struct kiln_spec_flag *flag;
        int id;
};

/* The spec flag with this id, or false when there is none. */
static bool spec_flag_by_id(int id, struct spec_flag *out)
{
        if (id < 0)
                return false;
        size_t i = (size_t)id / KILN_SPEC_FIELD_FLAGS;
        const char *field = kiln_spec_field_name(i);
        if (!field)
                return false;
        const struct kiln_spec_flag *fl = &kiln_spec_field_flags(i)[id % KILN_SPEC_FIELD_FLAGS];
        if (!fl->name)
                return false;
        *out = (struct spec_flag){field, fl, id};
        return true;
}

/* A flag's position in a listing: its place, or after all placed flags in
 * table order when it has none. */
static int listing_key(unsigned place, int id)
{
        return place ? (int)place : 256 + id;
}

static int by_opt_place(const void *a, const void *b)
{
        const struct spec_flag *x = a, *y = b;
        return listing_key(x->flag->opt_place, x->id) - listing_key(y->flag->opt_place, y->id);
}

static int by_help_place(const void *a, const void *b)
{
        const struct spec_flag *x = a, *y = b;
        return listing_key(x->flag->help_place, x->id) - listing_key(y->flag->help_place, y->id);
}

/* Every spec flag, sorted by cmp; *n gets the count. Caller frees. */
static struct spec_flag *spec_flags_sorted(int (*cmp)(const void *, const void *), size_t *n)
{
        size_t n_fields = 0;
        while (kiln_spec_field_name(n_fields))
                n_fields++;
        struct spec_flag *v = kiln_xcalloc(n_fields * KILN_SPEC_FIELD_FLAGS + 1, sizeof(*v));
        *n = 0;
        for (int id = 0; id < (int)(n_fields * KILN_SPEC_FIELD_FLAGS); id++)
                if (spec_flag_by_id(id, &v[*n]))
                        (*n)++;
        qsort(v, *n, sizeof(*v), cmp);
        return v;
}

struct option *cli_spec_longopts(const struct option *own)
{
        size_t n_own = 0, n = 0;
        while (own[n_own].name)
                n_own++;
        _cleanup_free_ struct spec_flag *flags = spec_flags_sorted(by_opt_place, &n);
        struct option *all = kiln_xcalloc(n + n_own + 2, sizeof(*all));
        /* Spec flags first: getopt_long takes the first exact match, so
         * --platform is the spec's field, not the pull-style selector. */
        for (size_t i = 0; i < n; i++)
                all[i] = (struct option){
                    flags[i].flag->name,
                    flags[i].flag->op == KILN_SPEC_FLAG_EMPTY ? no_argument : required_argument,
                    NULL, OPT_SPEC_FIRST + flags[i].id};
        all[n++] = (struct option){"loaded-modules", required_argument, NULL, OPT_LOADED_MODULES};
        memcpy(all + n, own, n_own * sizeof(*own));
        return all;
}

void cli_spec_help(FILE *out)
{
        size_t n = 0, col = 0;
        _cleanup_free_ struct spec_flag *flags = spec_flags_sorted(by_help_place, &n);

        fputs("Spec fields as flags (applied after SPEC.yaml; the name changes as the same YAML\n"
              "would change it):\n",
              out);
        for (size_t i = 0; i < n; i++) {
                const char *help = flags[i].flag->help;
                _cleanup_free_ char *item = kiln_xasprintf("  --%s%s%s", flags[i].flag->name,
                                                           help ? " " : "", help ? help : "");
                if (col && col + strlen(item) > SPEC_HELP_WIDTH) {
                        fputs("\n", out);
                        col = 0;
                }
                fputs(item, out);
                col += strlen(item);
        }
        fputs("\n", out);
        fputs("  --loaded-modules FILE     the module files pyflyte imported, one absolute path\n"
              "                            per line: what source_copy_mode loaded_modules (the\n"
              "                            default with source_root) copies and hashes; the\n"
              "                            flytekit plugin writes it\n",
              out);
}

bool cli_spec_flag(struct cli_spec_flags *f, int opt, const char *arg)
{
        struct spec_flag sf;
        if (opt == OPT_LOADED_MODULES) {
                f->loaded_modules = arg;
                return true;
        }
        if (!spec_flag_by_id(opt - OPT_SPEC_FIRST, &sf))
                return false;
        f->v = kiln_xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
        f->v[f->n].opt = opt;
        f->v[f->n].arg = arg;
        f->n++;
        return true;
}

static int split_at(const char *flag, const char *arg, char sep, const char *want, char **k,
                    const char **v, struct kiln_err **err)
{
        const char *p = strchr(arg, sep);
        if (!p || p == arg || (sep == ':' && !p[1]))
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "--%s %s: want %s", flag, arg, want);
        *k = kiln_xstrndup(arg, (size_t)(p - arg));
        *v = p + 1;
        return 0;
}

static int apply(struct kiln_spec *s, int opt, const char *arg, struct kiln_err **err)
{
        struct spec_flag f;
        _cleanup_free_ char *k = NULL;
        const char *v = NULL;
        if (!spec_flag_by_id(opt - OPT_SPEC_FIRST, &f))
                abort(); /* cli_spec_flag recorded only the options of spec flags */
        switch (f.flag->op) {
        case KILN_SPEC_FLAG_SET:
                return kiln_spec_set_str(s, f.field, arg, err);
        case KILN_SPEC_FLAG_APPEND:
                return kiln_spec_append(s, f.field, arg, err);
        case KILN_SPEC_FLAG_EMPTY:
                return kiln_spec_set_empty_list(s, f.field, err);
        case KILN_SPEC_FLAG_ENV:
                if (split_at(f.flag->name, arg, '=', "KEY=VALUE", &k, &v, err) < 0)
                        return -1;
                return kiln_spec_set_env(s, k, v, err);
        case KILN_SPEC_FLAG_MOUNT:
                if (split_at(f.flag->name, arg, ':', "SRC:DST", &k, &v, err) < 0)
                        return -1;
                return kiln_spec_add_secret_mount(s, k, v, err);
        }
        return 0;
}

int cli_spec_load(const char *file, const struct cli_spec_flags *f, struct kiln_spec **out,
                  struct kiln_err **err)
{
        *out = NULL;
        _cleanup_spec_ struct kiln_spec *s = NULL;
        if (file) {
                if (kiln_spec_load_file(file, &s, err) < 0)
                        return -1;
        } else if (f->n || f->loaded_modules) {
                s = kiln_spec_new(NULL);
        } else {
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "no spec (give SPEC.yaml, -f -, or spec flags)");
        }
        /* In command-line order, after the file: a flag amends the file. */
        for (size_t i = 0; i < f->n; i++)
                if (apply(s, f->v[i].opt, f->v[i].arg, err) < 0)
                        return -1;
        if (f->loaded_modules && kiln_spec_set_loaded_modules(s, f->loaded_modules, err) < 0)
                return -1;
        *out = steal_pointer(&s);
        return 0;
}

void cli_spec_flags_release(struct cli_spec_flags *f)
{
        free(f->v);
        f->v = NULL;
        f->n = 0;
}
