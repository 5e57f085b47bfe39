/* Provenance documents, referrer artifact manifests and the spec's fields
 * as JSON: fields where SLSA and the image-spec put them, same bytes for
 * the same inputs, and no credential anywhere (a byte scan, as the e2e
 * secret tests do). */
#include "kiln/attest.h"
#include "kiln/imagespec.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

#define SECRET "s3cr3t-Pw"
#define MDIG   "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define BDIG   "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static bool has_bytes(const char *hay, size_t n, const char *needle)
{
        return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static const char SPEC_YAML[] =
    "name: attest\n"
    "registry: localhost:5000\n"
    "python_version: '3.11'\n"
    "packages: [\"hello-img @ https://bob:" SECRET "@files.example/hello.tar.gz\"]\n"
    "apt_packages: [jq]\n"
    "pip_index: https://alice:" SECRET "@pypi.example/simple\n"
    "pip_extra_index_url: [\"http://tok:" SECRET "@extra.example:8080/simple\"]\n"
    "pip_extra_args: --index-url https://u:" SECRET "@x.example/simple --pre\n"
    "pip_secret_mounts: [[/run/host/" SECRET ".netrc, /root/.netrc]]\n"
    "env: {PROXY: 'http://p:" SECRET "@proxy:3128', DEBUG: 1}\n"
    "commands: [echo hi]\n";

static void test_spec_json(void)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_spec_load_string(SPEC_YAML, strlen(SPEC_YAML), "t.yaml", "/tmp", &s, &err) == 0,
              "load: %s", err ? err->msg : "");
        if (!s)
                return;
        _cleanup_json_ json_t *j = kiln_spec_to_json(s);
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        CHECK(text && !has_bytes(text, strlen(text), SECRET), "a credential in %s", text);
        CHECK(text && !has_bytes(text, strlen(text), ".netrc\",\"/root"), "secret source in %s",
              text);
        CHECK_STR(json_string_value(json_object_get(j, "pip_index")),
                  "https://pypi.example/simple");
        CHECK_STR(json_string_value(json_array_get(json_object_get(j, "pip_extra_index_url"), 0)),
                  "http://extra.example:8080/simple");
        CHECK_STR(json_string_value(json_object_get(j, "pip_extra_args")),
                  "--index-url https://x.example/simple --pre");
        CHECK_STR(json_string_value(json_array_get(json_object_get(j, "pip_secret_mounts"), 0)),
                  "/root/.netrc");
        CHECK_STR(json_string_value(json_object_get(json_object_get(j, "env"), "PROXY")),
                  "http://proxy:3128");
        CHECK(json_integer_value(json_object_get(json_object_get(j, "env"), "DEBUG")) == 1,
              "DEBUG stays the integer YAML gave");
        CHECK_STR(json_string_value(json_object_get(j, "python_version")), "3.11");
        CHECK_STR(json_string_value(json_array_get(json_object_get(j, "apt_packages"), 0)), "jq");

        static const struct {
                const char *in, *want;
        } rows[] = {
            {"https://a:b@h/x", "https://h/x"},
            {"x https://a@h y http://c:d@i:1/", "x https://h y http://i:1/"},
            {"no url", "no url"},
            {"mailto:a@b", "mailto:a@b"},
            {"https://h/p@q", "https://h/p@q"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_free_ char *got = kiln_spec_strip_credentials(rows[i].in);
                CHECK_STR(got, rows[i].want);
        }
}

static int prov_doc(const struct kiln_provenance *p, struct kiln_buf *out)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        int rc = kiln_provenance_document(p, out, &err);
        CHECK(rc == 0, "provenance: %s", err ? err->msg : "");
        return rc;
}

static void test_provenance(void)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_spec_load_string(SPEC_YAML, strlen(SPEC_YAML), "t.yaml", "/tmp", &s, &err) < 0)
                return;
        _cleanup_json_ json_t *fields = kiln_spec_to_json(s);
        const struct kiln_prov_step steps[] = {
            {"apt", "aa11", "apt-get install jq", false},
            {"pip", "bb22", "pip install hello-img", true},
        };
        char *apt[] = {"http://deb.debian.org/debian bookworm main", NULL};
        char *idx[] = {"https://pypi.example/simple", NULL};
        struct kiln_provenance p = {
            .subject = {.name = "localhost:5000/attest:t1",
                        .manifest_digest = MDIG,
                        .platform = "linux/amd64",
                        .created = "2024-01-01T00:00:00Z",
                        .tool_version = "9.9.9"},
            .spec_digest = "sha256:33",
            .spec_fields = fields,
            .base_name = "localhost:5000/debian:bookworm-slim",
            .base_digest = BDIG,
            .steps = steps,
            .n_steps = 2,
            .apt_sources = apt,
            .python_indexes = idx,
            .started = 1704067200,
            .finished = 1704067200,
            .compression = "gzip",
        };
        _cleanup_buf_ struct kiln_buf a = {0};
        _cleanup_buf_ struct kiln_buf b = {0};
        if (prov_doc(&p, &a) < 0 || prov_doc(&p, &b) < 0)
                return;
        CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len), "same inputs, same bytes");
        CHECK(!has_bytes(a.data, a.len, SECRET), "a credential in the provenance");
        _cleanup_json_ json_t *j = json_loadb(a.data, a.len, 0, NULL);
        CHECK(j, "provenance is JSON");
        if (!j)
                return;
        CHECK_STR(json_string_value(json_object_get(j, "_type")),
                  "https://in-toto.io/Statement/v1");
        CHECK_STR(json_string_value(json_object_get(j, "predicateType")),
                  "https://slsa.dev/provenance/v1");
        json_t *sub = json_array_get(json_object_get(j, "subject"), 0);
        CHECK_STR(json_string_value(json_object_get(sub, "name")), "localhost:5000/attest:t1");
        CHECK_STR(json_string_value(json_object_get(json_object_get(sub, "digest"), "sha256")),
                  &MDIG[7]);
        json_t *pred = json_object_get(j, "predicate");
        json_t *bd = json_object_get(pred, "buildDefinition");
        CHECK(json_string_value(json_object_get(bd, "buildType")) != NULL, "buildType");
        json_t *ext = json_object_get(bd, "externalParameters");
        CHECK_STR(json_string_value(json_object_get(json_object_get(ext, "spec"), "pip_index")),
                  "https://pypi.example/simple");
        CHECK_STR(json_string_value(json_object_get(ext, "specDigest")), "sha256:33");
        json_t *in = json_object_get(bd, "internalParameters");
        CHECK_STR(json_string_value(json_object_get(in, "platform")), "linux/amd64");
        CHECK_STR(json_string_value(json_object_get(in, "compression")), "gzip");
        json_t *deps = json_object_get(bd, "resolvedDependencies");
        CHECK(json_array_size(deps) == 3, "base, one apt source, one index: %zu",
              json_array_size(deps));
        json_t *base = json_array_get(deps, 0);
        CHECK_STR(json_string_value(json_object_get(base, "uri")),
                  "localhost:5000/debian:bookworm-slim");
        CHECK_STR(json_string_value(json_object_get(json_object_get(base, "digest"), "sha256")),
                  &BDIG[7]);
        CHECK_STR(json_string_value(json_object_get(json_array_get(deps, 1), "uri")), apt[0]);
        CHECK_STR(json_string_value(json_object_get(json_array_get(deps, 2), "uri")), idx[0]);
        json_t *rd = json_object_get(pred, "runDetails");
        CHECK_STR(json_string_value(json_object_get(
                      json_object_get(json_object_get(rd, "builder"), "version"), "kiln")),
                  "9.9.9");
        json_t *md = json_object_get(rd, "metadata");
        CHECK_STR(json_string_value(json_object_get(md, "startedOn")), "2024-01-01T00:00:00Z");
        CHECK_STR(json_string_value(json_object_get(md, "finishedOn")), "2024-01-01T00:00:00Z");
        CHECK(json_string_value(json_object_get(md, "invocationId")) != NULL, "invocationId");
        json_t *bp = json_object_get(rd, "byproducts");
        CHECK(json_array_size(bp) == 2, "one byproduct per step");
        json_t *a1 = json_object_get(json_array_get(bp, 1), "annotations");
        CHECK_STR(json_string_value(json_object_get(a1, "kind")), "pip");
        CHECK_STR(json_string_value(json_object_get(a1, "key")), "bb22");
        CHECK(json_is_true(json_object_get(a1, "cached")), "pip was cached");
        CHECK(json_is_false(
                  json_object_get(json_object_get(json_array_get(bp, 0), "annotations"), "cached")),
              "apt ran");

        /* another start time: another invocation, the rest the same */
        p.started = p.finished = 1704067201;
        _cleanup_buf_ struct kiln_buf c = {0};
        if (prov_doc(&p, &c) < 0)
                return;
        _cleanup_json_ json_t *jc = json_loadb(c.data, c.len, 0, NULL);
        const char *id0 = json_string_value(json_object_get(md, "invocationId"));
        const char *id1 = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(jc, "predicate"), "runDetails"),
                            "metadata"),
            "invocationId"));
        CHECK(id0 && id1 && strcmp(id0, id1), "invocation ids differ: %s %s", id0, id1);

        /* bad input is refused, naming what is wrong */
        p.finished = p.started - 1;
        _cleanup_buf_ struct kiln_buf d = {0};
        _cleanup_err_ struct kiln_err *e2 = NULL;
        CHECK(kiln_provenance_document(&p, &d, &e2) < 0 && strstr(e2->msg, "before it started"),
              "finished before started: %s", e2 ? e2->msg : "accepted");
        p.finished = p.started;
        p.subject.manifest_digest = "sha512:00";
        _cleanup_err_ struct kiln_err *e3 = NULL;
        CHECK(kiln_provenance_document(&p, &d, &e3) < 0 && strstr(e3->msg, "sha256"),
              "bad subject digest: %s", e3 ? e3->msg : "accepted");
}

static void test_artifact(void)
{
        char root[] = "/tmp/kiln-test-attest-XXXXXX";
        CHECK(mkdtemp(root) != NULL, "mkdtemp");
        _cleanup_store_ struct kiln_store *st = NULL;
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_store_open(root, &st, &err) == 0, "store: %s", err ? err->msg : "");
        if (!st)
                return;
        struct kiln_descriptor subject = {
            .media_type = (char *)KILN_MT_OCI_MANIFEST, .digest = (char *)MDIG, .size = 1234};
        static const char doc[] = "{\"spdxVersion\":\"SPDX-2.3\"}";
        _cleanup_descriptor_ struct kiln_descriptor out = {0};
        CHECK(kiln_attest_artifact(st, &subject, KILN_MT_SPDX_JSON, KILN_MT_SPDX_JSON, doc,
                                   strlen(doc), "2024-01-01T00:00:00Z", &out, &err) == 0,
              "artifact: %s", err ? err->msg : "");
        CHECK_STR(out.media_type, KILN_MT_OCI_MANIFEST);
        CHECK_STR(out.artifact_type, KILN_MT_SPDX_JSON);
        CHECK(kiln_store_has(st, KILN_EMPTY_DIGEST, 2), "the empty config is stored");
        _cleanup_buf_ struct kiln_buf m = {0};
        CHECK(kiln_store_read(st, out.digest ? out.digest : MDIG, KILN_MANIFEST_MAX, &m, &err) == 0,
              "read: %s", err ? err->msg : "");
        CHECK(m.len == (size_t)out.size, "size %zu vs %lld", m.len, (long long)out.size);
        _cleanup_json_ json_t *j = json_loadb(m.data, m.len, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(j, "artifactType")), KILN_MT_SPDX_JSON);
        json_t *cfg = json_object_get(j, "config");
        CHECK_STR(json_string_value(json_object_get(cfg, "mediaType")), KILN_MT_OCI_EMPTY);
        CHECK_STR(json_string_value(json_object_get(cfg, "digest")), KILN_EMPTY_DIGEST);
        json_t *sub = json_object_get(j, "subject");
        CHECK_STR(json_string_value(json_object_get(sub, "digest")), MDIG);
        CHECK(json_integer_value(json_object_get(sub, "size")) == 1234, "subject size");
        json_t *l0 = json_array_get(json_object_get(j, "layers"), 0);
        char dd[KILN_DIGEST_MAX];
        kiln_sha256_digest(doc, strlen(doc), dd);
        CHECK_STR(json_string_value(json_object_get(l0, "digest")), dd);
        CHECK(kiln_store_has(st, dd, (int64_t)strlen(doc)), "the document is stored");
        CHECK_STR(json_string_value(json_object_get(json_object_get(j, "annotations"),
                                                    "org.opencontainers.image.created")),
                  "2024-01-01T00:00:00Z");
        _cleanup_manifest_ struct kiln_manifest pm = {0};
        CHECK(kiln_manifest_parse(m.data, m.len, KILN_MT_OCI_MANIFEST, &pm, &err) == 0,
              "kiln parses it: %s", err ? err->msg : "");

        struct kiln_descriptor index = {
            .media_type = (char *)KILN_MT_OCI_INDEX, .digest = (char *)MDIG, .size = 1};
        _cleanup_descriptor_ struct kiln_descriptor o2 = {0};
        _cleanup_err_ struct kiln_err *e2 = NULL;
        CHECK(kiln_attest_artifact(st, &index, KILN_MT_SPDX_JSON, KILN_MT_SPDX_JSON, doc,
                                   strlen(doc), NULL, &o2, &e2) < 0 &&
                  strstr(e2->msg, "must be an image manifest"),
              "an index subject: %s", e2 ? e2->msg : "accepted");
        kiln_rm_rf(root, NULL);
}

int main(void)
{
        test_spec_json();
        test_provenance();
        test_artifact();
        TEST_DONE();
}
