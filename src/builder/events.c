/* A build's progress events (kiln/util.h): the step lines kiln always
 * printed, with what a renderer needs besides (key, cached, duration,
 * exit status). Without a sink only the lines are printed, as before. */
#include "builder-internal.h"

void builder_event_build(const struct kiln_build_result *res, const char *platform)
{
        kiln_event_emit(&(struct kiln_event){
            .kind = KILN_EVENT_BUILD, .image = res->name.full, .platform = platform});
}

void builder_event_step(struct kiln_step_ctx *c, size_t no, const struct kiln_step_kind *kind,
                        const char *key, const char *desc, bool cached, const char *cached_in)
{
        _cleanup_free_ char *text =
            cached ? kiln_xasprintf("step %zu: %s: %s (cached%s%s)", no, kind->name, desc,
                                    cached_in ? " in " : "", cached_in ? cached_in : "")
                   : kiln_xasprintf("step %zu: %s: %s", no, kind->name, desc);
        struct kiln_event ev = {.kind = KILN_EVENT_STEP_START,
                                .text = text,
                                .step = no,
                                .step_kind = kind->name,
                                .desc = desc,
                                .key = key,
                                .cached = cached,
                                .cached_in = cached_in};
        kiln_event_emit(&ev);
        c->step_start_ns = kiln_now_ns();
        c->step_open = !cached;
        if (!cached)
                return;
        /* a cached step ends as it starts */
        ev.kind = KILN_EVENT_STEP_END;
        ev.text = NULL;
        kiln_event_emit(&ev);
}

void builder_event_step_end(struct kiln_step_ctx *c, const struct kiln_err *e)
{
        if (!c->step_open)
                return;
        c->step_open = false;
        /* a program's exit status is the code of a build error */
        int status = !e ? 0 : e->domain == KILN_ERR_BUILD && e->code > 0 ? e->code : -1;
        kiln_event_emit(&(struct kiln_event){.kind = KILN_EVENT_STEP_END,
                                             .step = c->step_no,
                                             .step_kind = c->kind->name,
                                             .key = c->key,
                                             .duration_ns = kiln_now_ns() - c->step_start_ns,
                                             .status = status,
                                             .error = e ? e->msg : NULL});
}
