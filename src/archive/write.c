#include "archive-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>
#include <zstd.h>

#define OUT_SIZE  ((size_t)256 << 10)
#define COPY_SIZE ((size_t)256 << 10)

int kiln_archive_opts_init(struct kiln_archive_opts *o, struct kiln_err **err)
{
        *o = (struct kiln_archive_opts){
            .compression = KILN_COMP_GZIP, .level = -1, .source_date_epoch = -1};
        const char *v = getenv("SOURCE_DATE_EPOCH");
        if (!v || !*v)
                return 0;
        int64_t t = 0;
        for (const char *p = v; *p; p++) {
                if (*p < '0' || *p > '9' || t > (INT64_MAX - 9) / 10)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "SOURCE_DATE_EPOCH=\"%.40s\" is not a number of "
                                            "seconds since 1970 (a decimal integer >= 0)",
                                            v);
                t = t * 10 + (*p - '0');
        }
        o->source_date_epoch = t;
        return 0;
}

/* ---------- the output stream: tar -> diff_id hash -> compressor -> blob ---------- */

struct sink {
        struct kiln_blob_writer *bw;
        struct kiln_sha256 *diff;
        enum kiln_compression comp;
        struct kiln_pgzip *gz;
        ZSTD_CStream *zc;
        unsigned char *out;
        struct kiln_err *err;
};

static int sink_put(struct sink *s, const void *p, size_t n)
{
        return kiln_blob_writer_write(s->bw, p, n, &s->err);
}

static int gz_out(void *ud, const void *p, size_t n)
{
        return sink_put(ud, p, n);
}

static int sink_feed(struct sink *s, const void *p, size_t n, bool finish)
{
        if (s->comp == KILN_COMP_NONE)
                return n ? sink_put(s, p, n) : 0;
        if (s->comp == KILN_COMP_GZIP) {
                if ((n && kiln_pgzip_write(s->gz, p, n) < 0) ||
                    (finish && kiln_pgzip_finish(s->gz) < 0)) {
                        if (!s->err)
                                kiln_err_set(&s->err, KILN_ERR_INTERNAL, 0,
                                             "gzip compression failed");
                        return -1;
                }
                return 0;
        }
        ZSTD_inBuffer ib = {p, n, 0};
        for (;;) {
                ZSTD_outBuffer ob = {s->out, OUT_SIZE, 0};
                size_t zr =
                    ZSTD_compressStream2(s->zc, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
                if (ZSTD_isError(zr))
                        return kiln_err_set(&s->err, KILN_ERR_INTERNAL, 0, "zstd: %s",
                                            ZSTD_getErrorName(zr));
                if (ob.pos && sink_put(s, s->out, ob.pos) < 0)
                        return -1;
                if (finish ? zr == 0 : ib.pos == ib.size)
                        return 0;
        }
}

static la_ssize_t sink_write_cb(struct archive *a, void *ud, const void *buf, size_t n)
{
        struct sink *s = ud;
        kiln_sha256_update(s->diff, buf, n);
        if (sink_feed(s, buf, n, false) < 0) {
                archive_set_error(a, EIO, "%s", s->err ? s->err->msg : "write failed");
                return -1;
        }
        return (la_ssize_t)n;
}

struct tw {
        struct archive *a;
        struct sink sink;
        uint64_t entries;
        char *buf;
};

static void tw_release(struct tw *w)
{
        if (w->a)
                archive_write_free(w->a);
        kiln_pgzip_free(w->sink.gz);
        ZSTD_freeCStream(w->sink.zc);
        kiln_blob_writer_free(w->sink.bw);
        kiln_sha256_free(w->sink.diff);
        kiln_err_free(w->sink.err);
        free(w->sink.out);
        free(w->buf);
        *w = (struct tw){0};
}
#define _cleanup_tw_ _cleanup_(tw_release)

static int tw_open(struct tw *w, struct kiln_store *store, const struct kiln_archive_opts *o,
                   struct kiln_err **err)
{
        *w = (struct tw){0};
        struct sink *s = &w->sink;
        s->comp = o->compression;
        if (kiln_blob_writer_new(store, NULL, -1, &s->bw, err) < 0)
                return -1;
        s->diff = kiln_sha256_new();
        s->out = kiln_xmalloc(OUT_SIZE);
        w->buf = kiln_xmalloc(COPY_SIZE);
        int threads = o->threads > 0 ? o->threads : kiln_cpu_count();
        if (s->comp == KILN_COMP_GZIP) {
                /* every core, the same bytes whatever their number */
                s->gz = kiln_pgzip_new(o->level, threads, gz_out, s);
        } else if (s->comp == KILN_COMP_ZSTD) {
                s->zc = ZSTD_createCStream();
                if (!s->zc)
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "ZSTD_createCStream");
                int level = o->level < 0 ? ZSTD_CLEVEL_DEFAULT : o->level;
                if (level > ZSTD_maxCLevel())
                        level = ZSTD_maxCLevel();
                ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, level);
                ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1);
                /* zstd's output is the same for any number of workers >= 1 */
                ZSTD_CCtx_setParameter(s->zc, ZSTD_c_nbWorkers, threads);
        } else if (s->comp != KILN_COMP_NONE) {
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "unsupported layer compression");
        }
        w->a = archive_write_new();
        if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
            archive_write_add_filter_none(w->a) != ARCHIVE_OK ||
            /* SCHILY.xattr only (what Go's archive/tar and so docker and
             * containerd read), not the LIBARCHIVE.xattr duplicate */
            archive_write_set_format_option(w->a, "pax", "xattrheader", "SCHILY") < ARCHIVE_WARN ||
            archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
            archive_write_open2(w->a, s, NULL, sink_write_cb, NULL, NULL) != ARCHIVE_OK)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "libarchive: %s",
                                    archive_error_string(w->a));
        return 0;
}

static int tw_fail(struct tw *w, struct kiln_err **err, const char *path)
{
        if (w->sink.err)
                return kiln_err_set(err, w->sink.err->domain, w->sink.err->code, "%s",
                                    w->sink.err->msg);
        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "write tar entry \"%s\": %s", path,
                            archive_error_string(w->a));
}

/* A fresh entry with only what kiln puts in a layer: no atime/ctime, no
 * user/group names (numeric ids only), whole-second mtimes. */
static struct archive_entry *tw_new_entry(const char *path, mode_t type, mode_t perm, uid_t uid,
                                          gid_t gid, int64_t mtime)
{
        struct archive_entry *e = archive_entry_new();
        if (type == S_IFDIR) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/", path);
                archive_entry_copy_pathname(e, p);
        } else {
                archive_entry_copy_pathname(e, path);
        }
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, perm & 07777);
        archive_entry_set_uid(e, uid);
        archive_entry_set_gid(e, gid);
        archive_entry_set_mtime(e, mtime, 0);
        archive_entry_set_size(e, 0);
        return e;
}

/* Writes e and, for regular files, size bytes from fd. */
static int tw_write(struct tw *w, struct archive_entry *e, int fd, uint64_t size, const char *shown,
                    struct kiln_err **err)
{
        const char *path = archive_entry_pathname(e);
        if (fd >= 0)
                archive_entry_set_size(e, (la_int64_t)size);
        if (archive_write_header(w->a, e) < ARCHIVE_WARN)
                return tw_fail(w, err, path);
        w->entries++;
        uint64_t left = fd >= 0 ? size : 0;
        while (left > 0) {
                size_t want = left < COPY_SIZE ? (size_t)left : COPY_SIZE;
                ssize_t n = read(fd, w->buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "read %s", shown);
                if (n == 0)
                        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                                            "%s: file shrank while being archived", shown);
                if (archive_write_data(w->a, w->buf, (size_t)n) < 0)
                        return tw_fail(w, err, path);
                left -= (uint64_t)n;
        }
        if (archive_write_finish_entry(w->a) < ARCHIVE_WARN)
                return tw_fail(w, err, path);
        return 0;
}

static const char *comp_media_type(enum kiln_compression c)
{
        switch (c) {
        case KILN_COMP_GZIP:
                return KILN_MT_OCI_LAYER_GZIP;
        case KILN_COMP_ZSTD:
                return KILN_MT_OCI_LAYER_ZSTD;
        default:
                return KILN_MT_OCI_LAYER;
        }
}

static int tw_finish(struct tw *w, struct kiln_archive_result *out, struct kiln_err **err)
{
        if (archive_write_close(w->a) != ARCHIVE_OK)
                return tw_fail(w, err, "(end of archive)");
        if (sink_feed(&w->sink, NULL, 0, true) < 0)
                return tw_fail(w, err, "(end of archive)");
        kiln_sha256_final(w->sink.diff, out->diff_id);
        out->size = (int64_t)kiln_blob_writer_size(w->sink.bw);
        if (kiln_blob_writer_commit(w->sink.bw, out->digest, err) < 0)
                return -1;
        out->empty = false;
        out->entries = w->entries;
        out->media_type = comp_media_type(w->sink.comp);
        return 0;
}

/* ---------- from an overlay upper directory ---------- */

struct ino_map {
        struct ino_slot {
                dev_t dev;
                ino_t ino;
                char *path;
        } * slot;
        size_t cap, n;
};

static size_t ino_hash(dev_t dev, ino_t ino, size_t cap)
{
        uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)dev;
        return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static const char *ino_map_get(struct ino_map *m, dev_t dev, ino_t ino)
{
        if (!m->cap)
                return NULL;
        for (size_t i = ino_hash(dev, ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
                if (!m->slot[i].path)
                        return NULL;
                if (m->slot[i].dev == dev && m->slot[i].ino == ino)
                        return m->slot[i].path;
        }
}

static void ino_map_put(struct ino_map *m, dev_t dev, ino_t ino, const char *path)
{
        if ((m->n + 1) * 2 > m->cap) {
                size_t ncap = m->cap ? m->cap * 2 : 64;
                struct ino_slot *ns = kiln_xcalloc(ncap, sizeof(*ns));
                for (size_t j = 0; j < m->cap; j++) {
                        if (!m->slot[j].path)
                                continue;
                        size_t i = ino_hash(m->slot[j].dev, m->slot[j].ino, ncap);
                        while (ns[i].path)
                                i = (i + 1) & (ncap - 1);
                        ns[i] = m->slot[j];
                }
                free(m->slot);
                m->slot = ns;
                m->cap = ncap;
        }
        size_t i = ino_hash(dev, ino, m->cap);
        while (m->slot[i].path)
                i = (i + 1) & (m->cap - 1);
        m->slot[i] = (struct ino_slot){dev, ino, kiln_xstrdup(path)};
        m->n++;
}

static void ino_map_release(struct ino_map *m)
{
        for (size_t i = 0; i < m->cap; i++)
                free(m->slot[i].path);
        free(m->slot);
        *m = (struct ino_map){0};
}

struct upper {
        struct tw *w;
        const struct kiln_archive_opts *o;
        const char *what;
        struct ino_map links;
};

static void upper_release(struct upper *u)
{
        ino_map_release(&u->links);
}
#define _cleanup_upper_ _cleanup_(upper_release)

struct xattrs {
        bool opaque;        /* overlay.opaque = "y" */
        bool whiteout;      /* overlay.whiteout present */
        bool metacopy;      /* overlay.metacopy present: the upper holds no data */
        bool redirect;      /* overlay.redirect present: a renamed directory */
        struct kiln_buf kv; /* kept xattrs: name\0 u32 len, value ... */
        size_t nkept;
};

static void xattrs_release(struct xattrs *x)
{
        kiln_buf_release(&x->kv);
}
#define _cleanup_xattrs_ _cleanup_(xattrs_release)

static bool overlay_xattr(const char *name, const char **suffix)
{
        if (kiln_str_has_prefix(name, "trusted.overlay."))
                *suffix = name + strlen("trusted.overlay.");
        else if (kiln_str_has_prefix(name, "user.overlay."))
                *suffix = name + strlen("user.overlay.");
        else
                return false;
        return true;
}

static bool xattr_kept(const char *name)
{
        return !strcmp(name, "security.capability") || kiln_str_has_prefix(name, "user.");
}

/* Reads the xattrs of name in dirfd (through /proc/self/fd so that
 * symlinks and device nodes work without being opened). */
static int read_xattrs(int dirfd, const char *name, const char *shown, struct xattrs *x,
                       struct kiln_err **err)
{
        _cleanup_free_ char *p = kiln_xasprintf("/proc/self/fd/%d/%s", dirfd, name);
        /* most files have none: ask for the size before allocating */
        ssize_t n = llistxattr(p, NULL, 0);
        if (n <= 0) {
                if (n == 0 || errno == ENOTSUP || errno == EOPNOTSUPP)
                        return 0;
                return kiln_err_sys(err, "list xattrs of %s", shown);
        }
        _cleanup_free_ char *list = kiln_xmalloc(XATTR_LIST_MAX);
        n = llistxattr(p, list, XATTR_LIST_MAX);
        if (n < 0)
                return kiln_err_sys(err, "list xattrs of %s", shown);
        _cleanup_free_ char *val = kiln_xmalloc(XATTR_SIZE_MAX);
        for (char *k = list; k < list + n; k += strlen(k) + 1) {
                const char *suffix;
                bool ovl = overlay_xattr(k, &suffix);
                if (!ovl && !xattr_kept(k))
                        continue;
                ssize_t vn = lgetxattr(p, k, val, XATTR_SIZE_MAX);
                if (vn < 0) {
                        if (errno == ENODATA)
                                continue;
                        return kiln_err_sys(err, "read xattr %s of %s", k, shown);
                }
                if (ovl) {
                        if (!strcmp(suffix, "opaque") && vn == 1 && val[0] == 'y')
                                x->opaque = true;
                        else if (!strcmp(suffix, "whiteout"))
                                x->whiteout = true;
                        else if (!strcmp(suffix, "metacopy"))
                                x->metacopy = true;
                        else if (!strcmp(suffix, "redirect"))
                                x->redirect = true;
                        continue;
                }
                uint32_t len = (uint32_t)vn;
                kiln_buf_append(&x->kv, k, strlen(k) + 1);
                kiln_buf_append(&x->kv, &len, sizeof(len));
                kiln_buf_append(&x->kv, val, (size_t)vn);
                x->nkept++;
        }
        return 0;
}

static void entry_add_xattrs(struct archive_entry *e, const struct xattrs *x)
{
        const char *p = x->kv.data;
        for (size_t i = 0; i < x->nkept; i++) {
                const char *k = p;
                p += strlen(k) + 1;
                uint32_t len;
                memcpy(&len, p, sizeof(len));
                p += sizeof(len);
                archive_entry_xattr_add_entry(e, k, p, len);
                p += len;
        }
}

struct upper_item {
        char *name; /* in the upper */
        char *emit; /* in the layer: ".wh.NAME" for whiteouts */
        struct stat st;
        bool whiteout;
};

static int item_cmp(const void *a, const void *b)
{
        const struct upper_item *x = a, *y = b;
        return strcmp(x->emit, y->emit);
}

static int64_t clamp(const struct upper *u, int64_t t)
{
        int64_t sde = u->o->source_date_epoch;
        return sde >= 0 && t > sde ? sde : t;
}

static void entry_freep(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}
#define _cleanup_entry_ _cleanup_(entry_freep)

static int upper_walk(struct upper *u, int dirfd, const char *prefix, struct kiln_err **err);

static int upper_item(struct upper *u, int dirfd, const char *prefix, struct upper_item *it,
                      struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s%s", prefix, it->emit);
        const struct stat *st = &it->st;
        int64_t mtime = clamp(u, st->st_mtim.tv_sec);
        if (it->whiteout) {
                _cleanup_entry_ struct archive_entry *e =
                    tw_new_entry(path, S_IFREG, 0600, st->st_uid, st->st_gid, mtime);
                return tw_write(u->w, e, -1, 0, path, err);
        }
        _cleanup_xattrs_ struct xattrs x = {0};
        if (read_xattrs(dirfd, it->name, path, &x, err) < 0)
                return -1;
        if (x.metacopy || x.redirect)
                return kiln_err_set(err, KILN_ERR_BUILD, 0,
                                    "%s: overlay %s xattr found; the overlay must be mounted "
                                    "with metacopy=off,redirect_dir=off",
                                    path, x.metacopy ? "metacopy" : "redirect");
        mode_t type = st->st_mode & S_IFMT;
        _cleanup_entry_ struct archive_entry *e =
            tw_new_entry(path, type, st->st_mode, st->st_uid, st->st_gid, mtime);
        entry_add_xattrs(e, &x);
        switch (type) {
        case S_IFDIR: {
                if (tw_write(u->w, e, -1, 0, path, err) < 0)
                        return -1;
                _cleanup_free_ char *sub = kiln_xasprintf("%s/", path);
                if (x.opaque) {
                        _cleanup_free_ char *opq = kiln_xasprintf("%s.wh..wh..opq", sub);
                        _cleanup_entry_ struct archive_entry *oe = tw_new_entry(
                            opq, S_IFREG, st->st_mode & 0777, st->st_uid, st->st_gid, mtime);
                        if (tw_write(u->w, oe, -1, 0, opq, err) < 0)
                                return -1;
                }
                _cleanup_close_ int fd =
                    openat(dirfd, it->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return kiln_err_sys(err, "open %s", path);
                return upper_walk(u, fd, sub, err);
        }
        case S_IFREG: {
                if (st->st_nlink > 1) {
                        const char *first = ino_map_get(&u->links, st->st_dev, st->st_ino);
                        if (first) {
                                archive_entry_copy_hardlink(e, first);
                                return tw_write(u->w, e, -1, 0, path, err);
                        }
                        ino_map_put(&u->links, st->st_dev, st->st_ino, path);
                }
                _cleanup_close_ int fd = openat(dirfd, it->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return kiln_err_sys(err, "open %s", path);
                return tw_write(u->w, e, fd, (uint64_t)st->st_size, path, err);
        }
        case S_IFLNK: {
                char target[PATH_MAX];
                ssize_t n = readlinkat(dirfd, it->name, target, sizeof(target) - 1);
                if (n < 0)
                        return kiln_err_sys(err, "read symlink %s", path);
                target[n] = '\0';
                archive_entry_copy_symlink(e, target);
                return tw_write(u->w, e, -1, 0, path, err);
        }
        case S_IFCHR:
        case S_IFBLK:
                archive_entry_set_rdevmajor(e, major(st->st_rdev));
                archive_entry_set_rdevminor(e, minor(st->st_rdev));
                return tw_write(u->w, e, -1, 0, path, err);
        case S_IFIFO:
                return tw_write(u->w, e, -1, 0, path, err);
        default:
                kiln_warn("%s: %s: sockets cannot be stored in a layer; skipped", u->what, path);
                return 0;
        }
}

struct items {
        struct upper_item *v;
        size_t n, cap;
};

static void items_release(struct items *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                free(l->v[i].emit);
        }
        free(l->v);
        *l = (struct items){0};
}
#define _cleanup_items_ _cleanup_(items_release)

/* The entries of the directory dirfd, whiteouts recognised, unsorted.
 * The directory is read through a descriptor of its own, closed before
 * the caller descends: deep trees must not hold two per level. */
static int read_items(int dirfd, const char *prefix, struct items *l, struct kiln_err **err)
{
        _cleanup_close_ int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return kiln_err_sys(err, "open %s", *prefix ? prefix : "upper directory");
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d)
                return kiln_err_sys(err, "open %s", prefix);
        (void)steal_fd(&dfd); /* d owns it */
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (l->n == l->cap) {
                        l->cap = l->cap ? l->cap * 2 : 32;
                        l->v = kiln_xrealloc(l->v, l->cap * sizeof(*l->v));
                }
                struct upper_item *it = &l->v[l->n++];
                *it = (struct upper_item){.name = kiln_xstrdup(de->d_name)};
                if (fstatat(dirfd, it->name, &it->st, AT_SYMLINK_NOFOLLOW) < 0)
                        return kiln_err_sys(err, "stat %s%s", prefix, it->name);
                it->whiteout = S_ISCHR(it->st.st_mode) && it->st.st_rdev == 0;
                if (!it->whiteout && S_ISREG(it->st.st_mode) && it->st.st_size == 0) {
                        _cleanup_xattrs_ struct xattrs x = {0};
                        if (read_xattrs(dirfd, it->name, it->name, &x, err) < 0)
                                return -1;
                        it->whiteout = x.whiteout;
                }
                it->emit =
                    it->whiteout ? kiln_xasprintf(".wh.%s", it->name) : kiln_xstrdup(it->name);
        }
        return 0;
}

static int upper_walk(struct upper *u, int dirfd, const char *prefix, struct kiln_err **err)
{
        _cleanup_items_ struct items items = {0};
        if (read_items(dirfd, prefix, &items, err) < 0)
                return -1;
        if (items.n > 1)
                qsort(items.v, items.n, sizeof(*items.v), item_cmp);
        for (size_t i = 0; i < items.n; i++)
                if (upper_item(u, dirfd, prefix, &items.v[i], err) < 0)
                        return -1;
        return 0;
}

static int dir_is_empty(int fd, bool *empty, struct kiln_err **err)
{
        _cleanup_close_ int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d)
                return kiln_err_sys(err, "open upper directory");
        (void)steal_fd(&dfd); /* d owns it */
        struct dirent *de;
        *empty = true;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                        *empty = false;
                        break;
                }
        return 0;
}

static int write_upper(int upperfd, const char *what, struct kiln_store *store,
                       const struct kiln_archive_opts *opts, struct kiln_archive_result *out,
                       struct kiln_err **err)
{
        _cleanup_tw_ struct tw w = {0};
        _cleanup_upper_ struct upper u = {.w = &w, .o = opts, .what = what};
        if (tw_open(&w, store, opts, err) < 0 || upper_walk(&u, upperfd, "", err) < 0)
                return -1;
        return tw_finish(&w, out, err);
}

int kiln_archive_from_upper(int upperfd, const char *what, struct kiln_store *store,
                            const struct kiln_archive_opts *opts, struct kiln_archive_result *out,
                            struct kiln_err **err)
{
        *out = (struct kiln_archive_result){.media_type = comp_media_type(opts->compression)};
        bool empty = false;
        if (dir_is_empty(upperfd, &empty, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        if (empty) {
                out->empty = true;
                return 0;
        }
        if (write_upper(upperfd, what, store, opts, out, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        return 0;
}

/* ---------- from host files ---------- */

struct hent {
        char *path; /* in the layer, no trailing slash */
        char *src;  /* host path (NULL for implied parents) */
        mode_t type;
        mode_t perm;
        uint64_t size;
        char *link;
        bool implied;
        size_t seq;
};

struct hlist {
        struct hent *v;
        size_t n, cap;
};

static struct hent *hlist_add(struct hlist *l)
{
        if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 64;
                l->v = kiln_xrealloc(l->v, l->cap * sizeof(*l->v));
        }
        struct hent *h = &l->v[l->n];
        *h = (struct hent){.seq = l->n};
        l->n++;
        return h;
}

static void hlist_release(struct hlist *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].path);
                free(l->v[i].src);
                free(l->v[i].link);
        }
        free(l->v);
        *l = (struct hlist){0};
}
#define _cleanup_hlist_ _cleanup_(hlist_release)

static int hent_cmp(const void *a, const void *b)
{
        const struct hent *x = a, *y = b;
        int c = kiln_archive_path_cmp(x->path, y->path);
        if (c)
                return c;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* dest must be a plain relative path; "" or "." (the root) only for a
 * directory, whose contents then land in /. */
static int check_dest(const char *dest, char **out, struct kiln_err **err)
{
        if (dest[0] == '/')
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "copy destination \"%s\" must be relative to /", dest);
        _cleanup_buf_ struct kiln_buf b = {0};
        for (const char *p = dest; *p;) {
                const char *e = strchrnul(p, '/');
                size_t len = (size_t)(e - p);
                if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 0 && *e == '/'))
                        return kiln_err_set(err, KILN_ERR_USAGE, 0, "copy destination \"%s\": %s",
                                            dest,
                                            len ? "\"..\" is not allowed" : "empty component");
                if (!(len == 1 && p[0] == '.')) {
                        if (b.len)
                                kiln_buf_append(&b, "/", 1);
                        kiln_buf_append(&b, p, len);
                }
                p = *e ? e + 1 : e;
        }
        *out = b.data ? kiln_buf_steal(&b) : kiln_xstrdup("");
        return 0;
}

static int host_add(struct hlist *l, const char *src, const char *dest, struct kiln_err **err);

/* The names in the directory src. Its descriptor is closed before the
 * caller descends: deep trees must not hold a descriptor per level. */
static int host_dir_names(const char *src, char ***names, size_t *n, struct kiln_err **err)
{
        _cleanup_close_ int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", src);
        return kiln_dir_names(fd, src, names, n, err);
}

static int host_add_dir_children(struct hlist *l, const char *src, const char *dest,
                                 struct kiln_err **err)
{
        _cleanup_strv_ char **names = NULL;
        size_t n = 0;
        if (host_dir_names(src, &names, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *s = kiln_xasprintf("%s/%s", src, names[i]);
                _cleanup_free_ char *t =
                    *dest ? kiln_xasprintf("%s/%s", dest, names[i]) : kiln_xstrdup(names[i]);
                if (host_add(l, s, t, err) < 0)
                        return -1;
        }
        return 0;
}

static int host_add(struct hlist *l, const char *src, const char *dest, struct kiln_err **err)
{
        struct stat st;
        if (lstat(src, &st) < 0)
                return kiln_err_sys(err, "%s", src);
        if (!*dest) {
                if (!S_ISDIR(st.st_mode))
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "%s: only a directory can be copied to /", src);
                return host_add_dir_children(l, src, dest, err);
        }
        struct hent *h;
        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                h = hlist_add(l);
                h->type = S_IFREG;
                h->perm = (st.st_mode & S_IXUSR) ? 0755 : 0644;
                h->size = (uint64_t)st.st_size;
                break;
        case S_IFDIR:
                h = hlist_add(l);
                h->type = S_IFDIR;
                h->perm = 0755;
                break;
        case S_IFLNK: {
                char target[PATH_MAX];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return kiln_err_sys(err, "read symlink %s", src);
                target[n] = '\0';
                h = hlist_add(l);
                h->type = S_IFLNK;
                h->perm = 0777;
                h->link = kiln_xstrdup(target);
                break;
        }
        default:
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "%s: only regular files, directories and symlinks can be "
                                    "copied (this is a %s)",
                                    src,
                                    S_ISFIFO(st.st_mode)   ? "fifo"
                                    : S_ISSOCK(st.st_mode) ? "socket"
                                                           : "device node");
        }
        h->path = kiln_xstrdup(dest);
        h->src = kiln_xstrdup(src);
        if (S_ISDIR(st.st_mode))
                return host_add_dir_children(l, src, dest, err);
        return 0;
}

static void host_add_parents(struct hlist *l, const char *dest)
{
        _cleanup_free_ char *p = kiln_xstrdup(dest);
        for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                struct hent *h = hlist_add(l);
                h->type = S_IFDIR;
                h->perm = 0755;
                h->implied = true;
                h->path = kiln_xstrdup(p);
                *s = '/';
        }
}

/* Sorts and drops duplicates: a directory named twice is one entry; a file
 * copied twice keeps the later copy; a file where a directory is implied is
 * a conflict. */
static int host_sort(struct hlist *l, struct kiln_err **err)
{
        if (l->n > 1)
                qsort(l->v, l->n, sizeof(*l->v), hent_cmp);
        size_t o = 0;
        for (size_t i = 0; i < l->n; i++) {
                if (o > 0 && !strcmp(l->v[o - 1].path, l->v[i].path)) {
                        struct hent *prev = &l->v[o - 1], *cur = &l->v[i];
                        bool both_dirs = prev->type == S_IFDIR && cur->type == S_IFDIR;
                        if (!both_dirs && (prev->implied || cur->implied))
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "copy destination \"%s\" is both a file "
                                                    "and a parent directory",
                                                    cur->path);
                        if (both_dirs && cur->implied)
                                continue;
                        free(prev->path);
                        free(prev->src);
                        free(prev->link);
                        *prev = *cur;
                        *cur = (struct hent){0};
                        continue;
                }
                if (o != i) {
                        l->v[o] = l->v[i];
                        l->v[i] = (struct hent){0};
                }
                o++;
        }
        for (size_t i = o; i < l->n; i++) {
                free(l->v[i].path);
                free(l->v[i].src);
                free(l->v[i].link);
        }
        l->n = o;
        return 0;
}

static int host_write(struct tw *w, const struct hent *h, uid_t uid, gid_t gid, int64_t mtime,
                      struct kiln_err **err)
{
        _cleanup_entry_ struct archive_entry *e =
            tw_new_entry(h->path, h->type, h->perm, uid, gid, mtime);
        if (h->type == S_IFLNK) {
                archive_entry_copy_symlink(e, h->link);
                return tw_write(w, e, -1, 0, h->src, err);
        }
        if (h->type != S_IFREG)
                return tw_write(w, e, -1, 0, h->path, err);
        _cleanup_close_ int fd = open(h->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", h->src);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", h->src);
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != h->size)
                return kiln_err_set(err, KILN_ERR_BUILD, 0, "%s changed while being copied",
                                    h->src);
        return tw_write(w, e, fd, h->size, h->src, err);
}

/* The entries a host-file layer holds, sorted, duplicates resolved. */
static int host_collect(const struct kiln_copy_entry *entries, size_t n, struct hlist *l,
                        struct kiln_err **err)
{
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dest = NULL;
                if (check_dest(entries[i].dest, &dest, err) < 0)
                        return -1;
                host_add_parents(l, dest);
                if (host_add(l, entries[i].src, dest, err) < 0)
                        return -1;
        }
        return host_sort(l, err);
}

/* Hashes the content of a regular file of the list, which must still have
 * the size it was listed with. */
static int hash_file(struct kiln_sha256 *h, const struct hent *e, struct kiln_err **err)
{
        _cleanup_close_ int fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", e->src);
        char buf[COPY_SIZE < 65536 ? COPY_SIZE : 65536];
        uint64_t left = e->size;
        while (left > 0) {
                ssize_t r = read(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return kiln_err_sys(err, "read %s", e->src);
                if (r == 0)
                        return kiln_err_set(err, KILN_ERR_BUILD, 0, "%s changed while being read",
                                            e->src);
                kiln_sha256_update(h, buf, (size_t)r);
                left -= (uint64_t)r;
        }
        return 0;
}

int kiln_archive_host_digest(const struct kiln_copy_entry *entries, size_t n,
                             char out[KILN_DIGEST_MAX], struct kiln_err **err)
{
        _cleanup_hlist_ struct hlist l = {0};
        _cleanup_sha256_ struct kiln_sha256 *h = kiln_sha256_new();
        if (host_collect(entries, n, &l, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n; i++) {
                const struct hent *e = &l.v[i];
                /* path, "type perm size", link: each NUL-terminated */
                char meta[64];
                int ml = snprintf(meta, sizeof(meta), "%o %o %" PRIu64, (unsigned)e->type,
                                  (unsigned)e->perm, e->type == S_IFREG ? e->size : 0);
                kiln_sha256_update(h, e->path, strlen(e->path) + 1);
                kiln_sha256_update(h, meta, (size_t)ml + 1);
                kiln_sha256_update(h, e->link ? e->link : "", e->link ? strlen(e->link) + 1 : 1);
                if (e->type == S_IFREG && hash_file(h, e, err) < 0)
                        return -1;
        }
        kiln_sha256_final(h, out);
        return 0;
}

int kiln_archive_from_host(const struct kiln_copy_entry *entries, size_t n, uid_t uid, gid_t gid,
                           struct kiln_store *store, const struct kiln_archive_opts *opts,
                           struct kiln_archive_result *out, struct kiln_err **err)
{
        *out = (struct kiln_archive_result){.media_type = comp_media_type(opts->compression)};
        _cleanup_hlist_ struct hlist l = {0};
        if (host_collect(entries, n, &l, err) < 0)
                return -1;
        if (l.n == 0) {
                out->empty = true;
                return 0;
        }
        int64_t mtime = opts->source_date_epoch >= 0 ? opts->source_date_epoch : 0;
        _cleanup_tw_ struct tw w = {0};
        if (tw_open(&w, store, opts, err) < 0)
                return -1;
        for (size_t i = 0; i < l.n; i++)
                if (host_write(&w, &l.v[i], uid, gid, mtime, err) < 0)
                        return -1;
        return tw_finish(&w, out, err);
}
