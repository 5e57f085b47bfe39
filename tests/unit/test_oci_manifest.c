/* oci module: manifests, indexes, index_select and config summaries, mostly
 * against hand-written real-world documents in testdata/oci. */
#include "kiln/oci.h"
#include "test.h"

#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Digests in the fixtures are sha256 of short names (see the fixture files). */
#define D_BUSYBOX_AMD64 "sha256:a5f94d889c9f5036e29458b4d41a7fe27b5ded9666b8edadd1aa08a9b2806824"
#define D_BUSYBOX_ARMV6 "sha256:be9e154e2a4451f523afaaa4c8de7a742b08f525776377427bc431370c655e6a"
#define D_BUSYBOX_ARMV7 "sha256:7cee3fd44bbf1222af8681e78820cb83b7709c54298a837ea9de9b628a5b01af"
#define D_BUSYBOX_ARM64 "sha256:e4e84e8d3744cd32c8f062a0829b3623934ea10fd63ba7948adc2213a973b2cd"
#define D_BUSYBOX_386   "sha256:b73de3b8faa1b6dc2430a14bb70fe477d2ad60d1fb315bd75e6ce54b049eb196"
#define D_BUSYBOX_PPC   "sha256:5427b0cfe1d84351517ddc7e979fb8da50ec604353b8dee8a8240cb8e4755b0e"
#define D_ATT           "sha256:f745a15153c4dacf0ea4bbf57265e73283941f8335939b33c693975315cf5916"
#define D_ALPINE_AMD64  "sha256:a698229582d023853cb5b2849d0c9318256fcca5a6f7ed009c8e7a831b244b6c"
#define D_ALPINE_ATT    "sha256:6dd7476b378fb32da54c3ee59beaef509d4882d944e7cd043125ece0e20f29ff"
#define D_ALPINE_ARM64  "sha256:421738bb2ea4631fe98a1dec39ed3f98fe2e159bbb3ac3b5faf3e3446673a3ca"
#define D_ALPINE_WIN    "sha256:dfc8be52e413e54f5c5236e10ebf535d240b34ac0bdb25f659bf5ac1b40f7cdb"
#define D_NOPLAT        "sha256:cf930f501093f1dc8d06916d8ac8ea4ac9d8abfdf61ffb56e15c76a4514c3d11"
#define D_CFG           "sha256:e67d23e7820c49a8051dac2831f38290f5e72f66c8db5079eeb60d82f14894c0"
#define D_L0            "sha256:48dbc45a6738318c9e35db13781199f18495e5a61272ff94b60b30b8079da5c1"
#define D_L1            "sha256:2804bad6fe94a55f18b2b37e300919a5fd517b95aa81e95db574c0ba069a3740"
#define D_L2            "sha256:8a1cee436cbac1489a1883c9d886fcfc46f302c55ed4106ae31729e4f4eb9041"
#define D_BASE          "sha256:cae662172fd450bb0cd710a769079c05bfc5d8e35efa6576edc7d0377afdd4a2"
#define D_DCFG          "sha256:25d7348770f85599630634c25c9d0f82c542d477aba54799e167862b075edcaf"
#define D_DL0           "sha256:1bb571356e0d8d7e7c30049526c0995751bd48022b90f1a0ae9a964efb0b5db7"
#define D_DL1           "sha256:df848841189621489a879baba2ec327faf38d9bbf44c674988660958bb0a69f3"
#define D_DIFF0         "sha256:d45fe94714c2649d9d1bfbce7cc2a04c14cc51a207c716e6e8949a8cc58032e1"
#define D_DIFF1         "sha256:0697c0f434f8672811eb1b52d443d0d4cb616fa58e4d10b25e91471b7f45a665"

static void load(const char *name, struct kiln_buf *b)
{
        const char *dir = getenv("KILN_TESTDATA");
        _cleanup_free_ char *path = kiln_xasprintf("%s/oci/%s", dir ? dir : "testdata", name);
        _cleanup_err_ struct kiln_err *err = NULL;
        int rc = kiln_read_file(path, KILN_CONFIG_MAX, b, &err);
        CHECK(rc == 0, "read fixture %s: %s", path, err ? err->msg : "");
}

static int parse_fixture(const char *name, const char *declared, struct kiln_manifest *m,
                         struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        load(name, &b);
        return kiln_manifest_parse(b.data, b.len, declared, m, err);
}

static void check_desc(const struct kiln_descriptor *d, const char *mt, const char *digest,
                       int64_t size, const char *platform)
{
        CHECK_STR(d->media_type, mt);
        CHECK_STR(d->digest, digest);
        CHECK(d->size == size, "%s size %lld, want %lld", digest, (long long)d->size,
              (long long)size);
        if (!platform) {
                CHECK(!d->platform, "%s has no platform", digest);
                return;
        }
        CHECK(d->platform, "%s has a platform", digest);
        if (d->platform) {
                _cleanup_free_ char *s = kiln_platform_string(d->platform);
                CHECK_STR(s, platform);
        }
}

static void test_docker_list(void)
{
        struct kiln_manifest m = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(parse_fixture("docker-manifest-list.json", KILN_MT_DOCKER_LIST, &m, &err) == 0,
              "parse: %s", err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_DOCKER_LIST);
        CHECK(m.is_index && m.schema_version == 2, "index, schema 2");
        CHECK(m.n_manifests == 7 && m.n_layers == 0 && !m.layers, "%zu entries", m.n_manifests);
        CHECK(!m.annotations, "no annotations");
        if (m.n_manifests == 7) {
                const char *dm = KILN_MT_DOCKER_MANIFEST;
                check_desc(&m.manifests[0], dm, D_BUSYBOX_AMD64, 529, "linux/amd64");
                check_desc(&m.manifests[1], dm, D_BUSYBOX_ARMV6, 529, "linux/arm/v6");
                check_desc(&m.manifests[2], dm, D_BUSYBOX_ARMV7, 529, "linux/arm/v7");
                check_desc(&m.manifests[3], dm, D_BUSYBOX_ARM64, 529, "linux/arm64/v8");
                check_desc(&m.manifests[4], dm, D_BUSYBOX_386, 528, "linux/386");
                check_desc(&m.manifests[5], dm, D_BUSYBOX_PPC, 528, "linux/ppc64le");
                check_desc(&m.manifests[6], dm, D_ATT, 840, "unknown/unknown");
                CHECK_STR(json_string_value(json_object_get(m.manifests[6].annotations,
                                                            "vnd.docker.reference.type")),
                          "attestation-manifest");
                CHECK(!m.manifests[0].annotations && !m.manifests[0].urls, "entry 0 bare");
        }

        static const struct {
                const char *want;
                const char *digest; /* NULL: not found */
        } rows[] = {
            {"linux/amd64", D_BUSYBOX_AMD64},
            {"linux/x86_64", D_BUSYBOX_AMD64},
            {"linux/arm64", D_BUSYBOX_ARM64},
            {"linux/arm64/v8", D_BUSYBOX_ARM64},
            {"linux/aarch64", D_BUSYBOX_ARM64},
            {"linux/arm", D_BUSYBOX_ARMV7},
            {"linux/arm/v7", D_BUSYBOX_ARMV7},
            {"linux/armhf", D_BUSYBOX_ARMV7},
            {"linux/arm/v6", D_BUSYBOX_ARMV6},
            {"linux/armel", D_BUSYBOX_ARMV6},
            {"linux/386", D_BUSYBOX_386},
            {"linux/i686", D_BUSYBOX_386},
            {"linux/ppc64le", D_BUSYBOX_PPC},
            {"linux/arm/v5", NULL},
            {"linux/arm64/v9", NULL},
            {"linux/s390x", NULL},
            {"windows/amd64", NULL},
            {"unknown/unknown", NULL},
        };
        for (size_t i = 0; i < N(rows); i++) {
                struct kiln_platform want = {0};
                _cleanup_err_ struct kiln_err *e = NULL;
                CHECK(kiln_platform_parse(rows[i].want, &want, &e) == 0, "parse %s", rows[i].want);
                const struct kiln_descriptor *d = (void *)1;
                int rc = kiln_index_select(&m, &want, &d, &e);
                if (rows[i].digest) {
                        CHECK(rc == 0 && d, "select %s: %s", rows[i].want, e ? e->msg : "");
                        CHECK_STR(d ? d->digest : NULL, rows[i].digest);
                } else {
                        CHECK(rc < 0 && !d, "select %s should miss", rows[i].want);
                        CHECK(e && e->domain == KILN_ERR_NOT_FOUND, "not-found domain");
                        _cleanup_free_ char *ws = kiln_platform_string(&want);
                        _cleanup_free_ char *msg =
                            kiln_xasprintf("no image for %s in the index (available: linux/amd64, "
                                           "linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/386, "
                                           "linux/ppc64le)",
                                           ws);
                        CHECK_STR(e ? e->msg : NULL, msg);
                }
                kiln_platform_release(&want);
        }
        kiln_manifest_release(&m);
        CHECK(!m.manifests && !m.media_type && m.n_manifests == 0, "release zeroes");
        kiln_manifest_release(&m);
}

static void test_oci_index(void)
{
        struct kiln_manifest m = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(parse_fixture("oci-index.json", NULL, &m, &err) == 0, "parse: %s",
              err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_OCI_INDEX);
        CHECK(m.is_index && m.n_manifests == 6, "entries %zu", m.n_manifests);
        CHECK_STR(json_string_value(json_object_get(m.annotations, "org.opencontainers.image.url")),
                  "https://example.org/alpine");
        CHECK(json_object_size(m.annotations) == 2, "2 annotations");
        if (m.n_manifests == 6) {
                const char *om = KILN_MT_OCI_MANIFEST;
                check_desc(&m.manifests[0], om, D_ALPINE_AMD64, 1022, "linux/amd64");
                CHECK_STR(json_string_value(json_object_get(m.manifests[0].annotations,
                                                            "org.opencontainers.image.revision")),
                          "abc123");
                check_desc(&m.manifests[1], om, D_ALPINE_ATT, 566, "unknown/unknown");
                check_desc(&m.manifests[2], om, D_ALPINE_ARM64, 1022, "linux/arm64/v8");
                check_desc(&m.manifests[4], om, D_ALPINE_WIN, 1100, "windows/amd64");
                CHECK_STR(m.manifests[4].platform ? m.manifests[4].platform->os_version : NULL,
                          "10.0.20348.2227");
                check_desc(&m.manifests[5], om, D_NOPLAT, 400, NULL);
        }
        static const struct {
                const char *want;
                const char *digest;
        } rows[] = {
            {"linux/amd64", D_ALPINE_AMD64},
            {"linux/arm64", D_ALPINE_ARM64},
            {"linux/arm64/v8", D_ALPINE_ARM64},
            {"windows/amd64", D_ALPINE_WIN},
            {"linux/arm", NULL},
            {"linux/s390x", NULL},
        };
        for (size_t i = 0; i < N(rows); i++) {
                struct kiln_platform want = {0};
                _cleanup_err_ struct kiln_err *e = NULL;
                kiln_platform_parse(rows[i].want, &want, &e);
                const struct kiln_descriptor *d = NULL;
                int rc = kiln_index_select(&m, &want, &d, &e);
                if (rows[i].digest) {
                        CHECK(rc == 0, "select %s: %s", rows[i].want, e ? e->msg : "");
                        CHECK_STR(d ? d->digest : NULL, rows[i].digest);
                } else {
                        _cleanup_free_ char *msg =
                            kiln_xasprintf("no image for %s in the index (available: linux/amd64, "
                                           "linux/arm64/v8, windows/amd64)",
                                           rows[i].want);
                        CHECK(rc < 0, "select %s should miss", rows[i].want);
                        CHECK_STR(e ? e->msg : NULL, msg);
                }
                kiln_platform_release(&want);
        }
        kiln_manifest_release(&m);
}

/* Small inline indexes for selection order and the error text. */
static void test_index_select_inline(void)
{
#define ENTRY(dg, plat)                                                                            \
        "{\"mediaType\":\"" KILN_MT_OCI_MANIFEST "\",\"size\":1,\"digest\":\"sha256:" dg "\"" plat \
        "}"
#define H1                  "1111111111111111111111111111111111111111111111111111111111111111"
#define H2                  "2222222222222222222222222222222222222222222222222222222222222222"
#define H3                  "3333333333333333333333333333333333333333333333333333333333333333"
#define PLAT(os, arch, var) ",\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"" var "}"
#define VAR(v)              ",\"variant\":\"" v "\""
        static const struct {
                const char *entries;
                const char *want;
                const char *digest_hex; /* NULL: error */
                const char *err;
        } rows[] = {
            {ENTRY(H1, PLAT("linux", "amd64", "")) "," ENTRY(
                 H2, PLAT("linux", "arm64", VAR("v8"))) "," ENTRY(H3,
                                                                  PLAT("unknown", "unknown", "")),
             "linux/s390x", NULL,
             "no image for linux/s390x in the index (available: linux/amd64, linux/arm64/v8)"},
            /* first match wins */
            {ENTRY(H1, PLAT("linux", "amd64", "")) "," ENTRY(H2, PLAT("linux", "amd64", "")),
             "linux/amd64", H1, NULL},
            /* entries without a platform are skipped */
            {ENTRY(H1, "") "," ENTRY(H2, PLAT("linux", "amd64", "")), "linux/amd64", H2, NULL},
            /* arm64 prefers v8 but takes another variant */
            {ENTRY(H1, PLAT("linux", "arm64", VAR("v9"))) "," ENTRY(
                 H2, PLAT("linux", "arm64", VAR("v8"))),
             "linux/arm64", H2, NULL},
            {ENTRY(H1, PLAT("linux", "arm64", VAR("v9"))), "linux/arm64", H1, NULL},
            {ENTRY(H1, PLAT("linux", "arm64", VAR("v9"))), "linux/arm64/v8", NULL,
             "no image for linux/arm64/v8 in the index (available: linux/arm64/v9)"},
            {ENTRY(H1, PLAT("linux", "arm64", "")), "linux/arm64/v8", H1, NULL},
            {ENTRY(H1, PLAT("linux", "aarch64", "")), "linux/arm64", H1, NULL},
            /* arm: v6 entry does not serve a v7 want */
            {ENTRY(H1, PLAT("linux", "arm", VAR("v6"))) "," ENTRY(H2, PLAT("linux", "arm", "")),
             "linux/arm/v7", H2, NULL},
            {ENTRY(H1, PLAT("linux", "arm", VAR("v6"))), "linux/arm", NULL,
             "no image for linux/arm in the index (available: linux/arm/v6)"},
            /* amd64 prefers the plain entry over a v3 listed first */
            {ENTRY(H1, PLAT("linux", "amd64", VAR("v3"))) "," ENTRY(H2, PLAT("linux", "amd64", "")),
             "linux/amd64", H2, NULL},
            /* duplicates are listed once; only attestations: none */
            {ENTRY(H1, PLAT("linux", "amd64", "")) "," ENTRY(H2, PLAT("linux", "amd64", "")),
             "linux/arm64", NULL, "no image for linux/arm64 in the index (available: linux/amd64)"},
            {ENTRY(H3, PLAT("unknown", "unknown", "")), "linux/amd64", NULL,
             "no image for linux/amd64 in the index (available: none)"},
            {"", "linux/amd64", NULL, "no image for linux/amd64 in the index (available: none)"},
        };
        for (size_t i = 0; i < N(rows); i++) {
                _cleanup_free_ char *doc =
                    kiln_xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[%s]}",
                                   KILN_MT_OCI_INDEX, rows[i].entries);
                struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_manifest_parse(doc, strlen(doc), NULL, &m, &err) == 0,
                      "row %zu parse: %s", i, err ? err->msg : "");
                struct kiln_platform want = {0};
                kiln_platform_parse(rows[i].want, &want, &err);
                const struct kiln_descriptor *d = NULL;
                int rc = kiln_index_select(&m, &want, &d, &err);
                if (rows[i].digest_hex) {
                        CHECK(rc == 0 && d, "row %zu: %s", i, err ? err->msg : "");
                        CHECK_STR(d ? kiln_digest_hex(d->digest) : NULL, rows[i].digest_hex);
                } else {
                        CHECK(rc < 0 && err && err->domain == KILN_ERR_NOT_FOUND, "row %zu", i);
                        CHECK_STR(err ? err->msg : NULL, rows[i].err);
                }
                kiln_platform_release(&want);
                kiln_manifest_release(&m);
        }

        /* Selecting from an image manifest is a caller bug. */
        struct kiln_manifest m = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(parse_fixture("oci-manifest.json", NULL, &m, &err) == 0, "parse");
        struct kiln_platform want = {0};
        kiln_platform_parse("linux/amd64", &want, &err);
        const struct kiln_descriptor *d = NULL;
        CHECK(kiln_index_select(&m, &want, &d, &err) < 0 && err && err->domain == KILN_ERR_INTERNAL,
              "select on a manifest fails");
        kiln_platform_release(&want);
        kiln_manifest_release(&m);
}

static void test_image_manifests(void)
{
        struct kiln_manifest m = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(parse_fixture("oci-manifest.json", KILN_MT_OCI_MANIFEST "; charset=utf-8", &m,
                            &err) == 0,
              "parse: %s", err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_OCI_MANIFEST);
        CHECK(!m.is_index && m.schema_version == 2 && m.n_manifests == 0, "image manifest");
        check_desc(&m.config, KILN_MT_OCI_CONFIG, D_CFG, 1471, NULL);
        CHECK(m.n_layers == 3, "layers %zu", m.n_layers);
        if (m.n_layers == 3) {
                check_desc(&m.layers[0], KILN_MT_OCI_LAYER_GZIP, D_L0, 3408729, NULL);
                check_desc(&m.layers[1], KILN_MT_OCI_LAYER_ZSTD, D_L1, 0, NULL);
                check_desc(&m.layers[2], KILN_MT_OCI_LAYER_ND_GZIP, D_L2, 1024, NULL);
                CHECK_STR(json_string_value(json_object_get(m.layers[1].annotations,
                                                            "org.opencontainers.image.title")),
                          "app.tar.zst");
                CHECK(kiln_strv_len(m.layers[2].urls) == 2, "urls");
                CHECK_STR(m.layers[2].urls ? m.layers[2].urls[0] : NULL,
                          "https://mirror.example.com/l2.tar.gz");
                CHECK(!m.layers[0].urls && !m.layers[0].annotations, "layer 0 bare");
                CHECK(kiln_mt_layer_compression(m.layers[1].media_type) == KILN_COMP_ZSTD, "zstd");
        }
        CHECK(json_object_size(m.annotations) == 2, "annotations");
        CHECK_STR(json_string_value(
                      json_object_get(m.annotations, "org.opencontainers.image.base.digest")),
                  D_BASE);
        kiln_manifest_release(&m);

        CHECK(parse_fixture("docker-manifest.json", KILN_MT_DOCKER_MANIFEST, &m, &err) == 0,
              "parse docker: %s", err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_DOCKER_MANIFEST);
        CHECK(!m.is_index && m.n_layers == 2 && !m.annotations, "docker manifest");
        check_desc(&m.config, KILN_MT_DOCKER_CONFIG, D_DCFG, 1457, NULL);
        if (m.n_layers == 2) {
                check_desc(&m.layers[0], KILN_MT_DOCKER_LAYER, D_DL0, 2814446, NULL);
                check_desc(&m.layers[1], KILN_MT_DOCKER_FOREIGN, D_DL1, 1501, NULL);
                CHECK_STR(m.layers[1].urls ? m.layers[1].urls[0] : NULL,
                          "https://go.microsoft.com/fwlink/?linkid=837858");
                CHECK(kiln_mt_layer_compression(m.layers[0].media_type) == KILN_COMP_GZIP, "gzip");
        }
        kiln_manifest_release(&m);

        /* No mediaType in the document: declared, else inferred. */
        CHECK(parse_fixture("oci-manifest-nomt.json", NULL, &m, &err) == 0, "nomt: %s",
              err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_OCI_MANIFEST);
        CHECK(!m.is_index && m.n_layers == 0 && m.layers, "empty layers, non-NULL array");
        check_desc(&m.config, KILN_MT_OCI_CONFIG, D_CFG, 1471, NULL);
        kiln_manifest_release(&m);
        CHECK(parse_fixture("oci-manifest-nomt.json", KILN_MT_DOCKER_MANIFEST, &m, &err) == 0,
              "nomt declared: %s", err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_DOCKER_MANIFEST);
        kiln_manifest_release(&m);
        CHECK(parse_fixture("oci-index-nomt.json", NULL, &m, &err) == 0, "index nomt: %s",
              err ? err->msg : "");
        CHECK_STR(m.media_type, KILN_MT_OCI_INDEX);
        CHECK(m.is_index && m.n_manifests == 1, "inferred index");
        kiln_manifest_release(&m);
}

static void test_manifest_errors(void)
{
        static const struct {
                const char *file;
                const char *declared;
                const char *err;
        } rows[] = {
            {"schema1.json", NULL, "Docker schema 1 manifests are not supported"},
            {"schema1.json", KILN_MT_DOCKER_V1_SIGNED,
             "Docker schema 1 manifests are not supported"},
            {"oci-manifest.json", KILN_MT_DOCKER_V1_SIGNED,
             "Docker schema 1 manifests are not supported"},
            {"bad-digest.json", NULL,
             "layers[1]: invalid digest \"sha256:ABCDEF\": want 64 lowercase hex digits"},
            {"negative-size.json", NULL, "layers[2]: \"size\" must be a non-negative integer"},
            {"float-size.json", NULL, "layers[0]: \"size\" must be a non-negative integer"},
            {"missing-config.json", NULL, "missing \"config\""},
            {"missing-digest.json", NULL, "layers[2]: missing \"digest\""},
            {"bad-platform.json", NULL, "manifests[0].platform: \"architecture\" must be a string"},
            {"manifests-and-layers.json", NULL,
             "has both \"manifests\" and \"layers\": ambiguous document"},
            {"mediatype-mismatch.json", NULL, "missing \"manifests\""},
            {"oci-manifest.json", KILN_MT_DOCKER_MANIFEST,
             "media type mismatch: the document says \"" KILN_MT_OCI_MANIFEST
             "\" but it was served as \"" KILN_MT_DOCKER_MANIFEST "\""},
            {"docker-manifest-list.json", KILN_MT_OCI_INDEX,
             "media type mismatch: the document says \"" KILN_MT_DOCKER_LIST
             "\" but it was served as \"" KILN_MT_OCI_INDEX "\""},
            {"oci-manifest-nomt.json", KILN_MT_OCI_INDEX, "missing \"manifests\""},
            {"oci-index-nomt.json", KILN_MT_OCI_MANIFEST, "missing \"config\""},
            {"oci-manifest-nomt.json", "application/octet-stream",
             "unsupported media type \"application/octet-stream\" (kiln understands "
             "application/vnd.oci.image.manifest.v1+json, "
             "application/vnd.oci.image.index.v1+json, "
             "application/vnd.docker.distribution.manifest.v2+json, "
             "application/vnd.docker.distribution.manifest.list.v2+json)"},
            {"schema3.json", NULL, "unsupported \"schemaVersion\" 3 (want 2)"},
            {"unknown-mt.json", NULL,
             "unsupported media type \"application/vnd.example.thing+json\" (kiln understands "
             "application/vnd.oci.image.manifest.v1+json, "
             "application/vnd.oci.image.index.v1+json, "
             "application/vnd.docker.distribution.manifest.v2+json, "
             "application/vnd.docker.distribution.manifest.list.v2+json)"},
            {"dup-key.json", NULL,
             "invalid JSON at line 1 column 91: duplicate object key near '\"mediaType\"'"},
            {"not-object.json", NULL, "not a JSON object"},
            {"config-oci.json", NULL, "missing \"schemaVersion\""},
        };
        for (size_t i = 0; i < N(rows); i++) {
                struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = parse_fixture(rows[i].file, rows[i].declared, &m, &err);
                CHECK(rc < 0, "%s should fail", rows[i].file);
                CHECK(err && err->domain == KILN_ERR_FORMAT, "%s: format error", rows[i].file);
                CHECK_STR(err ? err->msg : NULL, rows[i].err);
                CHECK(!m.media_type && !m.layers && !m.manifests && !m.config.digest,
                      "%s: out zeroed", rows[i].file);
        }

        /* Inline edge cases. */
        static const struct {
                const char *doc;
                const char *prefix;
        } inl[] = {
            {"", "empty manifest"},
            {"{", "invalid JSON at line 1"},
            {"{\"schemaVersion\":\"2\",\"manifests\":[]}", "\"schemaVersion\" must be an integer"},
            {"{\"schemaVersion\":2}", "no \"mediaType\" and neither"},
            {"{\"schemaVersion\":2,\"mediaType\":5,\"manifests\":[]}",
             "\"mediaType\" must be a string"},
            {"{\"schemaVersion\":2,\"manifests\":{}}", "\"manifests\" must be an array"},
            {"{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", "config: missing \"mediaType\""},
            {"{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":[]}}",
             "\"annotations\": value of \"a\" must be a string"},
            {"{\"schemaVersion\":2,\"manifests\":[],\"config\":{}}",
             "has both \"manifests\" and \"config\""},
        };
        for (size_t i = 0; i < N(inl); i++) {
                struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_manifest_parse(inl[i].doc, strlen(inl[i].doc), NULL, &m, &err) < 0,
                      "inline %zu should fail", i);
                CHECK(err && kiln_str_has_prefix(err->msg, inl[i].prefix), "inline %zu: %s", i,
                      err ? err->msg : "(none)");
        }

        /* Size bound, checked before parsing. */
        {
                size_t big = KILN_MANIFEST_MAX + 1;
                char *data = kiln_xmalloc(big);
                memset(data, ' ', big);
                memcpy(data, "{\"schemaVersion\":2,\"manifests\":[]}",
                       strlen("{\"schemaVersion\":2,\"manifests\":[]}"));
                struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_manifest_parse(data, big, NULL, &m, &err) < 0, "oversized refused");
                CHECK(err && strstr(err->msg, "limit"), "names the limit: %s", err ? err->msg : "");
                kiln_err_clear(&err);
                CHECK(kiln_manifest_parse(data, KILN_MANIFEST_MAX, NULL, &m, &err) == 0,
                      "at the limit: %s", err ? err->msg : "");
                kiln_manifest_release(&m);
                free(data);
        }
        /* Not NUL-terminated: only len bytes are read. */
        {
                const char doc[] = "{\"schemaVersion\":2,\"manifests\":[]}garbage";
                struct kiln_manifest m = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_manifest_parse(doc, strlen(doc) - 7, NULL, &m, &err) == 0,
                      "len honoured: %s", err ? err->msg : "");
                kiln_manifest_release(&m);
        }
}

static void check_strv(char **got, const char *const *want, const char *what)
{
        if (!want) {
                CHECK(got == NULL, "%s: want unset (NULL)", what);
                return;
        }
        CHECK(got != NULL, "%s: want set", what);
        if (!got)
                return;
        size_t n = 0;
        while (want[n])
                n++;
        CHECK(kiln_strv_len(got) == n, "%s: %zu entries, want %zu", what, kiln_strv_len(got), n);
        for (size_t i = 0; i < n && i < kiln_strv_len(got); i++)
                CHECK_STR(got[i], want[i]);
}

static void test_config(void)
{
        static const char *const empty[] = {NULL};
        static const char *const sh[] = {"/bin/sh", NULL};
        static const char *const tini[] = {"/usr/bin/tini", "--", NULL};
        static const char *const sh_c[] = {"-c", "echo hi", NULL};
        static const char *const path_env[] = {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        static const char *const oci_env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "EMPTY=", NULL};
        static const char *const one_diff[] = {D_DIFF0, NULL};
        static const char *const two_diffs[] = {D_DIFF0, D_DIFF1, NULL};
        static const struct {
                const char *file;
                const char *platform, *created, *author, *user, *workdir;
                const char *const *env, *const *entrypoint, *const *cmd, *const *diff_ids;
                size_t n_labels;
        } rows[] = {
            {"config-docker.json", "linux/amd64", "2024-01-27T00:30:48.743965523Z", NULL, "", "",
             path_env, NULL, sh, one_diff, 0},
            {"config-oci.json", "linux/arm64/v8", "2024-02-01T10:00:00Z",
             "kiln engineers <kiln@localhost>", "app:app", "/srv/app", oci_env, tini, empty,
             two_diffs, 2},
            {"config-empty-entrypoint.json", "linux/arm64/v8", "2024-02-01T10:00:00Z",
             "kiln engineers <kiln@localhost>", "app:app", "/srv/app", oci_env, empty, NULL,
             two_diffs, 2},
            {"config-sh.json", "linux/arm64/v8", "2024-02-01T10:00:00Z",
             "kiln engineers <kiln@localhost>", "app:app", "/srv/app", oci_env, sh, sh_c, two_diffs,
             2},
            {"config-scratch.json", "linux/amd64", NULL, NULL, NULL, NULL, NULL, NULL, NULL, empty,
             0},
        };
        for (size_t i = 0; i < N(rows); i++) {
                _cleanup_buf_ struct kiln_buf b = {0};
                load(rows[i].file, &b);
                struct kiln_config_summary c = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_config_summary_parse(b.data, b.len, &c, &err) == 0, "%s: %s",
                      rows[i].file, err ? err->msg : "");
                _cleanup_free_ char *ps = kiln_platform_string(&c.platform);
                CHECK_STR(ps, rows[i].platform);
                CHECK_STR(c.created, rows[i].created);
                CHECK_STR(c.author, rows[i].author);
                CHECK_STR(c.user, rows[i].user);
                CHECK_STR(c.working_dir, rows[i].workdir);
                check_strv(c.env, rows[i].env, "Env");
                check_strv(c.entrypoint, rows[i].entrypoint, "Entrypoint");
                check_strv(c.cmd, rows[i].cmd, "Cmd");
                check_strv(c.diff_ids, rows[i].diff_ids, "diff_ids");
                CHECK(json_object_size(c.labels) == rows[i].n_labels, "%s labels", rows[i].file);
                CHECK(rows[i].n_labels || !c.labels, "%s: null Labels gives NULL", rows[i].file);
                if (rows[i].n_labels)
                        CHECK_STR(json_string_value(json_object_get(c.labels, "maintainer")),
                                  "ops");
                kiln_config_summary_release(&c);
                CHECK(!c.env && !c.diff_ids && !c.platform.os && !c.labels, "release zeroes");
                kiln_config_summary_release(&c);
        }

        static const struct {
                const char *file;
                const char *err;
        } bad[] = {
            {"config-bad-diffid.json", "image config: rootfs.diff_ids[1]: invalid digest "
                                       "\"sha256:1234\": want 64 lowercase hex digits"},
            {"config-bad-rootfs-type.json", "image config: rootfs: \"type\" must be \"layers\""},
            {"config-string-entrypoint.json",
             "image config: config: \"Entrypoint\" must be an array of strings"},
            {"config-bad-env.json", "image config: config: \"Env\"[1] must be a string"},
            {"config-no-arch.json", "image config: missing \"architecture\""},
            {"config-bad-labels.json",
             "image config: config: \"Labels\": value of \"a\" must be a string"},
            {"oci-manifest.json", "image config: missing \"architecture\""},
            {"truncated.json", NULL},
        };
        for (size_t i = 0; i < N(bad); i++) {
                _cleanup_buf_ struct kiln_buf b = {0};
                load(bad[i].file, &b);
                struct kiln_config_summary c = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_config_summary_parse(b.data, b.len, &c, &err) < 0, "%s should fail",
                      bad[i].file);
                CHECK(err && err->domain == KILN_ERR_FORMAT, "%s: format", bad[i].file);
                if (bad[i].err)
                        CHECK_STR(err ? err->msg : NULL, bad[i].err);
                else
                        CHECK(err && strstr(err->msg, "invalid JSON"), "%s: %s", bad[i].file,
                              err ? err->msg : "");
                CHECK(!c.platform.os && !c.env && !c.diff_ids, "%s: out zeroed", bad[i].file);
        }
        static const struct {
                const char *doc;
                const char *err;
        } inl[] = {
            {"{\"architecture\":\"amd64\",\"os\":\"linux\"}", "image config: missing \"rootfs\""},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}",
             "image config: rootfs: missing \"diff_ids\""},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
             "\"diff_ids\":null}}",
             "image config: rootfs: \"diff_ids\" must be an array of strings"},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":5,\"rootfs\":{}}",
             "image config: \"created\" must be a string"},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":[],\"rootfs\":{}}",
             "image config: \"config\" must be an object"},
            {"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"WorkingDir\":1},"
             "\"rootfs\":{}}",
             "image config: config: \"WorkingDir\" must be a string"},
            {"[]", "image config: not a JSON object"},
            {"", "empty image config"},
        };
        for (size_t i = 0; i < N(inl); i++) {
                struct kiln_config_summary c = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_config_summary_parse(inl[i].doc, strlen(inl[i].doc), &c, &err) < 0,
                      "inline %zu should fail", i);
                CHECK_STR(err ? err->msg : NULL, inl[i].err);
        }
}

int main(void)
{
        test_docker_list();
        test_oci_index();
        test_index_select_inline();
        test_image_manifests();
        test_manifest_errors();
        test_config();
        TEST_DONE();
}
