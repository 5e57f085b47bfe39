/* kiln_platform_parse on two strings split at the first newline, then
 * kiln_platform_matches both ways. Properties: a platform (other than
 * unknown/unknown) matches itself,
 * and its string form parses back to an equal platform. */
#include "fuzz-common.h"

#include "kiln/oci.h"

static bool str_eq(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static void check_roundtrip(const struct kiln_platform *p)
{
        _cleanup_free_ char *s = kiln_platform_string(p);
        struct kiln_platform again = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_platform_parse(s, &again, &err) < 0) {
                fprintf(stderr, "fuzz_platform: string \"%s\" of a parsed platform fails: %s\n", s,
                        err->msg);
                abort();
        }
        if (!str_eq(p->os, again.os) || !str_eq(p->architecture, again.architecture) ||
            !str_eq(p->variant, again.variant)) {
                fprintf(stderr, "fuzz_platform: \"%s\" re-parses differently\n", s);
                abort();
        }
        /* unknown/unknown (attestations) deliberately matches nothing. */
        bool unknown = !strcmp(p->os, "unknown") || !strcmp(p->architecture, "unknown");
        if (!unknown && !kiln_platform_matches(p, p)) {
                fprintf(stderr, "fuzz_platform: \"%s\" does not match itself\n", s);
                abort();
        }
        kiln_platform_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_cstr(data, size);
        char *second = strchr(s, '\n');
        if (second)
                *second++ = '\0';

        struct kiln_platform a = {0}, b = {0};
        _cleanup_err_ struct kiln_err *aerr = NULL;
        _cleanup_err_ struct kiln_err *berr = NULL;
        bool a_ok = kiln_platform_parse(s, &a, &aerr) == 0;
        bool b_ok = second && kiln_platform_parse(second, &b, &berr) == 0;
        if (a_ok)
                check_roundtrip(&a);
        if (b_ok)
                check_roundtrip(&b);
        if (a_ok && b_ok) {
                (void)kiln_platform_matches(&a, &b);
                (void)kiln_platform_matches(&b, &a);
        }
        if (a_ok)
                kiln_platform_release(&a);
        if (b_ok)
                kiln_platform_release(&b);
        return 0;
}
