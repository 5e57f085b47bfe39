/* JSON building helpers of the attest module (json-internal.h). */
#include "json-internal.h"

#include <stdlib.h>

json_t *kiln_attest_json_checked(json_t *j)
{
        if (!j)
                abort(); /* jansson fails here only on out-of-memory */
        return j;
}

void kiln_attest_json_put(json_t *o, const char *k, json_t *v)
{
        if (json_object_set_new(o, k, kiln_attest_json_checked(v)) < 0)
                abort();
}
