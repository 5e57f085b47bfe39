/* Several specs in one run.
 *
 * The parent resolves every image name, asks the registry which exist,
 * resolves each distinct base once and then schedules the builds. Each build
 * runs kiln_build in a process of its own: a build enters namespaces, forks
 * sandboxes and owns a build directory, and a process keeps all of that
 * (and a crash) to one spec. The children share the store, where the
 * fetch, snapshot and step-cache locks make a base download once, unpack
 * once and an identical step run once. A child reports its result to the parent as one JSON
 * document on a pipe; outputs are written by the parent at the end so
 * that one OCI layout can take every image without writers racing. */
#include "builder-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>

#define REPORT_MAX ((size_t)1 << 20)

enum job_state { JOB_WAITING, JOB_RUNNING, JOB_DONE };

struct slot {
        enum job_state state;
        size_t same_as; /* the job that builds the same image (itself if none) */
        size_t *deps;   /* jobs building a base of this one */
        size_t n_deps;
        pid_t pid;
        int fd; /* the child's report, while running */
        struct kiln_buf report;
};

static void job_fail(struct kiln_build_job *j, const struct kiln_err *cause, const char *what)
{
        kiln_err_set(&j->err, cause->domain, cause->code, "%s%s%s", what, *what ? ": " : "",
                     cause->msg);
}

static bool same_platform(const char *a, const char *b)
{
        return a == b || (a && b && !strcmp(a, b));
}

static const char *job_platform(const struct kiln_build_job *j)
{
        if (j->platform)
                return j->platform;
        return j->spec->platforms ? j->spec->platforms[0] : KILN_SPEC_DEFAULT_PLATFORM;
}

/* Same image name (and platform): built once. A spec whose base chain names the image of
 * another job waits for that job. */
static void plan_jobs(struct kiln_build_job *jobs, struct slot *slots, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                slots[i].same_as = i;
                for (size_t k = 0; k < i && !jobs[i].err; k++)
                        if (!jobs[k].err && slots[k].same_as == k &&
                            !strcmp(jobs[k].res.name.full, jobs[i].res.name.full) &&
                            same_platform(jobs[k].platform, jobs[i].platform)) {
                                slots[i].same_as = k;
                                break;
                        }
        }
        for (size_t i = 0; i < n; i++) {
                if (jobs[i].err || slots[i].same_as != i)
                        continue;
                for (const struct kiln_spec *b = jobs[i].spec->base_spec; b; b = b->base_spec) {
                        _cleanup_image_name_ struct kiln_image_name bn = {0};
                        _cleanup_err_ struct kiln_err *ignored = NULL;
                        if (kiln_spec_image_name(b, &bn, &ignored) < 0)
                                break; /* the build reports it */
                        for (size_t k = 0; k < n; k++)
                                if (k != i && !jobs[k].err && slots[k].same_as == k &&
                                    !strcmp(jobs[k].res.name.full, bn.full)) {
                                        slots[i].deps = kiln_xrealloc(slots[i].deps,
                                                                      (slots[i].n_deps + 1) *
                                                                          sizeof(*slots[i].deps));
                                        slots[i].deps[slots[i].n_deps++] = k;
                                }
                }
        }
}

/* flytekit's check, asked once per image before anything is pulled. */
static void check_existing(struct kiln_build_job *jobs, struct slot *slots, size_t n,
                           const struct kiln_build_opts *o)
{
        if (!o->push || kiln_build_forced(o))
                return;
        for (size_t i = 0; i < n; i++) {
                if (jobs[i].err || slots[i].same_as != i)
                        continue;
                char digest[KILN_DIGEST_MAX];
                bool exists = false;
                _cleanup_err_ struct kiln_err *e = NULL;
                if (kiln_build_exists(jobs[i].spec, &jobs[i].res.name, &o->reg, &exists, digest,
                                      &e) < 0) {
                        job_fail(&jobs[i], e, "");
                        slots[i].state = JOB_DONE;
                } else if (exists) {
                        jobs[i].res.skipped = true;
                        jobs[i].res.manifest.digest = digest[0] ? kiln_xstrdup(digest) : NULL;
                        slots[i].state = JOB_DONE;
                }
        }
}

/* Every distinct (base, platform) of the builds to run, resolved once
 * (manifest and config: a bad reference fails its builds before any
 * starts). The layers are fetched by the first build that needs them; the
 * store's fetch lock makes the others wait for that download. A base spec
 * is built by its dependant. */
static int resolve_job_base(const struct kiln_build_opts *o, const struct kiln_build_job *j,
                            const char *base, struct kiln_store *store, struct kiln_err **err)
{
        _cleanup_platform_ struct kiln_platform platform = {0};
        char digest[KILN_DIGEST_MAX];
        if (kiln_platform_parse(job_platform(j), &platform, err) < 0)
                return -1;
        return kiln_build_resolve_base(o, base, &platform, store, digest, err);
}

static void pull_bases(struct kiln_build_job *jobs, struct slot *slots, size_t n,
                       const struct kiln_build_opts *o, struct kiln_store *store)
{
        /* "base (platform)" of every build to run, NULL where none applies */
        char **what = kiln_xcalloc(n + 1, sizeof(char *));
        char **base = kiln_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                const struct kiln_spec *s = jobs[i].spec;
                _cleanup_err_ struct kiln_err *e = NULL;
                if (slots[i].state != JOB_WAITING || slots[i].same_as != i || s->base_spec ||
                    kiln_build_base_name(s, &base[i], &e) < 0)
                        continue; /* the build reports it */
                what[i] = kiln_xasprintf("%s (%s)", base[i], job_platform(&jobs[i]));
        }
        for (size_t i = 0; i < n; i++) {
                bool seen = !what[i];
                for (size_t k = 0; k < i && !seen; k++)
                        seen = what[k] && !strcmp(what[k], what[i]);
                _cleanup_err_ struct kiln_err *e = NULL;
                if (seen || resolve_job_base(o, &jobs[i], base[i], store, &e) == 0)
                        continue;
                /* Every build on this base would fail the same way. */
                for (size_t k = i; k < n; k++)
                        if (what[k] && !strcmp(what[k], what[i])) {
                                job_fail(&jobs[k], e, "");
                                slots[k].state = JOB_DONE;
                        }
        }
        for (size_t i = 0; i < n; i++) {
                free(what[i]);
                free(base[i]);
        }
        free(what);
        free(base);
}

/* ---------- one build in a child process ---------- */

static json_t *report_of(const struct kiln_build_result *r, const struct kiln_err *e)
{
        if (e)
                return json_pack("{s:{s:i, s:i, s:s}}", "error", "domain", (int)e->domain, "code",
                                 e->code, "msg", e->msg);
        json_t *o =
            json_pack("{s:b, s:I, s:I, s:I}", "skipped", r->skipped, "newLayers",
                      (json_int_t)r->n_new_layers, "cachedSteps", (json_int_t)r->n_cached_steps,
                      "remoteHits", (json_int_t)r->n_remote_hits);
        if (r->manifest.digest)
                json_object_set_new(o, "digest", json_string(r->manifest.digest));
        if (r->manifest.media_type)
                json_object_set_new(o, "mediaType", json_string(r->manifest.media_type));
        if (r->manifest.platform) {
                _cleanup_free_ char *p = kiln_platform_string(r->manifest.platform);
                json_object_set_new(o, "platform", json_string(p));
        }
        json_object_set_new(o, "size", json_integer(r->manifest.size));
        if (r->n_platform_manifests) {
                json_t *ps = json_array();
                for (size_t i = 0; i < r->n_platform_manifests; i++)
                        json_array_append_new(ps,
                                              kiln_descriptor_to_json(&r->platform_manifests[i]));
                json_object_set_new(o, "platforms", ps);
        }
        return o;
}

static __attribute__((noreturn)) void child_build(const struct kiln_build_job *j,
                                                  const struct kiln_build_opts *o, int fd)
{
        _cleanup_free_ char *prefix = kiln_xasprintf("%s: ", j->label);
        kiln_log_set_prefix(prefix);
        struct kiln_build_opts bo = *o;
        if (!o->untagged) {
                bo.outputs = NULL; /* the parent writes them, all builds done */
                bo.n_outputs = 0;
                bo.local_only = !o->push;
        }
        bo.platform = j->platform;
        struct kiln_build_result r = {0};
        struct kiln_err *e = NULL;
        kiln_build(j->spec, &bo, &r, &e);
        json_t *rep = report_of(&r, e);
        char *text = json_dumps(rep, JSON_COMPACT);
        int rc = text && kiln_write_all(fd, text, strlen(text)) == 0 ? 0 : 1;
        fflush(NULL);
        _exit(rc);
}

static int start_job(const struct kiln_build_job *jobs, struct slot *slots, size_t i,
                     const struct kiln_build_opts *o, struct kiln_err **err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return kiln_err_sys(err, "pipe");
        fflush(NULL); /* nothing buffered gets written twice */
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return kiln_err_sys(err, "fork a build of %s", jobs[i].label);
        }
        if (pid == 0) {
                close(p[0]);
                child_build(&jobs[i], o, p[1]);
        }
        close(p[1]);
        slots[i].pid = pid;
        slots[i].fd = p[0];
        slots[i].state = JOB_RUNNING;
        return 0;
}

/* A child that built several platforms: their manifests, as it reported
 * them (a malformed entry is dropped: the index it pushed is the truth). */
static void read_platform_manifests(json_t *list, struct kiln_build_result *r)
{
        size_t n = json_array_size(list);
        if (!n)
                return;
        r->platform_manifests = kiln_xcalloc(n, sizeof(*r->platform_manifests));
        for (size_t i = 0; i < n; i++) {
                _cleanup_err_ struct kiln_err *ignored = NULL;
                if (kiln_descriptor_from_json(json_array_get(list, i), "platforms",
                                              &r->platform_manifests[r->n_platform_manifests],
                                              &ignored) == 0)
                        r->n_platform_manifests++;
        }
}

static void finish_job(struct kiln_build_job *j, struct slot *sl, int status)
{
        sl->state = JOB_DONE;
        json_error_t jerr;
        _cleanup_json_ json_t *rep = sl->report.len ? json_loads(sl->report.data, 0, &jerr) : NULL;
        kiln_buf_release(&sl->report);
        if (!rep) {
                if (WIFSIGNALED(status))
                        kiln_err_set(&j->err, KILN_ERR_INTERNAL, 0,
                                     "the build process was killed by signal %d", WTERMSIG(status));
                else
                        kiln_err_set(&j->err, KILN_ERR_INTERNAL, 0,
                                     "the build process exited with status %d and no result",
                                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                return;
        }
        json_t *e = json_object_get(rep, "error");
        if (e) {
                const char *msg = json_string_value(json_object_get(e, "msg"));
                int domain = (int)json_integer_value(json_object_get(e, "domain"));
                if (domain < KILN_ERR_INTERNAL || domain > KILN_ERR_BUILD)
                        domain = KILN_ERR_INTERNAL;
                kiln_err_set(&j->err, (enum kiln_err_domain)domain,
                             (int)json_integer_value(json_object_get(e, "code")), "%s",
                             msg ? msg : "failed");
        } else {
                struct kiln_build_result *r = &j->res;
                r->skipped = json_is_true(json_object_get(rep, "skipped"));
                r->n_new_layers = (size_t)json_integer_value(json_object_get(rep, "newLayers"));
                r->n_cached_steps = (size_t)json_integer_value(json_object_get(rep, "cachedSteps"));
                r->n_remote_hits = (size_t)json_integer_value(json_object_get(rep, "remoteHits"));
                const char *d = json_string_value(json_object_get(rep, "digest"));
                const char *mt = json_string_value(json_object_get(rep, "mediaType"));
                r->manifest.digest = d ? kiln_xstrdup(d) : NULL;
                r->manifest.media_type = mt ? kiln_xstrdup(mt) : NULL;
                r->manifest.size = json_integer_value(json_object_get(rep, "size"));
                read_platform_manifests(json_object_get(rep, "platforms"), r);
                const char *p = json_string_value(json_object_get(rep, "platform"));
                _cleanup_err_ struct kiln_err *ignored = NULL;
                if (p) {
                        r->manifest.platform = kiln_xcalloc(1, sizeof(*r->manifest.platform));
                        if (kiln_platform_parse(p, r->manifest.platform, &ignored) < 0)
                                free(steal_pointer(&r->manifest.platform));
                }
        }
}

/* Waits for output from any running build; finishes those that ended. */
static int reap(struct kiln_build_job *jobs, struct slot *slots, size_t n, size_t *running,
                struct kiln_err **err)
{
        _cleanup_free_ struct pollfd *pfds = kiln_xcalloc(n, sizeof(*pfds));
        _cleanup_free_ size_t *idx = kiln_xcalloc(n, sizeof(*idx));
        size_t np = 0;
        for (size_t i = 0; i < n; i++)
                if (slots[i].state == JOB_RUNNING) {
                        pfds[np] = (struct pollfd){.fd = slots[i].fd, .events = POLLIN};
                        idx[np++] = i;
                }
        if (poll(pfds, np, -1) < 0)
                return errno == EINTR ? 0 : kiln_err_sys(err, "wait for the builds");
        for (size_t k = 0; k < np; k++) {
                if (!pfds[k].revents)
                        continue;
                struct slot *sl = &slots[idx[k]];
                char chunk[4096];
                ssize_t got = read(sl->fd, chunk, sizeof(chunk));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got > 0 && sl->report.len + (size_t)got <= REPORT_MAX) {
                        kiln_buf_append(&sl->report, chunk, (size_t)got);
                        continue;
                }
                if (got > 0)
                        continue; /* an oversized report is dropped, not trusted */
                close(sl->fd);
                sl->fd = -1;
                int status = 0;
                while (waitpid(sl->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                finish_job(&jobs[idx[k]], sl, status);
                (*running)--;
        }
        return 0;
}

/* A job is ready when every base it waits for is done; a failed base
 * fails it without running. */
static bool ready(struct kiln_build_job *jobs, struct slot *slots, size_t i)
{
        for (size_t d = 0; d < slots[i].n_deps; d++) {
                size_t k = slots[i].deps[d];
                if (slots[k].state != JOB_DONE)
                        return false;
                if (jobs[k].err) {
                        kiln_err_set(&jobs[i].err, KILN_ERR_BUILD, 0,
                                     "not built: its base image %s (%s) failed",
                                     jobs[k].res.name.full, jobs[k].label);
                        slots[i].state = JOB_DONE;
                        return false;
                }
        }
        return true;
}

static int schedule(struct kiln_build_job *jobs, struct slot *slots, size_t n,
                    const struct kiln_build_opts *o, size_t parallel, struct kiln_err **err)
{
        size_t running = 0;
        for (;;) {
                bool waiting = false;
                for (size_t i = 0; i < n; i++) {
                        if (slots[i].state != JOB_WAITING || slots[i].same_as != i)
                                continue;
                        if (running >= parallel || !ready(jobs, slots, i)) {
                                waiting |= slots[i].state == JOB_WAITING;
                                continue;
                        }
                        _cleanup_err_ struct kiln_err *e = NULL;
                        if (start_job(jobs, slots, i, o, &e) < 0) {
                                job_fail(&jobs[i], e, "");
                                slots[i].state = JOB_DONE;
                                continue;
                        }
                        running++;
                }
                if (running == 0) {
                        if (waiting)
                                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                                    "builds wait on each other");
                        return 0;
                }
                if (reap(jobs, slots, n, &running, err) < 0)
                        return -1;
        }
}

/* Outputs for every image built, each tagged by its own tag unless the
 * destination names one (the CLI refuses that for several images). */
static void write_outputs(struct kiln_build_job *jobs, struct slot *slots, size_t n,
                          const struct kiln_build_opts *o, struct kiln_store *store)
{
        for (size_t i = 0; i < n; i++) {
                struct kiln_build_job *j = &jobs[i];
                if (j->err || slots[i].same_as != i || j->res.skipped || !j->res.manifest.digest)
                        continue;
                /* flytekit's tag names the image in the layout unless the
                 * grammar of layout refs refuses it (one tag in 32 starts
                 * with '_'): then the ref the rule makes of it, said. */
                _cleanup_free_ char *ref = kiln_oci_ref_name_for(j->res.name.tag);
                _cleanup_(builder_referrers_release) struct builder_referrers refs = {0};
                if (o->n_outputs)
                        builder_attest_find(store, o, j->res.manifest.digest, j->res.name.full,
                                            &refs);
                for (size_t k = 0; k < o->n_outputs && !j->err; k++) {
                        struct kiln_image_loc dest = o->outputs[k];
                        if (!dest.tag)
                                dest.tag = ref;
                        if (dest.tag == ref && strcmp(ref, j->res.name.tag) != 0)
                                kiln_info("%s: %s is not a valid OCI ref name; the image is %s in "
                                          "the layout",
                                          j->label, j->res.name.tag, ref);
                        _cleanup_err_ struct kiln_err *e = NULL;
                        if (kiln_output_write_referrers(&dest, store, &j->res.manifest,
                                                        j->res.name.full, refs.v, refs.n, &e) < 0)
                                job_fail(j, e, "write output");
                        else
                                builder_result_add_output(&j->res, &dest);
                }
        }
}

/* The builds, from the user namespace on: it cannot be entered once
 * threads exist. */
static int run_jobs(struct kiln_build_job *jobs, struct slot *slots, size_t n,
                    const struct kiln_build_opts *o, int parallel, struct kiln_err **err)
{
        enum kiln_idmap idmap;
        _cleanup_store_ struct kiln_store *store = NULL;
        if (kiln_userns_enter(&idmap, err) < 0 || kiln_store_open(o->cache_dir, &store, err) < 0)
                return -1;
        pull_bases(jobs, slots, n, o, store);
        if (schedule(jobs, slots, n, o, parallel > 0 ? (size_t)parallel : (size_t)kiln_cpu_count(),
                     err) < 0)
                return -1;
        if (!o->untagged)
                write_outputs(jobs, slots, n, o, store);
        return 0;
}

/* A job that named the image another one built has that one's result. */
static void share_results(struct kiln_build_job *jobs, const struct slot *slots, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t k = slots[i].same_as;
                if (k == i)
                        continue;
                if (jobs[k].err)
                        kiln_err_set(&jobs[i].err, jobs[k].err->domain, jobs[k].err->code, "%s",
                                     jobs[k].err->msg);
                jobs[i].res.skipped = jobs[k].res.skipped;
                kiln_descriptor_copy(&jobs[i].res.manifest, &jobs[k].res.manifest);
        }
}

static void slots_free(struct slot *slots, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (slots[i].fd >= 0)
                        close(slots[i].fd);
                free(slots[i].deps);
                kiln_buf_release(&slots[i].report);
        }
        free(slots);
}

int kiln_build_many(struct kiln_build_job *jobs, size_t n, const struct kiln_build_opts *o,
                    int parallel, struct kiln_err **err)
{
        if (!o->push && o->n_outputs == 0 && !o->local_only)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "nowhere to put the images: give --push or -o oci:DIR");
        struct slot *slots = kiln_xcalloc(n ? n : 1, sizeof(*slots));
        for (size_t i = 0; i < n; i++) {
                slots[i].fd = -1;
                if (kiln_spec_image_name(jobs[i].spec, &jobs[i].res.name, &jobs[i].err) < 0)
                        slots[i].state = JOB_DONE;
        }
        plan_jobs(jobs, slots, n);
        check_existing(jobs, slots, n, o);
        int rc = run_jobs(jobs, slots, n, o, parallel, err);
        /* whatever ran, every job gets its result */
        share_results(jobs, slots, n);
        slots_free(slots, n);
        return rc;
}
