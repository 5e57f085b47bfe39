/* Layer unpacking (hostile input included) and snapshots. Tar layers are
 * built here with libarchive's own gzip/zstd filters, so the module's
 * decompressors are checked against an independent encoder. The layer
 * writers are tested in test_archive_write.c. */
#include "test_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <zlib.h>

/* ---------- building layers ---------- */

struct ent {
        const char *path;
        char type; /* f file, d dir, l symlink, h hardlink, p fifo, c chardev, b blockdev */
        int mode;
        const char *data; /* file content, or symlink/hardlink target */
        int64_t mtime;
        const char *xname, *xval;
        int uid, gid;
};

static la_ssize_t buf_write_cb(struct archive *a, void *ud, const void *p, size_t n)
{
        (void)a;
        kiln_buf_append(ud, p, n);
        return (la_ssize_t)n;
}

static void build_tar(const struct ent *ents, size_t n, enum kiln_compression comp,
                      struct kiln_buf *out)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (comp == KILN_COMP_GZIP)
                archive_write_add_filter_gzip(a);
        else if (comp == KILN_COMP_ZSTD)
                archive_write_add_filter_zstd(a);
        else
                archive_write_add_filter_none(a);
        archive_write_set_bytes_in_last_block(a, 1);
        archive_write_open2(a, out, NULL, buf_write_cb, NULL, NULL);
        for (size_t i = 0; i < n; i++) {
                const struct ent *t = &ents[i];
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, t->path);
                archive_entry_set_perm(e, t->mode ? t->mode : (t->type == 'd' ? 0755 : 0644));
                archive_entry_set_mtime(e, t->mtime ? t->mtime : 1000, 0);
                archive_entry_set_uid(e, t->uid);
                archive_entry_set_gid(e, t->gid);
                size_t size = 0;
                switch (t->type) {
                case 'f':
                        archive_entry_set_filetype(e, AE_IFREG);
                        size = t->data ? strlen(t->data) : 0;
                        break;
                case 'd':
                        archive_entry_set_filetype(e, AE_IFDIR);
                        break;
                case 'l':
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, t->data);
                        break;
                case 'h':
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, t->data);
                        break;
                case 'p':
                        archive_entry_set_filetype(e, AE_IFIFO);
                        break;
                case 'c':
                        archive_entry_set_filetype(e, AE_IFCHR);
                        archive_entry_set_rdevmajor(e, 1);
                        archive_entry_set_rdevminor(e, 3);
                        break;
                case 'b':
                        archive_entry_set_filetype(e, AE_IFBLK);
                        archive_entry_set_rdevmajor(e, 7);
                        archive_entry_set_rdevminor(e, 0);
                        break;
                }
                archive_entry_set_size(e, (la_int64_t)size);
                if (t->xname)
                        archive_entry_xattr_add_entry(e, t->xname, t->xval, strlen(t->xval));
                archive_write_header(a, e);
                if (size)
                        archive_write_data(a, t->data, size);
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
}

static int mem_fd(const void *p, size_t n)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/blob-XXXXXX", tmp);
        int fd = mkstemp(path);
        kiln_write_all(fd, p, n);
        unlink(path);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

/* Builds the layer, unpacks it onto rootfd; diff_id computed from the
 * uncompressed build unless given. */
static int unpack_ents(int rootfd, const struct ent *ents, size_t n, enum kiln_compression comp,
                       const char *mt, const char *diff_id, struct kiln_unpack_stats *st,
                       struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf plain = {0}, blob = {0};
        build_tar(ents, n, KILN_COMP_NONE, &plain);
        build_tar(ents, n, comp, &blob);
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(plain.data, plain.len, d);
        _cleanup_close_ int fd = mem_fd(blob.data, blob.len);
        struct kiln_unpack_stats local = {0};
        return kiln_archive_unpack(rootfd, fd, mt ? mt : mt_of(comp), diff_id ? diff_id : d,
                                   "test-layer", st ? st : &local, err);
}

static char *read_text(const char *path)
{
        struct kiln_buf b = {0};
        struct kiln_err *e = NULL;
        if (kiln_read_file(path, 1 << 20, &b, &e) < 0) {
                kiln_err_free(e);
                return NULL;
        }
        return kiln_buf_steal(&b);
}

/* ---------- unpack ---------- */

static const struct ent layer1[] = {
    {"./", 'd', 0755, NULL, 3000, NULL, NULL, 0, 0},
    {"./etc/", 'd', 0755, NULL, 2000, NULL, NULL, 0, 0},
    {"./etc/passwd", 'f', 0644, "root:x:0:0\n", 1000, NULL, NULL, 0, 0},
    {"./etc/hl", 'h', 0, "etc/passwd", 0, NULL, NULL, 0, 0},
    {"./etc/owned", 'f', 0600, "o", 1500, NULL, NULL, 1234, 5678},
    {"./etc/xattr", 'f', 0644, "x", 0, "user.kiln.test", "hello", 0, 0},
    {"./bin/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"./bin/suid", 'f', 04755, "#!", 0, NULL, NULL, 0, 0},
    {"./tmp/", 'd', 01777, NULL, 0, NULL, NULL, 0, 0},
    {"./lnk", 'l', 0777, "etc/passwd", 1100, NULL, NULL, 0, 0},
    {"./run/fifo", 'p', 0600, NULL, 0, NULL, NULL, 0, 0}, /* parent not listed */
    {"./dev/null", 'c', 0666, NULL, 0, NULL, NULL, 0, 0},
    {"./dev/loop0", 'b', 0666, NULL, 0, NULL, NULL, 0, 0},
    {"./dev/null2", 'h', 0, "dev/null", 0, NULL, NULL, 0, 0},
    {"./was-file", 'f', 0644, "f", 0, NULL, NULL, 0, 0},
    {"./gone", 'f', 0644, "bye", 0, NULL, NULL, 0, 0},
    {"./gonedir/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"./gonedir/f", 'f', 0644, "f", 0, NULL, NULL, 0, 0},
    {"./opq/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"./opq/old", 'f', 0644, "old", 0, NULL, NULL, 0, 0},
    {"./opq/olddir/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"./opq/olddir/x", 'f', 0644, "x", 0, NULL, NULL, 0, 0},
    {"./file2dir", 'f', 0644, "f", 0, NULL, NULL, 0, 0},
    {"./dir2file/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"./dir2file/child", 'f', 0644, "c", 0, NULL, NULL, 0, 0},
    {"./keepdir/", 'd', 0700, NULL, 0, NULL, NULL, 0, 0},
    {"./keepdir/lower", 'f', 0644, "l", 0, NULL, NULL, 0, 0},
};

static const struct ent layer2[] = {
    {".wh.gone", 'f', 0, NULL, 0, NULL, NULL, 0, 0},
    {".wh.gonedir", 'f', 0, NULL, 0, NULL, NULL, 0, 0},
    {".wh.never-existed", 'f', 0, NULL, 0, NULL, NULL, 0, 0},
    {"opq/", 'd', 0750, NULL, 4000, NULL, NULL, 0, 0},
    {"opq/new-before", 'f', 0644, "nb", 0, NULL, NULL, 0, 0},
    {"opq/.wh..wh..opq", 'f', 0, NULL, 0, NULL, NULL, 0, 0},
    {"opq/new", 'f', 0644, "new", 0, NULL, NULL, 0, 0},
    {"file2dir/", 'd', 0711, NULL, 0, NULL, NULL, 0, 0},
    {"file2dir/in", 'f', 0644, "in", 0, NULL, NULL, 0, 0},
    {"dir2file", 'f', 0600, "now a file", 0, NULL, NULL, 0, 0},
    {"keepdir/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
    {"etc/passwd", 'f', 0644, "root:x:0:0:new\n", 0, NULL, NULL, 0, 0},
    {"was-file", 'c', 0666, NULL, 0, NULL, NULL, 0, 0},
};

static const struct ent layer3[] = {
    {"lnk", 'l', 0777, "bin/suid", 0, NULL, NULL, 0, 0},
    {"plain", 'f', 0644, "uncompressed", 0, NULL, NULL, 0, 0},
};

static void check_layers_applied(const char *r)
{
        char p[512];
        struct stat st;
#define P(x) (snprintf(p, sizeof(p), "%s/%s", r, x), p)
        _cleanup_free_ char *pw = read_text(P("etc/passwd"));
        CHECK_STR(pw, "root:x:0:0:new\n");
        /* the hardlink was made in layer 1; layer 2 replaced etc/passwd with a
         * new file, so etc/hl keeps the old content */
        _cleanup_free_ char *hl = read_text(P("etc/hl"));
        CHECK_STR(hl, "root:x:0:0\n");
        CHECK(stat(P("etc/owned"), &st) == 0 && (!is_root || st.st_uid == 1234) &&
                  (!is_root || st.st_gid == 5678) && (st.st_mode & 07777) == 0600 &&
                  st.st_mtime == 1500,
              "etc/owned uid %u gid %u mode %o mtime %ld", st.st_uid, st.st_gid, st.st_mode,
              (long)st.st_mtime);
        char xv[64] = {0};
        CHECK(getxattr(P("etc/xattr"), "user.kiln.test", xv, sizeof(xv)) == 5 &&
                  !strcmp(xv, "hello"),
              "xattr user.kiln.test = \"%s\"", xv);
        CHECK(stat(P("bin/suid"), &st) == 0 && (st.st_mode & 07777) == 04755, "suid mode %o",
              st.st_mode & 07777);
        CHECK(stat(P("tmp"), &st) == 0 && (st.st_mode & 07777) == 01777, "tmp mode %o",
              st.st_mode & 07777);
        char target[64] = {0};
        CHECK(readlink(P("lnk"), target, sizeof(target) - 1) > 0, "lnk readlink");
        CHECK_STR(target, "bin/suid");
        CHECK(stat(P("run/fifo"), &st) == 0 && S_ISFIFO(st.st_mode), "run/fifo is a fifo");
        /* device nodes are never created, in any mode: no entry at all,
         * and the file a later layer's device replaced is gone */
        CHECK(lstat(P("dev/null"), &st) < 0 && errno == ENOENT, "dev/null exists");
        CHECK(lstat(P("dev/loop0"), &st) < 0 && errno == ENOENT, "dev/loop0 exists");
        CHECK(lstat(P("dev/null2"), &st) < 0 && errno == ENOENT, "link to dev/null exists");
        CHECK(lstat(P("was-file"), &st) < 0 && errno == ENOENT, "was-file exists");
        CHECK(stat(P("dev"), &st) == 0 && S_ISDIR(st.st_mode), "dev/ (their parent) missing");
        CHECK(!exists(P("gone")), "whiteout removed gone");
        CHECK(!exists(P("gonedir")), "whiteout removed gonedir");
        CHECK(!exists(P("opq/old")) && !exists(P("opq/olddir")), "opaque removed lower entries");
        CHECK(exists(P("opq/new")) && exists(P("opq/new-before")),
              "opaque kept this layer's entries");
        CHECK(stat(P("opq"), &st) == 0 && (st.st_mode & 07777) == 0750 && st.st_mtime == 4000,
              "opq mode %o mtime %ld", st.st_mode & 07777, (long)st.st_mtime);
        CHECK(stat(P("file2dir"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0711 &&
                  exists(P("file2dir/in")),
              "file replaced by a directory");
        _cleanup_free_ char *d2f = read_text(P("dir2file"));
        CHECK_STR(d2f, "now a file");
        CHECK(exists(P("keepdir/lower")), "dir over dir keeps contents");
        CHECK(stat(P("keepdir"), &st) == 0 && (st.st_mode & 0777) == 0755,
              "dir over dir updates mode: %o", st.st_mode & 0777);
        _cleanup_free_ char *plain = read_text(P("plain"));
        CHECK_STR(plain, "uncompressed");
#undef P
}

static void test_unpack_layers(bool fallback)
{
        kiln_archive_force_no_openat2 = fallback;
        _cleanup_free_ char *r = mkroot(fallback ? "unpack-fallback" : "unpack");
        _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_unpack_stats st = {0};
        CHECK(unpack_ents(rootfd, layer1, sizeof(layer1) / sizeof(layer1[0]), KILN_COMP_GZIP, NULL,
                          NULL, &st, &err) == 0,
              "layer1: %s", err ? err->msg : "");
        CHECK(st.entries == sizeof(layer1) / sizeof(layer1[0]), "entries %lu",
              (unsigned long)st.entries);
        _cleanup_free_ char *hl = kiln_xasprintf("%s/etc/hl", r);
        _cleanup_free_ char *pw = kiln_xasprintf("%s/etc/passwd", r);
        struct stat a, b;
        CHECK(stat(hl, &a) == 0 && stat(pw, &b) == 0 && a.st_ino == b.st_ino,
              "hardlink shares the inode");
        /* directory mtimes are set after their contents */
        _cleanup_free_ char *etc = kiln_xasprintf("%s/etc", r);
        CHECK(stat(etc, &a) == 0 && a.st_mtime == 2000, "etc mtime %ld", (long)a.st_mtime);
        CHECK(stat(r, &a) == 0 && a.st_mtime == 3000, "root mtime %ld", (long)a.st_mtime);
        CHECK(lstat(pw, &a) == 0 && a.st_mtime == 1000, "file mtime %ld", (long)a.st_mtime);
        _cleanup_free_ char *lnk = kiln_xasprintf("%s/lnk", r);
        CHECK(lstat(lnk, &a) == 0 && a.st_mtime == 1100, "symlink mtime %ld", (long)a.st_mtime);
        CHECK(st.skipped_devices == 3, "%lu device nodes left out, want 3",
              (unsigned long)st.skipped_devices);
        CHECK(!is_root || st.ownership_lost == 0, "as root no owner is lost");
        kiln_err_clear(&err);
        CHECK(unpack_ents(rootfd, layer2, sizeof(layer2) / sizeof(layer2[0]), KILN_COMP_ZSTD, NULL,
                          NULL, NULL, &err) == 0,
              "layer2: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        CHECK(unpack_ents(rootfd, layer3, sizeof(layer3) / sizeof(layer3[0]), KILN_COMP_NONE, NULL,
                          NULL, NULL, &err) == 0,
              "layer3: %s", err ? err->msg : "");
        check_layers_applied(r);
        kiln_archive_force_no_openat2 = false;
}

static void test_unpack_capability(void)
{
        if (!is_root) {
                printf("SKIP security.capability (not root)\n");
                return;
        }
        /* vfs_cap_data revision 2: cap_net_bind_service (10) permitted+effective */
        static const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};
        struct archive_entry *e = archive_entry_new();
        struct kiln_buf plain = {0};
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_open2(a, &plain, NULL, buf_write_cb, NULL, NULL);
        archive_entry_set_pathname(e, "ping");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0755);
        archive_entry_set_size(e, 0);
        archive_entry_xattr_add_entry(e, "security.capability", cap, sizeof(cap));
        archive_write_header(a, e);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
        _cleanup_free_ char *r = mkroot("cap");
        _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
        _cleanup_close_ int fd = mem_fd(plain.data, plain.len);
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_archive_unpack(rootfd, fd, KILN_MT_OCI_LAYER, NULL, "cap", NULL, &err) == 0,
              "%s", err ? err->msg : "");
        _cleanup_free_ char *p = kiln_xasprintf("%s/ping", r);
        unsigned char got[64];
        ssize_t n = getxattr(p, "security.capability", got, sizeof(got));
        CHECK(n == 20 && !memcmp(got, cap, 20), "security.capability kept (%zd bytes)", n);
        kiln_buf_release(&plain);
}

static int write_proc(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY);
        if (fd < 0)
                return -1;
        int rc = kiln_write_all(fd, s, strlen(s));
        close(fd);
        return rc;
}

/* Root in a user namespace that maps one id: chown to other ids fails with
 * EINVAL (counted, not fatal); device nodes are left out as everywhere. */
static void test_unpack_single_id_userns(void)
{
        if (!is_root) {
                printf("SKIP single-id user namespace (not root)\n");
                return;
        }
        _cleanup_free_ char *r = mkroot("userns");
        pid_t pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWUSER) < 0 || write_proc("/proc/self/setgroups", "deny") < 0 ||
                    write_proc("/proc/self/uid_map", "0 0 1") < 0 ||
                    write_proc("/proc/self/gid_map", "0 0 1") < 0)
                        _exit(77);
                int rootfd = open(r, O_RDONLY | O_DIRECTORY);
                struct kiln_err *err = NULL;
                struct kiln_unpack_stats st = {0};
                int rc = unpack_ents(rootfd, layer1, sizeof(layer1) / sizeof(layer1[0]),
                                     KILN_COMP_GZIP, NULL, NULL, &st, &err);
                if (rc < 0)
                        fprintf(stderr, "userns unpack: %s\n", err->msg);
                _exit(rc < 0 ? 1 : st.skipped_devices != 3 ? 2 : st.ownership_lost != 1 ? 3 : 0);
        }
        int status = -1;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                printf("SKIP single-id user namespace (unshare refused)\n");
                return;
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "userns child status %d",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        _cleanup_free_ char *dev = kiln_xasprintf("%s/dev/null", r);
        _cleanup_free_ char *owned = kiln_xasprintf("%s/etc/owned", r);
        _cleanup_free_ char *suid = kiln_xasprintf("%s/bin/suid", r);
        struct stat st;
        CHECK(!exists(dev), "device created in a single-id namespace?");
        CHECK(stat(owned, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0600,
              "owned: uid %u mode %o", st.st_uid, st.st_mode & 07777);
        CHECK(stat(suid, &st) == 0 && (st.st_mode & 07777) == 04755, "suid mode %o",
              st.st_mode & 07777);
}

struct hostile {
        const char *name;
        struct ent ents[3];
        size_t n;
        const char *blame; /* entry the error must name */
};

static void test_unpack_hostile(bool fallback)
{
        kiln_archive_force_no_openat2 = fallback;
        _cleanup_free_ char *sentinel = mkroot("sentinel");
        _cleanup_free_ char *rel_sentinel = kiln_xasprintf("../../../../../../..%s", sentinel);
        char long_name[300], long_path[4200];
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        for (size_t i = 0; i + 1 < sizeof(long_path); i++)
                long_path[i] = i % 2 ? '/' : 'b';
        long_path[sizeof(long_path) - 1] = '\0';
        const struct hostile cases[] = {
            {"dotdot", {{"../x", 'f', 0644, "x", 0, NULL, NULL, 0, 0}}, 1, "../x"},
            {"absolute", {{"/abs", 'f', 0644, "x", 0, NULL, NULL, 0, 0}}, 1, "/abs"},
            {"inner dotdot", {{"a/../../x", 'f', 0644, "x", 0, NULL, NULL, 0, 0}}, 1, "a/../../x"},
            {"symlink parent (absolute)",
             {{"evil", 'l', 0777, sentinel, 0, NULL, NULL, 0, 0},
              {"evil/x", 'f', 0644, "pwned", 0, NULL, NULL, 0, 0}},
             2,
             "evil/x"},
            {"symlink parent (relative)",
             {{"evil", 'l', 0777, rel_sentinel, 0, NULL, NULL, 0, 0},
              {"evil/x", 'f', 0644, "pwned", 0, NULL, NULL, 0, 0}},
             2,
             "evil/x"},
            {"symlink parent (dotdot)",
             {{"evil", 'l', 0777, "../../../../../../../../tmp", 0, NULL, NULL, 0, 0},
              {"evil/kiln-layer-escape", 'f', 0644, "pwned", 0, NULL, NULL, 0, 0}},
             2,
             "evil/kiln-layer-escape"},
            {"hardlink out", {{"hl", 'h', 0, "../../etc/passwd", 0, NULL, NULL, 0, 0}}, 1, "hl"},
            {"hardlink absolute", {{"hl", 'h', 0, "/etc/passwd", 0, NULL, NULL, 0, 0}}, 1, "hl"},
            {"hardlink via symlink",
             {{"etcl", 'l', 0777, "/etc", 0, NULL, NULL, 0, 0},
              {"hl", 'h', 0, "etcl/passwd", 0, NULL, NULL, 0, 0}},
             2,
             "hl"},
            {"whiteout dotdot", {{"a/.wh...", 'f', 0, NULL, 0, NULL, NULL, 0, 0}}, 1, "a/.wh..."},
            /* malformed rather than hostile: still the layer's fault (exit 7) */
            {"hardlink via symlink to nothing",
             {{"d/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
              {"dl", 'l', 0777, "d", 0, NULL, NULL, 0, 0},
              {"hl", 'h', 0, "dl/missing", 0, NULL, NULL, 0, 0}},
             3,
             "hl"},
            {"hardlink to a directory",
             {{"d/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
              {"hl", 'h', 0, "d", 0, NULL, NULL, 0, 0}},
             2,
             "hl"},
            {"name too long", {{long_name, 'f', 0644, "x", 0, NULL, NULL, 0, 0}}, 1, "aaaaaaaa"},
            {"path too long", {{long_path, 'f', 0644, "x", 0, NULL, NULL, 0, 0}}, 1, "b/b/b/b"},
            {"parent through a symlink to a long name",
             {{"p", 'l', 0777, long_name, 0, NULL, NULL, 0, 0},
              {"p/x", 'f', 0644, "x", 0, NULL, NULL, 0, 0}},
             2,
             "p/x"},
            {"symlink target too long", {{"l", 'l', 0777, long_path, 0, NULL, NULL, 0, 0}}, 1, "l"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct hostile *c = &cases[i];
                _cleanup_free_ char *r = mkroot("hostile");
                _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = unpack_ents(rootfd, c->ents, c->n, KILN_COMP_GZIP, NULL, NULL, NULL, &err);
                CHECK(rc < 0, "%s%s: accepted", c->name, fallback ? " (fallback)" : "");
                CHECK(err && err->domain == KILN_ERR_FORMAT,
                      "%s%s: a malformed layer (exit 7), not domain %s: %s", c->name,
                      fallback ? " (fallback)" : "", err ? kiln_err_domain_name(err->domain) : "-",
                      err ? err->msg : "(none)");
                CHECK(err && strstr(err->msg, c->blame) && strstr(err->msg, "test-layer"),
                      "%s: error \"%s\" names the entry %s and the layer", c->name,
                      err ? err->msg : "(none)", c->blame);
                DIR *d = opendir(sentinel);
                int n = 0;
                struct dirent *de;
                while (d && (de = readdir(d)))
                        n += de->d_name[0] != '.';
                if (d)
                        closedir(d);
                CHECK(n == 0, "%s: wrote into the sentinel outside the root", c->name);
                CHECK(!exists("/tmp/kiln-layer-escape"), "%s: escaped to /tmp", c->name);
                unlink("/tmp/kiln-layer-escape");
        }
        kiln_archive_force_no_openat2 = false;
}

/* Symlinks inside the root are followed as the container would see them. */
static void test_unpack_symlink_inside(bool fallback)
{
        kiln_archive_force_no_openat2 = fallback;
        const struct ent ents[] = {
            {"real/", 'd', 0755, NULL, 0, NULL, NULL, 0, 0},
            {"alias", 'l', 0777, "real", 0, NULL, NULL, 0, 0},
            {"abs", 'l', 0777, "/real", 0, NULL, NULL, 0, 0},
            {"up", 'l', 0777, "../../real", 0, NULL, NULL, 0, 0},
            {"alias/f", 'f', 0644, "f", 0, NULL, NULL, 0, 0},
            {"abs/g", 'f', 0644, "g", 0, NULL, NULL, 0, 0},
            {"up/h", 'f', 0644, "h", 0, NULL, NULL, 0, 0},
            {"hl", 'h', 0, "alias/f", 0, NULL, NULL, 0, 0},
        };
        _cleanup_free_ char *r = mkroot("inside");
        _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(unpack_ents(rootfd, ents, sizeof(ents) / sizeof(ents[0]), KILN_COMP_GZIP, NULL, NULL,
                          NULL, &err) == 0,
              "inside%s: %s", fallback ? " (fallback)" : "", err ? err->msg : "");
        const char *want[] = {"real/f", "real/g", "real/h", "hl"};
        for (size_t i = 0; i < 4; i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", r, want[i]);
                struct stat st;
                CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode), "%s exists%s", want[i],
                      fallback ? " (fallback)" : "");
        }
        kiln_archive_force_no_openat2 = false;
}

static void test_unpack_digest_and_magic(void)
{
        const struct ent ents[] = {{"f", 'f', 0644, "data", 0, NULL, NULL, 0, 0}};
        static const char *zero =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        struct {
                const char *name;
                enum kiln_compression built;
                const char *declared;
                const char *diff_id;
                enum kiln_err_domain want;
        } rows[] = {
            {"diff_id mismatch gzip", KILN_COMP_GZIP, NULL, zero, KILN_ERR_DIGEST},
            {"diff_id mismatch zstd", KILN_COMP_ZSTD, NULL, zero, KILN_ERR_DIGEST},
            {"diff_id mismatch tar", KILN_COMP_NONE, NULL, zero, KILN_ERR_DIGEST},
            {"gzip declared zstd", KILN_COMP_GZIP, KILN_MT_OCI_LAYER_ZSTD, NULL, KILN_ERR_FORMAT},
            {"zstd declared gzip", KILN_COMP_ZSTD, KILN_MT_OCI_LAYER_GZIP, NULL, KILN_ERR_FORMAT},
            {"tar declared gzip", KILN_COMP_NONE, KILN_MT_DOCKER_LAYER, NULL, KILN_ERR_FORMAT},
            {"gzip declared tar", KILN_COMP_GZIP, KILN_MT_OCI_LAYER, NULL, KILN_ERR_FORMAT},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_free_ char *r = mkroot("digest");
                _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = unpack_ents(rootfd, ents, 1, rows[i].built, rows[i].declared,
                                     rows[i].diff_id, NULL, &err);
                CHECK(rc < 0 && err && err->domain == rows[i].want, "%s: rc %d domain %d (%s)",
                      rows[i].name, rc, err ? (int)err->domain : 0, err ? err->msg : "");
        }
        /* a truncated gzip stream is an error, not a short layer */
        _cleanup_buf_ struct kiln_buf blob = {0};
        build_tar(ents, 1, KILN_COMP_GZIP, &blob);
        _cleanup_close_ int fd = mem_fd(blob.data, blob.len - 12);
        _cleanup_free_ char *r = mkroot("digest");
        _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_archive_unpack(rootfd, fd, KILN_MT_OCI_LAYER_GZIP, NULL, "trunc", NULL, &err) <
                  0,
              "truncated gzip accepted");
}

/* ---------- snapshots ---------- */

static void put_layer(const struct ent *ents, size_t n, enum kiln_compression comp,
                      struct kiln_descriptor *d, char diff_id[KILN_DIGEST_MAX])
{
        _cleanup_buf_ struct kiln_buf plain = {0}, blob = {0};
        build_tar(ents, n, KILN_COMP_NONE, &plain);
        build_tar(ents, n, comp, &blob);
        kiln_sha256_digest(plain.data, plain.len, diff_id);
        char dg[KILN_DIGEST_MAX];
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_store_put(store, blob.data, blob.len, dg, &err) == 0, "store put");
        *d = (struct kiln_descriptor){.media_type = kiln_xstrdup(mt_of(comp)),
                                      .digest = kiln_xstrdup(dg),
                                      .size = (int64_t)blob.len};
}

static int count_tmp_snapshots(void)
{
        _cleanup_free_ char *sd = kiln_xasprintf("%s/snapshots", kiln_store_root(store));
        DIR *d = opendir(sd);
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
                n += kiln_str_has_prefix(de->d_name, "tmp-");
        if (d)
                closedir(d);
        return n;
}

/* The three test layers in the store: gzip, zstd, plain tar. */
static void put_three_layers(struct kiln_descriptor layers[3], char ids[3][KILN_DIGEST_MAX])
{
        put_layer(layer1, sizeof(layer1) / sizeof(layer1[0]), KILN_COMP_GZIP, &layers[0], ids[0]);
        put_layer(layer2, sizeof(layer2) / sizeof(layer2[0]), KILN_COMP_ZSTD, &layers[1], ids[1]);
        put_layer(layer3, sizeof(layer3) / sizeof(layer3[0]), KILN_COMP_NONE, &layers[2], ids[2]);
}

/* ---------- a snapshot of layers that arrive while they unpack ---------- */

enum fake_fault { FAKE_NONE, FAKE_RESET, FAKE_CORRUPT };

struct fake_fetch {
        const struct kiln_descriptor *layers;
        struct kiln_buf *blobs;
        size_t n;
        enum fake_fault fault;
};

/* A download of each blob in a few pieces, slowly; with FAKE_RESET the
 * first one starts over halfway, with FAKE_CORRUPT the last is damaged. */
static int fake_fetch(void *ud, struct kiln_blob_watch *const *watches, struct kiln_err **err)
{
        struct fake_fetch *f = ud;
        for (size_t i = 0; i < f->n; i++) {
                struct kiln_blob_writer *w = NULL;
                if (kiln_blob_writer_new(store, f->layers[i].digest, f->layers[i].size, &w, err) <
                    0)
                        return -1;
                kiln_blob_writer_watch(w, watches[i]);
                const struct kiln_buf *b = &f->blobs[i];
                _cleanup_free_ char *data = kiln_xmalloc(b->len);
                memcpy(data, b->data, b->len);
                if (f->fault == FAKE_CORRUPT && i == f->n - 1)
                        data[b->len / 2] ^= 0x55;
                int rc = 0;
                if (f->fault == FAKE_RESET && i == 0) {
                        rc = kiln_blob_writer_write(w, data, b->len / 2, err);
                        usleep(20000);
                        if (rc == 0)
                                rc = kiln_blob_writer_reset(w, err);
                }
                for (size_t off = 0; rc == 0 && off < b->len; off += b->len / 3 + 1) {
                        size_t k = b->len - off < b->len / 3 + 1 ? b->len - off : b->len / 3 + 1;
                        rc = kiln_blob_writer_write(w, data + off, k, err);
                        usleep(10000);
                }
                if (rc == 0)
                        rc = kiln_blob_writer_commit(w, NULL, err);
                kiln_blob_writer_free(w);
                if (rc < 0)
                        return -1;
        }
        return 0;
}

static void test_snapshot_fetching(void)
{
        struct kiln_descriptor layers[3];
        char ids[3][KILN_DIGEST_MAX];
        put_three_layers(layers, ids);
        char *idv[] = {ids[0], ids[1], ids[2]};
        struct kiln_buf blobs[3] = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        for (int i = 0; i < 3; i++)
                CHECK(kiln_store_read(store, layers[i].digest, 1 << 20, &blobs[i], &err) == 0,
                      "read blob");
        char chain[KILN_DIGEST_MAX];
        kiln_chain_id(idv, 3, chain);
        _cleanup_free_ char *want =
            kiln_xasprintf("%s/snapshots/%s", kiln_store_root(store), kiln_digest_hex(chain));
        const enum fake_fault faults[] = {FAKE_NONE, FAKE_RESET, FAKE_CORRUPT};
        for (size_t t = 0; t < 3; t++) {
                /* nothing local: the snapshot, and every blob, gone */
                kiln_rm_rf(want, NULL);
                for (int i = 0; i < 3; i++) {
                        _cleanup_free_ char *bp = kiln_store_blob_path(store, layers[i].digest);
                        unlink(bp);
                }
                struct fake_fetch f = {
                    .layers = layers, .blobs = blobs, .n = 3, .fault = faults[t]};
                char *path = NULL;
                kiln_err_clear(&err);
                int rc =
                    kiln_snapshot_get_fetching(store, layers, idv, 3, fake_fetch, &f, &path, &err);
                if (faults[t] == FAKE_CORRUPT) {
                        CHECK(rc < 0 && err && err->domain == KILN_ERR_DIGEST,
                              "a corrupt download fails the snapshot: %s",
                              err ? err->msg : "(accepted)");
                        CHECK(!exists(want), "a snapshot of a corrupt layer was published");
                } else {
                        CHECK(rc == 0, "snapshot while fetching (fault %d): %s", faults[t],
                              err ? err->msg : "");
                        CHECK(path && !strcmp(path, want), "snapshot path");
                        if (rc == 0)
                                check_layers_applied(path);
                }
                CHECK(count_tmp_snapshots() == 0, "temp snapshot dirs left (fault %d)", faults[t]);
                free(path);
        }
        for (int i = 0; i < 3; i++) {
                kiln_buf_release(&blobs[i]);
                kiln_descriptor_release(&layers[i]);
        }
}

static void test_chain_id(void)
{
        char a[KILN_DIGEST_MAX], b[KILN_DIGEST_MAX], want[KILN_DIGEST_MAX], got[KILN_DIGEST_MAX];
        kiln_sha256_digest("a", 1, a);
        kiln_sha256_digest("b", 1, b);
        char *ids[] = {a, b, a};
        kiln_chain_id(ids, 1, got);
        CHECK_STR(got, a);
        _cleanup_free_ char *s = kiln_xasprintf("%s %s", a, b);
        kiln_sha256_digest(s, strlen(s), want);
        kiln_chain_id(ids, 2, got);
        CHECK_STR(got, want);
        _cleanup_free_ char *s3 = kiln_xasprintf("%s %s", want, a);
        kiln_sha256_digest(s3, strlen(s3), want);
        kiln_chain_id(ids, 3, got);
        CHECK_STR(got, want);
}

static void test_snapshot(void)
{
        struct kiln_descriptor layers[3];
        char ids[3][KILN_DIGEST_MAX];
        put_three_layers(layers, ids);
        char *idv[] = {ids[0], ids[1], ids[2]};
        _cleanup_err_ struct kiln_err *err = NULL;
        _cleanup_free_ char *path = NULL, *path2 = NULL;
        CHECK(kiln_snapshot_get(store, layers, idv, 3, &path, &err) == 0, "snapshot: %s",
              err ? err->msg : "");
        char chain[KILN_DIGEST_MAX];
        kiln_chain_id(idv, 3, chain);
        _cleanup_free_ char *want =
            kiln_xasprintf("%s/snapshots/%s", kiln_store_root(store), kiln_digest_hex(chain));
        CHECK_STR(path, want);
        if (path)
                check_layers_applied(path);
        struct stat a = {0}, b = {0};
        stat(want, &a);
        /* without the blobs, only the cache can answer */
        for (int i = 0; i < 3; i++) {
                _cleanup_free_ char *bp = kiln_store_blob_path(store, layers[i].digest);
                unlink(bp);
        }
        CHECK(kiln_snapshot_get(store, layers, idv, 3, &path2, &err) == 0, "second: %s",
              err ? err->msg : "");
        CHECK_STR(path2, want);
        stat(want, &b);
        /* the same directory (a use only touches its mtime, for prune) */
        CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "snapshot was rebuilt");
        CHECK(b.st_mtim.tv_sec >= a.st_mtim.tv_sec, "a used snapshot's mtime marks its last use");
        for (int i = 0; i < 3; i++)
                kiln_descriptor_release(&layers[i]);

        /* two processes racing for the same snapshot both succeed */
        put_layer(layer1, sizeof(layer1) / sizeof(layer1[0]), KILN_COMP_GZIP, &layers[0], ids[0]);
        put_layer(layer2, sizeof(layer2) / sizeof(layer2[0]), KILN_COMP_ZSTD, &layers[1], ids[1]);
        kiln_chain_id(idv, 2, chain);
        _cleanup_free_ char *want2 =
            kiln_xasprintf("%s/snapshots/%s", kiln_store_root(store), kiln_digest_hex(chain));
        pid_t pids[2];
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        struct kiln_err *e = NULL;
                        char *p = NULL;
                        int rc = kiln_snapshot_get(store, layers, idv, 2, &p, &e);
                        if (rc < 0)
                                fprintf(stderr, "child: %s\n", e->msg);
                        _exit(rc == 0 && !strcmp(p, want2) ? 0 : 1);
                }
        }
        for (int i = 0; i < 2; i++) {
                int status = -1;
                waitpid(pids[i], &status, 0);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "racing child %d failed", i);
        }
        _cleanup_free_ char *etc = kiln_xasprintf("%s/etc/passwd", want2);
        _cleanup_free_ char *pw = read_text(etc);
        CHECK_STR(pw, "root:x:0:0:new\n");
        int leftovers = count_tmp_snapshots();
        CHECK(leftovers == 0, "%d temp snapshot dirs left", leftovers);

        /* a failing layer leaves no snapshot and no temp dir */
        _cleanup_free_ char *path3 = NULL;
        strcpy(ids[1], "sha256:1111111111111111111111111111111111111111111111111111111111111111");
        kiln_err_clear(&err);
        CHECK(kiln_snapshot_get(store, layers, idv, 2, &path3, &err) < 0 && err &&
                  err->domain == KILN_ERR_DIGEST && strstr(err->msg, "layer 2"),
              "bad diff_id: %s", err ? err->msg : "(accepted)");
        kiln_chain_id(idv, 2, chain);
        _cleanup_free_ char *bad =
            kiln_xasprintf("%s/snapshots/%s", kiln_store_root(store), kiln_digest_hex(chain));
        CHECK(!exists(bad), "failed snapshot published");
        leftovers = count_tmp_snapshots();
        CHECK(leftovers == 0, "%d temp snapshot dirs left after failure", leftovers);
        for (int i = 0; i < 2; i++)
                kiln_descriptor_release(&layers[i]);
}

int main(void)
{
        if (archive_test_setup())
                return 1;
        test_chain_id();
        test_unpack_layers(false);
        test_unpack_layers(true);
        test_unpack_capability();
        test_unpack_single_id_userns();
        test_unpack_hostile(false);
        test_unpack_hostile(true);
        test_unpack_symlink_inside(false);
        test_unpack_symlink_inside(true);
        test_unpack_digest_and_magic();
        test_snapshot();
        test_snapshot_fetching();
        archive_test_teardown();
        TEST_DONE();
}
