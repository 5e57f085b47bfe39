/* kiln_token_parse on a token endpoint's response body. */
#include "fuzz-common.h"

#include "kiln/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kiln_token t = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_token_parse((const char *)data, size, &t, &err) == 0)
                kiln_token_release(&t);
        return 0;
}
