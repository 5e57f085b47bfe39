/* oci module: media types, platforms and descriptors. Manifests, indexes
 * and configs are in test_oci_manifest.c. */
#include "kiln/oci.h"
#include "test.h"

#include <regex.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_media_types(void)
{
        CHECK_STR(KILN_MANIFEST_ACCEPT,
                  "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.oci.image.index.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.docker.distribution.manifest.list.v2+json");
        CHECK(!strstr(KILN_MANIFEST_ACCEPT, "v1+prettyjws"), "schema 1 is not accepted");

        static const struct {
                const char *mt;
                bool index, manifest, layer;
                enum kiln_compression comp;
        } rows[] = {
            {KILN_MT_OCI_INDEX, true, false, false, KILN_COMP_UNKNOWN},
            {KILN_MT_DOCKER_LIST, true, false, false, KILN_COMP_UNKNOWN},
            {KILN_MT_OCI_MANIFEST, false, true, false, KILN_COMP_UNKNOWN},
            {KILN_MT_DOCKER_MANIFEST, false, true, false, KILN_COMP_UNKNOWN},
            {KILN_MT_DOCKER_MANIFEST "; charset=utf-8", false, true, false, KILN_COMP_UNKNOWN},
            {KILN_MT_DOCKER_V1_SIGNED, false, false, false, KILN_COMP_UNKNOWN},
            {KILN_MT_OCI_CONFIG, false, false, false, KILN_COMP_UNKNOWN},
            {KILN_MT_DOCKER_CONFIG, false, false, false, KILN_COMP_UNKNOWN},
            {KILN_MT_OCI_LAYER, false, false, true, KILN_COMP_NONE},
            {KILN_MT_OCI_LAYER_GZIP, false, false, true, KILN_COMP_GZIP},
            {KILN_MT_OCI_LAYER_ZSTD, false, false, true, KILN_COMP_ZSTD},
            {KILN_MT_OCI_LAYER_ND_GZIP, false, false, true, KILN_COMP_GZIP},
            {"application/vnd.oci.image.layer.nondistributable.v1.tar", false, false, true,
             KILN_COMP_NONE},
            {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", false, false, true,
             KILN_COMP_ZSTD},
            {KILN_MT_DOCKER_LAYER, false, false, true, KILN_COMP_GZIP},
            {KILN_MT_DOCKER_FOREIGN, false, false, true, KILN_COMP_GZIP},
            {"application/vnd.docker.image.rootfs.diff.tar", false, false, true, KILN_COMP_NONE},
            {"application/vnd.oci.image.layer.v1.tar+bzip2", false, false, false,
             KILN_COMP_UNKNOWN},
            {"application/vnd.oci.image.layer.v1.tar+gzipx", false, false, false,
             KILN_COMP_UNKNOWN},
            {"application/vnd.oci.image.layer.v1", false, false, false, KILN_COMP_UNKNOWN},
            {"application/vnd.in-toto+json", false, false, false, KILN_COMP_UNKNOWN},
            {"application/json", false, false, false, KILN_COMP_UNKNOWN},
            {"", false, false, false, KILN_COMP_UNKNOWN},
            {NULL, false, false, false, KILN_COMP_UNKNOWN},
        };
        for (size_t i = 0; i < N(rows); i++) {
                const char *mt = rows[i].mt;
                CHECK(kiln_mt_is_index(mt) == rows[i].index, "is_index(%s)", mt ? mt : "NULL");
                CHECK(kiln_mt_is_manifest(mt) == rows[i].manifest, "is_manifest(%s)",
                      mt ? mt : "NULL");
                CHECK(kiln_mt_is_layer(mt) == rows[i].layer, "is_layer(%s)", mt ? mt : "NULL");
                CHECK(kiln_mt_layer_compression(mt) == rows[i].comp, "compression(%s) = %d",
                      mt ? mt : "NULL", (int)kiln_mt_layer_compression(mt));
        }
}

static void test_platform_parse(void)
{
        static const struct {
                const char *in;
                const char *os, *arch, *variant; /* os NULL: an error is expected */
                const char *str;
        } rows[] = {
            {"linux/amd64", "linux", "amd64", NULL, "linux/amd64"},
            {"linux/x86_64", "linux", "amd64", NULL, "linux/amd64"},
            {"linux/x86-64", "linux", "amd64", NULL, "linux/amd64"},
            {"Linux/AMD64", "linux", "amd64", NULL, "linux/amd64"},
            {"linux/amd64/v1", "linux", "amd64", NULL, "linux/amd64"},
            {"linux/amd64/v3", "linux", "amd64", "v3", "linux/amd64/v3"},
            {"linux/aarch64", "linux", "arm64", NULL, "linux/arm64"},
            {"linux/arm64", "linux", "arm64", NULL, "linux/arm64"},
            {"linux/arm64/8", "linux", "arm64", "v8", "linux/arm64/v8"},
            {"linux/arm64/v8", "linux", "arm64", "v8", "linux/arm64/v8"},
            {"linux/AArch64/V8", "linux", "arm64", "v8", "linux/arm64/v8"},
            {"linux/arm64/v9", "linux", "arm64", "v9", "linux/arm64/v9"},
            {"linux/armhf", "linux", "arm", "v7", "linux/arm/v7"},
            {"linux/armel", "linux", "arm", "v6", "linux/arm/v6"},
            {"linux/arm", "linux", "arm", NULL, "linux/arm"},
            {"linux/arm/5", "linux", "arm", "v5", "linux/arm/v5"},
            {"linux/arm/6", "linux", "arm", "v6", "linux/arm/v6"},
            {"linux/arm/7", "linux", "arm", "v7", "linux/arm/v7"},
            {"linux/arm/8", "linux", "arm", "v8", "linux/arm/v8"},
            {"linux/arm/v6", "linux", "arm", "v6", "linux/arm/v6"},
            {"linux/i386", "linux", "386", NULL, "linux/386"},
            {"linux/i686", "linux", "386", NULL, "linux/386"},
            {"linux/386", "linux", "386", NULL, "linux/386"},
            {"linux/s390x", "linux", "s390x", NULL, "linux/s390x"},
            {"linux/ppc64le", "linux", "ppc64le", NULL, "linux/ppc64le"},
            {"linux/riscv64", "linux", "riscv64", NULL, "linux/riscv64"},
            {"windows/amd64", "windows", "amd64", NULL, "windows/amd64"},
            {"darwin/arm64", "darwin", "arm64", NULL, "darwin/arm64"},
            {"unknown/unknown", "unknown", "unknown", NULL, "unknown/unknown"},
            {"linux", NULL, NULL, NULL, NULL},
            {"", NULL, NULL, NULL, NULL},
            {"linux/", NULL, NULL, NULL, NULL},
            {"/amd64", NULL, NULL, NULL, NULL},
            {"linux//v7", NULL, NULL, NULL, NULL},
            {"linux/arm/", NULL, NULL, NULL, NULL},
            {"linux/arm/v7/extra", NULL, NULL, NULL, NULL},
            {"linux/amd64/v2/", NULL, NULL, NULL, NULL},
            {"linux/amd 64", NULL, NULL, NULL, NULL},
            {"linux:amd64", NULL, NULL, NULL, NULL},
            {"/", NULL, NULL, NULL, NULL},
        };
        for (size_t i = 0; i < N(rows); i++) {
                struct kiln_platform p = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_platform_parse(rows[i].in, &p, &err);
                if (!rows[i].os) {
                        CHECK(rc < 0, "parse(\"%s\") should fail", rows[i].in);
                        CHECK(err && err->domain == KILN_ERR_USAGE, "usage error for \"%s\"",
                              rows[i].in);
                        _cleanup_free_ char *quoted = kiln_xasprintf("\"%s\"", rows[i].in);
                        CHECK(err && strstr(err->msg, quoted), "error names the string: %s",
                              err ? err->msg : "(none)");
                        CHECK(!p.os && !p.architecture && !p.variant, "out stays empty");
                        continue;
                }
                CHECK(rc == 0, "parse(\"%s\"): %s", rows[i].in, err ? err->msg : "");
                CHECK_STR(p.os, rows[i].os);
                CHECK_STR(p.architecture, rows[i].arch);
                CHECK_STR(p.variant, rows[i].variant);
                CHECK(p.os_version == NULL, "no os.version from a string");
                _cleanup_free_ char *s = kiln_platform_string(&p);
                CHECK_STR(s, rows[i].str);

                struct kiln_platform c = {0};
                kiln_platform_copy(&c, &p);
                CHECK(c.os != p.os && c.os && !strcmp(c.os, p.os), "copy is deep");
                CHECK_STR(c.variant, p.variant);
                kiln_platform_release(&c);
                kiln_platform_release(&p);
                CHECK(!p.os && !p.architecture && !p.variant, "release zeroes");
                kiln_platform_release(&p); /* safe twice */
        }
}

static void test_platform_host(void)
{
        struct kiln_platform h = {0};
        kiln_platform_host(&h);
        _cleanup_free_ char *s = kiln_platform_string(&h);
#if defined(__x86_64__)
        CHECK_STR(s, "linux/amd64");
#elif defined(__aarch64__)
        CHECK_STR(s, "linux/arm64/v8");
#else
        CHECK(h.os && h.architecture, "host platform set");
#endif
        /* The host must select itself from an index that lists it. */
        CHECK(kiln_platform_matches(&h, &h), "host matches itself");
        kiln_platform_release(&h);
}

static void test_platform_matches(void)
{
        static const struct {
                const char *want;
                const char *os, *arch, *variant; /* candidate as an index writes it */
                bool match;
        } rows[] = {
            {"linux/amd64", "linux", "amd64", NULL, true},
            {"linux/amd64", "linux", "x86_64", NULL, true},
            {"linux/x86_64", "linux", "amd64", NULL, true},
            {"linux/amd64", "windows", "amd64", NULL, false},
            {"windows/amd64", "linux", "amd64", NULL, false},
            {"linux/amd64", "linux", "arm64", NULL, false},
            {"linux/amd64", "linux", "386", NULL, false},
            {"linux/amd64", "linux", "amd64", "v1", true},
            {"linux/amd64/v1", "linux", "amd64", NULL, true},
            {"linux/amd64/v3", "linux", "amd64", NULL, false},
            /* arm64: missing variant means v8; a bare want takes any */
            {"linux/arm64", "linux", "arm64", NULL, true},
            {"linux/arm64", "linux", "arm64", "v8", true},
            {"linux/arm64", "linux", "aarch64", "8", true},
            {"linux/arm64", "linux", "arm64", "v9", true},
            {"linux/arm64/v8", "linux", "arm64", NULL, true},
            {"linux/arm64/v8", "linux", "arm64", "v8", true},
            {"linux/arm64/v8", "linux", "arm64", "v9", false},
            {"linux/aarch64", "linux", "arm64", "v8", true},
            {"linux/arm64", "linux", "arm", "v8", false},
            {"linux/arm64", "linux", "amd64", NULL, false},
            /* arm: missing variant means v7 on both sides */
            {"linux/arm", "linux", "arm", "v7", true},
            {"linux/arm", "linux", "arm", NULL, true},
            {"linux/arm", "linux", "arm", "v6", false},
            {"linux/arm/v7", "linux", "arm", NULL, true},
            {"linux/arm/v7", "linux", "arm", "v7", true},
            {"linux/arm/v7", "linux", "arm", "7", true},
            {"linux/arm/v7", "linux", "arm", "v6", false},
            {"linux/arm/v6", "linux", "arm", "v6", true},
            {"linux/arm/v6", "linux", "arm", "v7", false},
            {"linux/arm/v6", "linux", "arm", NULL, false},
            {"linux/armhf", "linux", "arm", "v7", true},
            {"linux/armel", "linux", "arm", "v6", true},
            {"linux/arm/v5", "linux", "arm", "v6", false},
            /* attestations and unknowns never match */
            {"linux/amd64", "unknown", "unknown", NULL, false},
            {"unknown/unknown", "unknown", "unknown", NULL, false},
            {"linux/unknown", "linux", "unknown", NULL, false},
            {"linux/s390x", "linux", "s390x", NULL, true},
            {"linux/ppc64le", "linux", "ppc64", NULL, false},
            {"linux/amd64", NULL, "amd64", NULL, false},
            {"linux/amd64", "Linux", "AMD64", NULL, true},
        };
        for (size_t i = 0; i < N(rows); i++) {
                struct kiln_platform want = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                CHECK(kiln_platform_parse(rows[i].want, &want, &err) == 0, "parse %s",
                      rows[i].want);
                struct kiln_platform cand = {
                    .os = (char *)rows[i].os,
                    .architecture = (char *)rows[i].arch,
                    .variant = (char *)rows[i].variant,
                };
                bool got = kiln_platform_matches(&want, &cand);
                CHECK(got == rows[i].match, "matches(%s, %s/%s/%s) = %d", rows[i].want,
                      rows[i].os ? rows[i].os : "NULL", rows[i].arch,
                      rows[i].variant ? rows[i].variant : "-", got);
                CHECK_STR(cand.os, rows[i].os); /* the candidate is not modified */
                CHECK_STR(cand.variant, rows[i].variant);
                kiln_platform_release(&want);
        }
}

#define DG "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_descriptor_from_json(void)
{
        static const struct {
                const char *json;
                const char *what;
                const char *err; /* NULL: must parse */
        } rows[] = {
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":0}", "config", NULL},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":9007199254740993}", "x", NULL},
            {"{\"digest\":\"" DG "\",\"size\":1}", "layers[2]", "layers[2]: missing \"mediaType\""},
            {"{\"mediaType\":7,\"digest\":\"" DG "\",\"size\":1}", "layers[0]",
             "layers[0]: \"mediaType\" must be a string"},
            {"{\"mediaType\":\"m\",\"size\":1}", "layers[2]", "layers[2]: missing \"digest\""},
            {"{\"mediaType\":\"m\",\"digest\":null,\"size\":1}", "layers[2]",
             "layers[2]: \"digest\" must be a string"},
            {"{\"mediaType\":\"m\",\"digest\":\"sha256:abc\",\"size\":1}", "layers[1]",
             "layers[1]: invalid digest \"sha256:abc\": want 64 lowercase hex digits"},
            {"{\"mediaType\":\"m\",\"digest\":\"md5:abc\",\"size\":1}", "config",
             "config: invalid digest \"md5:abc\": unsupported algorithm"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\"}", "config", "config: missing \"size\""},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":-1}", "layers[0]",
             "layers[0]: \"size\" must be a non-negative integer"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1.5}", "layers[0]",
             "layers[0]: \"size\" must be a non-negative integer"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":\"12\"}", "layers[0]",
             "layers[0]: \"size\" must be a non-negative integer"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"platform\":{\"os\":\"linux\","
             "\"architecture\":5}}",
             "manifests[0]", "manifests[0].platform: \"architecture\" must be a string"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG
             "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}",
             "manifests[3]", "manifests[3].platform: missing \"architecture\""},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"platform\":{\"architecture\":"
             "\"amd64\"}}",
             "manifests[1]", "manifests[1].platform: missing \"os\""},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"platform\":\"linux/amd64\"}",
             "manifests[0]", "manifests[0]: \"platform\" must be an object"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"arm\",\"variant\":7}}",
             "manifests[0]", "manifests[0].platform: \"variant\" must be a string"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"annotations\":[]}",
             "layers[0]", "layers[0]: \"annotations\" must be an object"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"annotations\":{\"a\":1}}",
             "layers[0]", "layers[0]: \"annotations\": value of \"a\" must be a string"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"urls\":\"http://x\"}",
             "layers[0]", "layers[0]: \"urls\" must be an array of strings"},
            {"{\"mediaType\":\"m\",\"digest\":\"" DG "\",\"size\":1,\"urls\":[\"http://x\",3]}",
             "layers[0]", "layers[0]: \"urls\"[1] must be a string"},
            {"[1,2]", "layers[4]", "layers[4]: must be an object"},
        };
        for (size_t i = 0; i < N(rows); i++) {
                json_error_t jerr;
                json_t *j = json_loads(rows[i].json, 0, &jerr);
                CHECK(j, "row %zu json: %s", i, jerr.text);
                struct kiln_descriptor d = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_descriptor_from_json(j, rows[i].what, &d, &err);
                if (rows[i].err) {
                        CHECK(rc < 0, "row %zu should fail", i);
                        CHECK(err && err->domain == KILN_ERR_FORMAT, "row %zu domain", i);
                        CHECK_STR(err ? err->msg : NULL, rows[i].err);
                        CHECK(!d.media_type && !d.digest && !d.platform, "row %zu out zeroed", i);
                } else {
                        CHECK(rc == 0, "row %zu: %s", i, err ? err->msg : "");
                        CHECK_STR(d.media_type, "m");
                        CHECK_STR(d.digest, DG);
                }
                kiln_descriptor_release(&d);
                json_decref(j);
        }
}

static void test_descriptor_roundtrip(void)
{
        /* Fields deliberately out of OCI order and with ignored members. */
        const char *in =
            "{\"platform\":{\"variant\":\"v8\",\"os.features\":[\"x\"],\"os\":\"linux\","
            "\"architecture\":\"arm64\",\"os.version\":\"6.1\"},"
            "\"annotations\":{\"k\":\"v\",\"a\":\"b\"},"
            "\"urls\":[\"https://a/1\",\"https://b/2\"],\"size\":42,"
            "\"digest\":\"" DG "\",\"mediaType\":\"" KILN_MT_OCI_MANIFEST "\","
            "\"artifactType\":\"application/spdx+json\"}";
        json_t *j = json_loads(in, 0, NULL);
        struct kiln_descriptor d = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_descriptor_from_json(j, "manifests[0]", &d, &err) == 0, "parse: %s",
              err ? err->msg : "");
        json_decref(j);
        CHECK(d.size == 42, "size %lld", (long long)d.size);
        CHECK(d.platform, "platform");
        if (d.platform) {
                CHECK_STR(d.platform->os, "linux");
                CHECK_STR(d.platform->architecture, "arm64");
                CHECK_STR(d.platform->variant, "v8");
                CHECK_STR(d.platform->os_version, "6.1");
        }
        CHECK(kiln_strv_len(d.urls) == 2, "urls");
        CHECK_STR(d.urls ? d.urls[1] : NULL, "https://b/2");
        CHECK_STR(json_string_value(json_object_get(d.annotations, "k")), "v");
        CHECK_STR(d.artifact_type, "application/spdx+json");

        struct kiln_descriptor c = {0};
        kiln_descriptor_copy(&c, &d);
        kiln_descriptor_release(&d);
        CHECK(!d.digest && !d.platform && !d.annotations && !d.urls && !d.artifact_type,
              "release zeroes");
        kiln_descriptor_release(&d);

        json_t *out = kiln_descriptor_to_json(&c);
        _cleanup_free_ char *s = json_dumps(out, JSON_COMPACT);
        CHECK_STR(s, "{\"mediaType\":\"" KILN_MT_OCI_MANIFEST "\",\"digest\":\"" DG
                     "\",\"size\":42,\"artifactType\":\"application/spdx+json\",\"urls\":[\"https:/"
                     "/a/1\",\"https://b/2\"],"
                     "\"annotations\":{\"k\":\"v\",\"a\":\"b\"},\"platform\":{\"architecture\":"
                     "\"arm64\",\"os\":\"linux\",\"os.version\":\"6.1\",\"variant\":\"v8\"}}");
        json_decref(out);
        kiln_descriptor_release(&c);

        struct kiln_descriptor plain = {
            .media_type = (char *)KILN_MT_OCI_LAYER_GZIP, .digest = (char *)DG, .size = 0};
        out = kiln_descriptor_to_json(&plain);
        _cleanup_free_ char *s2 = json_dumps(out, JSON_COMPACT);
        CHECK_STR(s2, "{\"mediaType\":\"" KILN_MT_OCI_LAYER_GZIP "\",\"digest\":\"" DG
                      "\",\"size\":0}");
        json_decref(out);
}

/* The image spec's ref grammar as a regular expression: the judge of the
 * hand-written parser and of the names kiln_oci_ref_name_for makes. */
#define REF_ERE                                                                                    \
        "^[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*(/[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*)*$"

static void test_ref_names(void)
{
        static const struct {
                const char *tag, *want;
        } rows[] = {
            {"vEjwr8_en4SiOm5i9I1T_g", "vEjwr8_en4SiOm5i9I1T_g"}, /* valid: kept */
            {"_vG7x", "0_vG7x"},                                  /* one flytekit tag in 32 */
            {"abc_", "abc_0"},
            {"a__b", "a_0_b"},
            {"a--b", "a--b"},
            {"a---b", "a--0-b"},
            {"a-_b", "a-0_b"},
            {"__", "0_0_0"},
            {"x-dev", "x-dev"},
            {"_x-dev", "0_x-dev"},
            {"", "0"},
            {"a b", "a0b"},
            {"latest", "latest"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_free_ char *got = kiln_oci_ref_name_for(rows[i].tag);
                CHECK_STR(got, rows[i].want);
        }
        regex_t re;
        CHECK(regcomp(&re, REF_ERE, REG_EXTENDED | REG_NOSUB) == 0, "regcomp");
        static const char alphabet[] = "aZ09_-.:@+/ ~";
        uint64_t seed = 0x2545F4914F6CDD1DULL;
        size_t mismatches = 0, bad_names = 0, changed_valid = 0, valid = 0;
        for (int n = 0; n < 200000; n++) {
                char s[12];
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                size_t len = seed % sizeof(s);
                for (size_t i = 0; i < len; i++)
                        s[i] = alphabet[(seed >> (4 + 4 * (i % 14))) % (sizeof(alphabet) - 1)];
                s[len] = 0;
                seed += 0x9E3779B97F4A7C15ULL;
                bool want = regexec(&re, s, 0, NULL, 0) == 0;
                valid += want;
                mismatches += kiln_oci_ref_name_valid(s) != want;
                _cleanup_free_ char *name = kiln_oci_ref_name_for(s);
                bad_names += regexec(&re, name, 0, NULL, 0) != 0;
                changed_valid += want && strcmp(name, s) != 0;
        }
        regfree(&re);
        CHECK(mismatches == 0, "%zu strings judged unlike the grammar", mismatches);
        CHECK(bad_names == 0, "%zu made names break the grammar", bad_names);
        CHECK(changed_valid == 0, "%zu valid names were changed", changed_valid);
        /* Both sides of the grammar were drawn often. */
        CHECK(valid > 2000 && valid < 198000, "%zu of 200000 random strings valid", valid);
}

int main(void)
{
        test_media_types();
        test_platform_parse();
        test_platform_host();
        test_platform_matches();
        test_descriptor_from_json();
        test_descriptor_roundtrip();
        test_ref_names();
        TEST_DONE();
}
