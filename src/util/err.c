#include "kiln/util.h"

#include <errno.h>
#include <string.h>

static int err_vset(struct kiln_err **err, enum kiln_err_domain domain, int code, const char *fmt,
                    va_list ap)
{
        if (!err || *err)
                return -1;
        struct kiln_err *e = kiln_xcalloc(1, sizeof(*e));
        e->domain = domain;
        e->code = code;
        e->msg = kiln_xvasprintf(fmt, ap);
        *err = e;
        return -1;
}

int kiln_err_set(struct kiln_err **err, enum kiln_err_domain domain, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, domain, code, fmt, ap);
        va_end(ap);
        return -1;
}

int kiln_err_sys(struct kiln_err **err, const char *fmt, ...)
{
        int saved = errno;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *what = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        kiln_err_set(err, KILN_ERR_SYSTEM, saved, "%s: %s", what, strerror(saved));
        errno = saved;
        return -1;
}

int kiln_err_prefix(struct kiln_err **err, const char *fmt, ...)
{
        if (!err || !*err)
                return -1;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *ctx = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        char *msg = kiln_xasprintf("%s: %s", ctx, (*err)->msg);
        free((*err)->msg);
        (*err)->msg = msg;
        return -1;
}

void kiln_err_free(struct kiln_err *e)
{
        if (!e)
                return;
        free(e->msg);
        free(e);
}

void kiln_err_clear(struct kiln_err **err)
{
        if (err) {
                kiln_err_free(*err);
                *err = NULL;
        }
}

void kiln_err_freep(struct kiln_err **e)
{
        kiln_err_clear(e);
}

int kiln_err_exit_code(const struct kiln_err *e)
{
        if (!e)
                return 0;
        switch (e->domain) {
        case KILN_ERR_USAGE:
                return 2;
        case KILN_ERR_NOT_FOUND:
                return 3;
        case KILN_ERR_AUTH:
                return 4;
        case KILN_ERR_NETWORK:
                return 5;
        case KILN_ERR_DIGEST:
                return 6;
        case KILN_ERR_FORMAT:
                return 7;
        case KILN_ERR_SPEC:
                return 8;
        case KILN_ERR_BUILD:
                return 9;
        case KILN_ERR_SYSTEM:
        case KILN_ERR_INTERNAL:
        default:
                return 1;
        }
}

const char *kiln_err_domain_name(enum kiln_err_domain d)
{
        switch (d) {
        case KILN_ERR_USAGE:
                return "usage";
        case KILN_ERR_SYSTEM:
                return "system";
        case KILN_ERR_NOT_FOUND:
                return "not-found";
        case KILN_ERR_AUTH:
                return "auth";
        case KILN_ERR_NETWORK:
                return "network";
        case KILN_ERR_DIGEST:
                return "digest";
        case KILN_ERR_FORMAT:
                return "format";
        case KILN_ERR_SPEC:
                return "spec";
        case KILN_ERR_BUILD:
                return "build";
        case KILN_ERR_INTERNAL:
        default:
                return "internal";
        }
}
