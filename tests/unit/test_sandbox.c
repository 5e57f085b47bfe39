/* Sandbox tests over a tiny busybox rootfs, in every mode (test_sandbox.h
 * re-runs this binary as unprivileged users). */
#include "test_sandbox.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static enum kiln_idmap mode;
static const char *base; /* per-run scratch directory */
static char lower[4096], lower2[4096];
static int case_no;

static const char *const applets[] = {
    "sh",       "ls",   "cat",    "id",    "mkdir", "rm",    "touch", "ln",   "chown", "mknod",
    "hostname", "ps",   "stat",   "echo",  "env",   "sort",  "wc",    "su",   "true",  "head",
    "pwd",      "kill", "printf", "sleep", "chmod", "false", "mount", "grep", "test",
};

static void write_text(const char *path, const char *text)
{
        struct kiln_err *e = NULL;
        if (kiln_write_file_atomic(path, text, strlen(text), 0644, &e) < 0) {
                fprintf(stderr, "test setup: %s\n", e->msg);
                exit(2);
        }
}

static void mkdirs(const char *path)
{
        struct kiln_err *e = NULL;
        if (kiln_mkdir_p(path, 0755, &e) < 0) {
                fprintf(stderr, "test setup: %s\n", e->msg);
                exit(2);
        }
}

static void build_rootfs(void)
{
        snprintf(lower, sizeof(lower), "%s/lower", base);
        snprintf(lower2, sizeof(lower2), "%s/lower2", base);
        char p[8192];
        const char *dirs[] = {"bin", "etc", "var", "data", "d", "tmp", "root"};
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", lower, dirs[i]);
                mkdirs(p);
        }
        snprintf(p, sizeof(p), "%s/tmp", lower);
        chmod(p, 01777);
        snprintf(p, sizeof(p), "%s/bin/busybox", lower);
        copy_file("/bin/busybox", p, 0755);
        for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
                snprintf(p, sizeof(p), "%s/bin/%s", lower, applets[i]);
                if (symlink("busybox", p) < 0)
                        die(p);
        }
        snprintf(p, sizeof(p), "%s/etc/passwd", lower);
        write_text(p, "root:x:0:0:root:/root:/bin/sh\n"
                      "user:x:1000:1000:user:/tmp:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
        snprintf(p, sizeof(p), "%s/etc/group", lower);
        write_text(p, "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n");
        snprintf(p, sizeof(p), "%s/data/keep.txt", lower);
        write_text(p, "keep\n");
        snprintf(p, sizeof(p), "%s/d/old.txt", lower);
        write_text(p, "old\n");
        /* a second, upper lower layer */
        snprintf(p, sizeof(p), "%s/etc", lower2);
        mkdirs(p);
        snprintf(p, sizeof(p), "%s/etc/motd", lower2);
        write_text(p, "from layer two\n");
}

/* Hash of a whole tree: names, types, modes, owners, contents, links. */
static void hash_tree(struct kiln_sha256 *h, const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                die(path);
        char meta[256];
        int n = snprintf(meta, sizeof(meta), "%s|%o|%u|%u|%lld\n", path + strlen(base),
                         (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid,
                         (long long)st.st_size);
        kiln_sha256_update(h, meta, (size_t)n);
        if (S_ISREG(st.st_mode)) {
                size_t len = 0;
                char *t = read_bytes(path, &len);
                if (!t)
                        die(path);
                kiln_sha256_update(h, t, len);
                free(t);
        } else if (S_ISLNK(st.st_mode)) {
                char l[4096];
                ssize_t ln = readlink(path, l, sizeof(l));
                if (ln > 0)
                        kiln_sha256_update(h, l, (size_t)ln);
        } else if (S_ISDIR(st.st_mode)) {
                struct dirent **ents = NULL;
                int cnt = scandir(path, &ents, NULL, alphasort);
                for (int i = 0; i < cnt; i++) {
                        if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) {
                                char *c = kiln_xasprintf("%s/%s", path, ents[i]->d_name);
                                hash_tree(h, c);
                                free(c);
                        }
                        free(ents[i]);
                }
                free(ents);
        }
}

static void tree_digest(const char *path, char out[KILN_DIGEST_MAX])
{
        struct kiln_sha256 *h = kiln_sha256_new();
        hash_tree(h, path);
        kiln_sha256_final(h, out);
        kiln_sha256_free(h);
}

/* Number of entries in a directory (recursively), -1 if missing. */
static int count_entries(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                n++;
                if (de->d_type == DT_DIR) {
                        char *c = kiln_xasprintf("%s/%s", path, de->d_name);
                        n += count_entries(c);
                        free(c);
                }
        }
        closedir(d);
        return n;
}

struct run {
        char upper[4096], work[4096];
        int status;
        int rc;
        char *out;
        struct kiln_err *err;
};

static void run_release(struct run *r)
{
        free(r->out);
        kiln_err_free(r->err);
}

/* Runs with fresh upper/work; captures kiln's stderr (the labelled output). */
static void run_opts(struct run *r, struct kiln_sandbox_opts *o)
{
        memset(r, 0, sizeof(*r));
        case_no++;
        snprintf(r->upper, sizeof(r->upper), "%s/case%d/upper", base, case_no);
        snprintf(r->work, sizeof(r->work), "%s/case%d/work", base, case_no);
        mkdirs(r->upper);
        mkdirs(r->work);
        char outpath[4096];
        snprintf(outpath, sizeof(outpath), "%s/case%d/out", base, case_no);
        static char *const default_lowers[2] = {lower2, lower};
        static char *const default_env[] = {"PATH=/bin", "HOME=/root", NULL};
        if (!o->lowers) {
                o->lowers = default_lowers;
                o->n_lowers = 2;
        }
        if (!o->env)
                o->env = default_env;
        if (!o->label)
                o->label = "[t] ";
        o->upper = r->upper;
        o->work = r->work;
        o->idmap = mode;
        r->rc = run_to_file(o, outpath, &r->status, &r->err);
        r->out = read_text(outpath);
        /* the scratch directory is gone and nothing stays mounted here */
        char casedir[4096];
        snprintf(casedir, sizeof(casedir), "%s/case%d", base, case_no);
        CHECK(count_entries(casedir) - count_entries(r->upper) - count_entries(r->work) == 3,
              "case %d: leftovers next to upper/work", case_no);
        char *mi = read_text("/proc/self/mountinfo");
        CHECK(mi && !strstr(mi, casedir), "case %d: a mount remains under %s", case_no, casedir);
        free(mi);
        if (r->rc < 0)
                fprintf(stderr, "  (case %d: %s)\n", case_no, r->err->msg);
}

static void run_sh(struct run *r, const char *script)
{
        char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .cwd = "/"};
        run_opts(r, &o);
}

static bool out_is(const struct run *r, const char *want)
{
        return r->out && !strcmp(r->out, want);
}

static bool is_whiteout(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

static void describe_xattrs(const char *path)
{
        char names[4096];
        ssize_t n = llistxattr(path, names, sizeof(names));
        printf("  observed [%s] xattrs on %s:", kiln_idmap_name(mode), path + strlen(base));
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
                char v[256] = "";
                ssize_t vl = lgetxattr(path, names + i, v, sizeof(v) - 1);
                bool text = vl > 0 && vl < 40;
                for (ssize_t j = 0; text && j < vl; j++)
                        text = v[j] >= 0x20 && v[j] < 0x7f;
                printf(" %s=%s", names + i, text ? v : "(binary)");
        }
        printf("\n");
}

static void test_basics(void)
{
        struct run r;
        run_sh(&r, "echo hi");
        CHECK(r.rc == 0 && r.status == 0, "echo: rc %d status %d", r.rc, r.status);
        CHECK(out_is(&r, "[t] hi\n"), "echo output \"%s\"", r.out);
        run_release(&r);

        run_sh(&r, "printf 'a\\nb'");
        CHECK(r.status == 0 && out_is(&r, "[t] a\n[t] b\n"), "partial line \"%s\"", r.out);
        run_release(&r);
        run_sh(&r, "echo err >&2");
        CHECK(r.status == 0 && out_is(&r, "[t] err\n"), "stderr \"%s\"", r.out);
        run_release(&r);

        run_sh(&r, "exit 3");
        CHECK(r.rc == 0 && r.status == 3, "exit 3: status %d", r.status);
        run_release(&r);

        run_sh(&r, "kill -9 $$");
        CHECK(r.rc == 0 && r.status == 137, "kill -9: status %d", r.status);
        run_release(&r);

        run_sh(&r, "id -u; id -g");
        CHECK(out_is(&r, "[t] 0\n[t] 0\n"), "id as root \"%s\"", r.out);
        run_release(&r);

        char *argv[] = {"/bin/sh", "-c", "id -u; id -g", NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .uid = 1000, .gid = 1000};
        run_opts(&r, &o);
        if (mode == KILN_IDMAP_SINGLE)
                CHECK(r.out && strstr(r.out, "running as root") && strstr(r.out, "[t] 0\n[t] 0\n"),
                      "id 1000 in single mode \"%s\"", r.out);
        else
                CHECK(out_is(&r, "[t] 1000\n[t] 1000\n"), "id 1000 \"%s\"", r.out);
        run_release(&r);

        run_sh(&r, "hostname");
        CHECK(out_is(&r, "[t] kiln\n"), "hostname \"%s\"", r.out);
        run_release(&r);
        char *hargv[] = {"/bin/hostname", NULL};
        struct kiln_sandbox_opts ho = {.argv = hargv, .hostname = "builder"};
        run_opts(&r, &ho);
        CHECK(out_is(&r, "[t] builder\n"), "custom hostname \"%s\"", r.out);
        run_release(&r);

        /* pid 1 is kiln's init, the rest is the command: nothing of the host */
        char *pargv[] = {"/bin/ps", "-o", "pid,comm", NULL};
        struct kiln_sandbox_opts po = {.argv = pargv};
        run_opts(&r, &po);
        CHECK(r.out && !strncmp(r.out, "[t] PID   COMMAND\n[t]     1 ", 28) &&
                  strstr(r.out, "\n[t]     2 ps\n") && !strstr(r.out, "\n[t]     3"),
              "ps \"%s\"", r.out);
        run_release(&r);

        run_sh(&r, "echo x > /dev/null && head -c 16 /dev/urandom | wc -c && ls /dev/pts/ptmx "
                   "&& test -L /dev/fd && test -d /dev/shm && cat /etc/motd");
        CHECK(r.status == 0 && r.out && strstr(r.out, "[t] 16\n") &&
                  strstr(r.out, "[t] from layer two\n"),
              "dev: status %d \"%s\"", r.status, r.out);
        CHECK(count_entries(r.upper) == 0, "dev: upper has %d entries", count_entries(r.upper));
        run_release(&r);

        /* the environment is exactly the given one; PATH from it finds env */
        char *eargv[] = {"env", NULL};
        char *env[] = {"PATH=/bin", "FOO=bar baz", "HOME=/root", NULL};
        struct kiln_sandbox_opts eo = {.argv = eargv, .env = env};
        run_opts(&r, &eo);
        CHECK(out_is(&r, "[t] PATH=/bin\n[t] FOO=bar baz\n[t] HOME=/root\n"), "env \"%s\"", r.out);
        run_release(&r);

        char *nargv[] = {"/no/such/program", NULL};
        struct kiln_sandbox_opts no = {.argv = nargv};
        run_opts(&r, &no);
        CHECK(r.rc < 0 && r.err && r.err->domain == KILN_ERR_BUILD &&
                  strstr(r.err->msg, "/no/such/program"),
              "exec failure: rc %d %s", r.rc, r.err ? r.err->msg : "");
        run_release(&r);
}

static void test_changes(void)
{
        struct run r;
        run_sh(&r, "echo new > /new.txt && rm /data/keep.txt && rm -rf /d && mkdir /d && "
                   "touch /d/n && touch /x");
        CHECK(r.status == 0, "changes: status %d \"%s\"", r.status, r.out);
        char p[8192];
        snprintf(p, sizeof(p), "%s/new.txt", r.upper);
        char *t = read_text(p);
        CHECK_STR(t, "new\n");
        free(t);
        snprintf(p, sizeof(p), "%s/data/keep.txt", r.upper);
        CHECK(is_whiteout(p), "no char 0/0 whiteout at %s", p);
        snprintf(p, sizeof(p), "%s/d", r.upper);
        char v[8] = "";
        const char *want =
            mode == KILN_IDMAP_HOST ? "trusted.overlay.opaque" : "user.overlay.opaque";
        ssize_t vl = lgetxattr(p, want, v, sizeof(v));
        CHECK(vl == 1 && v[0] == 'y', "%s on upper/d: %zd %s", want, vl, strerror(errno));
        describe_xattrs(p);
        snprintf(p, sizeof(p), "%s/data", r.upper); /* copied up for the whiteout */
        describe_xattrs(p);
        describe_xattrs(r.upper);
        snprintf(p, sizeof(p), "%s/data/keep.txt", r.upper);
        struct stat st;
        if (lstat(p, &st) == 0)
                printf("  observed [%s] whiteout: mode %o rdev %u:%u uid %u\n",
                       kiln_idmap_name(mode), (unsigned)st.st_mode, major(st.st_rdev),
                       minor(st.st_rdev), (unsigned)st.st_uid);
        snprintf(p, sizeof(p), "%s/d/old.txt", r.upper);
        CHECK(access(p, F_OK) < 0, "old.txt must not be in the upper");
        run_release(&r);

        /* the working directory is created and kept */
        char *argv[] = {"/bin/pwd", NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .cwd = "/srv/app/src"};
        run_opts(&r, &o);
        CHECK(out_is(&r, "[t] /srv/app/src\n"), "cwd \"%s\"", r.out);
        snprintf(p, sizeof(p), "%s/srv/app/src", r.upper);
        CHECK(access(p, F_OK) == 0, "cwd not kept in the upper");
        run_release(&r);
}

static void test_binds(void)
{
        struct run r;
        char p[8192];
        /* with the private network, resolv.conf names the user-mode
         * stack's DNS; with the host's, the host's resolv.conf is visible;
         * neither lands in the layer */
        char *cat_argv[] = {"/bin/sh", "-c", "cat /etc/resolv.conf", NULL};
        struct kiln_sandbox_opts po = {.argv = cat_argv, .cwd = "/"};
        run_opts(&r, &po);
        CHECK(r.status == 0 && out_is(&r, "[t] nameserver 10.0.2.3\n"),
              "private resolv.conf \"%s\"", r.out);
        CHECK(count_entries(r.upper) == 0, "private resolv.conf: upper has %d entries",
              count_entries(r.upper));
        run_release(&r);
        char *host_resolv = read_text("/etc/resolv.conf");
        if (host_resolv) {
                struct kiln_sandbox_opts ho = {
                    .argv = cat_argv, .cwd = "/", .network = KILN_NETWORK_HOST};
                run_opts(&r, &ho);
                struct kiln_buf want = {0};
                for (const char *l = host_resolv; *l;) {
                        const char *nl = strchr(l, '\n');
                        size_t len = nl ? (size_t)(nl - l) : strlen(l);
                        kiln_buf_puts(&want, "[t] ");
                        kiln_buf_append(&want, l, len);
                        kiln_buf_puts(&want, "\n");
                        l += len + (nl ? 1 : 0);
                }
                CHECK(r.status == 0 && r.out && (want.data ? !strcmp(r.out, want.data) : !*r.out),
                      "resolv.conf \"%s\"", r.out);
                kiln_buf_release(&want);
                CHECK(count_entries(r.upper) == 0, "resolv.conf: upper has %d entries",
                      count_entries(r.upper));
                run_release(&r);
        }
        free(host_resolv);

        /* a cache directory where the image has /var but not /var/cache */
        char cache[4096];
        snprintf(cache, sizeof(cache), "%s/hostcache", base);
        mkdirs(cache);
        snprintf(p, sizeof(p), "%s/in.txt", cache);
        write_text(p, "cached\n");
        snprintf(p, sizeof(p), "%s/secret", base);
        write_text(p, "s3cret\n");
        struct kiln_bind binds[] = {
            {.source = cache, .target = "/var/cache/kiln-test"},
            {.source = p, .target = "/run/secrets/token", .readonly = true},
            {.source = cache, .target = "/ro", .readonly = true},
        };
        char *argv[] = {"/bin/sh", "-c",
                        "cat /var/cache/kiln-test/in.txt /run/secrets/token && "
                        "echo out > /var/cache/kiln-test/out.txt && cat /ro/out.txt && "
                        "if echo x > /ro/f; then echo ro-writable; fi; "
                        "if echo x > /run/secrets/token; then echo secret-writable; fi",
                        NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .binds = binds, .n_binds = 3};
        run_opts(&r, &o);
        CHECK(r.rc == 0 && r.status == 0, "binds: rc %d status %d", r.rc, r.status);
        CHECK(r.out && strstr(r.out, "[t] cached\n[t] s3cret\n[t] out\n") &&
                  !strstr(r.out, "writable\n"),
              "binds output \"%s\"", r.out);
        char q[8192];
        snprintf(q, sizeof(q), "%s/out.txt", cache);
        char *t = read_text(q);
        CHECK_STR(t, "out\n");
        free(t);
        snprintf(q, sizeof(q), "%s/f", cache);
        CHECK(access(q, F_OK) < 0, "read-only bind was written");
        CHECK(count_entries(r.upper) == 0, "binds: upper has %d entries (want none)",
              count_entries(r.upper));
        run_release(&r);

        /* an image whose resolv.conf is a dangling symlink (systemd-resolved) */
        char dl[4096];
        snprintf(dl, sizeof(dl), "%s/lower-dangling/etc", base);
        mkdirs(dl);
        snprintf(dl, sizeof(dl), "%s/lower-dangling/etc/resolv.conf", base);
        if (symlink("../run/systemd/resolve/stub-resolv.conf", dl) < 0)
                die(dl);
        snprintf(dl, sizeof(dl), "%s/lower-dangling", base);
        char *lowers[] = {dl, lower};
        char *dargv[] = {"/bin/sh", "-c", "test -s /etc/resolv.conf && echo ok", NULL};
        struct kiln_sandbox_opts d = {.argv = dargv, .lowers = lowers, .n_lowers = 2};
        run_opts(&r, &d);
        if (access("/etc/resolv.conf", R_OK) == 0) {
                CHECK(out_is(&r, "[t] ok\n"), "dangling resolv.conf \"%s\"", r.out);
                CHECK(count_entries(r.upper) == 0, "dangling: upper has %d entries",
                      count_entries(r.upper));
        }
        run_release(&r);
}

static bool wait_for(const char *path, int ms)
{
        for (int i = 0; i < ms / 20; i++) {
                if (access(path, F_OK) == 0)
                        return true;
                usleep(20000);
        }
        return access(path, F_OK) == 0;
}

/* Daemons left behind die with the command; killing kiln kills the build. */
static void test_lifetime(void)
{
        char dir[4096], p[8192];
        snprintf(dir, sizeof(dir), "%s/life", base);
        mkdirs(dir);
        struct kiln_bind b = {.source = dir, .target = "/life"};
        char *argv[] = {"/bin/sh", "-c", "(sleep 1; touch /life/daemon-survived) & exit 0", NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .binds = &b, .n_binds = 1};
        struct run r;
        uint64_t t0 = kiln_now_ns();
        run_opts(&r, &o);
        CHECK(r.rc == 0 && r.status == 0, "daemon: rc %d status %d", r.rc, r.status);
        CHECK(kiln_now_ns() - t0 < 900000000ULL, "the run waited for the background process");
        run_release(&r);

        pid_t kiln = fork();
        if (kiln == 0) {
                char *largv[] = {"/bin/sh", "-c",
                                 "touch /life/started; sleep 1; touch /life/build-survived", NULL};
                struct kiln_sandbox_opts lo = {.argv = largv, .binds = &b, .n_binds = 1};
                struct run lr;
                run_opts(&lr, &lo);
                _exit(0);
        }
        snprintf(p, sizeof(p), "%s/started", dir);
        CHECK(wait_for(p, 5000), "the build did not start");
        kill(kiln, SIGTERM);
        waitpid(kiln, NULL, 0);
        case_no++; /* the child used one */
        usleep(1500000);
        snprintf(p, sizeof(p), "%s/daemon-survived", dir);
        CHECK(access(p, F_OK) < 0, "a daemon outlived its command");
        snprintf(p, sizeof(p), "%s/build-survived", dir);
        CHECK(access(p, F_OK) < 0, "the build outlived a killed kiln");
}

static void test_many_lowers(void)
{
        enum { N = 30 };
        char *lowers[N + 1];
        for (int i = 0; i < N; i++) {
                /* long names with ':' and ',' that the legacy syntax would break on */
                lowers[i] = kiln_xasprintf("%s/layer-sha256:%064d,%0100d", base, i, i);
                char *f = kiln_xasprintf("%s/f%d", lowers[i], i);
                mkdirs(lowers[i]);
                write_text(f, "x\n");
                free(f);
        }
        lowers[N] = lower;
        char *argv[] = {"/bin/sh", "-c", "cat /f0 /f29 | wc -l", NULL};
        struct kiln_sandbox_opts o = {.argv = argv, .lowers = lowers, .n_lowers = N + 1};
        struct run r;
        run_opts(&r, &o);
        CHECK(r.rc == 0 && out_is(&r, "[t] 2\n"), "many lowers: rc %d \"%s\"", r.rc, r.out);
        run_release(&r);
        for (int i = 0; i < N; i++)
                free(lowers[i]);
}

/* Ownership changes per mode; writes the upper path of a file chowned to
 * 1234:1234 into base/chowned for the host-side check. */
static void test_ownership(void)
{
        struct run r;
        char p[8192];
        run_sh(&r, "touch /f && chown 1234:1234 /f && su -s /bin/sh nobody -c true && "
                   "echo done");
        CHECK(r.rc == 0 && r.status == 0 && out_is(&r, "[t] done\n"),
              "chown/su in %s mode: status %d \"%s\"", kiln_idmap_name(mode), r.status, r.out);
        snprintf(p, sizeof(p), "%s/f", r.upper);
        struct stat st = {0};
        CHECK(lstat(p, &st) == 0, "upper/f missing");
        unsigned want = mode == KILN_IDMAP_SINGLE ? 0 : 1234;
        CHECK(st.st_uid == want && st.st_gid == want, "upper/f owned %u:%u, want %u",
              (unsigned)st.st_uid, (unsigned)st.st_gid, want);
        char rec[8192];
        snprintf(rec, sizeof(rec), "%s/chowned", base);
        write_text(rec, p);
        run_release(&r);

        if (mode == KILN_IDMAP_SINGLE) {
                /* without the filter the same commands fail: it is the filter */
                enum kiln_idmap saved = mode;
                mode = KILN_IDMAP_RANGE;
                run_sh(&r, "touch /f && chown 1234 /f");
                CHECK(r.rc == 0 && r.status != 0, "chown without filter: status %d", r.status);
                run_release(&r);
                run_sh(&r, "su -s /bin/sh nobody -c true");
                CHECK(r.rc == 0 && r.status != 0, "su without filter: status %d", r.status);
                run_release(&r);
                mode = saved;
                /* a device node is a no-op, a FIFO is real */
                run_sh(&r, "mknod /cdev c 1 3 && mknod /fifo p && test -p /fifo && "
                           "! test -e /cdev && echo ok");
                CHECK(out_is(&r, "[t] ok\n"), "mknod in single mode: \"%s\"", r.out);
                run_release(&r);
        } else if (mode == KILN_IDMAP_HOST) {
                /* no device nodes as real root (no device cgroup guards the
                 * host's disks); FIFOs are fine */
                run_sh(&r, "mknod /cdev c 1 3 2>/dev/null || echo refused; mknod /fifo p && "
                           "test -p /fifo && echo fifo");
                CHECK(out_is(&r, "[t] refused\n[t] fifo\n"), "mknod as root: \"%s\"", r.out);
                run_release(&r);
                /* capabilities beyond Docker's default set are gone, kernel
                 * knobs are read-only (this one is per UTS namespace anyway) */
                run_sh(&r, "mkdir /m && mount -t tmpfs none /m 2>/dev/null || echo refused; "
                           "echo x 2>/dev/null > /proc/sys/kernel/hostname || echo ro");
                CHECK(out_is(&r, "[t] refused\n[t] ro\n"), "caps: \"%s\"", r.out);
                run_release(&r);
        }
}

static int suite(void)
{
        printf("sandbox suite in %s mode (uid %u) under %s\n", kiln_idmap_name(mode),
               (unsigned)getuid(), base);
        build_rootfs();
        char before[KILN_DIGEST_MAX], after[KILN_DIGEST_MAX], before2[KILN_DIGEST_MAX],
            after2[KILN_DIGEST_MAX];
        tree_digest(lower, before);
        tree_digest(lower2, before2);
        test_basics();
        test_changes();
        test_binds();
        test_many_lowers();
        test_ownership();
        test_lifetime();
        tree_digest(lower, after);
        tree_digest(lower2, after2);
        CHECK_STR(after, before);
        CHECK_STR(after2, before2);
        TEST_DONE();
}

/* ---------- root: set up users and re-run as them ---------- */

static void run_as_user(const char *user, const char *env, const char *expect_mode)
{
        char *dir = run_as_user_in(user, env, expect_mode);
        /* host view of the file chowned to 1234 inside */
        char rec[4096];
        snprintf(rec, sizeof(rec), "%s/chowned", dir);
        char *path = read_text(rec);
        struct stat st2;
        if (path && lstat(path + 0, &st2) == 0) {
                unsigned long want = getpwnam(user)->pw_uid;
                if (!strcmp(expect_mode, "range"))
                        want = subid_start("/etc/subuid", user) + 1234 - 1;
                CHECK(st2.st_uid == want, "%s: host owner of chowned file %u, want %lu", user,
                      (unsigned)st2.st_uid, want);
                printf("  host view [%s]: chowned file owned by %u:%u\n", expect_mode,
                       (unsigned)st2.st_uid, (unsigned)st2.st_gid);
        } else {
                CHECK(false, "%s: chowned file record missing", user);
        }
        free(path);
        remove_dir(dir);
}

static void unprivileged_suites(void)
{
        if (!ensure_test_users())
                return;
        run_as_user("kilnsb-range", "", "range");
        run_as_user("kilnsb-single", "", "single");
        run_as_user("kilnsb-range", "KILN_USERNS=single", "single");
}

static void *idle_thread(void *arg)
{
        pause();
        return arg;
}

/* In a throwaway child: with a second thread, entering must fail. */
static bool threaded_enter_refused(void)
{
        pid_t pid = fork();
        if (pid == 0) {
                pthread_t t;
                pthread_create(&t, NULL, idle_thread, NULL);
                enum kiln_idmap m;
                struct kiln_err *e = NULL;
                int rc = kiln_userns_enter(&m, &e);
                _exit(rc < 0 && strstr(e->msg, "2 threads") ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 4 && !strcmp(argv[1], "--as-user")) {
                struct kiln_err *e = NULL;
                CHECK(threaded_enter_refused(), "kiln_userns_enter accepted a threaded process");
                if (kiln_userns_enter(&mode, &e) < 0) {
                        fprintf(stderr, "kiln_userns_enter: %s\n", e->msg);
                        return 1;
                }
                CHECK_STR(kiln_idmap_name(mode), argv[2]);
                enum kiln_idmap again;
                CHECK(kiln_userns_enter(&again, &e) == 0 && again == mode, "not idempotent");
                base = argv[3];
                return suite();
        }
        run_own_suite(&mode, &base, suite);
        if (geteuid() == 0)
                unprivileged_suites();
        TEST_DONE();
}
