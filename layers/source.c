/* source_root: the project's files copied into /root, each at its path
 * relative to source_root, owned by flytekit, as flytekit's builder copies
 * the source tree (COPY --chown=flytekit SRC /root) when source_copy_mode
 * asks for it. What the tree's .gitignore files, its .dockerignore and
 * flytekit's standard ignores exclude stays out; a symlink to a file is
 * copied as the file (flytekit's shutil.copy follows it). The files are
 * exactly those the tag hashes (kiln_spec_source_files). */
#include "kiln/build.h"

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

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        _cleanup_free_ char *root = NULL;
        _cleanup_strv_ char **files = NULL;
        if (kiln_spec_source_files(s, &root, &files, err) < 0)
                return -1;
        uid_t uid = 0;
        gid_t gid = 0;
        bool found = false;
        if (kiln_step_lookup_user(ctx, SOURCE_OWNER, &uid, &gid, &found, err) < 0)
                return -1;
        size_t n = kiln_strv_len(files);
        struct kiln_copy_entry *e = kiln_xcalloc(n ? n : 1, sizeof(*e));
        char **srcs = kiln_xcalloc(n + 1, sizeof(char *));
        char **dests = kiln_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", root, files[i]);
                srcs[i] = realpath(p, NULL);
                if (!srcs[i]) {
                        kiln_err_sys(err, "source_root: %s", p);
                        kiln_strv_free(srcs);
                        kiln_strv_free(dests);
                        free(e);
                        return -1;
                }
                dests[i] = kiln_xasprintf("root/%s", files[i]);
                e[i] = (struct kiln_copy_entry){.src = srcs[i], .dest = dests[i]};
        }
        kiln_info("source_root: %zu files", n);
        _cleanup_free_ char *h = kiln_xasprintf("COPY --chown=%u:%u %s /root/", (unsigned)uid,
                                                (unsigned)gid, s->source_root);
        int rc = kiln_step_host_layer(ctx, e, n, uid, gid, h, err);
        kiln_strv_free(srcs);
        kiln_strv_free(dests);
        free(e);
        return rc;
}

const struct kiln_step_kind kiln_step_source = {
    .name = "source",
    .wanted = wanted,
    .describe = describe,
    .run = run,
};
