/* kiln_config_summary_parse on image config bytes. */
#include "fuzz-common.h"

#include "kiln/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kiln_config_summary c = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_config_summary_parse((const char *)data, size, &c, &err) == 0) {
                if (!c.platform.os || !c.platform.architecture)
                        abort(); /* a valid config names its platform */
                free(kiln_platform_string(&c.platform));
                kiln_config_summary_release(&c);
        }
        return 0;
}
