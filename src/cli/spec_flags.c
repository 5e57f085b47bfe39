/* ImageSpec fields as command-line flags, shared by the commands that take
 * a spec (build, name): each flag edits the spec as the same YAML key would,
 * so a spec from flags hashes to the name flytekit gives the YAML. */
#include "cli.h"

#include <string.h>

enum flag_kind {
        K_STR,    /* sets a string field */
        K_APPEND, /* appends to a list field */
        K_EMPTY,  /* sets a list field to [] */
        K_ENV,    /* KEY=VALUE into env */
        K_MOUNT,  /* SRC:DST into pip_secret_mounts */
};

static const struct spec_flag {
        const char *flag;
        const char *field;
        enum flag_kind kind;
} spec_flags[] = {
    {"name", "name", K_STR},
    {"registry", "registry", K_STR},
    {"base-image", "base_image", K_STR},
    {"platform", "platform", K_STR},
    {"tag-format", "tag_format", K_STR},
    {"python-version", "python_version", K_STR},
    {"python-exec", "python_exec", K_STR},
    {"requirements", "requirements", K_STR},
    {"pip-index", "pip_index", K_STR},
    {"pip-extra-args", "pip_extra_args", K_STR},
    {"source-root", "source_root", K_STR},
    {"source-copy-mode", "source_copy_mode", K_STR},
    {"cuda", "cuda", K_STR},
    {"cudnn", "cudnn", K_STR},
    {"package", "packages", K_APPEND},
    {"apt-package", "apt_packages", K_APPEND},
    {"conda-package", "conda_packages", K_APPEND},
    {"conda-channel", "conda_channels", K_APPEND},
    {"pip-extra-index-url", "pip_extra_index_url", K_APPEND},
    {"command", "commands", K_APPEND},
    {"copy", "copy", K_APPEND},
    {"entrypoint", "entrypoint", K_APPEND},
    {"no-entrypoint", "entrypoint", K_EMPTY},
    {"env", "env", K_ENV},
    {"pip-secret-mount", "pip_secret_mounts", K_MOUNT},
};
#define N_SPEC_FLAGS (sizeof(spec_flags) / sizeof(spec_flags[0]))

struct option *cli_spec_longopts(const struct option *own)
{
        size_t n_own = 0;
        while (own[n_own].name)
                n_own++;
        struct option *all = kiln_xcalloc(N_SPEC_FLAGS + n_own + 1, sizeof(*all));
        /* Spec flags first: getopt_long takes the first exact match, so
         * --platform is the spec's field, not the pull-style selector. */
        for (size_t i = 0; i < N_SPEC_FLAGS; i++)
                all[i] =
                    (struct option){spec_flags[i].flag,
                                    spec_flags[i].kind == K_EMPTY ? no_argument : required_argument,
                                    NULL, OPT_SPEC_FIRST + (int)i};
        memcpy(all + N_SPEC_FLAGS, own, n_own * sizeof(*own));
        return all;
}

bool cli_spec_flag(struct cli_spec_flags *f, int opt, const char *arg)
{
        if (opt < OPT_SPEC_FIRST || opt >= OPT_SPEC_FIRST + (int)N_SPEC_FLAGS)
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
        const struct spec_flag *f = &spec_flags[opt - OPT_SPEC_FIRST];
        _cleanup_free_ char *k = NULL;
        const char *v = NULL;
        switch (f->kind) {
        case K_STR:
                return kiln_spec_set_str(s, f->field, arg, err);
        case K_APPEND:
                return kiln_spec_append(s, f->field, arg, err);
        case K_EMPTY:
                return kiln_spec_set_empty_list(s, f->field, err);
        case K_ENV:
                if (split_at(f->flag, arg, '=', "KEY=VALUE", &k, &v, err) < 0)
                        return -1;
                return kiln_spec_set_env(s, k, v, err);
        case K_MOUNT:
                if (split_at(f->flag, arg, ':', "SRC:DST", &k, &v, err) < 0)
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
        } else if (f->n) {
                s = kiln_spec_new(NULL);
        } else {
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "no spec (give SPEC.yaml, -f -, or spec flags)");
        }
        /* In command-line order, after the file: a flag amends the file. */
        for (size_t i = 0; i < f->n; i++)
                if (apply(s, f->v[i].opt, f->v[i].arg, err) < 0)
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
