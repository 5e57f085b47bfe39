/* The python environment: a venv at /root/.venv that sees the base's system
 * site packages, made with the interpreter the spec names (python_exec,
 * python<python_version>) or the base's python3, and put first on PATH, as
 * flytekit's builder does for python_exec and lock files. The venv gets no
 * pip of its own when the base has one: copying pip into every image is
 * most of a venv's creation time, and the base's pip installs into the venv
 * with --python. */
#include "kiln/build.h"
#include "python.h"

#include <string.h>

static bool wanted(const struct kiln_spec *s)
{
        return s->python_exec || s->python_version || (s->packages && s->packages[0]) ||
               s->requirements;
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

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_free_ char *py = kiln_python_interpreter(s);
        /* The interpreter's name reaches the script through the environment,
         * never through shell text. */
        static const char script[] =
            "set -e\n"
            "if ! command -v \"$KILN_PY\" >/dev/null 2>&1; then\n"
            "  echo \"kiln: the base image has no $KILN_PY (python_version/python_exec);\" "
            "\"installing another python needs conda-forge, which kiln cannot reach here\" >&2\n"
            "  exit 127\n"
            "fi\n"
            "if \"$KILN_PY\" -m pip --version >/dev/null 2>&1; then\n"
            "  \"$KILN_PY\" -m venv --system-site-packages --without-pip " KILN_VENV "\n"
            "else\n"
            "  \"$KILN_PY\" -m venv --system-site-packages " KILN_VENV "\n"
            "fi\n";
        char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
        _cleanup_free_ char *pyenv = kiln_xasprintf("KILN_PY=%s", py);
        char *env[] = {pyenv, NULL};
        _cleanup_free_ char *created_by = describe(s);
        if (kiln_step_sandbox(ctx, argv, env, NULL, 0, created_by, err) < 0)
                return -1;
        struct kiln_image *img = kiln_step_image(ctx);
        const char *path = kiln_image_get_env(img, "PATH");
        _cleanup_free_ char *newpath = kiln_xasprintf(
            "%s/bin:%s", KILN_VENV,
            path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        kiln_image_set_env(img, "PATH", newpath);
        _cleanup_free_ char *h = kiln_xasprintf("ENV PATH=%s", newpath);
        kiln_image_add_history(img, h);
        return 0;
}

const struct kiln_step_kind kiln_step_python = {
    .name = "python",
    .wanted = wanted,
    .describe = describe,
    .run = run,
};
