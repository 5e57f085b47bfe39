/* copy: host files into /root/<relative path>, written as a layer straight
 * from the host (no sandbox), owned by the image's flytekit user when it
 * has one, as flytekit's builder does with COPY --chown. */
#include "kiln/step.h"

#include <string.h>

#define COPY_OWNER "flytekit"

static bool wanted(const struct kiln_spec *s)
{
        return s->copy && s->copy[0];
}

static char *describe(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        for (size_t i = 0; s->copy[i]; i++)
                kiln_buf_printf(&b, "%s%s", i ? ", " : "", s->copy[i]);
        kiln_buf_puts(&b, " -> /root/");
        return kiln_buf_steal(&b);
}

/* "./a/b/" -> "root/a/b": the spec validated there is no ".." and no
 * absolute path. */
static char *dest_of(const char *rel)
{
        while (rel[0] == '.' && rel[1] == '/')
                rel += 2;
        char *d = kiln_xasprintf("root/%s", rel);
        size_t n = strlen(d);
        while (n > 5 && d[n - 1] == '/')
                d[--n] = '\0';
        return d;
}

struct copy_plan {
        struct kiln_step_file *e;
        char **dests;
        size_t n;
};

static void plan_make(const struct kiln_spec *s, struct copy_plan *p)
{
        p->n = kiln_strv_len(s->copy);
        p->e = kiln_xcalloc(p->n ? p->n : 1, sizeof(*p->e));
        p->dests = kiln_xcalloc(p->n + 1, sizeof(char *));
        for (size_t i = 0; i < p->n; i++) {
                p->dests[i] = dest_of(s->copy[i]);
                p->e[i] = (struct kiln_step_file){.src = s->copy_paths[i], .dest = p->dests[i]};
        }
}

static void plan_release(struct copy_plan *p)
{
        kiln_strv_free(p->dests);
        free(p->e);
        *p = (struct copy_plan){0};
}

/* What the layer would hold, byte for byte (the owner comes from the
 * user step, earlier in the chain). */
static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        _cleanup_(plan_release) struct copy_plan p = {0};
        plan_make(s, &p);
        if (kiln_step_files_key(p.e, p.n, b, err) < 0)
                return kiln_err_prefix(err, "copy");
        return 0;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const struct kiln_spec *s = kiln_step_spec(ctx);
        uid_t uid = 0;
        gid_t gid = 0;
        bool found = false;
        if (kiln_step_lookup_user(ctx, COPY_OWNER, &uid, &gid, &found, err) < 0)
                return -1;
        _cleanup_(plan_release) struct copy_plan p = {0};
        plan_make(s, &p);
        _cleanup_buf_ struct kiln_buf h = {0};
        kiln_buf_printf(&h, "COPY --chown=%u:%u", (unsigned)uid, (unsigned)gid);
        for (size_t i = 0; i < p.n; i++)
                kiln_buf_printf(&h, " %s", s->copy[i]);
        kiln_buf_puts(&h, " /root/");
        return kiln_step_host_layer(ctx, p.e, p.n, uid, gid, h.data, err);
}

const struct kiln_step_kind kiln_step_copy = {
    .name = "copy",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
