/* commands: the user's shell commands, joined with " && " and run as root
 * with /bin/sh, as flytekit's builder does in one RUN. */
#include "kiln/step.h"

static bool wanted(const struct kiln_spec *s)
{
        return s->commands && s->commands[0];
}

static char *describe(const struct kiln_spec *s)
{
        struct kiln_buf b = {0};
        for (size_t i = 0; s->commands[i]; i++)
                kiln_buf_printf(&b, "%s%s", i ? " && " : "", s->commands[i]);
        return kiln_buf_steal(&b);
}

static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        _cleanup_free_ char *script = describe(s);
        kiln_buf_printf(b, "/bin/sh -c %s\n", script);
        return 0;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        _cleanup_free_ char *script = describe(kiln_step_spec(ctx));
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN /bin/sh -c %s", script);
        char *argv[] = {"/bin/sh", "-c", script, NULL};
        return kiln_step_sandbox(ctx, argv, NULL, NULL, 0, created_by, err);
}

const struct kiln_step_kind kiln_step_commands = {
    .name = "commands",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};
