/* The environment of flytekit's default builder: config-only changes.
 *
 * env, after the python venv and before pip, is the template's "Configure
 * user space" ENV: UV_PYTHON (when there is a venv), UV_COMPILE_BYTECODE,
 * UV_LINK_MODE, FLYTE_SDK_RICH_TRACEBACKS, SSL_CERT_DIR, then
 * {"PYTHONPATH": "/root"} updated with the spec's env. pip and everything
 * after it (commands too) run with it, as in the template.
 *
 * runtime-env, after pip, is the template's "Adds nvidia just in case"
 * ENV (PATH and LD_LIBRARY_PATH: GPU nodes mount the driver's binaries and
 * libraries there) and the spec's ENTRYPOINT. */
#include "kiln/step.h"
#include "python-internal.h"

#include <string.h>

#define NVIDIA_PATH   "/usr/local/nvidia/bin:/usr/local/cuda/bin"
#define NVIDIA_LIBS   "/usr/local/nvidia/lib64"
#define PYTHONPATH_KV "PYTHONPATH"

static bool always(const struct kiln_spec *s)
{
        (void)s;
        return true;
}

/* The spec's value of key, or NULL. */
static const char *spec_env(const struct kiln_spec *s, const char *key)
{
        for (size_t i = 0; i < s->n_env; i++)
                if (!strcmp(s->env[i].key, key))
                        return s->env[i].value;
        return NULL;
}

/* The ENV line's pairs in the template's order, NULL-terminated key,
 * value, key, value ...: the spec's PYTHONPATH takes the default's place
 * (a dict update); its other keys follow, each replacing an earlier value
 * where it repeats one, as Docker's ENV does. UV_PYTHON only with the
 * venv: uv is no part of the image and a UV_PYTHON naming no interpreter
 * would break a uv the spec's commands install. Caller frees the array. */
static const char **env_pairs(const struct kiln_spec *s)
{
        const char **kv = kiln_xcalloc(2 * (s->n_env + 7) + 1, sizeof(char *));
        size_t n = 0;
        if (kiln_python_venv_wanted(s)) {
                kv[n++] = "UV_PYTHON";
                kv[n++] = KILN_VENV "/bin/python";
        }
        static const char *const fixed[] = {
            "UV_COMPILE_BYTECODE",       "1", "UV_LINK_MODE", "copy",
            "FLYTE_SDK_RICH_TRACEBACKS", "0", "SSL_CERT_DIR", "/etc/ssl/certs"};
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                kv[n++] = fixed[i];
        const char *pp = spec_env(s, PYTHONPATH_KV);
        kv[n++] = PYTHONPATH_KV;
        kv[n++] = pp ? pp : "/root";
        for (size_t i = 0; i < s->n_env; i++) {
                if (!strcmp(s->env[i].key, PYTHONPATH_KV))
                        continue;
                kv[n++] = s->env[i].key;
                kv[n++] = s->env[i].value;
        }
        return kv;
}

static char *describe(const struct kiln_spec *s)
{
        _cleanup_free_ const char **kv = env_pairs(s);
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, "ENV");
        for (size_t i = 0; kv[i]; i += 2)
                kiln_buf_printf(&b, " %s=%s", kv[i], kv[i + 1]);
        return kiln_buf_steal(&b);
}

/* What later steps see (pip and commands run with this env) and what the
 * image gets: the chain of keys goes through it. */
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
        _cleanup_free_ const char **kv = env_pairs(s);
        for (size_t i = 0; kv[i]; i += 2)
                kiln_step_set_env(ctx, kv[i], kv[i + 1]);
        _cleanup_free_ char *h = describe(s);
        kiln_step_add_history(ctx, h);
        return 0;
}

const struct kiln_step_kind kiln_step_env = {
    .name = "env",
    .wanted = always,
    .describe = describe,
    .key = key,
    .config = config,
};

/* ---------- after pip: the GPU paths and the entrypoint ---------- */

static char *argv_json(char *const *argv)
{
        json_t *a = json_array();
        for (size_t i = 0; argv[i]; i++)
                json_array_append_new(a, json_string(argv[i]));
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        return s ? s : kiln_xstrdup("[]");
}

/* The template's text; the values are the image's at this point (its
 * base's and the earlier steps', which the chain of keys covers). */
static char *describe_runtime(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, "ENV PATH=$PATH:" NVIDIA_PATH " LD_LIBRARY_PATH=" NVIDIA_LIBS
                          ":$LD_LIBRARY_PATH");
        if (s->entrypoint) {
                _cleanup_free_ char *e = argv_json(s->entrypoint);
                kiln_buf_printf(&b, "; ENTRYPOINT %s", e);
        }
        return kiln_buf_steal(&b);
}

static int key_runtime(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        _cleanup_free_ char *d = describe_runtime(s);
        /* bump when the rule for an unset LD_LIBRARY_PATH changes */
        kiln_buf_printf(b, "%s\nruntime env 1\n", d);
        return 0;
}

/* An unset or empty LD_LIBRARY_PATH gets no trailing ':': Docker would
 * write "/usr/local/nvidia/lib64:", whose empty element is the working
 * directory, from which the loader would then take libraries. */
static int config_runtime(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        (void)err;
        const struct kiln_spec *s = kiln_step_spec(ctx);
        const char *path = kiln_step_get_env(ctx, "PATH");
        _cleanup_free_ char *newpath =
            kiln_xasprintf("%s:" NVIDIA_PATH, path ? path : KILN_DEFAULT_PATH);
        const char *libs = kiln_step_get_env(ctx, "LD_LIBRARY_PATH");
        _cleanup_free_ char *newlibs =
            libs && *libs ? kiln_xasprintf(NVIDIA_LIBS ":%s", libs) : kiln_xstrdup(NVIDIA_LIBS);
        kiln_step_set_env(ctx, "PATH", newpath);
        kiln_step_set_env(ctx, "LD_LIBRARY_PATH", newlibs);
        _cleanup_free_ char *h = kiln_xasprintf("ENV PATH=%s LD_LIBRARY_PATH=%s", newpath, newlibs);
        kiln_step_add_history(ctx, h);
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

const struct kiln_step_kind kiln_step_runtime_env = {
    .name = "runtime-env",
    .wanted = always,
    .describe = describe_runtime,
    .key = key_runtime,
    .config = config_runtime,
};
