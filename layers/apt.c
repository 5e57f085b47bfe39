/* apt_packages: one layer from `apt-get update` and `apt-get install -y
 * --no-install-recommends`. apt's package lists and downloaded .debs live
 * in kiln cache directories mounted over /var/lib/apt/lists and
 * /var/cache/apt/archives for the run, so they never reach the layer and a
 * rebuild downloads nothing it already has. */
#include "kiln/step.h"
#include "apt-internal.h"

#include <unistd.h>

/* Container images ship apt settings that delete downloaded .debs after
 * every install (Debian's and Ubuntu's docker-clean). For this run apt keeps
 * them, in the cache; the hooks are cleared only in the sandbox's view. */
static const char apt_conf[] = "// written by kiln for one build step; not part of the image\n"
                               "#clear DPkg::Post-Invoke;\n"
                               "#clear APT::Update::Post-Invoke;\n"
                               "APT::Keep-Downloaded-Packages \"true\";\n"
                               "Binary::apt::APT::Keep-Downloaded-Packages \"true\";\n"
                               "Dir::Cache::pkgcache \"\";\n"
                               "Dir::Cache::srcpkgcache \"\";\n"
                               "Dir::Log::Terminal \"/dev/null\";\n"
                               "Dir::Log::History \"/dev/null\";\n"
                               "DPkg::Options:: \"--log=/dev/null\";\n";

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

/* ldconfig's aux-cache records each library's inode and ctime, which
 * differ on every run; it only speeds up the next ldconfig, so it is
 * dropped to keep the layer the same for the same packages (as are apt's
 * and dpkg's logs, which hold the time of the run, by apt_conf). */
static void apt_script(const struct kiln_spec *s, struct kiln_buf *b)
{
        kiln_buf_puts(b, "apt-get update && apt-get install -y --no-install-recommends");
        for (size_t i = 0; s->apt_packages[i]; i++) {
                kiln_buf_puts(b, " ");
                kiln_buf_shell_quote(b, s->apt_packages[i]);
        }
        kiln_buf_puts(b, " && rm -f /var/cache/ldconfig/aux-cache");
}

static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        apt_script(s, b);
        kiln_buf_puts(b, "\n");
        kiln_buf_puts(b, apt_conf);
        return 0;
}

int kiln_apt_cache_open(struct kiln_step_ctx *ctx, struct kiln_apt_cache *c, struct kiln_err **err)
{
        *c = (struct kiln_apt_cache){.lock = -1};
        _cleanup_apt_cache_ struct kiln_apt_cache got = {.lock = -1};
        const struct kiln_platform *p = kiln_step_platform(ctx);
        _cleanup_free_ char *debs_name =
            kiln_xasprintf("apt-archives-%s%s%s", p->architecture, p->variant ? "-" : "",
                           p->variant ? p->variant : "");
        /* The base's own sources.list decides where apt fetches from (the
         * steps before are the base's apt and python): the base alone keys
         * them. */
        got.debs = kiln_step_cache_dir(ctx, debs_name, "", err);
        if (!got.debs)
                return -1;
        got.lists = kiln_step_cache_dir(ctx, "apt-lists", "", err);
        if (!got.lists)
                return -1;
        _cleanup_free_ char *confdir = kiln_step_scratch_dir(ctx, "conf", err);
        if (!confdir)
                return -1;
        got.conf = kiln_xasprintf("%s/kiln-apt.conf", confdir);
        if (kiln_write_file_atomic(got.conf, apt_conf, sizeof(apt_conf) - 1, 0644, err) < 0)
                return -1;
        /* Two builds sharing the cache take turns: apt's own locks would make
         * the second fail rather than wait. */
        _cleanup_free_ char *lockpath = kiln_xasprintf("%s.lock", got.debs);
        if (kiln_lock_file(lockpath, &got.lock, err) < 0)
                return -1;
        got.binds[0] =
            (struct kiln_step_bind){.source = got.debs, .target = "/var/cache/apt/archives"};
        got.binds[1] = (struct kiln_step_bind){.source = got.lists, .target = "/var/lib/apt/lists"};
        got.binds[2] = (struct kiln_step_bind){
            .source = got.conf, .target = "/etc/apt/apt.conf.d/zz-kiln-cache", .readonly = true};
        *c = got;
        got = (struct kiln_apt_cache){.lock = -1};
        return 0;
}

void kiln_apt_cache_release(struct kiln_apt_cache *c)
{
        free(c->debs);
        free(c->lists);
        free(c->conf);
        if (c->lock >= 0)
                close(c->lock);
        *c = (struct kiln_apt_cache){.lock = -1};
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_apt_cache_ struct kiln_apt_cache cache = {.lock = -1};
        if (kiln_apt_cache_open(ctx, &cache, err) < 0)
                return -1;
        _cleanup_buf_ struct kiln_buf script = {0};
        apt_script(s, &script);
        char *argv[] = {"/bin/sh", "-c", script.data, NULL};
        char *env[] = {"DEBIAN_FRONTEND=noninteractive", NULL};
        _cleanup_free_ char *desc = describe(s);
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN %s", desc);
        return kiln_step_sandbox(ctx, argv, env, cache.binds, KILN_APT_BINDS, created_by, err);
}

const struct kiln_step_kind kiln_step_apt = {
    .name = "apt",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
