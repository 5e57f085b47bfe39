/* apt_packages: one layer from `apt-get update` and `apt-get install -y
 * --no-install-recommends`. apt's package lists and downloaded .debs live
 * in kiln cache directories mounted over /var/lib/apt/lists and
 * /var/cache/apt/archives for the run, so they never reach the layer and a
 * rebuild downloads nothing it already has. */
#include "kiln/build.h"

#include <fcntl.h>
#include <sys/file.h>

/* Container images ship apt settings that delete downloaded .debs after
 * every install (Debian's and Ubuntu's docker-clean). For this run apt keeps
 * them, in the cache; the hooks are cleared only in the sandbox's view. */
static const char apt_conf[] = "// written by kiln for one build step; not part of the image\n"
                               "#clear DPkg::Post-Invoke;\n"
                               "#clear APT::Update::Post-Invoke;\n"
                               "APT::Keep-Downloaded-Packages \"true\";\n"
                               "Binary::apt::APT::Keep-Downloaded-Packages \"true\";\n"
                               "Dir::Cache::pkgcache \"\";\n"
                               "Dir::Cache::srcpkgcache \"\";\n";

static bool wanted(const struct kiln_spec *s)
{
        return s->apt_packages && s->apt_packages[0];
}

static char *describe(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        kiln_buf_puts(&b, "apt-get install -y --no-install-recommends");
        for (size_t i = 0; s->apt_packages[i]; i++)
                kiln_buf_printf(&b, " %s", s->apt_packages[i]);
        return kiln_buf_steal(&b);
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        const struct kiln_platform *p = kiln_step_platform(ctx);
        _cleanup_free_ char *debs_name =
            kiln_xasprintf("apt-archives-%s%s%s", p->architecture, p->variant ? "-" : "",
                           p->variant ? p->variant : "");
        _cleanup_free_ char *debs = kiln_step_cache_dir(ctx, debs_name, false, err);
        if (!debs)
                return -1;
        _cleanup_free_ char *lists = kiln_step_cache_dir(ctx, "apt-lists", true, err);
        if (!lists)
                return -1;
        _cleanup_free_ char *confdir = kiln_step_cache_dir(ctx, "apt-conf", false, err);
        if (!confdir)
                return -1;
        _cleanup_free_ char *conf = kiln_xasprintf("%s/kiln-apt.conf", confdir);
        if (kiln_write_file_atomic(conf, apt_conf, sizeof(apt_conf) - 1, 0644, err) < 0)
                return -1;
        /* Two builds sharing the cache take turns: apt's own locks would make
         * the second fail rather than wait. */
        _cleanup_free_ char *lockpath = kiln_xasprintf("%s.lock", debs);
        _cleanup_close_ int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lock < 0)
                return kiln_err_sys(err, "open %s", lockpath);
        if (flock(lock, LOCK_EX) < 0)
                return kiln_err_sys(err, "lock %s", lockpath);

        struct kiln_buf script = {0};
        kiln_buf_puts(&script, "apt-get update && apt-get install -y --no-install-recommends");
        for (size_t i = 0; s->apt_packages[i]; i++) {
                kiln_buf_puts(&script, " ");
                kiln_buf_shell_quote(&script, s->apt_packages[i]);
        }
        char *argv[] = {"/bin/sh", "-c", script.data, NULL};
        char *env[] = {"DEBIAN_FRONTEND=noninteractive", NULL};
        const struct kiln_bind binds[] = {
            {.source = debs, .target = "/var/cache/apt/archives"},
            {.source = lists, .target = "/var/lib/apt/lists"},
            {.source = conf, .target = "/etc/apt/apt.conf.d/zz-kiln-cache", .readonly = true},
        };
        _cleanup_free_ char *desc = describe(s);
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN %s", desc);
        int rc = kiln_step_sandbox(ctx, argv, env, binds, sizeof(binds) / sizeof(binds[0]),
                                   created_by, err);
        kiln_buf_release(&script);
        return rc;
}

const struct kiln_step_kind kiln_step_apt = {
    .name = "apt",
    .wanted = wanted,
    .describe = describe,
    .run = run,
};
