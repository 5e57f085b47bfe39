/* Layer unpacking (hostile input included), snapshots and the layer writers.
 * Tar layers are built here with libarchive's own gzip/zstd filters, so the
 * module's decompressors are checked against an independent encoder; the
 * produced layers are read back with libarchive and zlib. */
#include "kiln/archive.h"
#include "archive/archive-internal.h"
#include "test.h"

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

static char tmp[] = "/tmp/kiln-test-layer-XXXXXX";
static struct kiln_store *store;
static bool is_root;

/* ---------- building layers ---------- */

struct ent {
        const char *path;
        char type; /* f file, d dir, l symlink, h hardlink, p fifo, c chardev */
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

static const char *mt_of(enum kiln_compression c)
{
        return c == KILN_COMP_GZIP   ? KILN_MT_OCI_LAYER_GZIP
               : c == KILN_COMP_ZSTD ? KILN_MT_OCI_LAYER_ZSTD
                                     : KILN_MT_OCI_LAYER;
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

static char *mkroot(const char *name)
{
        char *p = kiln_xasprintf("%s/%s", tmp, name);
        struct kiln_err *e = NULL;
        kiln_rm_rf(p, &e);
        kiln_err_free(e);
        mkdir(p, 0755);
        return p;
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

static bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
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
        CHECK(lstat(P("dev/null"), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
              "dev/null is char 1:3");
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
        CHECK(!is_root || (st.skipped_devices == 0 && st.ownership_lost == 0),
              "as root nothing is lost");
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
 * EINVAL and mknod of devices with EPERM; both are counted, not fatal. */
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
                _exit(rc < 0 ? 1 : st.skipped_devices != 1 ? 2 : st.ownership_lost != 1 ? 3 : 0);
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
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct hostile *c = &cases[i];
                _cleanup_free_ char *r = mkroot("hostile");
                _cleanup_close_ int rootfd = open(r, O_RDONLY | O_DIRECTORY);
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = unpack_ents(rootfd, c->ents, c->n, KILN_COMP_GZIP, NULL, NULL, NULL, &err);
                CHECK(rc < 0, "%s%s: accepted", c->name, fallback ? " (fallback)" : "");
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

/* ---------- reading produced layers back ---------- */

struct got {
        char *path;
        mode_t type;
        mode_t perm;
        int64_t mtime;
        uid_t uid;
        gid_t gid;
        char *hardlink;
        char *symlink;
        char *xattrs; /* "name=value;..." */
        char *data;
        bool pax_atime; /* any atime/ctime recorded */
};

struct layer_read {
        struct got v[64];
        size_t n;
};

static void layer_read_release(struct layer_read *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].path);
                free(l->v[i].hardlink);
                free(l->v[i].symlink);
                free(l->v[i].xattrs);
                free(l->v[i].data);
        }
        l->n = 0;
}

static void read_layer(const char *digest, struct layer_read *out)
{
        _cleanup_free_ char *p = kiln_store_blob_path(store, digest);
        struct archive *a = archive_read_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        CHECK(archive_read_open_filename(a, p, 65536) == ARCHIVE_OK, "open %s", p);
        struct archive_entry *e;
        while (out->n < 64 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
                struct got *g = &out->v[out->n++];
                *g = (struct got){.path = kiln_xstrdup(archive_entry_pathname(e)),
                                  .type = archive_entry_filetype(e),
                                  .perm = archive_entry_perm(e),
                                  .mtime = archive_entry_mtime(e),
                                  .uid = (uid_t)archive_entry_uid(e),
                                  .gid = (gid_t)archive_entry_gid(e),
                                  .pax_atime = archive_entry_atime_is_set(e) ||
                                               archive_entry_ctime_is_set(e)};
                if (archive_entry_hardlink(e))
                        g->hardlink = kiln_xstrdup(archive_entry_hardlink(e));
                if (archive_entry_symlink(e))
                        g->symlink = kiln_xstrdup(archive_entry_symlink(e));
                struct kiln_buf xb = {0};
                const char *xn;
                const void *xv;
                size_t xs;
                archive_entry_xattr_reset(e);
                while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
                        kiln_buf_printf(&xb, "%s=", xn);
                        kiln_buf_append(&xb, xv, !strcmp(xn, "security.capability") ? 0 : xs);
                        kiln_buf_puts(&xb, ";");
                }
                g->xattrs = xb.data ? kiln_buf_steal(&xb) : kiln_xstrdup("");
                struct kiln_buf db = {0};
                char buf[4096];
                la_ssize_t n;
                while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
                        kiln_buf_append(&db, buf, (size_t)n);
                g->data = db.data ? kiln_buf_steal(&db) : kiln_xstrdup("");
        }
        archive_read_free(a);
}

static const struct got *find(const struct layer_read *l, const char *path)
{
        for (size_t i = 0; i < l->n; i++)
                if (!strcmp(l->v[i].path, path))
                        return &l->v[i];
        return NULL;
}

static void check_order(const struct layer_read *l, const char *const *want, size_t n,
                        const char *what)
{
        CHECK(l->n == n, "%s: %zu entries, want %zu", what, l->n, n);
        for (size_t i = 0; i < n && i < l->n; i++)
                CHECK_STR(l->v[i].path, want[i]);
}

static void check_hashes(const struct kiln_archive_result *res, enum kiln_compression comp)
{
        _cleanup_free_ char *p = kiln_store_blob_path(store, res->digest);
        char d[KILN_DIGEST_MAX];
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_sha256_file(p, d, &err) == 0, "hash blob");
        CHECK_STR(d, res->digest);
        struct stat st;
        CHECK(stat(p, &st) == 0 && st.st_size == res->size, "size %ld vs %ld", (long)st.st_size,
              (long)res->size);
        /* decompress independently: zlib for gzip, libarchive raw for the rest */
        struct kiln_buf raw = {0};
        if (comp == KILN_COMP_GZIP) {
                gzFile gz = gzopen(p, "rb");
                char buf[65536];
                int n;
                while ((n = gzread(gz, buf, sizeof(buf))) > 0)
                        kiln_buf_append(&raw, buf, (size_t)n);
                gzclose(gz);
        } else {
                struct archive *a = archive_read_new();
                archive_read_support_filter_all(a);
                archive_read_support_format_raw(a);
                archive_read_open_filename(a, p, 65536);
                struct archive_entry *e;
                archive_read_next_header(a, &e);
                char buf[65536];
                la_ssize_t n;
                while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
                        kiln_buf_append(&raw, buf, (size_t)n);
                archive_read_free(a);
        }
        kiln_sha256_digest(raw.data, raw.len, d);
        CHECK_STR(d, res->diff_id);
        if (comp == KILN_COMP_NONE)
                CHECK_STR(res->digest, res->diff_id);
        kiln_buf_release(&raw);
}

/* ---------- from_upper ---------- */

static void touch(const char *path, const char *data, mode_t mode, time_t mtime)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
        if (data)
                kiln_write_all(fd, data, strlen(data));
        fchmod(fd, mode);
        struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
        futimens(fd, ts);
        close(fd);
}

static void set_mtime(const char *path, time_t t)
{
        struct timespec ts[2] = {{t, 0}, {t, 0}};
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static const unsigned char capv2[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};

static char *make_upper(const char *name)
{
        char *u = mkroot(name);
        char p[512];
#define P(x) (snprintf(p, sizeof(p), "%s/%s", u, x), p)
        touch(P("a.txt"), "hello", 0640, 5000000000);
        chown(P("a.txt"), 1000, 1001);
        mknod(P("gone"), S_IFCHR | 0, makedev(0, 0));
        touch(P("xwo"), NULL, 0644, 100);
        setxattr(P("xwo"), "trusted.overlay.whiteout", "", 0, 0);
        mkdir(P("opq"), 0755);
        setxattr(P("opq"), "trusted.overlay.opaque", "y", 1, 0);
        touch(P("opq/keep"), "k", 0644, 100);
        mkdir(P("uopq"), 0700);
        setxattr(P("uopq"), "user.overlay.opaque", "y", 1, 0);
        mkdir(P("notopq"), 0755);
        setxattr(P("notopq"), "trusted.overlay.opaque", "x", 1, 0); /* "has xattr whiteouts" */
        touch(P("hl1"), "same", 0644, 100);
        _cleanup_free_ char *hl1 = kiln_xasprintf("%s/hl1", u);
        link(hl1, P("hl2"));
        touch(P("cap"), "bin", 0755, 100);
        setxattr(P("cap"), "security.capability", capv2, sizeof(capv2), 0);
        setxattr(P("cap"), "user.foo", "bar", 3, 0);
        setxattr(P("cap"), "trusted.overlay.origin", "junk", 4, 0);
        setxattr(P("cap"), "user.overlay.origin", "junk", 4, 0);
        symlinkat("a.txt", AT_FDCWD, P("sym"));
        mkdir(P("sub"), 0755);
        touch(P("sub/z"), "z", 0644, 100);
        touch(P("sub-b"), "b", 0644, 100);
        mkfifo(P("fifo"), 0600);
        set_mtime(P("sym"), 100);
        set_mtime(P("fifo"), 100);
        set_mtime(P("gone"), 100);
        set_mtime(P("sub"), 100);
        set_mtime(P("opq"), 100);
        set_mtime(P("uopq"), 100);
        set_mtime(P("notopq"), 100);
#undef P
        return u;
}

static void test_from_upper(void)
{
        if (!is_root) {
                printf("SKIP from_upper (needs root for whiteout devices and trusted xattrs)\n");
                return;
        }
        _cleanup_free_ char *u = make_upper("upper");
        _cleanup_close_ int ufd = open(u, O_RDONLY | O_DIRECTORY);
        struct kiln_archive_opts o = {KILN_COMP_GZIP, -1, 1000000, 0};
        struct kiln_archive_result res = {0}, res2 = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_archive_from_upper(ufd, "step 1", store, &o, &res, &err) == 0, "%s",
              err ? err->msg : "");
        CHECK(!res.empty, "not empty");
        CHECK_STR(res.media_type, KILN_MT_OCI_LAYER_GZIP);
        static const char *const want[] = {
            ".wh.gone",
            ".wh.xwo",
            "a.txt",
            "cap",
            "fifo",
            "hl1",
            "hl2",
            "notopq/",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/keep",
            "sub/",
            "sub/z",
            "sub-b",
            "sym",
            "uopq/",
            "uopq/.wh..wh..opq",
        };
        struct layer_read l = {0};
        read_layer(res.digest, &l);
        check_order(&l, want, sizeof(want) / sizeof(want[0]), "from_upper");
        CHECK(res.entries == sizeof(want) / sizeof(want[0]), "entries %lu",
              (unsigned long)res.entries);
        const struct got *g;
        if ((g = find(&l, "a.txt")))
                CHECK(g->mtime == 1000000 && g->perm == 0640 && g->uid == 1000 && g->gid == 1001 &&
                          !strcmp(g->data, "hello"),
                      "a.txt mtime %ld perm %o uid %u", (long)g->mtime, g->perm, g->uid);
        if ((g = find(&l, "sub/z")))
                CHECK(g->mtime == 100, "sub/z keeps its older mtime: %ld", (long)g->mtime);
        if ((g = find(&l, ".wh.gone")))
                CHECK(g->type == AE_IFREG && g->perm == 0600, ".wh.gone type %o perm %o", g->type,
                      g->perm);
        if ((g = find(&l, "hl2")))
                CHECK(g->hardlink && !strcmp(g->hardlink, "hl1"), "hl2 hardlink %s",
                      g->hardlink ? g->hardlink : "(none)");
        if ((g = find(&l, "hl1")))
                CHECK(!g->hardlink && !strcmp(g->data, "same"), "hl1 is the file");
        if ((g = find(&l, "cap")))
                CHECK(!strcmp(g->xattrs, "security.capability=;user.foo=bar;") ||
                          !strcmp(g->xattrs, "user.foo=bar;security.capability=;"),
                      "cap xattrs \"%s\"", g->xattrs);
        if ((g = find(&l, "opq/")))
                CHECK(!strstr(g->xattrs, "overlay"), "opq xattrs \"%s\"", g->xattrs);
        if ((g = find(&l, "sym")))
                CHECK(g->symlink && !strcmp(g->symlink, "a.txt"), "symlink target");
        if ((g = find(&l, "fifo")))
                CHECK(g->type == AE_IFIFO, "fifo type");
        for (size_t i = 0; i < l.n; i++)
                CHECK(!l.v[i].pax_atime, "%s has atime/ctime", l.v[i].path);
        layer_read_release(&l);
        check_hashes(&res, KILN_COMP_GZIP);

        /* deterministic: the same upper gives the same blob */
        CHECK(kiln_archive_from_upper(ufd, "step 1", store, &o, &res2, &err) == 0, "again");
        CHECK_STR(res2.digest, res.digest);

        /* zstd and plain tar */
        enum kiln_compression comps[] = {KILN_COMP_ZSTD, KILN_COMP_NONE};
        for (size_t i = 0; i < 2; i++) {
                struct kiln_archive_opts oz = {comps[i], -1, 1000000, 0};
                struct kiln_archive_result rz = {0};
                CHECK(kiln_archive_from_upper(ufd, "step z", store, &oz, &rz, &err) == 0, "%s",
                      err ? err->msg : "");
                CHECK_STR(rz.media_type, mt_of(comps[i]));
                CHECK_STR(rz.diff_id, res.diff_id);
                check_hashes(&rz, comps[i]);
                struct layer_read lz = {0};
                read_layer(rz.digest, &lz);
                check_order(&lz, want, sizeof(want) / sizeof(want[0]), "from_upper zstd/tar");
                layer_read_release(&lz);
        }

        /* unclamped */
        struct kiln_archive_opts on = {KILN_COMP_GZIP, 1, -1, 0};
        struct kiln_archive_result rn = {0};
        CHECK(kiln_archive_from_upper(ufd, "step", store, &on, &rn, &err) == 0, "unclamped");
        read_layer(rn.digest, &l);
        if ((g = find(&l, "a.txt")))
                CHECK(g->mtime == 5000000000, "unclamped mtime %ld", (long)g->mtime);
        layer_read_release(&l);

        /* the produced layer unpacks onto a lower as overlay would show it */
        _cleanup_free_ char *r = mkroot("upper-apply");
        _cleanup_free_ char *lg = kiln_xasprintf("%s/gone", r);
        _cleanup_free_ char *lo = kiln_xasprintf("%s/opq", r);
        _cleanup_free_ char *lol = kiln_xasprintf("%s/opq/lower", r);
        touch(lg, "g", 0644, 1);
        mkdir(lo, 0755);
        touch(lol, "l", 0644, 1);
        _cleanup_close_ int rfd = open(r, O_RDONLY | O_DIRECTORY);
        _cleanup_close_ int bfd = -1;
        uint64_t bsize;
        CHECK(kiln_store_open_blob(store, res.digest, &bfd, &bsize, &err) == 0, "open blob");
        CHECK(kiln_archive_unpack(rfd, bfd, res.media_type, res.diff_id, "produced", NULL, &err) ==
                  0,
              "unpack produced layer: %s", err ? err->msg : "");
        _cleanup_free_ char *keep = kiln_xasprintf("%s/opq/keep", r);
        CHECK(!exists(lg) && !exists(lol) && exists(keep), "whiteout/opaque round trip");

        /* metacopy uppers have no data: refused */
        _cleanup_free_ char *mc = kiln_xasprintf("%s/a.txt", u);
        setxattr(mc, "trusted.overlay.metacopy", "", 0, 0);
        struct kiln_archive_result rm = {0};
        kiln_err_clear(&err);
        CHECK(kiln_archive_from_upper(ufd, "step 9", store, &o, &rm, &err) < 0 && err &&
                  strstr(err->msg, "metacopy") && strstr(err->msg, "step 9"),
              "metacopy: %s", err ? err->msg : "(accepted)");
}

static int count_blobs(void)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/blobs/sha256", kiln_store_root(store));
        DIR *d = opendir(p);
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
                n += de->d_name[0] != '.';
        if (d)
                closedir(d);
        return n;
}

static void test_from_upper_empty(void)
{
        _cleanup_free_ char *u = mkroot("upper-empty");
        _cleanup_close_ int ufd = open(u, O_RDONLY | O_DIRECTORY);
        struct kiln_archive_opts o = {KILN_COMP_GZIP, -1, -1, 0};
        struct kiln_archive_result res = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        int before = count_blobs();
        CHECK(kiln_archive_from_upper(ufd, "empty", store, &o, &res, &err) == 0, "empty upper");
        CHECK(res.empty, "empty flag");
        CHECK(count_blobs() == before, "a blob was written for an empty upper");
}

/* A real overlay mount: what the kernel leaves in the upper is what we read. */
static void test_overlay_round_trip(void)
{
        if (!is_root) {
                printf("SKIP overlay round trip (not root)\n");
                return;
        }
        _cleanup_free_ char *base = mkroot("ovl");
        char lower[512], upper[512], work[512], merged[512], p[600];
        snprintf(lower, sizeof(lower), "%s/lower", base);
        snprintf(upper, sizeof(upper), "%s/upper", base);
        snprintf(work, sizeof(work), "%s/work", base);
        snprintf(merged, sizeof(merged), "%s/merged", base);
        mkdir(lower, 0755);
        mkdir(upper, 0755);
        mkdir(work, 0755);
        mkdir(merged, 0755);
#define L(x) (snprintf(p, sizeof(p), "%s/%s", lower, x), p)
#define M(x) (snprintf(p, sizeof(p), "%s/%s", merged, x), p)
        touch(L("f1"), "1", 0644, 100);
        touch(L("keep"), "k", 0644, 100);
        mkdir(L("d"), 0755);
        touch(L("d/x"), "x", 0644, 100);
        touch(L("d/y"), "y", 0644, 100);
        _cleanup_free_ char *opts = kiln_xasprintf(
            "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off", lower, upper, work);
        if (mount("overlay", merged, "overlay", 0, opts) < 0) {
                printf("SKIP overlay round trip (mount: %s)\n", strerror(errno));
                return;
        }
        unlink(M("f1"));
        struct kiln_err *e = NULL;
        kiln_rm_rf(M("d"), &e);
        kiln_err_free(e);
        mkdir(M("d"), 0755);
        touch(M("d/new"), "n", 0644, 100);
        touch(M("added"), "a", 0644, 100);
        umount(merged);
#undef L
#undef M
        _cleanup_close_ int ufd = open(upper, O_RDONLY | O_DIRECTORY);
        struct kiln_archive_opts o = {KILN_COMP_GZIP, -1, 1000, 0};
        struct kiln_archive_result res = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_archive_from_upper(ufd, "ovl", store, &o, &res, &err) == 0, "%s",
              err ? err->msg : "");
        struct layer_read l = {0};
        read_layer(res.digest, &l);
        static const char *const want[] = {".wh.f1", "added", "d/", "d/.wh..wh..opq", "d/new"};
        check_order(&l, want, sizeof(want) / sizeof(want[0]), "overlay upper");
        layer_read_release(&l);
}

/* ---------- from_host ---------- */

static void make_tree(const char *dir, time_t mtime, mode_t fmode, uid_t owner)
{
        char p[512];
#define P(x) (snprintf(p, sizeof(p), "%s/%s", dir, x), p)
        mkdir(dir, 0700);
        touch(P("f"), "file f", fmode, mtime);
        touch(P("x"), "#!/bin/sh\n", fmode | 0100, mtime);
        mkdir(P("sub"), 0750);
        touch(P("sub/g"), "file g", fmode, mtime);
        symlinkat("f", AT_FDCWD, P("l"));
        touch(P("Z"), "upper", fmode, mtime);
        set_mtime(P("sub"), mtime);
        set_mtime(P("l"), mtime);
        set_mtime(dir, mtime);
        if (is_root) {
                lchown(P("f"), owner, owner);
                lchown(P("sub"), owner, owner);
        }
#undef P
}

static void test_from_host(void)
{
        _cleanup_free_ char *t1 = kiln_xasprintf("%s/host1", tmp);
        _cleanup_free_ char *t2 = kiln_xasprintf("%s/host2", tmp);
        _cleanup_free_ char *single = kiln_xasprintf("%s/single.conf", tmp);
        make_tree(t1, 1111, 0600, 0);
        make_tree(t2, 2222222, 0664, 4242);
        touch(single, "conf", 0600, 5);
        struct kiln_archive_opts o = {KILN_COMP_GZIP, -1, -1, 0};
        struct kiln_copy_entry e1[] = {{t1, "root/data"}, {single, "etc/app/app.conf"}};
        struct kiln_copy_entry e2[] = {{single, "etc/app/app.conf"}, {t2, "root/data/"}};
        struct kiln_archive_result r1 = {0}, r2 = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        CHECK(kiln_archive_from_host(e1, 2, 1000, 1000, store, &o, &r1, &err) == 0, "%s",
              err ? err->msg : "");
        CHECK(kiln_archive_from_host(e2, 2, 1000, 1000, store, &o, &r2, &err) == 0, "%s",
              err ? err->msg : "");
        CHECK_STR(r1.digest, r2.digest);
        CHECK_STR(r1.diff_id, r2.diff_id);
        check_hashes(&r1, KILN_COMP_GZIP);
        static const char *const want[] = {
            "etc/",           "etc/app/",        "etc/app/app.conf", "root/",
            "root/data/",     "root/data/Z",     "root/data/f",      "root/data/l",
            "root/data/sub/", "root/data/sub/g", "root/data/x",
        };
        struct layer_read l = {0};
        read_layer(r1.digest, &l);
        check_order(&l, want, sizeof(want) / sizeof(want[0]), "from_host");
        struct {
                const char *path;
                mode_t type, perm;
        } modes[] = {
            {"etc/", AE_IFDIR, 0755},
            {"root/data/", AE_IFDIR, 0755},
            {"root/data/f", AE_IFREG, 0644},
            {"root/data/x", AE_IFREG, 0755},
            {"root/data/sub/", AE_IFDIR, 0755},
            {"root/data/l", AE_IFLNK, 0777},
            {"etc/app/app.conf", AE_IFREG, 0644},
        };
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                const struct got *g = find(&l, modes[i].path);
                CHECK(g && g->type == modes[i].type && g->perm == modes[i].perm && g->uid == 1000 &&
                          g->gid == 1000 && g->mtime == 0,
                      "%s: type %o perm %o uid %u mtime %ld", modes[i].path, g ? g->type : 0,
                      g ? g->perm : 0, g ? g->uid : 0, g ? (long)g->mtime : -1);
        }
        const struct got *g = find(&l, "root/data/l");
        CHECK(g && g->symlink && !strcmp(g->symlink, "f"), "symlink kept");
        g = find(&l, "root/data/sub/g");
        CHECK(g && !strcmp(g->data, "file g"), "content");
        layer_read_release(&l);

        /* the test can fail: other content or SOURCE_DATE_EPOCH change the digest */
        _cleanup_free_ char *g2 = kiln_xasprintf("%s/sub/g", t2);
        touch(g2, "file G", 0600, 1);
        struct kiln_archive_result r3 = {0};
        CHECK(kiln_archive_from_host(e2, 2, 1000, 1000, store, &o, &r3, &err) == 0, "r3");
        CHECK(strcmp(r3.digest, r1.digest) != 0, "content change not seen");
        struct kiln_archive_opts os = {KILN_COMP_GZIP, -1, 1234, 0};
        CHECK(kiln_archive_from_host(e1, 2, 1000, 1000, store, &os, &r3, &err) == 0, "sde");
        read_layer(r3.digest, &l);
        g = find(&l, "root/data/f");
        CHECK(g && g->mtime == 1234, "SOURCE_DATE_EPOCH mtime");
        layer_read_release(&l);

        /* to the root */
        struct kiln_copy_entry er[] = {{t1, "."}};
        CHECK(kiln_archive_from_host(er, 1, 0, 0, store, &o, &r3, &err) == 0, "to root: %s",
              err ? err->msg : "");
        read_layer(r3.digest, &l);
        CHECK(l.n == 6 && !strcmp(l.v[0].path, "Z"), "to root: %zu entries, first %s", l.n,
              l.n ? l.v[0].path : "");
        layer_read_release(&l);

        /* refused */
        _cleanup_free_ char *fifo = kiln_xasprintf("%s/fifo", tmp);
        mkfifo(fifo, 0600);
        struct {
                const char *name;
                struct kiln_copy_entry e;
                const char *blame;
        } bad[] = {
            {"fifo", {fifo, "x/fifo"}, fifo},
            {"dotdot", {single, "a/../../etc/x"}, "a/../../etc/x"},
            {"absolute", {single, "/etc/x"}, "/etc/x"},
            {"empty component", {single, "etc//x"}, "etc//x"},
            {"missing", {"/nonexistent/kiln", "x"}, "/nonexistent/kiln"},
            {"file to root", {single, ""}, single},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct kiln_archive_result rb = {0};
                kiln_err_clear(&err);
                int rc = kiln_archive_from_host(&bad[i].e, 1, 0, 0, store, &o, &rb, &err);
                CHECK(rc < 0 && err && strstr(err->msg, bad[i].blame), "%s: %s", bad[i].name,
                      err ? err->msg : "(accepted)");
        }
        /* a file where another entry needs a directory */
        struct kiln_copy_entry conflict[] = {{single, "etc"}, {single, "etc/x"}};
        struct kiln_archive_result rc3 = {0};
        kiln_err_clear(&err);
        CHECK(kiln_archive_from_host(conflict, 2, 0, 0, store, &o, &rc3, &err) < 0,
              "file/parent conflict accepted");
}

/* ---------- small pieces ---------- */

static void test_opts_init(void)
{
        struct {
                const char *env;
                int rc;
                int64_t want;
        } rows[] = {
            {NULL, 0, -1}, {"", 0, -1},      {"0", 0, 0},   {"1700000000", 0, 1700000000},
            {"-5", -1, 0}, {"12abc", -1, 0}, {" 5", -1, 0}, {"99999999999999999999", -1, 0},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                if (rows[i].env)
                        setenv("SOURCE_DATE_EPOCH", rows[i].env, 1);
                else
                        unsetenv("SOURCE_DATE_EPOCH");
                struct kiln_archive_opts o;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_archive_opts_init(&o, &err);
                CHECK(rc == rows[i].rc, "SOURCE_DATE_EPOCH=%s: rc %d", rows[i].env, rc);
                if (rc == 0)
                        CHECK(o.source_date_epoch == rows[i].want && o.level < 0 &&
                                  o.compression == KILN_COMP_GZIP,
                              "%s: %ld", rows[i].env, (long)o.source_date_epoch);
                else
                        CHECK(err && err->domain == KILN_ERR_USAGE && strstr(err->msg, rows[i].env),
                              "%s: %s", rows[i].env, err ? err->msg : "");
        }
        unsetenv("SOURCE_DATE_EPOCH");
}

static void test_path_cmp(void)
{
        struct {
                const char *a, *b;
                int want;
        } rows[] = {
            {"a", "a", 0},     {"a", "a/x", -1},  {"a/x", "a-b", -1}, {"a-b", "a", 1},
            {"a/z", "ab", -1}, {"a.b", "a/b", 1}, {"", "a", -1},      {"b/c", "b/c/d", -1},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                int c = kiln_archive_path_cmp(rows[i].a, rows[i].b);
                c = c < 0 ? -1 : c > 0;
                CHECK(c == rows[i].want, "cmp(%s, %s) = %d", rows[i].a, rows[i].b, c);
        }
}

int main(void)
{
        is_root = geteuid() == 0;
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        _cleanup_free_ char *sr = kiln_xasprintf("%s/store", tmp);
        struct kiln_err *err = NULL;
        if (kiln_store_open(sr, &store, &err) < 0) {
                fprintf(stderr, "%s\n", err->msg);
                return 1;
        }
        test_path_cmp();
        test_opts_init();
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
        test_from_upper();
        test_from_upper_empty();
        test_overlay_round_trip();
        test_from_host();
        kiln_store_free(store);
        if (!getenv("KILN_TEST_KEEP"))
                kiln_rm_rf(tmp, &err);
        kiln_err_free(err);
        TEST_DONE();
}
