/* ImageSpec: flytekit's own vectors, the Python-generated vector table
 * (tools/spec-vectors.py -> testdata/spec/vectors.tsv), PyYAML typing,
 * Python repr, validation errors and the builder API. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kiln/imagespec.h"
#include "kiln/util.h"
#include "test.h"

static const char *testdata(void)
{
        const char *d = getenv("KILN_TESTDATA");
        return d ? d : "testdata";
}

/* ---------- flytekit 1.16.24 vectors (the reference) ---------- */

static const struct {
        const char *file, *full, *id;
} upstream[] = {
    {"vectors/up1-defaults.yaml", "flytekit:fv8aVGdGU6GT1t5W98ZQPA", NULL},
    {"vectors/up2-basic.yaml", "ghcr.io/flyteorg/my-image:5k1YwMqeUzZ0bBQCCW7HzQ", NULL},
    {"vectors/up3-trainer.yaml", "localhost:30000/trainer:vEjwr8_en4SiOm5i9I1T_g-dev",
     "vEjwr8-en4SiOm5i9I1T_g"},
    {"vectors/req/up4-requirements.yaml", "docker.io/acme/req:pISLBkbb7JO6ID25gUGVzA",
     "h5fwPyxpss7ixG3YApzRMw"},
    {"vectors/copyimg/up5-copy.yaml", "ghcr.io/acme/copyimg:9bE3Q0dNR9jvPFcz14M7sg",
     "iCR3Mz9d9Z9jzdqvAMjyUg"},
    {"vectors/up6-float-version.yaml", "pingsutw/flytekit:uwTM8i6IhiglYKQ92S1RAw", NULL},
    /* registry_config: out of the tag, in the id */
    {"vectors/up7-registry-config.yaml", "excluded:5ccePazM2COKKHrlFAFhEQ",
     "9bWfFX5eMqJ455SMWp4_UA"},
    /* source_copy_mode hashes as CopyFileDetection's repr */
    {"vectors/copyimg/up8-source-all.yaml", "ghcr.io/acme/srcroot:835gQI1m1xTk_B46ugiVaw",
     "Dtgq1ksHA8ovTsA9bH9Ltg"},
    {"vectors/copyimg/up9-source-no-copy.yaml", "ghcr.io/acme/srcroot:PmifnoMgMdx6qiYqLhit_g",
     "PmifnoMgMdx6qiYqLhit_g"},
};

static int name_of(const char *rel, struct kiln_image_name *n)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/spec/%s", testdata(), rel);
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_spec *s = NULL;
        int r;

        if (kiln_spec_load_file(path, &s, &err) < 0) {
                CHECK(0, "%s: load: %s", rel, err->msg);
                return -1;
        }
        r = kiln_spec_image_name(s, n, &err);
        CHECK(r == 0, "%s: image name: %s", rel, err ? err->msg : "");
        kiln_spec_free(s);
        return r;
}

static void test_upstream(void)
{
        for (size_t i = 0; i < sizeof(upstream) / sizeof(upstream[0]); i++) {
                struct kiln_image_name n = {0};
                if (name_of(upstream[i].file, &n) < 0)
                        continue;
                CHECK_STR(n.full, upstream[i].full);
                if (upstream[i].id)
                        CHECK_STR(n.id, upstream[i].id);
                kiln_image_name_release(&n);
        }
}

/* ---------- the generated table ---------- */

static int test_vectors(void)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/spec/vectors.tsv", testdata());
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        int rows = 0;
        char *save = NULL;

        if (kiln_read_file(path, 1 << 20, &b, &err) < 0) {
                CHECK(0, "%s", err->msg);
                return 0;
        }
        for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *col[5] = {0}, *p = line;
                struct kiln_image_name n = {0};
                for (int i = 0; i < 5; i++) {
                        col[i] = p;
                        p = p ? strchr(p, '\t') : NULL;
                        if (p)
                                *p++ = '\0';
                }
                CHECK(col[4] != NULL, "malformed row %s", line);
                if (!col[4])
                        continue;
                rows++;
                if (name_of(col[0], &n) < 0)
                        continue;
                CHECK(!strcmp(n.tag_dict, col[3]), "%s: tag dict\n got  %s\n want %s", col[0],
                      n.tag_dict, col[3]);
                CHECK(!strcmp(n.id_dict, col[4]), "%s: id dict\n got  %s\n want %s", col[0],
                      n.id_dict, col[4]);
                CHECK(!strcmp(n.full, col[1]), "%s: name %s, want %s", col[0], n.full, col[1]);
                CHECK(!strcmp(n.id, col[2]), "%s: id %s, want %s", col[0], n.id, col[2]);
                kiln_image_name_release(&n);
        }
        return rows;
}

/* ---------- PyYAML typing and Python repr of single values ---------- */

static const struct {
        const char *yaml; /* the value of key v */
        enum kiln_spec_vtype type;
        const char *repr;
} scalars[] = {
    {"3.10", KILN_SPEC_FLOAT, "3.1"},
    {"'3.10'", KILN_SPEC_STR, "'3.10'"},
    {"1e3", KILN_SPEC_STR, "'1e3'"},
    {"1.0e3", KILN_SPEC_STR, "'1.0e3'"},
    {"1.0e+3", KILN_SPEC_FLOAT, "1000.0"},
    {".5", KILN_SPEC_FLOAT, "0.5"},
    {"-.5", KILN_SPEC_STR, "'-.5'"},
    {"1.", KILN_SPEC_FLOAT, "1.0"},
    {"1e+16", KILN_SPEC_STR, "'1e+16'"},
    {"1.0e+16", KILN_SPEC_FLOAT, "1e+16"},
    {"1.0e+15", KILN_SPEC_FLOAT, "1000000000000000.0"},
    {"0.0001", KILN_SPEC_FLOAT, "0.0001"},
    {"0.00001", KILN_SPEC_FLOAT, "1e-05"},
    {"-0.0", KILN_SPEC_FLOAT, "-0.0"},
    {".inf", KILN_SPEC_FLOAT, "inf"},
    {"-.Inf", KILN_SPEC_FLOAT, "-inf"},
    {".NAN", KILN_SPEC_FLOAT, "nan"},
    {"-.nan", KILN_SPEC_STR, "'-.nan'"},
    {"1:20.5", KILN_SPEC_FLOAT, "80.5"},
    {"0.1", KILN_SPEC_FLOAT, "0.1"},
    {"1.5e+300", KILN_SPEC_FLOAT, "1.5e+300"},
    {"010", KILN_SPEC_INT, "8"},
    {"0x1F", KILN_SPEC_INT, "31"},
    {"0b1010", KILN_SPEC_INT, "10"},
    {"1_000", KILN_SPEC_INT, "1000"},
    {"-0", KILN_SPEC_INT, "0"},
    {"+7", KILN_SPEC_INT, "7"},
    {"1:20", KILN_SPEC_INT, "80"},
    {"-1:0:0", KILN_SPEC_INT, "-3600"},
    {"09", KILN_SPEC_STR, "'09'"},
    {"0o7", KILN_SPEC_STR, "'0o7'"},
    {"0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", KILN_SPEC_INT,
     "87112285931760246646623899502532662132735"},
    {"-99999999999999999999999", KILN_SPEC_INT, "-99999999999999999999999"},
    {"yes", KILN_SPEC_BOOL, "True"},
    {"Off", KILN_SPEC_BOOL, "False"},
    {"ON", KILN_SPEC_BOOL, "True"},
    {"y", KILN_SPEC_STR, "'y'"},
    {"tRue", KILN_SPEC_STR, "'tRue'"},
    {"~", KILN_SPEC_NULL, "None"},
    {"", KILN_SPEC_NULL, "None"},
    {"NULL", KILN_SPEC_NULL, "None"},
    {"nULL", KILN_SPEC_STR, "'nULL'"},
    {"''", KILN_SPEC_STR, "''"},
    {"!!str 1.5", KILN_SPEC_STR, "'1.5'"},
    {"!!int '0x10'", KILN_SPEC_INT, "16"},
    {"!!float '2'", KILN_SPEC_FLOAT, "2.0"},
    {"!!bool 'off'", KILN_SPEC_BOOL, "False"},
    {"!!null 'anything'", KILN_SPEC_NULL, "None"},
    {"! 010", KILN_SPEC_INT, "8"},
    {"\"it's\"", KILN_SPEC_STR, "\"it's\""},
    {"'say \"hi\"'", KILN_SPEC_STR, "'say \"hi\"'"},
    {"\"both ' and \\\"\"", KILN_SPEC_STR, "'both \\' and \"'"},
    {"'a\\b'", KILN_SPEC_STR, "'a\\\\b'"},
    {"\"\\t\\n\\r\\x01\\x7f\"", KILN_SPEC_STR, "'\\t\\n\\r\\x01\\x7f'"},
    {"\"\\u00e9\\u00a0\\u200b\\U0001F600\"", KILN_SPEC_STR,
     "'\xc3\xa9\\xa0\\u200b\xf0\x9f\x98\x80'"},
    {"[1, a, 2.5, null, true]", KILN_SPEC_LIST, "[1, 'a', 2.5, None, True]"},
    {"{b: 1, a: [x]}", KILN_SPEC_MAP, "{'b': 1, 'a': ['x']}"},
    {"{1: a, 2.5: b, ~: c, off: d}", KILN_SPEC_MAP, "{1: 'a', 2.5: 'b', None: 'c', False: 'd'}"},
    {"{<<: {a: 1, b: 2}, b: 3}", KILN_SPEC_MAP, "{'a': 1, 'b': 3}"},
};

static void test_scalars(void)
{
        for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
                _cleanup_free_ char *y =
                    kiln_xasprintf("builder_options:\n  v: %s\n", scalars[i].yaml);
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_spec_ struct kiln_spec *s = NULL;
                _cleanup_buf_ struct kiln_buf b = {0};
                const struct kiln_spec_value *v;

                if (kiln_spec_load_string(y, strlen(y), "t.yaml", NULL, &s, &err) < 0) {
                        CHECK(0, "[%s]: %s", scalars[i].yaml, err->msg);
                        continue;
                }
                v = kiln_spec_value_get(s->builder_options, "v");
                CHECK(v && v->type == scalars[i].type, "[%s]: type %d, want %d", scalars[i].yaml,
                      v ? (int)v->type : -1, (int)scalars[i].type);
                if (!v)
                        continue;
                kiln_spec_value_repr(&b, v);
                CHECK(b.data && !strcmp(b.data, scalars[i].repr), "[%s]: repr %s, want %s",
                      scalars[i].yaml, b.data, scalars[i].repr);
        }
}

/* Python's repr for doubles made in C (not through YAML). */
static void test_float_repr(void)
{
        static const struct {
                double d;
                const char *want;
        } rows[] = {
            {3.1, "3.1"},
            {1e16, "1e+16"},
            {1e-5, "1e-05"},
            {0.1, "0.1"},
            {100.0, "100.0"},
            {1.5e300, "1.5e+300"},
            {9999999999999998.0, "9999999999999998.0"},
            {0.3, "0.3"},
            {1.0 / 3, "0.3333333333333333"},
            {2.0 / 3, "0.6666666666666666"},
            {123.456, "123.456"},
            {1e22, "1e+22"},
            {1.7976931348623157e308, "1.7976931348623157e+308"},
            {5e-324, "5e-324"},
            {-2.5, "-2.5"},
            {1e-4, "0.0001"},
            {0.000123456, "0.000123456"},
            {12345678.9, "12345678.9"},
            {4.35, "4.35"},
            {0.1 + 0.2, "0.30000000000000004"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char out[32];
                kiln_spec_float_repr(rows[i].d, out);
                CHECK_STR(out, rows[i].want);
        }
        {
                char out[32];
                kiln_spec_float_repr(INFINITY, out);
                CHECK_STR(out, "inf");
                kiln_spec_float_repr(-INFINITY, out);
                CHECK_STR(out, "-inf");
                kiln_spec_float_repr(NAN, out);
                CHECK_STR(out, "nan");
        }
}

/* ---------- validation errors ---------- */

static const struct {
        const char *yaml;
        const char *want; /* substring of the message */
} bad[] = {
    {"apt_package: [git]\n",
     "t.yaml:1:1: apt_package: unknown field; did you mean 'apt_packages'?"},
    {"pakages: [x]\n", "did you mean 'packages'?"},
    {"frobnicate: 1\n", "t.yaml:1:1: frobnicate: unknown field"},
    {"packages: numpy\n", "t.yaml:1:11: packages: must be a list of strings, not a string"},
    {"packages: [numpy, 1.5]\n", "t.yaml:1:19: packages: item 2 must be a string, not a float"},
    {"apt_packages: {git: 1}\n", "apt_packages: must be a list of strings, not a mapping"},
    {"name: 5\n", "t.yaml:1:7: name: must be a string, not an integer"},
    {"name: ~\n", "name: must be a string, not null"},
    {"name: 'bad name'\n", "name: 'bad name' is not a valid repository name"},
    {"registry: 'ghcr.io/org with space'\n",
     "registry: 'ghcr.io/org with space' is not a registry"},
    {"registry: 'host:123456'\n", "is not a registry"},
    {"registry: 'https://ghcr.io'\n", "is not a registry"},
    {"registry: 'localhost:5000/../../x'\n",
     "registry: 'localhost:5000/../../x' is not a registry"},
    {"registry: 'ghcr.io/./org'\n", "is not a registry"},
    {"registry: '..'\n", "is not a registry"},
    {"registry: 'ghcr..io'\n", "is not a registry"},
    {"registry: 'ghcr.io/org-'\n", "is not a registry"},
    {"copy: [/etc/passwd]\n", "t.yaml:1:8: copy: '/etc/passwd' is absolute"},
    {"copy: [a/../../b]\n", "copy: 'a/../../b' contains '..'"},
    {"copy: ['..']\n", "contains '..'"},
    {"copy: ['']\n", "copy: item 1 is empty"},
    {"tag_format: '{spec_hash}-{user}'\n",
     "tag_format: '{spec_hash}-{user}': only the {spec_hash}"},
    {"tag_format: 'x}'\n", "only the {spec_hash} placeholder"},
    {"tag_format: '{0}'\n", "only the {spec_hash} placeholder"},
    {"tag_format: '{{x}}-{spec_hash}'\n",
     "only the {spec_hash} placeholder is allowed (at offset 0)"},
    {"tag_format: '{spec_hash} dev'\n", "a tag holds only letters, digits"},
    {"tag_format: '-{spec_hash}'\n", "a tag cannot start with '.' or '-'"},
    {"tag_format: '{spec_hash}{spec_hash}{spec_hash}{spec_hash}{spec_hash}{spec_hash}'\n",
     "longer than 128"},
    {"requirements: uv.lock\npackages: [x]\n",
     "t.yaml:2:11: packages: cannot be combined with the lock file 'uv.lock'"},
    {"requirements: sub/poetry.lock\npackages: []\n", "cannot be combined with the lock file"},
    {"pip_secret_mounts: [[a]]\n", "pip_secret_mounts: item 1 must be a [source, target] pair"},
    {"pip_secret_mounts: [[a, 1]]\n", "must be a [source, target] pair of strings"},
    {"pip_secret_mounts: [a, b]\n", "item 1 must be a [source, target] pair"},
    {"pip_secret_mounts: [[a, relative]]\n", "target an absolute path"},
    {"pip_secret_mounts: a\n", "must be a list of [source, target] pairs"},
    {"entrypoint: /bin/sh\n", "entrypoint: must be a list of strings, not a string"},
    {"entrypoint: [/bin/sh, [x]]\n", "entrypoint: item 2 must be a string, not a list"},
    {"platform: amd64\n", "platform: 'amd64' is not os/arch[/variant]"},
    {"platform: linux/amd64/v1/x\n", "is not os/arch[/variant]"},
    {"platform: 'linux/amd64,,'\n", "platform: is empty or has an empty entry"},
    {"platform: ~\n", "platform: must be a string, not null"},
    {"source_copy_mode: sometimes\n", "source_copy_mode: 'sometimes' is not one of"},
    {"env: [A=1]\n", "env: must be a mapping of NAME: value, not a list"},
    {"env: {A: [1]}\n", "env: A: value must be a scalar (a string, number, boolean or null), "
                        "not a list"},
    {"env: {A: {b: 1}}\n", "env: A: value must be a scalar"},
    {"env: {1: x}\n", "env: variable names must be strings, not an integer"},
    {"env: {'A=B': x}\n", "is not a variable name"},
    {"base_image: [x]\n", "base_image: must be an image reference or a nested spec mapping"},
    {"base_image: {pakages: [x]}\n", "base_image: t.yaml:1:14: pakages: unknown field"},
    {"builder_options: [x]\n", "builder_options: must be a mapping, not a list"},
    {"python_version: [3]\n", "python_version: must be a string, not a list"},
    {"python_version: true\n", "python_version: must be a string, not a boolean"},
    {"requirements: ''\n", "requirements: is empty"},
    {"name: a\nname: b\n", "t.yaml:2:1: duplicate key 'name' (first at line 1)"},
    {"env:\n  A: 1\n  B: 2\n  A: 3\n", "t.yaml:4:3: duplicate key 'A' (first at line 2)"},
    {"builder_options: {1: a, true: b}\n", "duplicate key True"},
    {"builder_options: {1: a, 1.0: b}\n", "duplicate key 1.0"},
    {"builder_options: {0x10: a, 16: b}\n", "duplicate key 16"},
    {"builder_options: {[a]: 1}\n", "a list or mapping cannot be a key"},
    {"- a\n- b\n", "t.yaml:1:1: the spec must be a mapping of fields, not a list"},
    {"just a string\n", "the spec must be a mapping of fields, not a scalar"},
    {"", "t.yaml: the spec is empty"},
    {"# only a comment\n", "the spec is empty"},
    {"name: a\n---\nname: b\n", "t.yaml:2:1: more than one YAML document"},
    {"name: [a\n", "t.yaml:2:1: invalid YAML"},
    {"name: \"unterminated\n", "invalid YAML"},
    {"a: b: c\n", "invalid YAML"},
    {"packages: *nope\n", "t.yaml:1:11: unknown anchor *nope"},
    {"builder_options: &a {x: *a}\n", "recursive data"},
    {"builder_options: {d: 2001-12-14}\n", "t.yaml:1:22: YAML reads this as a date/timestamp"},
    {"builder_options: {v: =}\n", "'=' is the YAML value key"},
    {"builder_options: {v: !!binary aGk=}\n", "unsupported YAML tag 'tag:yaml.org,2002:binary'"},
    {"builder_options: {v: !custom x}\n", "unsupported YAML tag '!custom'"},
    {"builder_options: {v: !!set {a}}\n", "unsupported YAML tag 'tag:yaml.org,2002:set'"},
    {"builder_options: {v: !!python/object:os.system x}\n", "unsupported YAML tag"},
    {"builder_options: {v: \"a\\0b\"}\n", "NUL characters"},
    {"builder_options: {v: 0b_}\n", "invalid integer"},
    {"builder_options: {v: !!int abc}\n", "invalid integer"},
    {"builder_options: {v: !!float abc}\n", "invalid float"},
    {"builder_options: {v: !!bool maybe}\n", "invalid boolean"},
    {"builder_options: {v: <<}\n", "merge key"},
    {"builder_options: {<<: [a]}\n", "'<<' (merge) expects a mapping"},
    {"env: {A: 1}\n1: x\n", "t.yaml:2:1: 1: unknown field (field names are strings"},
};

static void test_bad(void)
{
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                struct kiln_spec *s = NULL;
                int r = kiln_spec_load_string(bad[i].yaml, strlen(bad[i].yaml), "t.yaml", "/tmp",
                                              &s, &err);
                CHECK(r < 0, "[%s]: accepted", bad[i].yaml);
                if (r == 0) {
                        kiln_spec_free(s);
                        continue;
                }
                CHECK(err->domain == KILN_ERR_SPEC, "[%s]: domain %d", bad[i].yaml,
                      (int)err->domain);
                CHECK(strstr(err->msg, bad[i].want) != NULL, "[%s]:\n got  %s\n want ...%s...",
                      bad[i].yaml, err->msg, bad[i].want);
        }
}

/* Bounds: depth, billion laughs, huge ints, size. */
static void test_bounds(void)
{
        _cleanup_buf_ struct kiln_buf deep = {0};
        _cleanup_buf_ struct kiln_buf laughs = {0};
        _cleanup_buf_ struct kiln_buf bigint = {0};
        _cleanup_buf_ struct kiln_buf huge = {0};
        struct {
                struct kiln_buf *b;
                const char *want;
        } rows[] = {
            {&deep, "nesting deeper than 64 levels"},
            {&laughs, "beyond"},
            {&bigint, "integer too large"},
            {&huge, "larger than"},
        };

        kiln_buf_puts(&deep, "builder_options: ");
        for (int i = 0; i < 70; i++)
                kiln_buf_puts(&deep, "[");
        for (int i = 0; i < 70; i++)
                kiln_buf_puts(&deep, "]");
        kiln_buf_puts(&deep, "\n");

        kiln_buf_puts(&laughs, "builder_options:\n  a0: &a0 [\"lololololololololol\"]\n");
        for (int i = 1; i < 30; i++)
                kiln_buf_printf(&laughs, "  a%d: &a%d [*a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1,
                                i - 1, i - 1, i - 1);

        kiln_buf_puts(&bigint, "builder_options: {v: 1");
        for (int i = 0; i < 4300; i++)
                kiln_buf_puts(&bigint, "0");
        kiln_buf_puts(&bigint, "}\n");

        kiln_buf_puts(&huge, "commands: ['");
        for (int i = 0; i < KILN_SPEC_MAX_BYTES; i++)
                kiln_buf_puts(&huge, "x");
        kiln_buf_puts(&huge, "']\n");

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                struct kiln_spec *s = NULL;
                int r = kiln_spec_load_string(rows[i].b->data, rows[i].b->len, "t.yaml", NULL, &s,
                                              &err);
                CHECK(r < 0, "bounds row %zu accepted", i);
                if (r == 0)
                        kiln_spec_free(s);
                else
                        CHECK(strstr(err->msg, rows[i].want), "bounds row %zu: %s", i, err->msg);
        }
        {
                /* exactly 4300 digits still prints in Python */
                _cleanup_buf_ struct kiln_buf ok = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_spec_ struct kiln_spec *s = NULL;
                kiln_buf_puts(&ok, "builder_options: {v: 1");
                for (int i = 0; i < 4299; i++)
                        kiln_buf_puts(&ok, "0");
                kiln_buf_puts(&ok, "}\n");
                CHECK(kiln_spec_load_string(ok.data, ok.len, "t.yaml", NULL, &s, &err) == 0,
                      "4300-digit int: %s", err ? err->msg : "");
        }
}

/* Bad spec files in testdata/spec/bad: the first line says "# error: ...". */
static int test_bad_files(void)
{
        _cleanup_free_ char *dir = kiln_xasprintf("%s/spec/bad", testdata());
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        CHECK(d != NULL, "opendir %s", dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                _cleanup_buf_ struct kiln_buf b = {0};
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_free_ char *want = NULL;
                struct kiln_spec *s = NULL;
                struct kiln_image_name nm = {0};
                char *nl;
                int r;

                if (!kiln_str_has_suffix(de->d_name, ".yaml"))
                        continue;
                path = kiln_xasprintf("%s/%s", dir, de->d_name);
                if (kiln_read_file(path, 1 << 20, &b, &err) < 0 ||
                    !kiln_str_has_prefix(b.data, "# error: ")) {
                        CHECK(0, "%s: no '# error: ' line", path);
                        continue;
                }
                nl = strchr(b.data, '\n');
                want = kiln_xstrndup(b.data + 9, nl ? (size_t)(nl - b.data - 9) : strlen(b.data));
                n++;
                r = kiln_spec_load_file(path, &s, &err);
                if (r == 0) {
                        /* some errors only show when hashing reads files */
                        r = kiln_spec_image_name(s, &nm, &err);
                        kiln_image_name_release(&nm);
                        kiln_spec_free(s);
                }
                CHECK(r < 0, "%s: accepted", de->d_name);
                if (r < 0)
                        CHECK(strstr(err->msg, want), "%s:\n got  %s\n want ...%s...", de->d_name,
                              err->msg, want);
        }
        closedir(d);
        return n;
}

/* ---------- typed view ---------- */

static void test_typed(void)
{
        static const char y[] = "name: Trainer\n"
                                "registry: LOCALHOST:30000\n"
                                "python_version: 3.10\n"
                                "env: {B: 1, A: x, C: yes, D: 1.50, E: ~, F: 1.0e-5}\n"
                                "entrypoint: []\n"
                                "copy: [data, src/main.py]\n"
                                "requirements: reqs/requirements.txt\n"
                                "pip_secret_mounts: [[.netrc, /root/.netrc]]\n"
                                "platform: linux/amd64,linux/arm64/v8\n"
                                "builder_options: {cpu: 4}\n";
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_spec_ struct kiln_spec *s = NULL;

        CHECK(kiln_spec_load_string(y, strlen(y), "t.yaml", "/proj", &s, &err) == 0, "%s",
              err ? err->msg : "");
        if (!s)
                return;
        CHECK_STR(s->name, "trainer");
        CHECK_STR(s->registry, "localhost:30000");
        CHECK_STR(s->python_version, "3.1");
        CHECK(s->warnings && s->warnings[0] && strstr(s->warnings[0], "python_version"),
              "python_version warning");
        /* str() of each value, as flytekit writes it into ENV */
        CHECK(s->n_env == 6, "n_env %zu", s->n_env);
        if (s->n_env == 6) {
                CHECK_STR(s->env[0].key, "B");
                CHECK_STR(s->env[0].value, "1");
                CHECK_STR(s->env[1].key, "A");
                CHECK_STR(s->env[2].value, "True");
                CHECK_STR(s->env[3].value, "1.5");
                CHECK_STR(s->env[4].value, "None");
                CHECK_STR(s->env[5].value, "1e-05");
        }
        CHECK(s->entrypoint && !s->entrypoint[0], "entrypoint [] is an empty list");
        CHECK(s->commands == NULL, "commands unset");
        CHECK(s->copy && kiln_strv_len(s->copy) == 2, "copy");
        CHECK_STR(s->copy_paths[1], "/proj/src/main.py");
        CHECK_STR(s->requirements, "reqs/requirements.txt");
        CHECK_STR(s->requirements_path, "/proj/reqs/requirements.txt");
        CHECK(!s->requirements_lock, "not a lock file");
        CHECK(s->n_pip_secret_mounts == 1, "mounts");
        CHECK_STR(s->pip_secret_mounts[0].src, "/proj/.netrc");
        CHECK_STR(s->pip_secret_mounts[0].dst, "/root/.netrc");
        CHECK(s->platforms && kiln_strv_len(s->platforms) == 2, "platforms");
        CHECK_STR(s->platforms[1], "linux/arm64/v8");
        CHECK(s->builder_options && s->builder_options->n == 1, "builder_options");
        CHECK_STR(s->dir, "/proj");

        /* defaults */
        {
                _cleanup_spec_ struct kiln_spec *d = NULL;
                CHECK(kiln_spec_load_string("{}", 2, "d.yaml", NULL, &d, &err) == 0, "defaults");
                if (d) {
                        CHECK_STR(d->name, "flytekit");
                        CHECK_STR(d->platform, "linux/amd64");
                        CHECK(d->registry == NULL && d->entrypoint == NULL && d->env == NULL,
                              "unset fields are NULL");
                        CHECK(d->dir && d->dir[0] == '/', "dir is absolute: %s", d->dir);
                }
        }
}

/* ---------- builder API (command-line flags) ---------- */

static void test_builder(void)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_spec_ struct kiln_spec *s = kiln_spec_new("/work");
        struct kiln_image_name n = {0};
        int r = 0;

        /* the same as up2-basic.yaml, built from flags */
        r |= kiln_spec_set_str(s, "name", "my-image", &err);
        r |= kiln_spec_set_str(s, "registry", "ghcr.io/flyteorg", &err);
        r |= kiln_spec_set_str(s, "python_version", "3.11", &err);
        r |= kiln_spec_append(s, "packages", "pandas==2.2.2", &err);
        r |= kiln_spec_append(s, "packages", "scikit-learn", &err);
        r |= kiln_spec_append(s, "apt_packages", "git", &err);
        r |= kiln_spec_append(s, "apt_packages", "curl", &err);
        CHECK(r == 0, "builder: %s", err ? err->msg : "");
        CHECK(kiln_spec_image_name(s, &n, &err) == 0, "name");
        CHECK_STR(n.full, "ghcr.io/flyteorg/my-image:5k1YwMqeUzZ0bBQCCW7HzQ");
        kiln_image_name_release(&n);

        /* a rejected edit leaves the spec as it was */
        CHECK(kiln_spec_set_str(s, "registry", "Not A Registry!", &err) < 0, "bad registry");
        CHECK(err && strstr(err->msg, "<command line>: registry: 'Not A Registry!' is not a "
                                      "registry"),
              "msg: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        CHECK_STR(s->registry, "ghcr.io/flyteorg");
        CHECK(kiln_spec_append(s, "copy", "/abs", &err) < 0, "absolute copy");
        kiln_err_clear(&err);
        CHECK(s->copy == NULL, "copy still unset");
        CHECK(kiln_spec_append(s, "name", "x", &err) < 0, "append to a string field");
        kiln_err_clear(&err);
        CHECK(kiln_spec_set_str(s, "nme", "x", &err) < 0, "unknown field");
        kiln_err_clear(&err);
        CHECK(kiln_spec_image_name(s, &n, &err) == 0, "name after failed edits");
        CHECK_STR(n.full, "ghcr.io/flyteorg/my-image:5k1YwMqeUzZ0bBQCCW7HzQ");
        kiln_image_name_release(&n);

        /* env: replace keeps the place, new keys go last */
        r = kiln_spec_set_env(s, "A", "1", &err);
        r |= kiln_spec_set_env(s, "B", "2", &err);
        r |= kiln_spec_set_env(s, "A", "3", &err);
        r |= kiln_spec_set_empty_list(s, "entrypoint", &err);
        r |= kiln_spec_add_secret_mount(s, "/home/me/.netrc", "/root/.netrc", &err);
        r |= kiln_spec_set_str(s, "python_version", NULL, &err);
        CHECK(r == 0, "builder 2: %s", err ? err->msg : "");
        CHECK(s->n_env == 2 && !strcmp(s->env[0].key, "A") && !strcmp(s->env[0].value, "3"),
              "env order");
        CHECK(s->entrypoint && !s->entrypoint[0], "entrypoint []");
        CHECK(s->python_version == NULL, "python_version removed");
        CHECK(kiln_spec_image_name(s, &n, &err) == 0, "name 2");
        CHECK_STR(n.tag_dict, "{'name': 'my-image', 'env': {'A': '3', 'B': '2'}, 'registry': "
                              "'ghcr.io/flyteorg', 'packages': ['pandas==2.2.2', "
                              "'scikit-learn'], 'apt_packages': ['git', 'curl'], 'platform': "
                              "'linux/amd64', 'entrypoint': []}");
        kiln_image_name_release(&n);

        /* flags amend a loaded spec: up3 with one more command */
        {
                _cleanup_free_ char *path =
                    kiln_xasprintf("%s/spec/vectors/up3-trainer.yaml", testdata());
                _cleanup_spec_ struct kiln_spec *t = NULL;
                CHECK(kiln_spec_load_file(path, &t, &err) == 0, "load up3");
                if (t) {
                        CHECK(kiln_spec_append(t, "commands", "echo bye", &err) == 0, "append");
                        CHECK(kiln_spec_image_name(t, &n, &err) == 0, "name 3");
                        CHECK(strstr(n.tag_dict, "'commands': ['echo hi', 'echo bye']") != NULL,
                              "%s", n.tag_dict);
                        CHECK(strcmp(n.full, "localhost:30000/trainer:vEjwr8_en4SiOm5i9I1T_g-dev"),
                              "tag changed");
                        kiln_image_name_release(&n);
                }
        }
}

/* Hashing errors: missing copy / requirements files. */
/* flytekit's default platform: arm64 only for a localhost registry on an
 * arm64 machine; the names are flytekit 1.16.24's with platform.machine()
 * reporting aarch64 and x86_64. */
static void test_default_platform(void)
{
        static const struct {
                const char *registry, *machine, *want;
        } rows[] = {
            {"localhost:30000", "aarch64", "linux/arm64"},
            {"localhost:30000", "arm64", "linux/arm64"},
            {"localhost:30000", "ARM64", "linux/arm64"},
            {"localhost:5000/x", "AArch64", "linux/arm64"},
            {"localhost:30000", "x86_64", "linux/amd64"},
            {"localhost:30000", "armv7l", "linux/amd64"},
            {"localhost:30000", "", "linux/amd64"},
            {"localhost", "aarch64", "linux/amd64"},
            {"localhostx:1", "aarch64", "linux/amd64"},
            {"ghcr.io/a", "aarch64", "linux/amd64"},
            {"127.0.0.1:5000", "aarch64", "linux/amd64"},
            {NULL, "aarch64", "linux/amd64"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                CHECK(!strcmp(kiln_spec_default_platform(rows[i].registry, rows[i].machine),
                              rows[i].want),
                      "%s on %s: %s, want %s", rows[i].registry ? rows[i].registry : "(none)",
                      rows[i].machine,
                      kiln_spec_default_platform(rows[i].registry, rows[i].machine), rows[i].want);

        /* the default hashes as if written: flytekit on aarch64 names the
         * spec without platform as kiln names it with linux/arm64 */
        static const char arm[] = "name: lh\nregistry: localhost:30000\nplatform: linux/arm64\n";
        static const char unset[] = "name: lh\nregistry: LOCALHOST:30000\n";
        struct utsname u;
        CHECK(uname(&u) == 0, "uname");
        bool host_arm =
            !strcmp(kiln_spec_default_platform("localhost:1", u.machine), "linux/arm64");
        const struct {
                const char *yaml, *want;
        } names[] = {
            {arm, "localhost:30000/lh:D711GIxdKFDhptL9asP8rw"},
            {unset, host_arm ? "localhost:30000/lh:D711GIxdKFDhptL9asP8rw"
                             : "localhost:30000/lh:raMJ0KlFqNt1sBSm6zUMwQ"},
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_spec_ struct kiln_spec *s = NULL;
                _cleanup_image_name_ struct kiln_image_name n = {0};
                CHECK(kiln_spec_load_string(names[i].yaml, strlen(names[i].yaml), "t.yaml", NULL,
                                            &s, &err) == 0 &&
                          kiln_spec_image_name(s, &n, &err) == 0,
                      "%s", err ? err->msg : "");
                if (n.full)
                        CHECK_STR(n.full, names[i].want);
        }
}

static void test_hash_errors(void)
{
        static const struct {
                const char *yaml, *want;
        } rows[] = {
            {"copy: [does-not-exist]\n", "copy: 'does-not-exist'"},
            {"requirements: nope.txt\n", "requirements"},
            /* loaded_modules, set or flytekit's default for a source_root:
             * only pyflyte knows the modules it loaded */
            {"source_root: src\n",
             "t.yaml:1:14: source_root: without source_copy_mode flytekit copies the Python "
             "modules pyflyte imported from it (loaded_modules), which only pyflyte knows (the "
             "flytekit plugin passes them with --loaded-modules); set source_copy_mode to all "
             "(every file not ignored) or no_copy (none)"},
            {"source_root: src\nsource_copy_mode: ~\n", "source_root: without source_copy_mode"},
            {"source_root: src\nsource_copy_mode: loaded_modules\n",
             "t.yaml:2:19: source_copy_mode: loaded_modules copies the Python modules pyflyte "
             "imported"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_spec_ struct kiln_spec *s = NULL;
                struct kiln_image_name n = {0};
                CHECK(kiln_spec_load_string(rows[i].yaml, strlen(rows[i].yaml), "t.yaml",
                                            "/nonexistent-dir", &s, &err) == 0,
                      "load %s", rows[i].yaml);
                if (!s)
                        continue;
                CHECK(kiln_spec_image_name(s, &n, &err) < 0, "%s hashed", rows[i].yaml);
                CHECK(err && strstr(err->msg, rows[i].want), "%s: %s", rows[i].yaml,
                      err ? err->msg : "");
                kiln_image_name_release(&n);
        }
}

/* "-" reads stdin; relative paths then resolve against the cwd. */
static void test_stdin(void)
{
        char tmpl[] = "/tmp/kiln-spec-stdin-XXXXXX";
        int fd = mkstemp(tmpl), saved = dup(0);
        static const char y[] = "name: fromstdin\nregistry: ghcr.io/flyteorg\n";
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_spec_ struct kiln_spec *s = NULL;
        char cwd[4096];

        CHECK(fd >= 0 && saved >= 0, "mkstemp");
        if (fd < 0 || saved < 0)
                return;
        CHECK(kiln_write_all(fd, y, sizeof(y) - 1) == 0, "write");
        lseek(fd, 0, SEEK_SET);
        dup2(fd, 0);
        CHECK(kiln_spec_load_file("-", &s, &err) == 0, "stdin: %s", err ? err->msg : "");
        dup2(saved, 0);
        close(saved);
        close(fd);
        unlink(tmpl);
        if (!s)
                return;
        CHECK_STR(s->name, "fromstdin");
        CHECK(s->path == NULL, "stdin has no path");
        CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
        CHECK_STR(s->dir, cwd);
}

static void test_missing_file(void)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_spec *s = NULL;

        CHECK(kiln_spec_load_file("/nonexistent/spec.yaml", &s, &err) < 0, "missing file");
        CHECK(err && strstr(err->msg, "/nonexistent/spec.yaml"), "names the file: %s",
              err ? err->msg : "");
        CHECK(s == NULL, "no spec on error");
}

/* A spec file over the size limit is an invalid spec (exit 8) naming the
 * file; one of exactly the limit is read. */
static void test_large_file(void)
{
        char tmpl[] = "/tmp/kiln-spec-large-XXXXXX";
        _cleanup_close_ int fd = mkstemp(tmpl);
        CHECK(fd >= 0, "mkstemp");
        if (fd < 0)
                return;
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_puts(&b, "name: big\n#");
        while (b.len < KILN_SPEC_MAX_BYTES)
                kiln_buf_puts(&b, "x");
        for (int extra = 0; extra < 2; extra++) {
                if (extra)
                        kiln_buf_puts(&b, "x");
                CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, b.data, b.len, 0) == (ssize_t)b.len,
                      "write");
                _cleanup_err_ struct kiln_err *err = NULL;
                _cleanup_spec_ struct kiln_spec *s = NULL;
                int r = kiln_spec_load_file(tmpl, &s, &err);
                if (!extra) {
                        CHECK(r == 0, "a spec of %zu bytes: %s", b.len, err ? err->msg : "");
                        continue;
                }
                CHECK(r < 0 && err && err->domain == KILN_ERR_SPEC && strstr(err->msg, tmpl),
                      "a spec of %zu bytes: an invalid spec naming the file, not %s: %s", b.len,
                      err ? kiln_err_domain_name(err->domain) : "-", err ? err->msg : "(accepted)");
        }
        unlink(tmpl);
}

/* Symlinks leading out of source_root or the spec's directory (for copy)
 * are refused and each listed; inside ones, and dangling ones that stay
 * inside, are not; a dangling one is judged by its target lexically. */
static void test_symlinks(void)
{
        char dir[] = "/tmp/kiln-symlinks-XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        _cleanup_free_ char *src = kiln_xasprintf("%s/src", dir);
        _cleanup_free_ char *c = kiln_xasprintf("%s/c", dir);
        CHECK(mkdir(src, 0755) == 0 && mkdir(c, 0755) == 0, "mkdir");
        static const char *const links[][2] = {
            {"src/in", "a"},                    /* inside: fine */
            {"src/out", "/etc/passwd"},         /* a file outside: listed */
            {"src/gone", "nothing"},            /* dangling: not a file, not copied */
            {"c/ok", "../src/a"},               /* inside the spec's directory */
            {"c/abs", "/nonexistent/x"},        /* dangling, outside: listed */
            {"c/climb", "../../../../../../x"}, /* dangling, climbs out: listed */
            {"c/stay", "../c/./../src/zz"},     /* dangling, stays inside */
        };
        _cleanup_free_ char *a = kiln_xasprintf("%s/a", src);
        CHECK(kiln_write_file_atomic(a, "x", 1, 0644, NULL) == 0, "write a");
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, links[i][0]);
                CHECK(symlink(links[i][1], p) == 0, "symlink %s", p);
        }
        static const char yaml[] = "source_root: src\nsource_copy_mode: all\ncopy: [c]\n";
        struct kiln_spec *s = NULL;
        struct kiln_err *err = NULL;
        CHECK(kiln_spec_load_string(yaml, sizeof(yaml) - 1, "t.yaml", dir, &s, &err) == 0, "%s",
              err ? err->msg : "");
        CHECK(s && kiln_spec_check_symlinks(s, &err) < 0, "outside links are refused");
        const char *msg = err ? err->msg : "";
        CHECK(err && err->domain == KILN_ERR_SPEC, "a spec error");
        static const char *const want[] = {
            "source_root: out -> /etc/passwd", "copy: c/abs -> /nonexistent/x",
            "copy: c/climb -> ../../../../../../x", "3 symlinks", "--follow-external-symlinks"};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                CHECK(strstr(msg, want[i]) != NULL, "'%s' in: %s", want[i], msg);
        static const char *const unwanted[] = {"in ->", "gone", "c/ok", "c/stay"};
        for (size_t i = 0; i < sizeof(unwanted) / sizeof(unwanted[0]); i++)
                CHECK(strstr(msg, unwanted[i]) == NULL, "'%s' not in: %s", unwanted[i], msg);
        kiln_err_free(err);
        err = NULL;
        /* without the outside ones, nothing is refused */
        static const char *const outside[] = {"src/out", "c/abs", "c/climb"};
        for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, outside[i]);
                CHECK(unlink(p) == 0, "unlink %s", p);
        }
        CHECK(kiln_spec_check_symlinks(s, &err) == 0, "inside links pass: %s", err ? err->msg : "");
        kiln_spec_free(s);
        CHECK(kiln_rm_rf(dir, NULL) == 0, "cleanup");
}

static char *tag_dict_of(const char *yaml, const char *dir, const char *list, struct kiln_err **err)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        struct kiln_image_name n = {0};
        if (kiln_spec_load_string(yaml, strlen(yaml), "t.yaml", dir, &s, err) < 0)
                return NULL;
        if (list && kiln_spec_set_loaded_modules(s, list, err) < 0)
                return NULL;
        if (kiln_spec_image_name(s, &n, err) < 0)
                return NULL;
        char *d = kiln_xstrdup(n.tag_dict);
        kiln_image_name_release(&n);
        return d;
}

static void write_list(const char *path, const char *text)
{
        CHECK(kiln_write_file_atomic(path, text, strlen(text), 0644, NULL) == 0, "write %s", path);
}

/* loaded_modules with pyflyte's module list: the digest is ls_files' over
 * the listed files inside source_root (so, listing every file, the one
 * 'all' gives), judged by flytekit's commonpath rule; bad lists are
 * refused naming the file and line. */
static void test_loaded_modules(void)
{
        char dir[] = "/tmp/kiln-loaded-XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        static const char *const files[] = {"src/a.py", "src/pkg/__init__.py", "src/pkg/b.py",
                                            "lib/c.py"};
        _cleanup_free_ char *pkg = kiln_xasprintf("%s/src/pkg", dir);
        _cleanup_free_ char *lib = kiln_xasprintf("%s/lib", dir);
        CHECK(kiln_mkdir_p(pkg, 0755, NULL) == 0 && kiln_mkdir_p(lib, 0755, NULL) == 0, "mkdir");
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, files[i]);
                write_list(p, files[i]);
        }
        _cleanup_free_ char *every = kiln_xasprintf(
            "%s/src/pkg/b.py\n%s/src/a.py\n%s/lib/c.py\n\n%s/src/pkg/__init__.py\n%s/src/a.py\n",
            dir, dir, dir, dir, dir);
        _cleanup_free_ char *list = kiln_xasprintf("%s/list", dir);
        write_list(list, every);
        _cleanup_free_ char *y_all =
            kiln_xasprintf("source_root: %s/src\nsource_copy_mode: all\n", dir);
        _cleanup_free_ char *y_loaded = kiln_xasprintf("source_root: %s/src\n", dir);
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_free_ char *d_all = tag_dict_of(y_all, dir, NULL, &err);
        _cleanup_free_ char *d_loaded = tag_dict_of(y_loaded, dir, list, &err);
        CHECK(d_all && d_loaded, "hashed: %s", err ? err->msg : "");
        if (d_all && d_loaded) {
                /* the same digest; only the mode's repr differs */
                const char *ma = strstr(d_all, "<CopyFileDetection.ALL: 2>");
                const char *ml = strstr(d_loaded, "<CopyFileDetection.LOADED_MODULES: 1>");
                CHECK(ma && ml && (size_t)(ma - d_all) == (size_t)(ml - d_loaded) &&
                          !strncmp(d_all, d_loaded, (size_t)(ma - d_all)),
                      "listing every file hashes as all:\n%s\n%s", d_all, d_loaded);
        }
        /* a subset: another digest */
        _cleanup_free_ char *some = kiln_xasprintf("%s/src/a.py\n", dir);
        write_list(list, some);
        _cleanup_free_ char *d_some = tag_dict_of(y_loaded, dir, list, &err);
        CHECK(d_some && d_loaded && strcmp(d_some, d_loaded), "a subset hashes differently");
        /* flytekit compares source_root as written: a trailing '/' or a
         * relative root holds no module (md5 of nothing) */
        _cleanup_free_ char *y_slash = kiln_xasprintf("source_root: %s/src/\n", dir);
        static const char *const empty_roots[] = {NULL, "source_root: src\n"};
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *d =
                    tag_dict_of(empty_roots[i] ? empty_roots[i] : y_slash, dir, list, &err);
                CHECK(d && strstr(d, "'source_root': 'd41d8cd98f00b204e9800998ecf8427e'"),
                      "no module inside: %s", d ? d : err->msg);
        }
        /* a nested base takes the list too */
        _cleanup_free_ char *y_nested =
            kiln_xasprintf("name: top\nbase_image:\n  name: b\n  source_root: %s/src\n", dir);
        _cleanup_free_ char *d_nested = tag_dict_of(y_nested, dir, list, &err);
        CHECK(d_nested != NULL, "nested base with the list: %s", err ? err->msg : "");
        /* refused: a listed module missing, a relative line, no file */
        _cleanup_free_ char *gone = kiln_xasprintf("%s/src/a.py\n%s/src/gone.py\n", dir, dir);
        write_list(list, gone);
        kiln_err_clear(&err);
        CHECK(!tag_dict_of(y_loaded, dir, list, &err) && err && strstr(err->msg, "src/gone.py"),
              "a missing module is refused: %s", err ? err->msg : "");
        write_list(list, "/abs/ok.py\nrel/x.py\n");
        kiln_err_clear(&err);
        _cleanup_free_ char *at =
            kiln_xasprintf("%s:2: \"rel/x.py\" is not an absolute path", list);
        CHECK(!tag_dict_of(y_loaded, dir, list, &err) && err && err->domain == KILN_ERR_USAGE &&
                  strstr(err->msg, at),
              "a relative line is refused: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        _cleanup_free_ char *nofile = kiln_xasprintf("%s/no-such-list", dir);
        CHECK(!tag_dict_of(y_loaded, dir, nofile, &err) && err && strstr(err->msg, nofile),
              "a missing list is refused: %s", err ? err->msg : "");
        CHECK(kiln_rm_rf(dir, NULL) == 0, "cleanup");
}

int main(void)
{
        int rows, nbad;

        test_upstream();
        rows = test_vectors();
        CHECK(rows >= 30, "only %d vector rows", rows);
        printf("%d vector rows\n", rows);
        test_scalars();
        test_float_repr();
        test_bad();
        test_bounds();
        nbad = test_bad_files();
        printf("%d bad spec files\n", nbad);
        test_typed();
        test_builder();
        test_default_platform();
        test_hash_errors();
        test_stdin();
        test_missing_file();
        test_large_file();
        test_symlinks();
        test_loaded_modules();
        TEST_DONE();
}
