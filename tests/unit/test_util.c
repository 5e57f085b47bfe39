#include "kiln/util.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

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

static void test_strv_lookup(void)
{
        char *v[] = {"user.a=1:1", "user.ab=2:2", "user.a=3:3", "empty=", "noequals"};
        const struct {
                size_t n;
                const char *name, *want;
        } rows[] = {
            {5, "user.a", "3:3"},  /* the later entry wins */
            {2, "user.a", "1:1"},  /* only v[0..n) is looked at */
            {5, "user.ab", "2:2"}, /* a name is not a prefix match */
            {5, "user", NULL},     {5, "empty", ""}, {5, "noequals", NULL}, {0, "user.a", NULL},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                CHECK_STR(kiln_strv_lookup(v, rows[i].n, rows[i].name), rows[i].want);
}

static void test_loopback(void)
{
        static const struct {
                const char *in;
                bool want;
        } rows[] = {
            {"localhost", true},
            {"localhost:5000", true},
            {"LOCALHOST:5000", true},
            {"127.0.0.1:5000", true},
            {"127.0.0.1", true},
            {"127.1.2.3", true},
            {"[::1]:5000", true},
            {"[::1]", true},
            {"::1", true},
            {"10.0.0.1", false},
            {"10.0.0.1:5000", false},
            {"example.com:5000", false},
            {"localhost.example.com", false},
            {"128.0.0.1", false},
            {"[::2]:5000", false},
            {"", false},
            {"docker.io", false},
            {"127.0.0.1.nip.io", false},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                CHECK(kiln_host_is_loopback(rows[i].in) == rows[i].want, "loopback(%s) want %d",
                      rows[i].in, rows[i].want);
}

static void test_duration(void)
{
        static const struct {
                const char *in;
                long long ms;     /* -1: refused */
                const char *text; /* kiln_duration_format(ms) */
        } rows[] = {
            {"90s", 90000, "1m30s"},
            {"10m", 600000, "10m"},
            {"1h30m", 5400000, "1h30m"},
            {"1h", 3600000, "1h"},
            {"2d", 172800000, "2d"},
            {"500ms", 500, "500ms"},
            {"1s500ms", 1500, "1s500ms"},
            {"45", 45000, "45s"},
            {"0", 0, "0s"},
            {"0s", 0, "0s"},
            {"1m1m", 120000, "2m"},
            {"", -1, NULL},
            {"s", -1, NULL},
            {"10x", -1, NULL},
            {"5min", -1, NULL},
            {"1h30", -1, NULL},
            {"-5s", -1, NULL},
            {" 5s", -1, NULL},
            {"5s ", -1, NULL},
            {"1.5h", -1, NULL},
            {"99999999999999999999s", -1, NULL},
            {"36500d", 3153600000000LL, "36500d"},
            {"36501d", -1, NULL},
            {"36500d1ms", -1, NULL},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_err_ struct kiln_err *err = NULL;
                uint64_t ms = 7;
                int rc = kiln_duration_parse(rows[i].in, &ms, &err);
                if (rows[i].ms < 0) {
                        CHECK(rc < 0 && err && err->domain == KILN_ERR_USAGE &&
                                  strstr(err->msg, rows[i].in),
                              "\"%s\" refused with a usage error naming it", rows[i].in);
                        continue;
                }
                CHECK(rc == 0 && ms == (uint64_t)rows[i].ms, "\"%s\": rc %d, %llu ms, want %lld",
                      rows[i].in, rc, (unsigned long long)ms, rows[i].ms);
                _cleanup_free_ char *t = kiln_duration_format(ms);
                CHECK_STR(t, rows[i].text);
        }
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

/* A ".." inside RESOLVE_IN_ROOT fails with EAGAIN whenever any rename or
 * mount on the system races the lookup; parallel builds do both, and CI
 * once failed a sandbox mount on exactly that. A child renames in a loop
 * while the lookups run: the raw syscall shows the race is real here, and
 * kiln_open_in_root must never surface it. */
static void test_open_in_root_races(void)
{
        char root[] = "/tmp/kiln-test-XXXXXX";
        CHECK(mkdtemp(root) != NULL, "mkdtemp");
        char p[4200];
        snprintf(p, sizeof(p), "%s/a", root);
        CHECK(mkdir(p, 0755) == 0, "mkdir a");
        snprintf(p, sizeof(p), "%s/b", root);
        CHECK(mkdir(p, 0755) == 0, "mkdir b");
        snprintf(p, sizeof(p), "%s/x", root);
        close(open(p, O_CREAT | O_WRONLY, 0644));
        int rootfd = open(root, O_PATH | O_DIRECTORY);
        CHECK(rootfd >= 0, "open root");

        pid_t renamer = fork();
        if (renamer == 0) {
                char x[4200], y[4200];
                snprintf(x, sizeof(x), "%s/x", root);
                snprintf(y, sizeof(y), "%s/y", root);
                for (;;) {
                        rename(x, y);
                        rename(y, x);
                }
        }
        CHECK(renamer > 0, "fork");
        int raw_eagain = 0, failed = 0;
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
        for (int i = 0; i < 100000; i++) {
                int fd = (int)syscall(SYS_openat2, rootfd, "a/../b", &how, sizeof(how));
                if (fd < 0 && errno == EAGAIN)
                        raw_eagain++;
                else if (fd >= 0)
                        close(fd);
                fd = kiln_open_in_root(rootfd, "/a/../../b", O_PATH | O_DIRECTORY);
                if (fd < 0)
                        failed++;
                else
                        close(fd);
        }
        kill(renamer, SIGKILL);
        waitpid(renamer, NULL, 0);
        fprintf(stderr, "  raw openat2 EAGAIN under renames: %d of 100000\n", raw_eagain);
        CHECK(failed == 0, "kiln_open_in_root failed %d times (errno %d)", failed, errno);
        close(rootfd);
        CHECK(kiln_rm_rf(root, NULL) == 0, "cleanup");
}

static void redacts(const char *in, const char *want)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_put_redacted(&b, in, strlen(in));
        const char *got = b.data ? b.data : "";
        CHECK(!strcmp(got, want), "%s -> %s, want %s", in, got, want);
}

/* URL credentials are replaced wherever a URL sits in the text; nothing
 * else changes. */
static void test_redact(void)
{
        redacts("pkg @ https://user:pa55@host/x.whl", "pkg @ https://***@host/x.whl");
        redacts("https://tok@github.com/o/r", "https://***@github.com/o/r");
        redacts("git+https://u:p@h:8443/r.git@v1.0#egg=x",
                "git+https://***@h:8443/r.git@v1.0#egg=x");
        redacts("a http://u:p@h b http://h2/ c ftp://x:y@z",
                "a http://***@h b http://h2/ c ftp://***@z");
        redacts("'http://u:p@h'", "'http://***@h'");
        redacts("p@ss http://h/p@ath?q=a@b", "p@ss http://h/p@ath?q=a@b"); /* @ after the host */
        redacts("user:pass@host no scheme", "user:pass@host no scheme");
        redacts("http://u:p@h", "http://***@h");
        redacts("http://a@b@h/x", "http://***@h/x"); /* the last @ ends it */
        redacts("trailing ://", "trailing ://");
        redacts("", "");
}

int main(void)
{
        test_open_in_root_races();
        test_digest();
        test_err_chain();
        test_buf();
        test_read_bound();
        test_shell_quote();
        test_strv_lookup();
        test_loopback();
        test_duration();
        test_redact();
        TEST_DONE();
}
