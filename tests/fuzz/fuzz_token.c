/* kiln_token_parse on a token endpoint's response body. */
#include "fuzz-common.h"

#include "kiln/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kiln_token t = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_token_parse((const char *)data, size, &t, &err) == 0) {
                /* It goes into a request header as it is: never a control
                 * character, a space or a byte outside ASCII. */
                if (!*t.token)
                        fuzz_die("empty token accepted");
                for (const char *c = t.token; *c; c++)
                        if (*c < 0x21 || *c > 0x7e)
                                fuzz_die("token with byte 0x%02x accepted", (unsigned char)*c);
                kiln_token_release(&t);
        } else if (err && strstr(err->msg, "s3cr3t")) {
                fuzz_die("an error quotes the body: %s", err->msg);
        }
        return 0;
}
