/* Image assembly: config edits, history, layer bookkeeping, and the exact
 * bytes of config and manifest. */
#include "kiln/image.h"
#include "test.h"

#include <string.h>

static struct kiln_store *temp_store(char *dir)
{
        struct kiln_store *s = NULL;
        struct kiln_err *err = NULL;
        if (!mkdtemp(dir) || kiln_store_open(dir, &s, &err) < 0) {
                fprintf(stderr, "store: %s\n", err ? err->msg : "mkdtemp");
                exit(1);
        }
        return s;
}

static json_t *read_json(struct kiln_store *s, const char *digest)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_store_read(s, digest, 1 << 20, &b, &err) == 0, "read %s", digest);
        return json_loadb(b.data, b.len, 0, NULL);
}

static void test_env_and_argv(void)
{
        struct kiln_platform p = {.os = "linux", .architecture = "amd64"};
        struct kiln_image img;
        kiln_image_scratch(&img, &p);
        kiln_image_set_env(&img, "PATH", "/bin");
        kiln_image_set_env(&img, "A", "1");
        kiln_image_set_env(&img, "PATH", "/venv/bin:/bin");
        kiln_image_set_env(&img, "AB", "2"); /* a prefix of no other key */
        char **env = kiln_image_env(&img);
        CHECK(kiln_strv_len(env) == 3, "env has %zu entries", kiln_strv_len(env));
        CHECK_STR(env[0], "PATH=/venv/bin:/bin"); /* replaced in place */
        CHECK_STR(env[1], "A=1");
        CHECK_STR(env[2], "AB=2");
        kiln_strv_free(env);
        CHECK_STR(kiln_image_get_env(&img, "A"), "1");
        CHECK(kiln_image_get_env(&img, "B") == NULL, "unset key");

        char *ep[] = {"/bin/sh", "-c", NULL};
        kiln_image_set_entrypoint(&img, ep);
        json_t *cc = json_object_get(img.config, "config");
        CHECK(json_array_size(json_object_get(cc, "Entrypoint")) == 2, "entrypoint set");
        char *none[] = {NULL};
        kiln_image_set_entrypoint(&img, none);
        CHECK(json_is_null(json_object_get(cc, "Entrypoint")), "[] clears the entrypoint");
        kiln_image_release(&img);
}

static void test_commit(void)
{
        char dir[] = "/tmp/kiln-test-image-XXXXXX";
        struct kiln_store *store = temp_store(dir);
        struct kiln_platform p = {.os = "linux", .architecture = "arm64", .variant = "v8"};
        struct kiln_descriptor d1 = {0}, d2 = {0};
        for (int round = 0; round < 2; round++) {
                struct kiln_image img;
                kiln_image_scratch(&img, &p);
                kiln_image_set_created(&img, 1700000000);
                struct kiln_archive_result l = {
                    .digest =
                        "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                    .diff_id =
                        "sha256:2222222222222222222222222222222222222222222222222222222222222222",
                    .size = 42,
                    .media_type = KILN_MT_DOCKER_LAYER};
                kiln_image_add_layer(&img, &l, "RUN something");
                kiln_image_add_history(&img, "ENV X=1");
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_image_commit(&img, store, round ? &d2 : &d1, &err) == 0, "commit");
                kiln_image_release(&img);
        }
        CHECK_STR(d1.digest, d2.digest); /* same inputs, same bytes */
        CHECK_STR(d1.media_type, KILN_MT_OCI_MANIFEST);
        CHECK(d1.platform && !strcmp(d1.platform->architecture, "arm64"), "platform from config");

        json_t *m = read_json(store, d1.digest);
        json_t *layer = json_array_get(json_object_get(m, "layers"), 0);
        CHECK_STR(json_string_value(json_object_get(layer, "mediaType")), KILN_MT_OCI_LAYER_GZIP);
        CHECK(json_integer_value(json_object_get(layer, "size")) == 42, "layer size");
        const char *cfgd =
            json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
        json_t *cfg = read_json(store, cfgd);
        CHECK_STR(json_string_value(json_object_get(cfg, "created")), "2023-11-14T22:13:20Z");
        CHECK_STR(json_string_value(json_object_get(cfg, "variant")), "v8");
        json_t *hist = json_object_get(cfg, "history");
        CHECK(json_array_size(hist) == 2, "history entries: %zu", json_array_size(hist));
        CHECK(!json_is_true(json_object_get(json_array_get(hist, 0), "empty_layer")),
              "a layer's history entry is not empty");
        CHECK(json_is_true(json_object_get(json_array_get(hist, 1), "empty_layer")),
              "a config-only entry is empty_layer");
        json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        CHECK(json_array_size(ids) == 1, "one diff_id");
        /* The manifest's config size is the stored config's size. */
        _cleanup_buf_ struct kiln_buf raw = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        kiln_store_read(store, cfgd, 1 << 20, &raw, &err);
        CHECK((size_t)json_integer_value(json_object_get(json_object_get(m, "config"), "size")) ==
                  raw.len,
              "config size");
        json_decref(cfg);
        json_decref(m);
        kiln_descriptor_release(&d1);
        kiln_descriptor_release(&d2);
        kiln_store_free(store);
        kiln_rm_rf(dir, NULL);
}

static struct kiln_archive_result layer_of(char c)
{
        struct kiln_archive_result l = {.size = c, .media_type = KILN_MT_OCI_LAYER_GZIP};
        snprintf(l.digest, sizeof(l.digest), "sha256:%064d", c);
        snprintf(l.diff_id, sizeof(l.diff_id), "sha256:%063d%c", 0, c);
        return l;
}

/* Layers written in the background keep their places: settled after what
 * was added behind them, in any order, the image is the one built in
 * order; one that turns out empty becomes an empty_layer entry and moves
 * the layers after it down. */
static void test_reserved_layers(void)
{
        struct kiln_platform p = {.os = "linux", .architecture = "amd64"};
        struct kiln_archive_result a = layer_of('1'), b = layer_of('2'), h = layer_of('3');
        struct kiln_archive_result none = {.empty = true};
        for (int empty_first = 0; empty_first < 2; empty_first++) {
                struct kiln_image img;
                kiln_image_scratch(&img, &p);
                kiln_image_set_created(&img, 0);
                struct kiln_image_slot s1, s2;
                kiln_image_reserve_layer(&img, "RUN one", &s1);
                kiln_image_add_history(&img, "ENV X=1");
                kiln_image_reserve_layer(&img, "RUN two", &s2);
                kiln_image_add_layer(&img, &h, "COPY host");
                kiln_image_settle_layer(&img, &s1, empty_first ? &none : &a);
                if (empty_first)
                        s2.layer--; /* as the build does after an empty one */
                kiln_image_settle_layer(&img, &s2, &b);
                json_t *ids = json_object_get(json_object_get(img.config, "rootfs"), "diff_ids");
                json_t *hist = json_object_get(img.config, "history");
                size_t want = empty_first ? 2 : 3;
                CHECK(img.n_layers == want && json_array_size(ids) == want,
                      "layers %zu, diff_ids %zu", img.n_layers, json_array_size(ids));
                CHECK(json_array_size(hist) == 4, "history entries: %zu", json_array_size(hist));
                const struct kiln_archive_result *order[3] = {&a, &b, &h};
                for (size_t i = 0; i < want; i++) {
                        const struct kiln_archive_result *l = order[i + (size_t)empty_first];
                        CHECK_STR(img.layers[i].digest, l->digest);
                        CHECK_STR(json_string_value(json_array_get(ids, i)), l->diff_id);
                }
                CHECK(json_is_true(json_object_get(json_array_get(hist, 0), "empty_layer")) ==
                          (bool)empty_first,
                      "an empty result is an empty_layer entry, a layer's is not");
                CHECK_STR(json_string_value(json_object_get(json_array_get(hist, 2), "created_by")),
                          "RUN two");
                CHECK(!json_is_true(json_object_get(json_array_get(hist, 3), "empty_layer")),
                      "the host layer's entry");
                kiln_image_release(&img);
        }
}

int main(void)
{
        test_env_and_argv();
        test_commit();
        test_reserved_layers();
        TEST_DONE();
}
