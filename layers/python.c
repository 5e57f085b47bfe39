/* The python environment: a venv at /root/.venv that sees the base's system
 * site packages, made with the interpreter the spec names (python_exec,
 * python<python_version>) or the base's python3, and put first on PATH, as
 * flytekit's builder does for python_exec and lock files. The venv gets no
 * pip of its own when the base has one: copying pip into every image is
 * most of a venv's creation time, and the base's pip installs into the venv
 * with --python. */
#include "kiln/step.h"
#include "apt-internal.h"
#include "python-internal.h"

#include <string.h>

#define CONDA_FORGE_URL "https://conda.anaconda.org/conda-forge/noarch/repodata.json"
#define MICROMAMBA_URL  "https://micro.mamba.pm/api/micromamba/linux-64/latest"

bool kiln_python_venv_wanted(const struct kiln_spec *s)
{
        return s->python_exec || s->python_version || (s->packages && s->packages[0]) ||
               s->requirements || s->conda_packages || s->conda_channels || s->flytekit_requirement;
}

char *kiln_python_interpreter(const struct kiln_spec *s)
{
        if (s->python_exec)
                return kiln_xstrdup(s->python_exec);
        if (s->python_version)
                return kiln_xasprintf("python%s", s->python_version);
        return kiln_xstrdup("python3");
}

static char *describe(const struct kiln_spec *s)
{
        _cleanup_free_ char *py = kiln_python_interpreter(s);
        return kiln_xasprintf("%s -m venv --system-site-packages %s", py, KILN_VENV);
}

/* Names reach the script through the environment, never through shell
 * text. */
static const char script[] =
    "set -e\n"
    "if ! command -v \"$KILN_PY\" >/dev/null 2>&1; then\n"
    "  if [ -z \"$KILN_PY_VERSION\" ]; then\n"
    "    echo \"kiln: the base image has no $KILN_PY (python_exec)\" >&2\n"
    "    exit 127\n"
    "  fi\n"
    "  command -v apt-get >/dev/null 2>&1 || exit 3\n"
    "  apt-get update -qq\n"
    "  cand=$(apt-cache policy \"python$KILN_PY_VERSION\" 2>/dev/null |"
    " sed -n 's/^ *Candidate: //p')\n"
    "  case \"$cand\" in ''|'(none)') exit 3;; esac\n"
    "  echo \"kiln: the base image has no $KILN_PY; installing python$KILN_PY_VERSION"
    " $cand from its distribution\"\n"
    "  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
    " \"python$KILN_PY_VERSION\" \"python$KILN_PY_VERSION-venv\"\n"
    "  rm -f /var/cache/ldconfig/aux-cache\n"
    "fi\n"
    "if \"$KILN_PY\" -c 'import pip' >/dev/null 2>&1; then\n"
    "  \"$KILN_PY\" -m venv --system-site-packages --without-pip " KILN_VENV "\n"
    "else\n"
    "  \"$KILN_PY\" -m venv --system-site-packages " KILN_VENV "\n"
    "fi\n"
    /* flytekit's builder gives the environment to the task's user (chown
     * -R flytekit): runtime_packages, and a task's own pip install, write
     * into it as that user */
    "chown -R flytekit " KILN_VENV "\n";
/* The script's exit status when neither the base nor its distribution has
 * the python asked for. */
#define NO_DISTRO_PYTHON 3

/* What flytekit's default builder would do instead: micromamba with
 * conda-forge. Say which of them cannot be reached from here. */
static int needs_conda(const struct kiln_spec *s, const char *why, struct kiln_err **err)
{
        _cleanup_err_ struct kiln_err *probe = NULL;
        const char *urls[] = {CONDA_FORGE_URL, MICROMAMBA_URL};
        for (size_t i = 0; i < 2; i++)
                if (kiln_step_probe_url(urls[i], 5000, &probe) < 0)
                        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                                            "%s: that needs micromamba and conda-forge, as "
                                            "flytekit's default builder uses them, but %s",
                                            why, probe->msg);
        (void)s;
        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                            "%s: that needs a micromamba environment, which kiln does not build "
                            "yet; use a base_image that has this python, or python_exec",
                            why);
}

static char *version_env(const struct kiln_spec *s)
{
        return kiln_xasprintf("KILN_PY_VERSION=%s",
                              s->python_exec || !s->python_version ? "" : s->python_version);
}

static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        _cleanup_free_ char *py = kiln_python_interpreter(s);
        _cleanup_free_ char *ver = version_env(s);
        kiln_buf_printf(b, "KILN_PY=%s\n%s\nconda %d\n%s", py, ver,
                        s->conda_packages || s->conda_channels, script);
        return 0;
}

/* The script in the sandbox. apt's caches are there in case the
 * distribution must supply the python; they stay out of the layer either
 * way, and their lock is let go before anything else is tried. */
static int make_venv(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_free_ char *py = kiln_python_interpreter(s);
        char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
        _cleanup_free_ char *pyenv = kiln_xasprintf("KILN_PY=%s", py);
        _cleanup_free_ char *verenv = version_env(s);
        char *env[] = {pyenv, verenv, NULL};
        _cleanup_free_ char *desc = describe(s);
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN %s", desc);
        _cleanup_apt_cache_ struct kiln_apt_cache apt = {.lock = -1};
        if (kiln_apt_cache_open(ctx, &apt, err) < 0)
                return -1;
        return kiln_step_sandbox(ctx, argv, env, apt.binds, KILN_APT_BINDS, created_by, err);
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        if (s->conda_packages || s->conda_channels)
                return needs_conda(s, "conda_packages/conda_channels are set", err);
        if (make_venv(ctx, err) == 0)
                return 0;
        if ((*err)->domain != KILN_ERR_BUILD || (*err)->code != NO_DISTRO_PYTHON)
                return -1;
        kiln_err_clear(err);
        _cleanup_free_ char *why = kiln_xasprintf("python_version %s: neither the base image nor "
                                                  "its distribution's archive has python%s",
                                                  s->python_version, s->python_version);
        return needs_conda(s, why, err);
}

/* The venv's bin first on PATH, as flytekit's builder puts its env's. */
static int config(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        (void)err;
        const char *path = kiln_step_get_env(ctx, "PATH");
        _cleanup_free_ char *newpath =
            kiln_xasprintf("%s/bin:%s", KILN_VENV, path ? path : KILN_DEFAULT_PATH);
        kiln_step_set_env(ctx, "PATH", newpath);
        _cleanup_free_ char *h = kiln_xasprintf("ENV PATH=%s", newpath);
        kiln_step_add_history(ctx, h);
        return 0;
}

const struct kiln_step_kind kiln_step_python = {
    .name = "python",
    .wanted = kiln_python_venv_wanted,
    .describe = describe,
    .key = key,
    .run = run,
    .config = config,
};
