/* Descriptors: the (mediaType, digest, size) references between blobs. */
#include "oci-internal.h"

#include <string.h>

void kiln_json_decrefp(json_t **j)
{
        if (*j) {
                json_decref(*j);
                *j = NULL;
        }
}

char **kiln_oci_strv_copy(char *const *v)
{
        if (!v)
                return NULL;
        size_t n = kiln_strv_len(v);
        char **c = kiln_xcalloc(n + 1, sizeof(*c));
        for (size_t i = 0; i < n; i++)
                c[i] = kiln_xstrdup(v[i]);
        return c;
}

int kiln_oci_get_opt_string(json_t *obj, const char *key, char **out, struct kiln_err **err)
{
        *out = NULL;
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\" must be a string", key);
        *out = kiln_xstrdup(json_string_value(v));
        return 0;
}

int kiln_oci_get_opt_strv(json_t *obj, const char *key, char ***out, struct kiln_err **err)
{
        *out = NULL;
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\" must be an array of strings",
                                    key);
        size_t n = json_array_size(v);
        _cleanup_strv_ char **res = kiln_xcalloc(n + 1, sizeof(*res));
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(v, i);
                if (!json_is_string(e))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\"[%zu] must be a string",
                                            key, i);
                res[i] = kiln_xstrdup(json_string_value(e));
        }
        *out = steal_pointer(&res);
        return 0;
}

int kiln_oci_get_opt_string_map(json_t *obj, const char *key, json_t **out, struct kiln_err **err)
{
        *out = NULL;
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"%s\" must be an object", key);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
                if (!json_is_string(e))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "\"%s\": value of \"%.100s\" must be a string", key, k);
        }
        *out = json_deep_copy(v);
        if (!*out)
                abort(); /* jansson only fails here on out-of-memory */
        return 0;
}

void kiln_descriptor_release(struct kiln_descriptor *d)
{
        if (!d)
                return;
        free(d->media_type);
        free(d->digest);
        if (d->platform) {
                kiln_platform_release(d->platform);
                free(d->platform);
        }
        if (d->annotations)
                json_decref(d->annotations);
        kiln_strv_free(d->urls);
        free(d->artifact_type);
        *d = (struct kiln_descriptor){0};
}

void kiln_descriptor_copy(struct kiln_descriptor *dst, const struct kiln_descriptor *src)
{
        *dst = (struct kiln_descriptor){0};
        dst->media_type = kiln_oci_strdup0(src->media_type);
        dst->digest = kiln_oci_strdup0(src->digest);
        dst->size = src->size;
        if (src->platform) {
                dst->platform = kiln_xcalloc(1, sizeof(*dst->platform));
                kiln_platform_copy(dst->platform, src->platform);
        }
        if (src->annotations) {
                dst->annotations = json_deep_copy(src->annotations);
                if (!dst->annotations)
                        abort();
        }
        dst->urls = kiln_oci_strv_copy(src->urls);
        dst->artifact_type = kiln_oci_strdup0(src->artifact_type);
}

static int descriptor_parse(json_t *obj, const char *what, struct kiln_descriptor *d,
                            struct kiln_err **err)
{
        if (!json_is_object(obj))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: must be an object", what);

        json_t *mt = json_object_get(obj, "mediaType");
        if (!mt)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: missing \"mediaType\"", what);
        if (!json_is_string(mt))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: \"mediaType\" must be a string",
                                    what);
        d->media_type = kiln_xstrdup(json_string_value(mt));

        json_t *dg = json_object_get(obj, "digest");
        if (!dg)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: missing \"digest\"", what);
        if (!json_is_string(dg))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: \"digest\" must be a string",
                                    what);
        if (kiln_digest_validate(json_string_value(dg), err) < 0)
                return kiln_err_prefix(err, "%s", what);
        d->digest = kiln_xstrdup(json_string_value(dg));

        json_t *sz = json_object_get(obj, "size");
        if (!sz)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: missing \"size\"", what);
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: \"size\" must be a non-negative integer", what);
        d->size = (int64_t)json_integer_value(sz);

        if (kiln_oci_get_opt_strv(obj, "urls", &d->urls, err) < 0 ||
            kiln_oci_get_opt_string_map(obj, "annotations", &d->annotations, err) < 0 ||
            kiln_oci_get_opt_string(obj, "artifactType", &d->artifact_type, err) < 0)
                return kiln_err_prefix(err, "%s", what);

        json_t *pl = json_object_get(obj, "platform");
        if (pl && !json_is_null(pl)) {
                if (!json_is_object(pl))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: \"platform\" must be an object", what);
                d->platform = kiln_xcalloc(1, sizeof(*d->platform));
                if (kiln_oci_platform_from_json(pl, d->platform, err) < 0)
                        return kiln_err_prefix(err, "%s.platform", what);
        }
        return 0;
}

int kiln_descriptor_from_json(json_t *obj, const char *what, struct kiln_descriptor *out,
                              struct kiln_err **err)
{
        _cleanup_descriptor_ struct kiln_descriptor d = {0};
        *out = (struct kiln_descriptor){0};
        if (descriptor_parse(obj, what ? what : "descriptor", &d, err) < 0)
                return -1;
        *out = d;
        d = (struct kiln_descriptor){0};
        return 0;
}

/* v is NULL only when a string was not UTF-8, which parsed documents and
 * parsed platforms cannot produce; such a field is left out rather than
 * written as invalid JSON. */
static void set_new(json_t *obj, const char *key, json_t *v)
{
        if (v && json_object_set_new(obj, key, v) < 0)
                abort(); /* only on out-of-memory */
}

json_t *kiln_descriptor_to_json(const struct kiln_descriptor *d)
{
        json_t *o = json_object();
        if (!o)
                abort();
        if (d->media_type)
                set_new(o, "mediaType", json_string(d->media_type));
        if (d->digest)
                set_new(o, "digest", json_string(d->digest));
        set_new(o, "size", json_integer((json_int_t)d->size));
        if (d->artifact_type)
                set_new(o, "artifactType", json_string(d->artifact_type));
        if (d->urls) {
                json_t *a = json_array();
                if (!a)
                        abort();
                for (size_t i = 0; d->urls[i]; i++)
                        json_array_append_new(a, json_string(d->urls[i]));
                set_new(o, "urls", a);
        }
        if (d->annotations)
                set_new(o, "annotations", json_deep_copy(d->annotations));
        if (d->platform) {
                const struct kiln_platform *p = d->platform;
                json_t *po = json_object();
                if (!po)
                        abort();
                if (p->architecture)
                        set_new(po, "architecture", json_string(p->architecture));
                if (p->os)
                        set_new(po, "os", json_string(p->os));
                if (p->os_version)
                        set_new(po, "os.version", json_string(p->os_version));
                if (p->variant)
                        set_new(po, "variant", json_string(p->variant));
                set_new(o, "platform", po);
        }
        return o;
}
