/* python packages: `pip install` of packages and a requirements file into
 * the venv, with pip_index, pip_extra_index_url and pip_extra_args. pip's
 * download cache is a kiln cache directory mounted for the run, so a rebuild
 * downloads nothing it already has. Index URLs reach pip through its
 * environment, which is not recorded; the history and kiln's output show
 * them with any credentials removed. pip_secret_mounts are bound read-only
 * for this step only. */
#include "kiln/build.h"
#include "python.h"

#include "kiln/ref.h"

#include <string.h>

#define REQS_IN_SANDBOX  "/run/kiln/requirements.txt"
#define CACHE_IN_SANDBOX "/var/cache/kiln-pip"

static bool wanted(const struct kiln_spec *s)
{
        return (s->packages && s->packages[0]) || (s->requirements && !s->requirements_lock);
}

/* "https://user:pass@host/simple" -> "https://host/simple". Caller frees. */
static char *without_credentials(const char *url)
{
        const char *scheme = strstr(url, "://");
        const char *host = scheme ? scheme + 3 : url;
        const char *slash = strchr(host, '/');
        const char *at = strchr(host, '@');
        if (!at || (slash && at > slash))
                return kiln_xstrdup(url);
        return kiln_xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

/* pip keeps nothing it fetched over plain HTTP in its cache unless the host
 * is "trusted". kiln's rule for registries holds here too: plain HTTP to a
 * loopback host is fine, so such index hosts are trusted and cached. */
static void add_trusted_loopback(struct kiln_buf *b, const char *url)
{
        if (!kiln_str_has_prefix(url, "http://"))
                return;
        _cleanup_free_ char *clean = without_credentials(url);
        const char *host = clean + 7;
        size_t len = strcspn(host, "/?#");
        _cleanup_free_ char *hp = kiln_xstrndup(host, len);
        if (kiln_host_is_loopback(hp))
                kiln_buf_printf(b, "%s%s", b->len ? " " : "PIP_TRUSTED_HOST=", hp);
}

static char *describe(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, "pip install");
        for (size_t i = 0; s->packages && s->packages[i]; i++)
                kiln_buf_printf(&b, " %s", s->packages[i]);
        if (s->requirements && !s->requirements_lock)
                kiln_buf_printf(&b, " -r %s", s->requirements);
        if (s->pip_index) {
                _cleanup_free_ char *u = without_credentials(s->pip_index);
                kiln_buf_printf(&b, " --index-url %s", u);
        }
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++) {
                _cleanup_free_ char *u = without_credentials(s->pip_extra_index_url[i]);
                kiln_buf_printf(&b, " --extra-index-url %s", u);
        }
        if (s->pip_extra_args)
                kiln_buf_printf(&b, " %s", s->pip_extra_args);
        return kiln_buf_steal(&b);
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_free_ char *cache = kiln_step_cache_dir(ctx, "pip", false, err);
        if (!cache)
                return -1;
        struct kiln_buf cmd = {0};
        /* The venv's own pip when it has one, else the base's pip aimed at
         * the venv. */
        kiln_buf_puts(&cmd, "set -e\n"
                            "if /root/.venv/bin/python -m pip --version >/dev/null 2>&1; then\n"
                            "  set -- /root/.venv/bin/python -m pip install\n"
                            "else\n"
                            "  set -- \"$KILN_PY\" -m pip --python /root/.venv/bin/python install\n"
                            "fi\n"
                            "exec \"$@\" --no-input --disable-pip-version-check");
        for (size_t i = 0; s->packages && s->packages[i]; i++) {
                kiln_buf_puts(&cmd, " ");
                kiln_buf_shell_quote(&cmd, s->packages[i]);
        }
        size_t n_binds = 0;
        struct kiln_bind *binds = kiln_xcalloc(s->n_pip_secret_mounts + 2, sizeof(*binds));
        binds[n_binds++] = (struct kiln_bind){.source = cache, .target = CACHE_IN_SANDBOX};
        if (s->requirements && !s->requirements_lock) {
                kiln_buf_puts(&cmd, " -r " REQS_IN_SANDBOX);
                binds[n_binds++] = (struct kiln_bind){
                    .source = s->requirements_path, .target = REQS_IN_SANDBOX, .readonly = true};
        }
        for (size_t i = 0; i < s->n_pip_secret_mounts; i++)
                binds[n_binds++] = (struct kiln_bind){.source = s->pip_secret_mounts[i].src,
                                                      .target = s->pip_secret_mounts[i].dst,
                                                      .readonly = true};
        /* Appended verbatim, as flytekit does. */
        if (s->pip_extra_args)
                kiln_buf_printf(&cmd, " %s", s->pip_extra_args);

        _cleanup_free_ char *py = kiln_python_interpreter(s);
        _cleanup_free_ char *pyenv = kiln_xasprintf("KILN_PY=%s", py);
        _cleanup_free_ char *index =
            s->pip_index ? kiln_xasprintf("PIP_INDEX_URL=%s", s->pip_index) : NULL;
        struct kiln_buf extra = {0};
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                kiln_buf_printf(&extra, "%s%s", extra.len ? " " : "PIP_EXTRA_INDEX_URL=",
                                s->pip_extra_index_url[i]);
        struct kiln_buf trusted = {0};
        if (s->pip_index)
                add_trusted_loopback(&trusted, s->pip_index);
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                add_trusted_loopback(&trusted, s->pip_extra_index_url[i]);
        char *env[7];
        size_t ne = 0;
        env[ne++] = pyenv;
        env[ne++] = "PIP_CACHE_DIR=" CACHE_IN_SANDBOX;
        env[ne++] = "PIP_ROOT_USER_ACTION=ignore";
        if (index)
                env[ne++] = index;
        if (extra.len)
                env[ne++] = extra.data;
        if (trusted.len)
                env[ne++] = trusted.data;
        env[ne] = NULL;
        char *argv[] = {"/bin/sh", "-c", cmd.data, NULL};
        _cleanup_free_ char *desc = describe(s);
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN %s", desc);
        int rc = kiln_step_sandbox(ctx, argv, env, binds, n_binds, created_by, err);
        if (extra.data)
                explicit_bzero(extra.data, extra.len);
        if (index)
                explicit_bzero(index, strlen(index));
        kiln_buf_release(&extra);
        kiln_buf_release(&trusted);
        kiln_buf_release(&cmd);
        free(binds);
        return rc;
}

const struct kiln_step_kind kiln_step_pip = {
    .name = "pip",
    .wanted = wanted,
    .describe = describe,
    .run = run,
};
