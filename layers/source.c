/* source_root: the project's files copied into /root, each at its path
 * relative to source_root, owned by flytekit, as flytekit's builder copies
 * the source tree (COPY --chown=flytekit SRC /root) when source_copy_mode
 * asks for it. What the tree's .gitignore files, its .dockerignore and
 * flytekit's standard ignores exclude stays out; a symlink to a file is
 * copied as the file (flytekit's shutil.copy follows it). The files are
 * exactly those the tag hashes (kiln_spec_source_files). */
#include "kiln/step.h"

#include <stdlib.h>
#include <string.h>

#define SOURCE_OWNER "flytekit"

static bool wanted(const struct kiln_spec *s)
{
        return kiln_spec_copies_source(s);
}

static char *describe(const struct kiln_spec *s)
{
        return kiln_xasprintf("%s -> /root/ (minus .gitignore, .dockerignore)", s->source_root);
}

struct source_plan {
        struct kiln_step_file *e;
        char **srcs, **dests;
        size_t n;
};

static void plan_release(struct source_plan *p)
{
        kiln_strv_free(p->srcs);
        kiln_strv_free(p->dests);
        free(p->e);
        memset(p, 0, sizeof(*p));
}

/* One entry a file, from its real path: a symlink to a file is copied as
 * the file. On failure p holds what was made so far, for plan_release. */
static int plan_make(const struct kiln_spec *s, struct source_plan *p, struct kiln_err **err)
{
        memset(p, 0, sizeof(*p));
        _cleanup_free_ char *root = NULL;
        _cleanup_strv_ char **files = NULL;
        if (kiln_spec_source_files(s, &root, &files, err) < 0)
                return -1;
        p->n = kiln_strv_len(files);
        p->e = kiln_xcalloc(p->n ? p->n : 1, sizeof(*p->e));
        p->srcs = kiln_xcalloc(p->n + 1, sizeof(char *));
        p->dests = kiln_xcalloc(p->n + 1, sizeof(char *));
        for (size_t i = 0; i < p->n; i++) {
                _cleanup_free_ char *path = kiln_xasprintf("%s/%s", root, files[i]);
                p->srcs[i] = realpath(path, NULL);
                if (!p->srcs[i])
                        return kiln_err_sys(err, "source_root: %s", path);
                p->dests[i] = kiln_xasprintf("root/%s", files[i]);
                p->e[i] = (struct kiln_step_file){.src = p->srcs[i], .dest = p->dests[i]};
        }
        return 0;
}

static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        _cleanup_(plan_release) struct source_plan p = {0};
        if (plan_make(s, &p, err) < 0)
                return -1;
        if (kiln_step_files_key(p.e, p.n, b, err) < 0)
                return kiln_err_prefix(err, "source_root");
        return 0;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        uid_t uid = 0;
        gid_t gid = 0;
        bool found = false;
        if (kiln_step_lookup_user(ctx, SOURCE_OWNER, &uid, &gid, &found, err) < 0)
                return -1;
        _cleanup_(plan_release) struct source_plan p = {0};
        if (plan_make(s, &p, err) < 0)
                return -1;
        kiln_info("source_root: %zu files", p.n);
        _cleanup_free_ char *h = kiln_xasprintf("COPY --chown=%u:%u %s /root/", (unsigned)uid,
                                                (unsigned)gid, s->source_root);
        return kiln_step_host_layer(ctx, p.e, p.n, uid, gid, h, err);
}

const struct kiln_step_kind kiln_step_source = {
    .name = "source",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
