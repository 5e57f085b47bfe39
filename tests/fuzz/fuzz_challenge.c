/* kiln_challenges_parse on a WWW-Authenticate header value. */
#include "fuzz-common.h"

#include "kiln/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_cstr(data, size);
        struct kiln_challenge *c = NULL;
        size_t n = 0;
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_challenges_parse(s, &c, &n, &err) == 0) {
                for (size_t i = 0; i < n; i++) {
                        if (!c[i].scheme)
                                abort(); /* every challenge starts with a scheme */
                        (void)kiln_challenge_is(&c[i], "Bearer");
                        (void)kiln_challenge_is(&c[i], "Basic");
                }
                kiln_challenges_free(c, n);
        }
        return 0;
}
