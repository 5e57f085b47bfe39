/* The step API (kiln/step.h): what a step kind of layers/ may do, done
 * for it on the build's context. A sandboxed step's layer is written in
 * the background while later steps run. */
#include "builder-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define PASSWD_MAX ((size_t)4 << 20)

const struct kiln_spec *kiln_step_spec(const struct kiln_step_ctx *ctx)
{
        return ctx->spec;
}

const struct kiln_platform *kiln_step_platform(const struct kiln_step_ctx *c)
{
        return &c->platform;
}

/* ---------- the config part ---------- */

void kiln_step_add_history(struct kiln_step_ctx *ctx, const char *created_by)
{
        kiln_image_add_history(&ctx->img, created_by);
}

void kiln_step_set_env(struct kiln_step_ctx *ctx, const char *key, const char *value)
{
        kiln_image_set_env(&ctx->img, key, value);
}

const char *kiln_step_get_env(const struct kiln_step_ctx *ctx, const char *key)
{
        return kiln_image_get_env(&ctx->img, key);
}

void kiln_step_set_string(struct kiln_step_ctx *ctx, const char *field, const char *value)
{
        kiln_image_set_string(&ctx->img, field, value);
}

void kiln_step_set_entrypoint(struct kiln_step_ctx *ctx, char *const *argv)
{
        kiln_image_set_entrypoint(&ctx->img, argv);
}

void kiln_step_set_cmd(struct kiln_step_ctx *ctx, char *const *argv)
{
        kiln_image_set_cmd(&ctx->img, argv);
}

void kiln_step_set_shell(struct kiln_step_ctx *ctx, char *const *argv)
{
        kiln_image_set_shell(&ctx->img, argv);
}

/* ---------- the layer part ---------- */

static char *step_dir(struct kiln_step_ctx *c, const char *what, struct kiln_err **err)
{
        _cleanup_free_ char *d = kiln_xasprintf("%s/%02zu-%s", c->build_dir, c->step_no, what);
        if (kiln_mkdir_p(d, 0755, err) < 0)
                return NULL;
        return steal_pointer(&d);
}

/* The step's name in messages: "step 2 (commands)". */
static char *step_label(const struct kiln_step_ctx *c)
{
        return kiln_xasprintf("step %zu (%s)", c->step_no, c->kind ? c->kind->name : "base");
}

/* What a step produced, for its cache entry. */
static void record_result(struct kiln_step_entry *out, const struct kiln_archive_result *res,
                          const char *created_by)
{
        free(out->created_by);
        out->created_by = kiln_xstrdup(created_by);
        out->has_layer = !res->empty;
        if (res->empty)
                return;
        snprintf(out->digest, sizeof(out->digest), "%s", res->digest);
        snprintf(out->diff_id, sizeof(out->diff_id), "%s", res->diff_id);
        free(out->media_type);
        out->media_type = kiln_xstrdup(res->media_type);
        out->size = res->size;
}

static void bg_release(struct builder_bg_layer *b)
{
        kiln_archive_job_abandon(b->job);
        if (b->has_entry) {
                kiln_step_entry_release(&b->out);
                if (b->lock >= 0)
                        close(b->lock);
        }
        free(b->label);
        free(b->created_by);
        memset(b, 0, sizeof(*b));
}

void builder_abandon_layers(struct kiln_step_ctx *c)
{
        for (size_t i = 0; i < c->n_bg; i++)
                bg_release(&c->bg[i]);
}

/* Waits for the oldest writer, fills in its place in the image and puts
 * its step's entry. */
static int settle_oldest(struct kiln_step_ctx *c, struct kiln_err **err)
{
        struct builder_bg_layer *b = &c->bg[0];
        struct kiln_archive_result res;
        uint64_t t0 = kiln_now_ns(), took = 0;
        int rc = kiln_archive_job_finish(steal_pointer(&b->job), &res, &took, err);
        c->commit_ns += kiln_now_ns() - t0;
        c->commit_bg_ns += took;
        if (rc < 0)
                return -1;
        kiln_debug("%s: layer of %llu entries, %lld bytes, written in %.3f s", b->label,
                   (unsigned long long)res.entries, (long long)res.size, (double)took / 1e9);
        kiln_image_settle_layer(&c->img, &b->slot, &res);
        if (res.empty) {
                kiln_info("%s changed nothing: no layer", b->label);
                for (size_t i = 1; i < c->n_bg; i++)
                        c->bg[i].slot.layer--; /* that place is gone */
        } else {
                c->n_new_layers++;
        }
        if (b->has_entry) {
                record_result(&b->out, &res, b->created_by);
                builder_put_entry(c, &b->out);
        }
        return 0;
}

/* The oldest layer written in the background, settled; its writer is gone
 * whether it succeeded or not. */
static int settle_layer(struct kiln_step_ctx *c, struct kiln_err **err)
{
        if (!c->n_bg)
                return 0;
        int rc = settle_oldest(c, err);
        bg_release(&c->bg[0]);
        memmove(&c->bg[0], &c->bg[1], (c->n_bg - 1) * sizeof(c->bg[0]));
        memset(&c->bg[--c->n_bg], 0, sizeof(c->bg[0]));
        return rc;
}

int builder_settle_layers(struct kiln_step_ctx *c, struct kiln_err **err)
{
        while (c->n_bg)
                if (settle_layer(c, err) < 0)
                        return -1;
        return 0;
}

/* What runs in a sandboxed step: a program of the image, or a function of
 * kiln's own. */
struct sandbox_job {
        char *const *argv;
        int (*fn)(void *arg, struct kiln_err **err);
        void *fn_arg;
};

/* The loopback URLs of a file pip reads: a requirements file's -i,
 * --extra-index-url and --find-links lines and direct URLs, a lock file's
 * sources. A file that cannot be read adds nothing: the pip step says why. */
static void net_ports_of_file(struct kiln_net_ports *p, const char *path)
{
        _cleanup_buf_ struct kiln_buf text = {0};
        _cleanup_err_ struct kiln_err *ignored = NULL;
        if (kiln_read_file(path, KILN_SPEC_REQUIREMENTS_MAX, &text, &ignored) == 0 && text.data)
                kiln_net_ports_add_urls(p, text.data);
}

void builder_net_ports(const struct kiln_spec *s, const struct kiln_build_opts *o,
                       struct kiln_net_ports *p)
{
        kiln_net_ports_add_all(p, o->allow_hosts);
        kiln_net_ports_add_urls(p, s->pip_index);
        for (size_t i = 0; s->pip_extra_index_url && s->pip_extra_index_url[i]; i++)
                kiln_net_ports_add_urls(p, s->pip_extra_index_url[i]);
        kiln_net_ports_add_urls(p, s->pip_extra_args);
        for (size_t i = 0; s->packages && s->packages[i]; i++)
                kiln_net_ports_add_urls(p, s->packages[i]);
        if (!s->requirements_path)
                return;
        net_ports_of_file(p, s->requirements_path);
        if (s->requirements_lock) {
                /* uv's and poetry's indexes are named in the project too */
                const char *slash = strrchr(s->requirements_path, '/');
                int dl = slash ? (int)(slash - s->requirements_path + 1) : 0;
                _cleanup_free_ char *pp =
                    kiln_xasprintf("%.*spyproject.toml", dl, s->requirements_path);
                net_ports_of_file(p, pp);
        }
}

static int sandbox_step(struct kiln_step_ctx *c, const struct sandbox_job *job,
                        char *const *extra_env, const struct kiln_step_bind *binds, size_t n_binds,
                        const char *created_by, struct kiln_err **err)
{
        _cleanup_free_ char *label = step_label(c);
        if ((!job->fn && builder_check_can_run(c, err) < 0) || builder_ensure_rootfs(c, err) < 0)
                return kiln_err_prefix(err, "%s", label);
        _cleanup_free_ char *dir = step_dir(c, c->kind->name, err);
        if (!dir)
                return kiln_err_prefix(err, "%s", label);
        _cleanup_free_ char *upper = kiln_xasprintf("%s/upper", dir);
        _cleanup_free_ char *work = kiln_xasprintf("%s/work", dir);
        if (kiln_mkdir_p(upper, 0755, err) < 0 || kiln_mkdir_p(work, 0755, err) < 0)
                return kiln_err_prefix(err, "%s", label);

        /* apt drops to its _apt user and then checks that it really did;
         * with one mapped id the ownership filter only pretends, so apt is
         * told to stay root (its documented switch). The file is bound in
         * for the run and leaves no trace in the layer. */
        _cleanup_free_ struct kiln_bind *all = kiln_xcalloc(n_binds + 1, sizeof(*all));
        for (size_t i = 0; i < n_binds; i++)
                all[i] = (struct kiln_bind){.source = binds[i].source,
                                            .target = binds[i].target,
                                            .readonly = binds[i].readonly};
        _cleanup_free_ char *aptconf = kiln_xasprintf("%s/apt-single-id.conf", c->build_dir);
        if (c->idmap == KILN_IDMAP_SINGLE) {
                static const char conf[] = "APT::Sandbox::User \"root\";\n";
                if (kiln_write_file_atomic(aptconf, conf, sizeof(conf) - 1, 0644, err) < 0)
                        return kiln_err_prefix(err, "%s", label);
                all[n_binds++] =
                    (struct kiln_bind){.source = aptconf,
                                       .target = "/etc/apt/apt.conf.d/00kiln-single-id",
                                       .readonly = true};
        }
        _cleanup_strv_ char **env = kiln_image_env(&c->img);
        size_t n = kiln_strv_len(env), extra = kiln_strv_len((char **)extra_env);
        env = kiln_xrealloc(env, (n + extra + 2) * sizeof(char *));
        for (size_t i = 0; i < extra; i++)
                env[n++] = kiln_xstrdup(extra_env[i]);
        /* Programs that honour it make the same files on every run (pip's
         * .pyc files then carry a hash of their source, not its mtime). */
        if (c->lopts.source_date_epoch >= 0)
                env[n++] =
                    kiln_xasprintf("SOURCE_DATE_EPOCH=%lld", (long long)c->lopts.source_date_epoch);
        env[n] = NULL;
        const char *wd = kiln_image_config_string(&c->img, "WorkingDir");
        _cleanup_free_ char *prefix = kiln_xasprintf("%s[%s] ", kiln_log_prefix(), c->kind->name);
        if (!c->net_ports_known) {
                builder_net_ports(c->spec, c->o, &c->net_ports);
                c->net_ports_known = true;
        }
        struct kiln_sandbox_opts so = {
            .lowers = c->lowers,
            .n_lowers = c->n_lowers,
            .upper = upper,
            .work = work,
            .argv = job->argv,
            .fn = job->fn,
            .fn_arg = job->fn_arg,
            .env = env,
            .cwd = wd && *wd ? wd : "/",
            .uid = 0,
            .gid = 0,
            .binds = all,
            .n_binds = n_binds,
            .label = prefix,
            .idmap = c->idmap,
            .network = c->o->network,
            .ports = &c->net_ports,
            .seccomp_unconfined = c->o->seccomp_unconfined,
        };
        int status = 0;
        uint64_t t0 = kiln_now_ns();
        int rc = kiln_sandbox_run(&so, &status, err);
        c->sandbox_ns += kiln_now_ns() - t0;
        if (rc < 0)
                return kiln_err_prefix(err, "%s", label);
        if (status != 0)
                return kiln_err_set(err, KILN_ERR_BUILD, status,
                                    "%s failed: %s exited with status %d", label, created_by,
                                    status);
        /* The upper is read-only from here on (a lower of later steps), so
         * its layer is written while they run; past BUILDER_BG_MAX writers
         * the oldest is waited for first. */
        if (c->n_bg == BUILDER_BG_MAX && settle_layer(c, err) < 0)
                return -1;
        struct builder_bg_layer *b = &c->bg[c->n_bg];
        t0 = kiln_now_ns();
        rc = kiln_archive_job_start(upper, label, c->store, &c->lopts, &b->job, err);
        c->commit_ns += kiln_now_ns() - t0;
        if (rc < 0)
                return -1;
        c->n_bg++;
        kiln_image_reserve_layer(&c->img, created_by, &b->slot);
        b->step_no = c->step_no;
        b->label = steal_pointer(&label);
        b->created_by = kiln_xstrdup(created_by);
        builder_push_lower(c, steal_pointer(&upper));
        return 0;
}

int kiln_step_sandbox(struct kiln_step_ctx *c, char *const *argv, char *const *extra_env,
                      const struct kiln_step_bind *binds, size_t n_binds, const char *created_by,
                      struct kiln_err **err)
{
        struct sandbox_job job = {.argv = argv};
        return sandbox_step(c, &job, extra_env, binds, n_binds, created_by, err);
}

int kiln_step_sandbox_fn(struct kiln_step_ctx *c, int (*fn)(void *arg, struct kiln_err **err),
                         void *arg, const struct kiln_step_bind *binds, size_t n_binds,
                         const char *created_by, struct kiln_err **err)
{
        struct sandbox_job job = {.fn = fn, .fn_arg = arg};
        return sandbox_step(c, &job, NULL, binds, n_binds, created_by, err);
}

/* The archive's entries for a step's files. Caller frees. */
static struct kiln_copy_entry *copy_entries(const struct kiln_step_file *files, size_t n)
{
        struct kiln_copy_entry *e = kiln_xcalloc(n ? n : 1, sizeof(*e));
        for (size_t i = 0; i < n; i++)
                e[i] = (struct kiln_copy_entry){.src = files[i].src, .dest = files[i].dest};
        return e;
}

int kiln_step_host_layer(struct kiln_step_ctx *c, const struct kiln_step_file *files, size_t n,
                         uid_t uid, gid_t gid, const char *created_by, struct kiln_err **err)
{
        _cleanup_free_ struct kiln_copy_entry *entries = copy_entries(files, n);
        struct kiln_archive_result res = {0};
        if (kiln_archive_from_host(entries, n, uid, gid, c->store, &c->lopts, &res, err) < 0) {
                _cleanup_free_ char *label = step_label(c);
                return kiln_err_prefix(err, "%s", label);
        }
        record_result(&c->out, &res, created_by);
        if (res.empty) {
                kiln_image_add_history(&c->img, created_by);
                return 0;
        }
        kiln_image_add_layer(&c->img, &res, created_by);
        c->n_new_layers++;
        builder_add_pending(c, res.digest, res.media_type, res.diff_id, res.size);
        return 0;
}

int kiln_step_files_key(const struct kiln_step_file *files, size_t n, struct kiln_buf *b,
                        struct kiln_err **err)
{
        _cleanup_free_ struct kiln_copy_entry *entries = copy_entries(files, n);
        char d[KILN_DIGEST_MAX];
        if (kiln_archive_host_digest(entries, n, d, err) < 0)
                return -1;
        kiln_buf_printf(b, "files %s\n", d);
        return 0;
}

char *kiln_step_scratch_dir(struct kiln_step_ctx *c, const char *name, struct kiln_err **err)
{
        _cleanup_free_ char *what = kiln_xasprintf("%s-%s", c->kind->name, name);
        return step_dir(c, what, err);
}

char *kiln_step_cache_dir(struct kiln_step_ctx *c, const char *name, const char *sources,
                          struct kiln_err **err)
{
        char chain[KILN_DIGEST_MAX] = "";
        kiln_chain_id(c->base_diff_ids, c->n_base, chain);
        _cleanup_buf_ struct kiln_buf in = {0};
        kiln_buf_printf(&in, "kiln installer cache %d\n%s\nbase %s\n%s",
                        KILN_INSTALLER_CACHE_VERSION, name, chain[0] ? chain : "scratch", sources);
        char key[KILN_DIGEST_MAX];
        kiln_sha256_digest(in.data, in.len, key);
        _cleanup_free_ char *dir =
            kiln_xasprintf("%s/cache/%s/%.*s", kiln_store_root(c->store), name,
                           KILN_INSTALLER_CACHE_KEY_LEN, kiln_digest_hex(key));
        if (kiln_mkdir_p(dir, 0755, err) < 0)
                return NULL;
        return steal_pointer(&dir);
}

/* ---------- what a step knows of the image so far ---------- */

void kiln_step_set_fact(struct kiln_step_ctx *c, const char *name, const char *value)
{
        char *f = kiln_xasprintf("%s=%s", name, value);
        c->facts = kiln_xrealloc(c->facts, (c->n_facts + 1) * sizeof(char *));
        c->facts[c->n_facts++] = kiln_xstrdup(f);
        size_t n = kiln_strv_len(c->out.facts);
        c->out.facts = kiln_xrealloc(c->out.facts, (n + 2) * sizeof(char *));
        c->out.facts[n] = f;
        c->out.facts[n + 1] = NULL;
}

/* The value of name in facts[0..n) ("name=value", the latest wins). */
const char *kiln_step_get_fact(const struct kiln_step_ctx *c, const char *name)
{
        return kiln_strv_lookup(c->facts, c->n_facts, name);
}

static int parse_passwd(const char *text, const char *name, uid_t *uid, gid_t *gid, bool *found)
{
        size_t nlen = strlen(name);
        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                if (!strncmp(line, name, nlen) && line[nlen] == ':') {
                        /* name:x:uid:gid:... */
                        const char *p = strchr(line + nlen + 1, ':');
                        if (p) {
                                char *q = NULL;
                                unsigned long u = strtoul(p + 1, &q, 10);
                                if (q && *q == ':') {
                                        unsigned long g = strtoul(q + 1, NULL, 10);
                                        *uid = (uid_t)u;
                                        *gid = (gid_t)g;
                                        *found = true;
                                        return 0;
                                }
                        }
                }
                line = end ? end + 1 : NULL;
        }
        return 0;
}

int kiln_step_rootfs_open(struct kiln_step_ctx *c, const char *path, int *fd, struct kiln_err **err)
{
        *fd = -1;
        if (builder_ensure_rootfs(c, err) < 0)
                return -1;
        while (*path == '/')
                path++;
        /* The top-most lower that has the path decides, as in the overlay. */
        for (size_t i = 0; i < c->n_lowers; i++) {
                _cleanup_close_ int root = open(c->lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (root < 0)
                        return kiln_err_sys(err, "open %s", c->lowers[i]);
                _cleanup_close_ int f =
                    kiln_open_in_root(root, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
                if (f < 0)
                        continue;
                struct stat st;
                if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode))
                        return 0; /* a whiteout: deleted above the base */
                *fd = steal_fd(&f);
                return 0;
        }
        return 0;
}

int kiln_step_lookup_user(struct kiln_step_ctx *c, const char *name, uid_t *uid, gid_t *gid,
                          bool *found, struct kiln_err **err)
{
        *found = false;
        /* a step that made the user said so: no rootfs needed to know */
        _cleanup_free_ char *fact = kiln_xasprintf("user.%s", name);
        const char *ids = kiln_step_get_fact(c, fact);
        unsigned u = 0, g = 0;
        if (ids && sscanf(ids, "%u:%u", &u, &g) == 2) {
                *uid = (uid_t)u;
                *gid = (gid_t)g;
                *found = true;
                return 0;
        }
        _cleanup_close_ int fd = -1;
        if (kiln_step_rootfs_open(c, "etc/passwd", &fd, err) < 0)
                return -1;
        if (fd < 0)
                return 0;
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_read_fd(fd, "/etc/passwd", PASSWD_MAX, &b, err) < 0)
                return -1;
        return parse_passwd(b.data ? b.data : "", name, uid, gid, found);
}

int kiln_step_probe_url(const char *url, long timeout_ms, struct kiln_err **err)
{
        return kiln_http_probe(url, timeout_ms, err);
}
