/* Image assembly. The config is kept as the base's JSON document and edited
 * in place, so fields kiln does not know (labels, healthchecks, ...) pass
 * through untouched. */
#include "kiln/image.h"

#include <string.h>
#include <time.h>

static json_t *obj_child(json_t *parent, const char *key)
{
        json_t *o = json_object_get(parent, key);
        if (!json_is_object(o)) {
                o = json_object();
                json_object_set_new(parent, key, o);
        }
        return o;
}

static json_t *container_config(const struct kiln_image *img)
{
        return obj_child(img->config, "config");
}

void kiln_image_release(struct kiln_image *img)
{
        json_decref(img->config);
        for (size_t i = 0; i < img->n_layers; i++)
                kiln_descriptor_release(&img->layers[i]);
        free(img->layers);
        free(img->created);
        memset(img, 0, sizeof(*img));
}

static void ensure_rootfs(struct kiln_image *img)
{
        json_t *rootfs = obj_child(img->config, "rootfs");
        json_object_set_new(rootfs, "type", json_string("layers"));
        if (!json_is_array(json_object_get(rootfs, "diff_ids")))
                json_object_set_new(rootfs, "diff_ids", json_array());
        if (!json_is_array(json_object_get(img->config, "history")))
                json_object_set_new(img->config, "history", json_array());
}

void kiln_image_scratch(struct kiln_image *img, const struct kiln_platform *p)
{
        memset(img, 0, sizeof(*img));
        img->config = json_object();
        json_object_set_new(img->config, "architecture", json_string(p->architecture));
        json_object_set_new(img->config, "os", json_string(p->os));
        if (p->variant)
                json_object_set_new(img->config, "variant", json_string(p->variant));
        json_object_set_new(img->config, "config", json_object());
        ensure_rootfs(img);
        kiln_image_set_created(img, -1);
}

/* The base's config document, checked as kiln relies on it, and its
 * layers. */
static int read_base(struct kiln_image *img, struct kiln_store *store,
                     const struct kiln_descriptor *manifest, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf mbuf = {0};
        _cleanup_buf_ struct kiln_buf cbuf = {0};
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_store_read(store, manifest->digest, KILN_MANIFEST_MAX, &mbuf, err) < 0 ||
            kiln_manifest_parse(mbuf.data, mbuf.len, manifest->media_type, &m, err) < 0)
                return -1;
        if (m.is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "base image %s is an index",
                                    manifest->digest);
        /* The summary parse validates the fields kiln relies on. */
        _cleanup_config_summary_ struct kiln_config_summary sum = {0};
        if (kiln_store_read(store, m.config.digest, KILN_CONFIG_MAX, &cbuf, err) < 0 ||
            kiln_config_summary_parse(cbuf.data, cbuf.len, &sum, err) < 0)
                return -1;
        size_t n_diff = kiln_strv_len(sum.diff_ids);
        if (n_diff != m.n_layers)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "base image config lists %zu diff_ids for %zu layers", n_diff,
                                    m.n_layers);
        json_error_t je;
        img->config = json_loadb(cbuf.data, cbuf.len, 0, &je);
        if (!json_is_object(img->config))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "base image config %s: line %d: %s",
                                    m.config.digest, je.line, je.text);
        img->layers = kiln_xcalloc(m.n_layers ? m.n_layers : 1, sizeof(*img->layers));
        for (size_t i = 0; i < m.n_layers; i++)
                kiln_descriptor_copy(&img->layers[i], &m.layers[i]);
        img->n_layers = m.n_layers;
        ensure_rootfs(img);
        kiln_image_set_created(img, -1);
        return 0;
}

int kiln_image_from_base(struct kiln_image *img, struct kiln_store *store,
                         const struct kiln_descriptor *manifest, struct kiln_err **err)
{
        memset(img, 0, sizeof(*img));
        if (read_base(img, store, manifest, err) < 0) {
                kiln_image_release(img);
                return kiln_err_prefix(err, "base image");
        }
        return 0;
}

void kiln_image_set_created(struct kiln_image *img, int64_t epoch)
{
        time_t t = epoch >= 0 ? (time_t)epoch : time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        char buf[32];
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        free(img->created);
        img->created = kiln_xstrdup(buf);
        json_object_set_new(img->config, "created", json_string(buf));
}

static void add_history(struct kiln_image *img, const char *created_by, bool empty)
{
        json_t *h = json_pack("{s:s, s:s, s:s}", "created", img->created, "created_by", created_by,
                              "comment", "kiln");
        if (empty)
                json_object_set_new(h, "empty_layer", json_true());
        json_array_append_new(json_object_get(img->config, "history"), h);
}

void kiln_image_add_layer(struct kiln_image *img, const struct kiln_archive_result *l,
                          const char *created_by)
{
        img->layers = kiln_xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
        struct kiln_descriptor *d = &img->layers[img->n_layers++];
        memset(d, 0, sizeof(*d));
        d->media_type = kiln_xstrdup(l->media_type);
        d->digest = kiln_xstrdup(l->digest);
        d->size = l->size;
        json_array_append_new(json_object_get(json_object_get(img->config, "rootfs"), "diff_ids"),
                              json_string(l->diff_id));
        add_history(img, created_by, false);
}

void kiln_image_add_history(struct kiln_image *img, const char *created_by)
{
        add_history(img, created_by, true);
}

void kiln_image_reserve_layer(struct kiln_image *img, const char *created_by,
                              struct kiln_image_slot *slot)
{
        img->layers = kiln_xrealloc(img->layers, (img->n_layers + 1) * sizeof(*img->layers));
        memset(&img->layers[img->n_layers], 0, sizeof(*img->layers));
        slot->layer = img->n_layers++;
        json_array_append_new(json_object_get(json_object_get(img->config, "rootfs"), "diff_ids"),
                              json_null());
        json_t *history = json_object_get(img->config, "history");
        slot->history = json_array_size(history);
        add_history(img, created_by, false);
}

void kiln_image_settle_layer(struct kiln_image *img, const struct kiln_image_slot *slot,
                             const struct kiln_archive_result *l)
{
        json_t *diff_ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
        if (l->empty) {
                kiln_descriptor_release(&img->layers[slot->layer]);
                memmove(&img->layers[slot->layer], &img->layers[slot->layer + 1],
                        (img->n_layers - slot->layer - 1) * sizeof(*img->layers));
                img->n_layers--;
                json_array_remove(diff_ids, slot->layer);
                json_object_set_new(
                    json_array_get(json_object_get(img->config, "history"), slot->history),
                    "empty_layer", json_true());
                return;
        }
        struct kiln_descriptor *d = &img->layers[slot->layer];
        d->media_type = kiln_xstrdup(l->media_type);
        d->digest = kiln_xstrdup(l->digest);
        d->size = l->size;
        json_array_set_new(diff_ids, slot->layer, json_string(l->diff_id));
}

static json_t *env_array(const struct kiln_image *img)
{
        json_t *cc = container_config(img);
        json_t *env = json_object_get(cc, "Env");
        if (!json_is_array(env)) {
                env = json_array();
                json_object_set_new(cc, "Env", env);
        }
        return env;
}

static bool env_key_is(const char *entry, const char *key)
{
        size_t n = strlen(key);
        return !strncmp(entry, key, n) && entry[n] == '=';
}

void kiln_image_set_env(struct kiln_image *img, const char *key, const char *value)
{
        json_t *env = env_array(img);
        _cleanup_free_ char *kv = kiln_xasprintf("%s=%s", key, value);
        size_t i;
        json_t *e;
        json_array_foreach(env, i, e)
        {
                const char *s = json_string_value(e);
                if (s && env_key_is(s, key)) {
                        json_array_set_new(env, i, json_string(kv));
                        return;
                }
        }
        json_array_append_new(env, json_string(kv));
}

const char *kiln_image_get_env(const struct kiln_image *img, const char *key)
{
        json_t *env = json_object_get(json_object_get(img->config, "config"), "Env");
        size_t i;
        json_t *e;
        json_array_foreach(env, i, e)
        {
                const char *s = json_string_value(e);
                if (s && env_key_is(s, key))
                        return s + strlen(key) + 1;
        }
        return NULL;
}

char **kiln_image_env(const struct kiln_image *img)
{
        json_t *env = json_object_get(json_object_get(img->config, "config"), "Env");
        size_t n = json_array_size(env), k = 0;
        char **v = kiln_xcalloc(n + 1, sizeof(char *));
        size_t i;
        json_t *e;
        json_array_foreach(env, i, e)
        {
                if (json_string_value(e))
                        v[k++] = kiln_xstrdup(json_string_value(e));
        }
        return v;
}

static void set_argv(struct kiln_image *img, const char *field, char *const *argv)
{
        json_t *cc = container_config(img);
        if (!argv[0]) {
                /* Docker writes an explicit empty entrypoint as null. */
                json_object_set_new(cc, field, json_null());
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; argv[i]; i++)
                json_array_append_new(a, json_string(argv[i]));
        json_object_set_new(cc, field, a);
}

void kiln_image_set_entrypoint(struct kiln_image *img, char *const *argv)
{
        set_argv(img, "Entrypoint", argv);
}

void kiln_image_set_cmd(struct kiln_image *img, char *const *argv)
{
        set_argv(img, "Cmd", argv);
}

/* Docker's SHELL, which BuildKit's image config carries too. */
void kiln_image_set_shell(struct kiln_image *img, char *const *argv)
{
        set_argv(img, "Shell", argv);
}

void kiln_image_set_string(struct kiln_image *img, const char *field, const char *value)
{
        json_object_set_new(container_config(img), field, json_string(value));
}

const char *kiln_image_config_string(const struct kiln_image *img, const char *field)
{
        return json_string_value(json_object_get(json_object_get(img->config, "config"), field));
}

void kiln_image_set_label(struct kiln_image *img, const char *key, const char *value)
{
        json_object_set_new(obj_child(container_config(img), "Labels"), key, json_string(value));
}

/* The OCI name of a layer type: same bytes, OCI media type, since an OCI
 * manifest must not carry Docker types. */
static const char *oci_layer_type(const char *mt)
{
        if (!strcmp(mt, KILN_MT_DOCKER_LAYER))
                return KILN_MT_OCI_LAYER_GZIP;
        if (!strcmp(mt, KILN_MT_DOCKER_FOREIGN))
                return KILN_MT_OCI_LAYER_ND_GZIP;
        return mt;
}

int kiln_image_commit(struct kiln_image *img, struct kiln_store *store, struct kiln_descriptor *out,
                      struct kiln_err **err)
{
        size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
        _cleanup_free_ char *cfg = json_dumps(img->config, flags);
        if (!cfg)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "serialise image config");
        char cfg_digest[KILN_DIGEST_MAX];
        if (kiln_store_put(store, cfg, strlen(cfg), cfg_digest, err) < 0)
                return -1;
        json_t *layers = json_array();
        for (size_t i = 0; i < img->n_layers; i++) {
                const struct kiln_descriptor *l = &img->layers[i];
                json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", oci_layer_type(l->media_type),
                                      "digest", l->digest, "size", (json_int_t)l->size);
                if (l->urls) {
                        json_t *u = json_array();
                        for (size_t k = 0; l->urls[k]; k++)
                                json_array_append_new(u, json_string(l->urls[k]));
                        json_object_set_new(d, "urls", u);
                }
                if (l->annotations)
                        json_object_set(d, "annotations", l->annotations);
                json_array_append_new(layers, d);
        }
        json_t *m =
            json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                      KILN_MT_OCI_MANIFEST, "config", "mediaType", KILN_MT_OCI_CONFIG, "digest",
                      cfg_digest, "size", (json_int_t)strlen(cfg), "layers", layers);
        _cleanup_free_ char *mtext = json_dumps(m, flags);
        json_decref(m);
        if (!mtext)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "serialise manifest");
        char digest[KILN_DIGEST_MAX];
        if (kiln_store_put(store, mtext, strlen(mtext), digest, err) < 0)
                return -1;
        memset(out, 0, sizeof(*out));
        out->media_type = kiln_xstrdup(KILN_MT_OCI_MANIFEST);
        out->digest = kiln_xstrdup(digest);
        out->size = (int64_t)strlen(mtext);
        const char *os = json_string_value(json_object_get(img->config, "os"));
        const char *arch = json_string_value(json_object_get(img->config, "architecture"));
        if (os && arch) {
                out->platform = kiln_xcalloc(1, sizeof(*out->platform));
                out->platform->os = kiln_xstrdup(os);
                out->platform->architecture = kiln_xstrdup(arch);
                const char *v = json_string_value(json_object_get(img->config, "variant"));
                out->platform->variant = v ? kiln_xstrdup(v) : NULL;
        }
        return 0;
}
