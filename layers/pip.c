/* python packages: `pip install` of packages and a requirements file into
 * the venv, with pip_index, pip_extra_index_url and pip_extra_args. pip's
 * download cache is a kiln cache directory mounted for the run, so a rebuild
 * downloads nothing it already has. Index URLs reach pip through its
 * environment, which is not recorded; the history and kiln's output show
 * them with any credentials removed. pip_secret_mounts are bound read-only
 * for this step only. */
#include "kiln/step.h"
#include "python-internal.h"

#include <string.h>

#define REQS_IN_SANDBOX  "/run/kiln/requirements.txt"
#define CACHE_IN_SANDBOX "/var/cache/kiln-pip"
/* lock mode: the project files, and a scratch dir with the converter and
 * the requirements it writes */
#define PROJECT_IN_SANDBOX "/run/kiln/project"
#define LOCK_IN_SANDBOX    "/run/kiln/lock"
#define LOCK_FAILED        65 /* the converter refused the lock: its message is the error */
#define LOCK_ERROR_MAX     4096

/* layers/lock_requirements.py, embedded at build time */
static const char lock_script[] = {
#include "lock_requirements.inc"
};
/* layers/venv_scripts.py: a base's flytekit's console scripts into the
 * venv, run after pip */
static const char venv_scripts[] = {
#include "venv_scripts.inc"
};

/* With --flytekit-requirement the step runs even for a spec with no
 * packages, as flytekit's default builder always installs flytekit. */
static bool wanted(const struct kiln_spec *s)
{
        return (s->packages && s->packages[0]) || s->requirements || s->flytekit_requirement;
}

/* uv.lock, poetry.lock, or a bare pyproject.toml: turned into pinned,
 * hashed requirements by the image's python, then installed by pip. */
static bool from_project(const struct kiln_spec *s)
{
        return s->requirements && (s->requirements_lock || s->requirements_pyproject);
}

static const char *base_name(const char *path)
{
        const char *b = strrchr(path, '/');
        return b ? b + 1 : path;
}

/* flytekit's _is_flytekit: the requirement's leading `[\w-]+` is exactly
 * "flytekit" (flytekit==1.2, flytekit[extra]; not flytekit-foo nor
 * Flytekit). A byte past ASCII counts as a word character, as most of
 * what Python's \w matches there are letters. */
static bool is_flytekit(const char *req, size_t len)
{
        static const char name[] = "flytekit";
        size_t n = sizeof(name) - 1;
        if (len < n || memcmp(req, name, n) != 0)
                return false;
        if (len == n)
                return true;
        unsigned char c = (unsigned char)req[n];
        return !(c >= 0x80 || c == '_' || c == '-' || (c >= '0' && c <= '9') ||
                 (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/* Does a requirements file name flytekit? flytekit strips each line. */
static int file_names_flytekit(const char *path, bool *found, struct kiln_err **err)
{
        *found = false;
        _cleanup_buf_ struct kiln_buf reqs = {0};
        if (kiln_read_file(path, KILN_SPEC_REQUIREMENTS_MAX, &reqs, err) < 0)
                return kiln_err_prefix(err, "requirements");
        for (const char *line = reqs.data; line && *line && !*found;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) : strlen(line);
                size_t lead = strspn(line, " \t\r\f\v");
                *found = lead < len && is_flytekit(line + lead, len - lead);
                line = end ? end + 1 : NULL;
        }
        return 0;
}

/* What --flytekit-requirement adds, as flytekit's default builder adds
 * its own version: nothing when a lock file decides what is installed
 * (flytekit adds nothing to uv.lock or poetry.lock either) or when
 * packages or the requirements file already name flytekit. A bare
 * pyproject.toml's dependencies are known only inside the sandbox, where
 * the same test is made (run). */
static int flytekit_added(const struct kiln_spec *s, const char **out, struct kiln_err **err)
{
        *out = NULL;
        if (!s->flytekit_requirement || s->requirements_lock)
                return 0;
        for (size_t i = 0; s->packages && s->packages[i]; i++)
                if (is_flytekit(s->packages[i], strlen(s->packages[i])))
                        return 0;
        bool found = false;
        if (s->requirements && !s->requirements_pyproject &&
            file_names_flytekit(s->requirements_path, &found, err) < 0)
                return -1;
        *out = found ? NULL : s->flytekit_requirement;
        return 0;
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
        /* a package may be a URL with credentials (name @ https://u:p@...):
         * this text is the step's log line and the image's history */
        for (size_t i = 0; s->packages && s->packages[i]; i++) {
                kiln_buf_puts(&b, " ");
                kiln_buf_put_redacted(&b, s->packages[i], strlen(s->packages[i]));
        }
        /* an unreadable requirements file is the key's error to report */
        _cleanup_err_ struct kiln_err *ferr = NULL;
        const char *fk = NULL;
        if (flytekit_added(s, &fk, &ferr) == 0 && fk) {
                kiln_buf_puts(&b, " ");
                kiln_buf_put_redacted(&b, fk, strlen(fk));
                if (s->requirements_pyproject)
                        kiln_buf_puts(&b, " (unless the project names flytekit)");
        }
        if (s->requirements_lock)
                kiln_buf_printf(&b, " --require-hashes --no-deps -r %s (locked)", s->requirements);
        else if (s->requirements_pyproject)
                kiln_buf_printf(&b, " -r %s (its dependencies)", s->requirements);
        else if (s->requirements)
                kiln_buf_printf(&b, " -r %s", s->requirements);
        if (s->pip_index) {
                _cleanup_free_ char *u = without_credentials(s->pip_index);
                kiln_buf_printf(&b, " --index-url %s", u);
        }
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++) {
                _cleanup_free_ char *u = without_credentials(s->pip_extra_index_url[i]);
                kiln_buf_printf(&b, " --extra-index-url %s", u);
        }
        if (s->pip_extra_args) {
                kiln_buf_puts(&b, " ");
                kiln_buf_put_redacted(&b, s->pip_extra_args, strlen(s->pip_extra_args));
        }
        return kiln_buf_steal(&b);
}

/* Bump when the install command changes what it installs for the same
 * inputs. */
#define PIP_STEP_VERSION 3

static int file_digest(struct kiln_buf *b, const char *what, const char *path,
                       struct kiln_err **err)
{
        char d[KILN_DIGEST_MAX];
        if (kiln_sha256_file(path, d, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        kiln_buf_printf(b, "%s %s\n", what, d);
        return 0;
}

/* The index URLs without credentials and pip_extra_args (which may name
 * more indexes or --find-links). */
static void index_lines(const struct kiln_spec *s, struct kiln_buf *b)
{
        if (s->pip_index) {
                _cleanup_free_ char *u = without_credentials(s->pip_index);
                kiln_buf_printf(b, "index %s\n", u);
        }
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++) {
                _cleanup_free_ char *u = without_credentials(s->pip_extra_index_url[i]);
                kiln_buf_printf(b, "extra-index %s\n", u);
        }
        if (s->pip_extra_args)
                kiln_buf_printf(b, "args %s\n", s->pip_extra_args);
}

/* Where pip fetches from, which keys its cache with the base image: build
 * code (the base's sitecustomize.py, a package's setup.py) writes into the
 * cache it mounts, so only builds that already trust the same base and the
 * same sources share one. The index lines, the options of a requirements
 * file (-i, --extra-index-url, -f ...; not what it installs, so changed
 * requirements still hit the cache), and for a lock or pyproject whose own
 * indexes are read inside the sandbox, the file itself. */
static int cache_sources(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        index_lines(s, b);
        if (from_project(s) && !s->pip_index)
                return file_digest(b, "project", s->requirements_path, err);
        if (!s->requirements || from_project(s))
                return 0;
        _cleanup_buf_ struct kiln_buf reqs = {0};
        if (kiln_read_file(s->requirements_path, KILN_SPEC_REQUIREMENTS_MAX, &reqs, err) < 0)
                return kiln_err_prefix(err, "requirements");
        for (const char *line = reqs.data; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) : strlen(line);
                size_t lead = strspn(line, " \t");
                if (lead < len && line[lead] == '-' && strncmp(line + lead, "--hash", 6))
                        kiln_buf_printf(b, "option %.*s\n", (int)(len - lead), line + lead);
                line = end ? end + 1 : NULL;
        }
        return 0;
}

/* What pip is asked to install and from where: packages, the content of
 * requirement and lock files (and the project beside a lock), the index
 * URLs without credentials, pip_extra_args, where secrets are mounted (not
 * what they hold). */
static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        _cleanup_free_ char *py = kiln_python_interpreter(s);
        char vs[KILN_DIGEST_MAX];
        kiln_sha256_digest(venv_scripts, sizeof(venv_scripts) - 1, vs);
        kiln_buf_printf(b, "pip step %d\npython %s\nvenv scripts %s\n", PIP_STEP_VERSION, py, vs);
        for (size_t i = 0; s->packages && s->packages[i]; i++) {
                kiln_buf_puts(b, "package ");
                kiln_buf_shell_quote(b, s->packages[i]);
                kiln_buf_puts(b, "\n");
        }
        const char *fk = NULL;
        if (flytekit_added(s, &fk, err) < 0)
                return -1;
        if (fk) {
                kiln_buf_puts(b, "flytekit requirement ");
                kiln_buf_shell_quote(b, fk);
                kiln_buf_puts(b, "\n");
        }
        if (s->requirements) {
                const char *kind = s->requirements_lock        ? base_name(s->requirements_path)
                                   : s->requirements_pyproject ? "pyproject"
                                                               : "requirements";
                if (file_digest(b, kind, s->requirements_path, err) < 0)
                        return kiln_err_prefix(err, "requirements");
        }
        if (s->requirements_lock) {
                const char *name = base_name(s->requirements_path);
                size_t dl = strlen(s->requirements_path) - strlen(name);
                _cleanup_free_ char *pp =
                    kiln_xasprintf("%.*spyproject.toml", (int)dl, s->requirements_path);
                if (file_digest(b, "pyproject", pp, err) < 0)
                        return kiln_err_prefix(err, "requirements");
        }
        if (from_project(s)) {
                char d[KILN_DIGEST_MAX];
                kiln_sha256_digest(lock_script, sizeof(lock_script) - 1, d);
                kiln_buf_printf(b, "converter %s\n", d);
        }
        index_lines(s, b);
        for (size_t i = 0; i < s->n_pip_secret_mounts; i++)
                kiln_buf_printf(b, "secret at %s\n", s->pip_secret_mounts[i].dst);
        return 0;
}

/* The converter's one line ("kiln-lock: FILE: reason") becomes the error,
 * with sandbox paths of the project turned back into the host's. */
static int lock_error(const struct kiln_spec *s, const char *scratch, struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/error", scratch);
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *rerr = NULL;
        if (kiln_read_file(path, LOCK_ERROR_MAX, &b, &rerr) < 0 || !b.data || !b.len)
                return -1; /* keep the step's own error */
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
                b.data[--b.len] = '\0';
        const char *msg = b.data;
        if (kiln_str_has_prefix(msg, "kiln-lock: "))
                msg += strlen("kiln-lock: ");
        const char *name = base_name(s->requirements_path);
        size_t dl = strlen(s->requirements_path) - strlen(name);
        _cleanup_buf_ struct kiln_buf out = {0};
        for (const char *p = msg; *p;) {
                const char *hit = strstr(p, PROJECT_IN_SANDBOX "/");
                if (!hit) {
                        kiln_buf_puts(&out, p);
                        break;
                }
                kiln_buf_append(&out, p, (size_t)(hit - p));
                kiln_buf_append(&out, s->requirements_path, dl);
                p = hit + strlen(PROJECT_IN_SANDBOX "/");
        }
        kiln_err_clear(err);
        return kiln_err_set(err, KILN_ERR_BUILD, LOCK_FAILED, "requirements: %s",
                            out.data ? out.data : "");
}

/* Index URLs may carry credentials: wiped before they are freed. */
static void wipe_buf(struct kiln_buf *b)
{
        if (b->data)
                explicit_bzero(b->data, b->len);
        kiln_buf_release(b);
}

static void wipe_str(char **s)
{
        if (*s)
                explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        /* a requirements file's -i line may hold credentials */
        _cleanup_(wipe_buf) struct kiln_buf sources = {0};
        if (cache_sources(s, &sources, err) < 0)
                return -1;
        _cleanup_free_ char *cache =
            kiln_step_cache_dir(ctx, "pip", sources.data ? sources.data : "", err);
        if (!cache)
                return -1;
        _cleanup_buf_ struct kiln_buf cmd = {0};
        /* A pip the venv can import (its own, or the base's through the
         * system site packages) runs under the venv's python and installs
         * into it; else the base interpreter's pip is aimed at the venv.
         * `import pip` is the test: `pip --version` costs half a second. */
        kiln_buf_puts(&cmd, "set -e\n"
                            "if /root/.venv/bin/python -c 'import pip' >/dev/null 2>&1; then\n"
                            "  set -- /root/.venv/bin/python -m pip install\n"
                            "else\n"
                            "  set -- \"$KILN_PY\" -m pip --python /root/.venv/bin/python install\n"
                            "fi\n");
        size_t n_binds = 0;
        _cleanup_free_ struct kiln_step_bind *binds =
            kiln_xcalloc(s->n_pip_secret_mounts + 4, sizeof(*binds));
        binds[n_binds++] = (struct kiln_step_bind){.source = cache, .target = CACHE_IN_SANDBOX};
        _cleanup_free_ char *scratch = NULL, *pyproject = NULL;
        _cleanup_free_ char *project_target = NULL;
        if (from_project(s)) {
                scratch = kiln_step_scratch_dir(ctx, "lock", err);
                _cleanup_free_ char *script =
                    scratch ? kiln_xasprintf("%s/lock_requirements.py", scratch) : NULL;
                if (!script || kiln_write_file_atomic(script, lock_script, sizeof(lock_script) - 1,
                                                      0644, err) < 0)
                        return -1;
                const char *name = base_name(s->requirements_path);
                project_target = kiln_xasprintf(PROJECT_IN_SANDBOX "/%s", name);
                binds[n_binds++] =
                    (struct kiln_step_bind){.source = scratch, .target = LOCK_IN_SANDBOX};
                binds[n_binds++] = (struct kiln_step_bind){
                    .source = s->requirements_path, .target = project_target, .readonly = true};
                if (s->requirements_lock) {
                        size_t dl = strlen(s->requirements_path) - strlen(name);
                        pyproject =
                            kiln_xasprintf("%.*spyproject.toml", (int)dl, s->requirements_path);
                        binds[n_binds++] =
                            (struct kiln_step_bind){.source = pyproject,
                                                    .target = PROJECT_IN_SANDBOX "/pyproject.toml",
                                                    .readonly = true};
                }
                /* The spec's pip_index replaces the lock's own indexes. */
                kiln_buf_printf(&cmd,
                                "if ! /root/.venv/bin/python " LOCK_IN_SANDBOX
                                "/lock_requirements.py %s " LOCK_IN_SANDBOX
                                "/requirements.txt%s 2>" LOCK_IN_SANDBOX "/error; then\n"
                                "  cat " LOCK_IN_SANDBOX "/error >&2\n"
                                "  exit %d\n"
                                "fi\n"
                                "if [ \"$(head -n 1 " LOCK_IN_SANDBOX
                                "/requirements.txt)\" = '# kiln: hashed' ]; then\n"
                                "  set -- \"$@\" --require-hashes --no-deps\n"
                                "fi\n"
                                "set -- \"$@\" -r " LOCK_IN_SANDBOX "/requirements.txt\n",
                                project_target, s->pip_index ? " --no-index-lines" : "",
                                LOCK_FAILED);
                /* flytekit's _is_flytekit over a bare pyproject.toml's
                 * dependencies (only then is KILN_FLYTEKIT_REQ set) */
                kiln_buf_puts(&cmd, "if [ -n \"${KILN_FLYTEKIT_REQ:-}\" ] && ! grep -Eq "
                                    "'^flytekit([^[:alnum:]_-]|$)' " LOCK_IN_SANDBOX
                                    "/requirements.txt; then\n"
                                    "  set -- \"$@\" \"$KILN_FLYTEKIT_REQ\"\n"
                                    "fi\n");
        }
        kiln_buf_puts(&cmd, "\"$@\" --no-input --disable-pip-version-check");
        for (size_t i = 0; s->packages && s->packages[i]; i++) {
                kiln_buf_puts(&cmd, " ");
                kiln_buf_shell_quote(&cmd, s->packages[i]);
        }
        const char *fk = NULL;
        if (flytekit_added(s, &fk, err) < 0)
                return -1;
        _cleanup_free_ char *fkenv = NULL;
        if (fk && s->requirements_pyproject) {
                fkenv = kiln_xasprintf("KILN_FLYTEKIT_REQ=%s", fk);
        } else if (fk) {
                kiln_buf_puts(&cmd, " ");
                kiln_buf_shell_quote(&cmd, fk);
        }
        if (s->requirements && !from_project(s)) {
                kiln_buf_puts(&cmd, " -r " REQS_IN_SANDBOX);
                binds[n_binds++] = (struct kiln_step_bind){
                    .source = s->requirements_path, .target = REQS_IN_SANDBOX, .readonly = true};
        }
        for (size_t i = 0; i < s->n_pip_secret_mounts; i++)
                binds[n_binds++] = (struct kiln_step_bind){.source = s->pip_secret_mounts[i].src,
                                                           .target = s->pip_secret_mounts[i].dst,
                                                           .readonly = true};
        /* Appended verbatim, as flytekit does. */
        if (s->pip_extra_args)
                kiln_buf_printf(&cmd, " %s", s->pip_extra_args);
        kiln_buf_puts(&cmd, "\n/root/.venv/bin/python -B -c \"$KILN_VENV_SCRIPTS\"\n");
        /* What pip wrote goes to the task's user, as the venv itself (the
         * python step); files it already owns are left alone, so the layer
         * holds no copy of the venv's unchanged files. */
        kiln_buf_puts(&cmd, "find " KILN_VENV " ! -user flytekit -exec chown -h flytekit {} +\n");

        _cleanup_free_ char *py = kiln_python_interpreter(s);
        _cleanup_free_ char *pyenv = kiln_xasprintf("KILN_PY=%s", py);
        _cleanup_free_ char *scripts_env = kiln_xasprintf("KILN_VENV_SCRIPTS=%s", venv_scripts);
        _cleanup_(wipe_str) char *index =
            s->pip_index ? kiln_xasprintf("PIP_INDEX_URL=%s", s->pip_index) : NULL;
        _cleanup_(wipe_buf) struct kiln_buf extra = {0};
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                kiln_buf_printf(&extra, "%s%s", extra.len ? " " : "PIP_EXTRA_INDEX_URL=",
                                s->pip_extra_index_url[i]);
        _cleanup_buf_ struct kiln_buf trusted = {0};
        if (s->pip_index)
                add_trusted_loopback(&trusted, s->pip_index);
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                add_trusted_loopback(&trusted, s->pip_extra_index_url[i]);
        /* A lock's own index URLs are read only inside the sandbox: its
         * loopback ones are trusted by name. */
        if (from_project(s) && !s->pip_index)
                kiln_buf_printf(&trusted, "%s127.0.0.1 localhost",
                                trusted.len ? " " : "PIP_TRUSTED_HOST=");
        char *env[9];
        size_t ne = 0;
        env[ne++] = pyenv;
        env[ne++] = scripts_env;
        if (fkenv)
                env[ne++] = fkenv;
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
        if (kiln_step_sandbox(ctx, argv, env, binds, n_binds, created_by, err) == 0)
                return 0;
        if (scratch && (*err)->domain == KILN_ERR_BUILD && (*err)->code == LOCK_FAILED)
                return lock_error(s, scratch, err);
        return -1;
}

const struct kiln_step_kind kiln_step_pip = {
    .name = "pip",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
