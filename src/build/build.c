/* The planner and executor: base image -> steps -> image -> outputs.
 *
 * The rootfs a sandboxed step sees is an overlay of, top-most first, the
 * upper directories of earlier sandboxed steps, the unpacked layers of
 * earlier host-file steps, and the base snapshot (unpacked once per base and
 * cached). Everything is prepared lazily: a copy-only spec never unpacks
 * the base, never needs a sandbox, and so never needs emulation. */
#include "kiln/build.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#define DEFAULT_BASE_IMAGE "debian:bookworm-slim"
/* NVIDIA's CUDA images: runtime flavour, the Ubuntu LTS every CUDA 11.7+
 * and 12.x release is published for. */
#define CUDA_REPO   "docker.io/nvidia/cuda"
#define CUDA_FLAVOR "runtime-ubuntu22.04"
#define PASSWD_MAX  ((size_t)4 << 20)

/* The planner's table: the order in which flytekit's default builder lays
 * an image out (see imagespec-reference.md). */
static const struct kiln_step_kind *const step_kinds[] = {
    &kiln_step_apt,         /* apt_packages */
    &kiln_step_cacerts,     /* the host's CA bundle where the base has none */
    &kiln_step_user,        /* the flytekit user owning /root */
    &kiln_step_python,      /* /root/.venv */
    &kiln_step_pip,         /* packages, requirements, lock files */
    &kiln_step_env,         /* PATH, PYTHONPATH, the spec's env, entrypoint */
    &kiln_step_source,      /* source_root into /root */
    &kiln_step_copy,        /* copy into /root */
    &kiln_step_commands,    /* commands, as root */
    &kiln_step_user_config, /* WORKDIR /root, USER flytekit */
};

struct pending_layer {
        char *digest;
        char *media_type;
        char *diff_id;
};

struct kiln_step_ctx {
        const struct kiln_spec *spec;
        const struct kiln_step_kind *kind;
        struct kiln_store *store;
        struct kiln_image img;
        struct kiln_layer_opts lopts;
        struct kiln_platform platform;
        enum kiln_idmap idmap;
        char *build_dir;
        size_t step_no;
        size_t n_new_layers;
        /* the base, for the snapshot made on first need */
        struct kiln_descriptor *base_layers;
        char **base_diff_ids;
        size_t n_base;
        bool rootfs_ready;
        /* overlay lowers, top-most first */
        char **lowers;
        size_t n_lowers;
        /* host-file layers not yet unpacked for the rootfs */
        struct pending_layer *pending;
        size_t n_pending;
};

const struct kiln_spec *kiln_step_spec(const struct kiln_step_ctx *ctx)
{
        return ctx->spec;
}

struct kiln_image *kiln_step_image(struct kiln_step_ctx *ctx)
{
        return &ctx->img;
}

void kiln_build_result_release(struct kiln_build_result *r)
{
        kiln_image_name_release(&r->name);
        kiln_descriptor_release(&r->manifest);
        memset(r, 0, sizeof(*r));
}

static void ctx_release(struct kiln_step_ctx *c)
{
        kiln_image_release(&c->img);
        kiln_platform_release(&c->platform);
        for (size_t i = 0; i < c->n_base; i++)
                kiln_descriptor_release(&c->base_layers[i]);
        free(c->base_layers);
        kiln_strv_free(c->base_diff_ids);
        for (size_t i = 0; i < c->n_lowers; i++)
                free(c->lowers[i]);
        free(c->lowers);
        for (size_t i = 0; i < c->n_pending; i++) {
                free(c->pending[i].digest);
                free(c->pending[i].media_type);
                free(c->pending[i].diff_id);
        }
        free(c->pending);
        if (c->build_dir) {
                struct kiln_err *e = NULL;
                if (kiln_rm_rf(c->build_dir, &e) < 0) {
                        kiln_warn("could not remove the build directory: %s", e->msg);
                        kiln_err_free(e);
                }
                free(c->build_dir);
        }
}

static void push_lower(struct kiln_step_ctx *c, char *dir)
{
        c->lowers = kiln_xrealloc(c->lowers, (c->n_lowers + 1) * sizeof(char *));
        memmove(c->lowers + 1, c->lowers, c->n_lowers * sizeof(char *));
        c->lowers[0] = dir;
        c->n_lowers++;
}

static char *step_dir(struct kiln_step_ctx *c, const char *what, struct kiln_err **err)
{
        char *d = kiln_xasprintf("%s/%02zu-%s", c->build_dir, c->step_no, what);
        if (kiln_mkdir_p(d, 0755, err) < 0) {
                free(d);
                return NULL;
        }
        return d;
}

/* The step's name in messages: "step 2 (commands)". */
static char *step_label(const struct kiln_step_ctx *c)
{
        return kiln_xasprintf("step %zu (%s)", c->step_no, c->kind ? c->kind->name : "base");
}

/* Host-file layers become visible to later sandboxed steps by unpacking
 * them, from the store, into a lower of their own. */
static int unpack_pending(struct kiln_step_ctx *c, struct kiln_err **err)
{
        for (size_t i = 0; i < c->n_pending; i++) {
                struct pending_layer *p = &c->pending[i];
                _cleanup_free_ char *dir =
                    kiln_xasprintf("%s/layer-%.19s", c->build_dir, kiln_digest_hex(p->digest));
                if (kiln_mkdir_p(dir, 0755, err) < 0)
                        return -1;
                _cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int blobfd = -1;
                if (rootfd < 0)
                        return kiln_err_sys(err, "open %s", dir);
                if (kiln_store_open_blob(c->store, p->digest, &blobfd, NULL, err) < 0)
                        return -1;
                struct kiln_unpack_stats st = {0};
                if (kiln_layer_unpack(rootfd, blobfd, p->media_type, p->diff_id, p->digest, &st,
                                      err) < 0)
                        return -1;
                push_lower(c, steal_pointer(&dir));
                free(p->digest);
                free(p->media_type);
                free(p->diff_id);
        }
        c->n_pending = 0;
        return 0;
}

static int ensure_rootfs(struct kiln_step_ctx *c, struct kiln_err **err)
{
        if (!c->rootfs_ready) {
                char *snap = NULL;
                kiln_info("unpacking the base image (%zu layers, cached for later builds)",
                          c->n_base);
                if (kiln_snapshot_get(c->store, c->base_layers, c->base_diff_ids, c->n_base, &snap,
                                      err) < 0)
                        return kiln_err_prefix(err, "unpack base image");
                /* The snapshot goes under everything built so far. */
                c->lowers = kiln_xrealloc(c->lowers, (c->n_lowers + 1) * sizeof(char *));
                c->lowers[c->n_lowers++] = snap;
                c->rootfs_ready = true;
        }
        return unpack_pending(c, err);
}

static const char *binfmt_name(const char *arch)
{
        static const struct {
                const char *arch, *qemu;
        } map[] = {{"arm64", "aarch64"}, {"arm", "arm"},         {"ppc64le", "ppc64le"},
                   {"s390x", "s390x"},   {"riscv64", "riscv64"}, {"386", "i386"},
                   {"amd64", "x86_64"}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (!strcmp(map[i].arch, arch))
                        return map[i].qemu;
        return arch;
}

/* Running programs of another architecture needs the kernel's binfmt_misc
 * to hand them to qemu-user; say exactly what is missing otherwise. */
static int check_can_run(const struct kiln_step_ctx *c, struct kiln_err **err)
{
        struct kiln_platform host = {0};
        kiln_platform_host(&host);
        bool same = kiln_platform_matches(&c->platform, &host) ||
                    !strcmp(c->platform.architecture, host.architecture);
        _cleanup_free_ char *want = kiln_platform_string(&c->platform);
        _cleanup_free_ char *have = kiln_platform_string(&host);
        kiln_platform_release(&host);
        if (same)
                return 0;
        _cleanup_free_ char *path = kiln_xasprintf("/proc/sys/fs/binfmt_misc/qemu-%s",
                                                   binfmt_name(c->platform.architecture));
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_read_file(path, 65536, &b, NULL) == 0 && kiln_str_has_prefix(b.data, "enabled"))
                return 0;
        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                            "the spec's platform %s differs from this host's (%s) and its steps "
                            "run programs, which needs binfmt_misc emulation: %s is not "
                            "registered (install qemu-user-static and register its binfmt "
                            "handlers); specs that only copy files need no emulation",
                            want, have, path);
}

/* What runs in a sandboxed step: a program of the image, or a function of
 * kiln's own. */
struct sandbox_job {
        char *const *argv;
        int (*fn)(void *arg, struct kiln_err **err);
        void *fn_arg;
};

static int sandbox_step(struct kiln_step_ctx *c, const struct sandbox_job *job,
                        char *const *extra_env, const struct kiln_bind *binds, size_t n_binds,
                        const char *created_by, struct kiln_err **err)
{
        _cleanup_free_ char *label = step_label(c);
        if ((!job->fn && check_can_run(c, err) < 0) || ensure_rootfs(c, err) < 0)
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
        struct kiln_bind *all = kiln_xcalloc(n_binds + 1, sizeof(*all));
        for (size_t i = 0; i < n_binds; i++)
                all[i] = binds[i];
        _cleanup_free_ char *aptconf = kiln_xasprintf("%s/apt-single-id.conf", c->build_dir);
        if (c->idmap == KILN_IDMAP_SINGLE) {
                static const char conf[] = "APT::Sandbox::User \"root\";\n";
                if (kiln_write_file_atomic(aptconf, conf, sizeof(conf) - 1, 0644, err) < 0) {
                        free(all);
                        return kiln_err_prefix(err, "%s", label);
                }
                all[n_binds++] =
                    (struct kiln_bind){.source = aptconf,
                                       .target = "/etc/apt/apt.conf.d/00kiln-single-id",
                                       .readonly = true};
        }
        _cleanup_strv_ char **env = kiln_image_env(&c->img);
        size_t n = kiln_strv_len(env), extra = kiln_strv_len((char **)extra_env);
        env = kiln_xrealloc(env, (n + extra + 1) * sizeof(char *));
        for (size_t i = 0; i < extra; i++)
                env[n++] = kiln_xstrdup(extra_env[i]);
        env[n] = NULL;
        const char *wd = kiln_image_config_string(&c->img, "WorkingDir");
        _cleanup_free_ char *prefix = kiln_xasprintf("[%s] ", c->kind->name);
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
        };
        int status = 0;
        int rc = kiln_sandbox_run(&so, &status, err);
        free(all);
        if (rc < 0)
                return kiln_err_prefix(err, "%s", label);
        if (status != 0)
                return kiln_err_set(err, KILN_ERR_BUILD, status,
                                    "%s failed: %s exited with status %d", label, created_by,
                                    status);
        _cleanup_close_ int upperfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (upperfd < 0)
                return kiln_err_sys(err, "%s: open %s", label, upper);
        struct kiln_layer_result res = {0};
        if (kiln_layer_from_upper(upperfd, label, c->store, &c->lopts, &res, err) < 0)
                return kiln_err_prefix(err, "%s: write layer", label);
        if (res.empty) {
                kiln_info("%s changed nothing: no layer", label);
                kiln_image_add_history(&c->img, created_by);
                return 0;
        }
        kiln_image_add_layer(&c->img, &res, created_by);
        c->n_new_layers++;
        push_lower(c, steal_pointer(&upper));
        return 0;
}

int kiln_step_sandbox(struct kiln_step_ctx *c, char *const *argv, char *const *extra_env,
                      const struct kiln_bind *binds, size_t n_binds, const char *created_by,
                      struct kiln_err **err)
{
        struct sandbox_job job = {.argv = argv};
        return sandbox_step(c, &job, extra_env, binds, n_binds, created_by, err);
}

int kiln_step_sandbox_fn(struct kiln_step_ctx *c, int (*fn)(void *arg, struct kiln_err **err),
                         void *arg, const struct kiln_bind *binds, size_t n_binds,
                         const char *created_by, struct kiln_err **err)
{
        struct sandbox_job job = {.fn = fn, .fn_arg = arg};
        return sandbox_step(c, &job, NULL, binds, n_binds, created_by, err);
}

int kiln_step_host_layer(struct kiln_step_ctx *c, const struct kiln_copy_entry *entries, size_t n,
                         uid_t uid, gid_t gid, const char *created_by, struct kiln_err **err)
{
        struct kiln_layer_result res = {0};
        if (kiln_layer_from_host(entries, n, uid, gid, c->store, &c->lopts, &res, err) < 0) {
                _cleanup_free_ char *label = step_label(c);
                return kiln_err_prefix(err, "%s", label);
        }
        if (res.empty) {
                kiln_image_add_history(&c->img, created_by);
                return 0;
        }
        kiln_image_add_layer(&c->img, &res, created_by);
        c->n_new_layers++;
        c->pending = kiln_xrealloc(c->pending, (c->n_pending + 1) * sizeof(*c->pending));
        c->pending[c->n_pending++] = (struct pending_layer){
            .digest = kiln_xstrdup(res.digest),
            .media_type = kiln_xstrdup(res.media_type),
            .diff_id = kiln_xstrdup(res.diff_id),
        };
        return 0;
}

char *kiln_step_scratch_dir(struct kiln_step_ctx *c, const char *name, struct kiln_err **err)
{
        _cleanup_free_ char *what = kiln_xasprintf("%s-%s", c->kind->name, name);
        return step_dir(c, what, err);
}

char *kiln_step_cache_dir(struct kiln_step_ctx *c, const char *name, bool per_base,
                          struct kiln_err **err)
{
        char chain[KILN_DIGEST_MAX] = "";
        if (per_base)
                kiln_chain_id(c->base_diff_ids, c->n_base, chain);
        char *dir = per_base ? kiln_xasprintf("%s/cache/%s/%.16s", kiln_store_root(c->store), name,
                                              chain[0] ? kiln_digest_hex(chain) : "scratch")
                             : kiln_xasprintf("%s/cache/%s", kiln_store_root(c->store), name);
        if (kiln_mkdir_p(dir, 0755, err) < 0) {
                free(dir);
                return NULL;
        }
        return dir;
}

const struct kiln_platform *kiln_step_platform(const struct kiln_step_ctx *c)
{
        return &c->platform;
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
        if (ensure_rootfs(c, err) < 0)
                return -1;
        while (*path == '/')
                path++;
        /* The top-most lower that has the path decides, as in the overlay. */
        for (size_t i = 0; i < c->n_lowers; i++) {
                _cleanup_close_ int root = open(c->lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (root < 0)
                        return kiln_err_sys(err, "open %s", c->lowers[i]);
                struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                                       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                int f = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
                if (f < 0)
                        continue;
                struct stat st;
                if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
                        close(f); /* a whiteout: deleted above the base */
                        return 0;
                }
                *fd = f;
                return 0;
        }
        return 0;
}

int kiln_step_lookup_user(struct kiln_step_ctx *c, const char *name, uid_t *uid, gid_t *gid,
                          bool *found, struct kiln_err **err)
{
        *found = false;
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

/* ---------- the base ---------- */

static int pull_base(struct kiln_step_ctx *c, const struct kiln_build_opts *o, const char *base,
                     struct kiln_ref *base_ref, struct kiln_descriptor *top, struct kiln_err **err)
{
        if (kiln_ref_parse(base, base_ref, err) < 0)
                return kiln_err_prefix(err, "base_image");
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        if (kiln_registry_new(base_ref->domain, &o->reg, &reg, err) < 0)
                return -1;
        struct kiln_progress *p = kiln_progress_new("pull", o->reg.quiet);
        struct kiln_pull_opts po = {.platform = c->platform};
        int rc = kiln_pull(reg, base_ref, &po, c->store, p, top, err);
        kiln_progress_free(p);
        if (rc < 0)
                return kiln_err_prefix(err, "base image");
        return 0;
}

static int capture_base(struct kiln_step_ctx *c, struct kiln_err **err)
{
        c->n_base = c->img.n_layers;
        c->base_layers = kiln_xcalloc(c->n_base ? c->n_base : 1, sizeof(*c->base_layers));
        for (size_t i = 0; i < c->n_base; i++)
                kiln_descriptor_copy(&c->base_layers[i], &c->img.layers[i]);
        json_t *ids = json_object_get(json_object_get(c->img.config, "rootfs"), "diff_ids");
        c->base_diff_ids = kiln_xcalloc(c->n_base + 1, sizeof(char *));
        for (size_t i = 0; i < c->n_base; i++) {
                const char *d = json_string_value(json_array_get(ids, i));
                if (!d)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "base image: rootfs.diff_ids[%zu] is missing", i);
                c->base_diff_ids[i] = kiln_xstrdup(d);
        }
        return 0;
}

/* ---------- plan, run, output ---------- */

int kiln_build_exists(const struct kiln_spec *spec, const struct kiln_image_name *name,
                      const struct kiln_registry_opts *reg, bool *exists,
                      char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        *exists = false;
        digest[0] = '\0';
        if (!spec->registry)
                return 0;
        struct kiln_ref ref = {0};
        if (kiln_ref_parse(name->full, &ref, err) < 0)
                return kiln_err_prefix(err, "image name");
        _cleanup_registry_ struct kiln_registry *r = NULL;
        int rc = kiln_registry_new(ref.domain, reg, &r, err);
        if (rc == 0)
                rc = kiln_registry_head_manifest(r, ref.path, ref.tag, exists, digest, err);
        kiln_ref_release(&ref);
        if (rc < 0)
                return kiln_err_prefix(err, "check whether %s exists", name->full);
        return 0;
}

static bool force_from_env(void)
{
        const char *v = getenv("FLYTE_FORCE_PUSH_IMAGE_SPEC");
        return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

static void print_plan(const struct kiln_spec *spec, const char *base,
                       const struct kiln_image_name *name)
{
        printf("image: %s\n", name->full);
        printf("base:  %s\n", base);
        size_t k = 1;
        for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                if (!step_kinds[i]->wanted(spec))
                        continue;
                _cleanup_free_ char *d = step_kinds[i]->describe(spec);
                printf("%zu. %s: %s\n", k++, step_kinds[i]->name, d);
        }
        printf("%zu. config: _F_IMG_ID=%s\n", k, name->id);
}

static int write_outputs(struct kiln_step_ctx *c, const struct kiln_build_opts *o,
                         const struct kiln_ref *base_ref, struct kiln_build_result *res,
                         struct kiln_err **err)
{
        for (size_t i = 0; i < o->n_outputs; i++)
                if (kiln_output_write(&o->outputs[i], c->store, &res->manifest, res->name.full,
                                      err) < 0)
                        return -1;
        if (!o->push)
                return 0;
        struct kiln_ref dest = {0};
        if (kiln_ref_parse(res->name.full, &dest, err) < 0)
                return kiln_err_prefix(err, "image name");
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        int rc = kiln_registry_new(dest.domain, &o->reg, &reg, err);
        /* The base's blobs need not travel again when the destination is
         * on the same registry: mount them from the base's repository. */
        const char *mount_from =
            base_ref->domain && !strcmp(base_ref->domain, dest.domain) ? base_ref->path : NULL;
        struct kiln_progress *p = rc == 0 ? kiln_progress_new("push", o->reg.quiet) : NULL;
        if (rc == 0)
                rc = kiln_push(reg, &dest, &res->manifest, c->store, mount_from, p, err);
        kiln_progress_free(p);
        kiln_ref_release(&dest);
        return rc;
}

static bool is_full_version(const char *v)
{
        int dots = 0;
        if (!*v || *v == '.')
                return false;
        for (const char *p = v; *p; p++) {
                if (*p == '.' && (p[1] == '.' || !p[1]))
                        return false;
                if (*p == '.')
                        dots++;
                else if (*p < '0' || *p > '9')
                        return false;
        }
        return dots == 2;
}

/* No base_image: debian:bookworm-slim as flytekit's default builder uses,
 * or with cuda an NVIDIA CUDA image (cudnn adds cuDNN: up to 8 the tag
 * names the major version, from 9 on it is just "cudnn"). Caller frees. */
static int default_base(const struct kiln_spec *s, char **out, struct kiln_err **err)
{
        if (!s->cuda && s->cudnn)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cudnn: %s given without cuda (a cuDNN base needs the CUDA "
                                    "version too)",
                                    s->cudnn);
        if (!s->cuda) {
                *out = kiln_xstrdup(DEFAULT_BASE_IMAGE);
                return 0;
        }
        if (!is_full_version(s->cuda))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cuda: '%s': NVIDIA's CUDA images are tagged by the full "
                                    "version (e.g. 12.4.1); give that, or a base_image",
                                    s->cuda);
        if (!s->cudnn) {
                *out = kiln_xasprintf(CUDA_REPO ":%s-" CUDA_FLAVOR, s->cuda);
                return 0;
        }
        char *end = NULL;
        long major = strtol(s->cudnn, &end, 10);
        if (end == s->cudnn || major < 7 || (*end && *end != '.'))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "cudnn: '%s' is not a cuDNN major version (7, 8, 9 ...)",
                                    s->cudnn);
        *out = major >= 9 ? kiln_xasprintf(CUDA_REPO ":%s-cudnn-" CUDA_FLAVOR, s->cuda)
                          : kiln_xasprintf(CUDA_REPO ":%s-cudnn%ld-" CUDA_FLAVOR, s->cuda, major);
        return 0;
}

/* base_image names another spec: it is built first (and pushed with the
 * spec when it has a registry, as flytekit does) and used from the store
 * without a pull. When the registry already has it, it is pulled instead. */
static int build_base_spec(const struct kiln_spec *spec, const struct kiln_build_opts *o,
                           struct kiln_descriptor *top, bool *built, struct kiln_err **err)
{
        struct kiln_build_opts bo = *o;
        bo.outputs = NULL;
        bo.n_outputs = 0;
        bo.push = o->push && spec->base_spec->registry;
        bo.local_only = !bo.push;
        struct kiln_build_result r = {0};
        kiln_info("base_image is a spec: building it first");
        if (kiln_build(spec->base_spec, &bo, &r, err) < 0) {
                kiln_build_result_release(&r);
                return -1;
        }
        if (r.skipped) {
                kiln_info("%s exists in the registry: using it", r.name.full);
        } else {
                kiln_descriptor_copy(top, &r.manifest);
                *built = true;
        }
        kiln_build_result_release(&r);
        return 0;
}

int kiln_build(const struct kiln_spec *spec, const struct kiln_build_opts *o,
               struct kiln_build_result *res, struct kiln_err **err)
{
        memset(res, 0, sizeof(*res));
        if (kiln_spec_image_name(spec, &res->name, err) < 0)
                return -1;
        for (size_t i = 0; spec->warnings && spec->warnings[i]; i++)
                kiln_warn("%s", spec->warnings[i]);
        _cleanup_free_ char *base_name = NULL;
        if (spec->base_spec) {
                struct kiln_image_name bn = {0};
                if (kiln_spec_image_name(spec->base_spec, &bn, err) < 0)
                        return kiln_err_prefix(err, "base_image");
                base_name = steal_pointer(&bn.full);
                kiln_image_name_release(&bn);
        }
        if (!base_name && !spec->base_image && default_base(spec, &base_name, err) < 0)
                return -1;
        const char *base = base_name ? base_name : spec->base_image;
        if (o->dry_run) {
                if (spec->base_spec) {
                        struct kiln_build_result br = {0};
                        int r = kiln_build(spec->base_spec, o, &br, err);
                        kiln_build_result_release(&br);
                        if (r < 0)
                                return kiln_err_prefix(err, "base_image");
                        printf("\n");
                }
                print_plan(spec, base, &res->name);
                return 0;
        }
        if (o->push && !spec->registry)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--push needs a registry in the spec (the image name %s has "
                                    "none)",
                                    res->name.full);
        if (!o->push && o->n_outputs == 0 && !o->local_only)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "nowhere to put the image: give --push or -o DEST");
        if (o->push && !o->force && !force_from_env()) {
                char digest[KILN_DIGEST_MAX];
                bool exists = false;
                if (kiln_build_exists(spec, &res->name, &o->reg, &exists, digest, err) < 0)
                        return -1;
                if (exists) {
                        res->skipped = true;
                        res->manifest.digest = digest[0] ? kiln_xstrdup(digest) : NULL;
                        return 0;
                }
        }
        if (kiln_strv_len(spec->platforms) > 1)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "platform: building several platforms at once (%s) is not "
                                    "supported yet",
                                    spec->platform);

        struct kiln_step_ctx c = {.spec = spec};
        struct kiln_ref base_ref = {0};
        struct kiln_descriptor top = {0};
        bool base_built = false;
        if (spec->base_spec && build_base_spec(spec, o, &top, &base_built, err) < 0)
                return kiln_err_prefix(err, "base_image %s", base);
        int rc = kiln_platform_parse(
            spec->platforms ? spec->platforms[0] : KILN_SPEC_DEFAULT_PLATFORM, &c.platform, err);
        /* The user namespace first: it cannot be entered once threads exist. */
        if (rc == 0)
                rc = kiln_userns_enter(&c.idmap, err);
        if (rc == 0)
                rc = kiln_store_open(o->cache_dir, &c.store, err);
        if (rc == 0)
                rc = kiln_layer_opts_init(&c.lopts, err);
        if (rc == 0) {
                c.lopts.compression = o->compression;
                if (base_built)
                        rc = kiln_ref_parse(base, &base_ref, err);
                else
                        rc = pull_base(&c, o, base, &base_ref, &top, err);
        }
        if (rc == 0)
                rc = kiln_image_from_base(&c.img, c.store, &top, err);
        if (rc == 0)
                rc = capture_base(&c, err);
        if (rc == 0) {
                kiln_image_set_created(&c.img, c.lopts.source_date_epoch);
                _cleanup_free_ char *builds = kiln_xasprintf("%s/builds", kiln_store_root(c.store));
                rc = kiln_mkdir_p(builds, 0755, err);
                if (rc == 0) {
                        c.build_dir = kiln_xasprintf("%s/XXXXXX", builds);
                        if (!mkdtemp(c.build_dir)) {
                                rc = kiln_err_sys(err, "create build directory in %s", builds);
                                free(c.build_dir);
                                c.build_dir = NULL;
                        }
                }
        }
        kiln_debug("user namespace: %s", kiln_idmap_name(c.idmap));
        for (size_t i = 0; rc == 0 && i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++) {
                if (!step_kinds[i]->wanted(spec))
                        continue;
                c.kind = step_kinds[i];
                c.step_no++;
                _cleanup_free_ char *d = c.kind->describe(spec);
                kiln_info("step %zu: %s: %s", c.step_no, c.kind->name, d);
                rc = c.kind->run(&c, err);
        }
        if (rc == 0) {
                /* Last, so a changed id costs no layer. */
                kiln_image_set_env(&c.img, "_F_IMG_ID", res->name.id);
                _cleanup_free_ char *h = kiln_xasprintf("ENV _F_IMG_ID=%s", res->name.id);
                kiln_image_add_history(&c.img, h);
                rc = kiln_image_commit(&c.img, c.store, &res->manifest, err);
        }
        res->n_new_layers = c.n_new_layers;
        if (rc == 0 && !o->local_only)
                rc = write_outputs(&c, o, &base_ref, res, err);
        kiln_descriptor_release(&top);
        kiln_ref_release(&base_ref);
        struct kiln_store *store = c.store;
        ctx_release(&c);
        kiln_store_free(store);
        if (rc < 0)
                kiln_err_prefix(err, "build %s", res->name.full);
        return rc;
}
