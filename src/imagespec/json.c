/* The spec's fields as JSON, for provenance: what the author asked for,
 * without what must stay secret. Every string has the user:password of
 * its URLs removed (an index URL in pip_index, pip_extra_args, a package
 * or an env value may carry one), and pip_secret_mounts give only where
 * the secret was mounted: its source file names a secret on the builder's
 * host, never something a reader of the image should learn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/oci.h"
#include "kiln/imagespec.h"
#include "imagespec-internal.h"

char *kiln_spec_strip_credentials(const char *s)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_put_redacted(&b, s, strlen(s));
        kiln_buf_append(&b, "", 1);
        /* kiln_buf_put_redacted masks the user info with three asterisks; a reader wants
         * the URL that works without credentials: "scheme://host". */
        char *out = kiln_buf_steal(&b);
        for (char *p = out; (p = strstr(p, "://***@"));)
                memmove(p + 3, p + 7, strlen(p + 7) + 1);
        return out;
}

static json_t *checked(json_t *j)
{
        if (!j)
                abort(); /* jansson fails only on out-of-memory or bad UTF-8, never given */
        return j;
}

static json_t *str_json(const char *s)
{
        _cleanup_free_ char *clean = kiln_spec_strip_credentials(s);
        json_t *j = json_string(clean);
        /* not UTF-8: kept as bytes would be invalid JSON; say so instead */
        return j ? j : checked(json_string("(not UTF-8)"));
}

static json_t *value_json(const struct kiln_spec_value *v)
{
        switch (v->type) {
        case KILN_SPEC_NULL:
                return checked(json_null());
        case KILN_SPEC_BOOL:
                return checked(json_boolean(v->boolean));
        case KILN_SPEC_INT: {
                errno = 0;
                char *end = NULL;
                long long n = strtoll(v->text, &end, 10);
                /* Python's ints are unbounded: a larger one stays its text */
                if (errno || *end)
                        return str_json(v->text);
                return checked(json_integer(n));
        }
        case KILN_SPEC_FLOAT:
                return str_json(v->text); /* inf and nan are not JSON numbers */
        case KILN_SPEC_STR:
                return str_json(v->text);
        case KILN_SPEC_LIST: {
                json_t *a = checked(json_array());
                for (size_t i = 0; i < v->n; i++)
                        json_array_append_new(a, value_json(v->items[i]));
                return a;
        }
        case KILN_SPEC_MAP: {
                json_t *o = checked(json_object());
                for (size_t i = 0; i < v->n; i++) {
                        _cleanup_free_ char *k = kiln_spec_strip_credentials(v->keys[i]->text);
                        json_object_set_new(o, k, value_json(v->items[i]));
                }
                return o;
        }
        }
        return checked(json_null());
}

json_t *kiln_spec_to_json(const struct kiln_spec *s)
{
        json_t *o = checked(json_object());
        const struct kiln_spec_value *raw = s->raw;
        for (size_t i = 0; raw && raw->type == KILN_SPEC_MAP && i < raw->n; i++) {
                const char *k = raw->keys[i]->text;
                if (!strcmp(k, "pip_secret_mounts")) {
                        json_t *a = checked(json_array());
                        for (size_t m = 0; m < s->n_pip_secret_mounts; m++)
                                json_array_append_new(a, str_json(s->pip_secret_mounts[m].dst));
                        json_object_set_new(o, k, a);
                } else if (!strcmp(k, "base_image") && s->base_spec) {
                        json_object_set_new(o, k, kiln_spec_to_json(s->base_spec));
                } else {
                        _cleanup_free_ char *key = kiln_spec_strip_credentials(k);
                        json_object_set_new(o, key, value_json(raw->items[i]));
                }
        }
        return o;
}
