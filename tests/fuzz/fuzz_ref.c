/* kiln_ref_parse and kiln_image_loc_parse on arbitrary strings. Property:
 * a parsed reference prints (kiln_ref_string) to text that parses back to
 * the same reference. */
#include "fuzz-common.h"

#include "kiln/ref.h"

static bool str_eq(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static void check_roundtrip(const char *input, const struct kiln_ref *r)
{
        _cleanup_free_ char *s = kiln_ref_string(r);
        struct kiln_ref again = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_ref_parse(s, &again, &err) < 0) {
                fprintf(stderr, "fuzz_ref: \"%s\" parsed, its string \"%s\" does not: %s\n", input,
                        s, err->msg);
                abort();
        }
        if (!str_eq(r->domain, again.domain) || !str_eq(r->path, again.path) ||
            !str_eq(r->tag, again.tag) || !str_eq(r->digest, again.digest)) {
                fprintf(stderr,
                        "fuzz_ref: \"%s\" -> \"%s\" re-parses differently: "
                        "domain %s/%s path %s/%s tag %s/%s digest %s/%s\n",
                        input, s, r->domain, again.domain, r->path, again.path,
                        r->tag ? r->tag : "(null)", again.tag ? again.tag : "(null)",
                        r->digest ? r->digest : "(null)", again.digest ? again.digest : "(null)");
                abort();
        }
        /* The other accessors must work on anything the parser accepts. */
        free(kiln_ref_name(r));
        (void)kiln_ref_object(r);
        (void)kiln_host_is_loopback(kiln_ref_api_host(r));
        struct kiln_ref copy = {0};
        kiln_ref_copy(&copy, r);
        kiln_ref_release(&copy);
        kiln_ref_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_cstr(data, size);

        struct kiln_ref r = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_ref_parse(s, &r, &err) == 0) {
                check_roundtrip(s, &r);
                kiln_ref_release(&r);
        }
        (void)kiln_host_is_loopback(s);

        for (int bare = 0; bare < 2; bare++) {
                struct kiln_image_loc loc = {0};
                _cleanup_err_ struct kiln_err *lerr = NULL;
                if (kiln_image_loc_parse(s, bare, &loc, &lerr) == 0) {
                        free(kiln_image_loc_string(&loc));
                        if (loc.transport == KILN_TRANSPORT_DOCKER)
                                check_roundtrip(s, &loc.ref);
                        kiln_image_loc_release(&loc);
                }
        }
        return 0;
}
