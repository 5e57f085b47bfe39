/* Private to the attest module: building JSON documents with jansson,
 * which fails only on out-of-memory (kiln aborts there, as kiln_x* do). */
#ifndef KILN_ATTEST_JSON_INTERNAL_H
#define KILN_ATTEST_JSON_INTERNAL_H

#include "kiln/attest.h"

/* j, or abort when jansson could not allocate it. */
json_t *kiln_attest_json_checked(json_t *j);
/* o[k] = v (v's reference taken); NULL v aborts. */
void kiln_attest_json_put(json_t *o, const char *k, json_t *v);

#endif
