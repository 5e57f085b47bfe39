/* env and entrypoint: config-only changes, made before copy and commands so
 * that commands see the spec's environment (as flytekit's builder orders
 * them). flytekit's builder always sets PYTHONPATH=/root (copied code is
 * importable) and SSL_CERT_DIR; the spec's env comes after and wins. */
#include "kiln/step.h"

#include <string.h>

static const struct kiln_spec_env defaults[] = {
    {"PYTHONPATH", "/root"},
    {"SSL_CERT_DIR", "/etc/ssl/certs"},
};

static bool wanted(const struct kiln_spec *s)
{
        (void)s;
        return true;
}

/* The value the image gets for a default: the spec's when it sets one. */
static bool spec_sets(const struct kiln_spec *s, const char *key)
{
        for (size_t i = 0; i < s->n_env; i++)
                if (!strcmp(s->env[i].key, key))
                        return true;
        return false;
}

static char *argv_json(char *const *argv)
{
        json_t *a = json_array();
        for (size_t i = 0; argv[i]; i++)
                json_array_append_new(a, json_string(argv[i]));
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        return s ? s : kiln_xstrdup("[]");
}

static char *describe(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (!spec_sets(s, defaults[i].key))
                        kiln_buf_printf(&b, "%s%s=%s", b.len ? " " : "ENV ", defaults[i].key,
                                        defaults[i].value);
        for (size_t i = 0; i < s->n_env; i++)
                kiln_buf_printf(&b, "%s%s=%s", b.len ? " " : "ENV ", s->env[i].key,
                                s->env[i].value);
        if (s->entrypoint) {
                _cleanup_free_ char *e = argv_json(s->entrypoint);
                kiln_buf_printf(&b, "%sENTRYPOINT %s", b.len ? "; " : "", e);
        }
        return kiln_buf_steal(&b);
}

/* What later steps see (commands run with this env) and what the image
 * gets: the chain of keys goes through it. */
static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        _cleanup_free_ char *d = describe(s);
        kiln_buf_printf(b, "%s\n", d);
        return 0;
}

static int config(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        (void)err;
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_buf_ struct kiln_buf h = {0};
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
                if (spec_sets(s, defaults[i].key))
                        continue;
                kiln_step_set_env(ctx, defaults[i].key, defaults[i].value);
                kiln_buf_printf(&h, "%s%s=%s", h.len ? " " : "ENV ", defaults[i].key,
                                defaults[i].value);
        }
        for (size_t i = 0; i < s->n_env; i++) {
                kiln_step_set_env(ctx, s->env[i].key, s->env[i].value);
                kiln_buf_printf(&h, "%s%s=%s", h.len ? " " : "ENV ", s->env[i].key,
                                s->env[i].value);
        }
        kiln_step_add_history(ctx, h.data);
        if (s->entrypoint) {
                kiln_step_set_entrypoint(ctx, s->entrypoint);
                /* As in a Dockerfile, a new ENTRYPOINT drops the base's CMD:
                 * its arguments were meant for the old entrypoint. */
                char *none[] = {NULL};
                kiln_step_set_cmd(ctx, none);
                _cleanup_free_ char *e = argv_json(s->entrypoint);
                _cleanup_free_ char *eh = kiln_xasprintf("ENTRYPOINT %s", e);
                kiln_step_add_history(ctx, eh);
        }
        return 0;
}

const struct kiln_step_kind kiln_step_env = {
    .name = "env",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .config = config,
};
