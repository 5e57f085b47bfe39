/* The layer writers (from an overlay upper directory, from host files)
 * and the module's small pieces; the produced layers are read back with
 * libarchive and zlib. Unpacking is tested in test_archive_unpack.c. */
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
        if (archive_test_setup())
                return 1;
        test_path_cmp();
        test_opts_init();
        test_from_upper();
        test_from_upper_empty();
        test_overlay_round_trip();
        test_from_host();
        archive_test_teardown();
        TEST_DONE();
}
