/* Provenance documents, referrer artifact manifests and the spec's fields
 * as JSON: fields where SLSA and the image-spec put them, same bytes for
 * the same inputs, and no credential anywhere (a byte scan, as the e2e
 * secret tests do). */
#include "kiln/oci.h"
#include "kiln/imagespec.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

#define SECRET "s3cr3t-Pw"

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

int main(void)
{
        test_spec_json();
        TEST_DONE();
}
