#include "kiln/util.h"
#include "test.h"

static void test_digest(void)
{
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest("", 0, d);
        CHECK_STR(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        kiln_sha256_digest("abc", 3, d);
        CHECK_STR(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        static const struct {
                const char *in;
                int ok;
        } rows[] = {
            {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 1},
            {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", 0},
            {"sha256:e3b0c4", 0},
            {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0},
            {"md5:d41d8cd98f00b204e9800998ecf8427e", 0},
            {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g", 0},
            {"", 0},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_digest_validate(rows[i].in, &err);
                CHECK((rc == 0) == rows[i].ok, "validate(%s) = %d", rows[i].in, rc);
                CHECK(rows[i].ok || (err && err->domain == KILN_ERR_FORMAT), "error domain");
        }
}

static void test_err_chain(void)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        kiln_err_set(&err, KILN_ERR_AUTH, 401, "refused");
        kiln_err_set(&err, KILN_ERR_SYSTEM, 0, "second error is ignored");
        kiln_err_prefix(&err, "pull %s", "x");
        CHECK_STR(err->msg, "pull x: refused");
        CHECK(kiln_err_exit_code(err) == 4, "exit code %d", kiln_err_exit_code(err));
}

static void test_buf(void)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        for (int i = 0; i < 1000; i++)
                kiln_buf_printf(&b, "%d,", i);
        CHECK(b.len == 3890, "len %zu", b.len);
        CHECK(kiln_str_has_suffix(b.data, "998,999,"), "suffix");
}

static void test_shell_quote(void)
{
        static const struct {
                const char *in, *want;
        } rows[] = {
            {"jq", "'jq'"},         {"", "''"},
            {"it's", "'it'\\''s'"}, {"$(rm -rf /); `x`", "'$(rm -rf /); `x`'"},
            {"a b\nc", "'a b\nc'"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_buf_ struct kiln_buf b = {0};
                kiln_buf_shell_quote(&b, rows[i].in);
                CHECK_STR(b.data, rows[i].want);
        }
}

static void test_read_bound(void)
{
        char path[] = "/tmp/kiln-test-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        CHECK(kiln_write_all(fd, "0123456789", 10) == 0, "write");
        close(fd);
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_read_file(path, 9, &b, &err) < 0, "over-limit read must fail");
        CHECK(err && strstr(err->msg, "limit"), "error names the limit");
        kiln_err_clear(&err);
        kiln_buf_release(&b);
        CHECK(kiln_read_file(path, 10, &b, &err) == 0 && b.len == 10, "at-limit read");
        unlink(path);
}

int main(void)
{
        test_digest();
        test_err_chain();
        test_buf();
        test_read_bound();
        test_shell_quote();
        TEST_DONE();
}
