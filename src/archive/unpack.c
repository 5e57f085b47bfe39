#include "archive-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <zlib.h>
#include <zstd.h>

#define IN_SIZE  ((size_t)128 << 10)
#define OUT_SIZE ((size_t)256 << 10)

/* ---------- decompressing, hashing reader fed to libarchive ---------- */

/* libarchive sees only the raw tar: decompression happens here so the bytes
 * it consumes are exactly the bytes hashed for the diff_id. */
struct reader {
        int fd;
        enum kiln_compression comp;
        const char *what;
        z_stream z;
        bool z_init;
        bool member_done;
        ZSTD_DStream *zs;
        size_t zs_pending; /* last ZSTD_decompressStream hint: 0 = frame complete */
        unsigned char *in;
        size_t in_len, in_pos;
        bool in_eof;
        unsigned char *out;
        struct kiln_sha256 *h;
        uint64_t total;
        struct kiln_err *err;
};

static int reader_fill(struct reader *r)
{
        if (r->in_pos < r->in_len || r->in_eof)
                return 0;
        r->in_pos = r->in_len = 0;
        while (r->in_len < IN_SIZE) {
                ssize_t n = read(r->fd, r->in + r->in_len, IN_SIZE - r->in_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(&r->err, "%s: read", r->what);
                if (n == 0) {
                        r->in_eof = true;
                        break;
                }
                r->in_len += (size_t)n;
        }
        return 0;
}

static const char *comp_name(enum kiln_compression c)
{
        switch (c) {
        case KILN_COMP_GZIP:
                return "gzip";
        case KILN_COMP_ZSTD:
                return "zstd";
        case KILN_COMP_NONE:
                return "uncompressed tar";
        default:
                return "unknown";
        }
}

static int reader_check_magic(struct reader *r)
{
        if (reader_fill(r) < 0)
                return -1;
        const unsigned char *p = r->in;
        size_t n = r->in_len;
        enum kiln_compression seen = KILN_COMP_NONE;
        if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
                seen = KILN_COMP_GZIP;
        else if (n >= 4 &&
                 ((p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) ||
                  ((p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18)))
                seen = KILN_COMP_ZSTD;
        if (seen != r->comp)
                return kiln_err_set(&r->err, KILN_ERR_FORMAT, 0,
                                    "%s: media type says %s but the content is %s", r->what,
                                    comp_name(r->comp), comp_name(seen));
        return 0;
}

/* Produces the next chunk of uncompressed tar; 0 at the end. */
static ssize_t reader_next(struct reader *r, const void **buf)
{
        for (;;) {
                if (reader_fill(r) < 0)
                        return -1;
                size_t avail = r->in_len - r->in_pos;
                if (r->comp == KILN_COMP_NONE) {
                        *buf = r->in + r->in_pos;
                        r->in_pos = r->in_len;
                        return (ssize_t)avail;
                }
                if (r->comp == KILN_COMP_GZIP) {
                        if (avail == 0) {
                                if (r->member_done)
                                        return 0;
                                return kiln_err_set(&r->err, KILN_ERR_FORMAT, 0,
                                                    "%s: gzip stream is truncated", r->what);
                        }
                        if (r->member_done) {
                                /* concatenated gzip members (pigz, appenders) */
                                if (inflateReset(&r->z) != Z_OK)
                                        return kiln_err_set(&r->err, KILN_ERR_INTERNAL, 0,
                                                            "%s: inflateReset failed", r->what);
                                r->member_done = false;
                        }
                        r->z.next_in = r->in + r->in_pos;
                        r->z.avail_in = (uInt)avail;
                        r->z.next_out = r->out;
                        r->z.avail_out = (uInt)OUT_SIZE;
                        int zr = inflate(&r->z, Z_NO_FLUSH);
                        r->in_pos = r->in_len - r->z.avail_in;
                        if (zr == Z_STREAM_END)
                                r->member_done = true;
                        else if (zr != Z_OK && zr != Z_BUF_ERROR)
                                return kiln_err_set(&r->err, KILN_ERR_FORMAT, 0,
                                                    "%s: gzip data is corrupt: %s", r->what,
                                                    r->z.msg ? r->z.msg : "inflate failed");
                        size_t got = OUT_SIZE - r->z.avail_out;
                        if (got > 0) {
                                *buf = r->out;
                                return (ssize_t)got;
                        }
                        continue;
                }
                /* zstd */
                if (avail == 0) {
                        if (r->zs_pending == 0)
                                return 0;
                        return kiln_err_set(&r->err, KILN_ERR_FORMAT, 0,
                                            "%s: zstd stream is truncated", r->what);
                }
                ZSTD_inBuffer ib = {r->in + r->in_pos, avail, 0};
                ZSTD_outBuffer ob = {r->out, OUT_SIZE, 0};
                size_t zr = ZSTD_decompressStream(r->zs, &ob, &ib);
                if (ZSTD_isError(zr))
                        return kiln_err_set(&r->err, KILN_ERR_FORMAT, 0,
                                            "%s: zstd data is corrupt: %s", r->what,
                                            ZSTD_getErrorName(zr));
                r->in_pos += ib.pos;
                r->zs_pending = zr;
                if (ob.pos > 0) {
                        *buf = r->out;
                        return (ssize_t)ob.pos;
                }
        }
}

static la_ssize_t reader_cb(struct archive *a, void *ud, const void **buf)
{
        struct reader *r = ud;
        ssize_t n = reader_next(r, buf);
        if (n < 0) {
                archive_set_error(a, EIO, "%s", r->err ? r->err->msg : "read failed");
                return -1;
        }
        kiln_sha256_update(r->h, *buf, (size_t)n);
        r->total += (uint64_t)n;
        return n;
}

/* Hashes what libarchive left unread (end-of-archive padding): the diff_id
 * covers the whole uncompressed stream. */
static int reader_drain(struct reader *r)
{
        const void *buf;
        ssize_t n;
        while ((n = reader_next(r, &buf)) > 0) {
                kiln_sha256_update(r->h, buf, (size_t)n);
                r->total += (uint64_t)n;
        }
        return n < 0 ? -1 : 0;
}

static int reader_init(struct reader *r, int fd, enum kiln_compression comp, const char *what,
                       struct kiln_err **err)
{
        *r = (struct reader){.fd = fd, .comp = comp, .what = what, .zs_pending = 1};
        r->in = kiln_xmalloc(IN_SIZE);
        r->out = kiln_xmalloc(OUT_SIZE);
        r->h = kiln_sha256_new();
        if (comp == KILN_COMP_GZIP) {
                if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK)
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "%s: inflateInit failed",
                                            what);
                r->z_init = true;
        } else if (comp == KILN_COMP_ZSTD) {
                r->zs = ZSTD_createDStream();
                if (!r->zs)
                        return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                            "%s: ZSTD_createDStream failed", what);
                /* bounds the decoder's window (memory) against hostile frames */
                ZSTD_DCtx_setParameter(r->zs, ZSTD_d_windowLogMax, 27);
        }
        return 0;
}

static void reader_release(struct reader *r)
{
        if (r->z_init)
                inflateEnd(&r->z);
        ZSTD_freeDStream(r->zs);
        free(r->in);
        free(r->out);
        kiln_sha256_free(r->h);
        kiln_err_free(r->err);
        *r = (struct reader){0};
}
#define _cleanup_reader_ _cleanup_(reader_release)

/* The reader's own error (a read, decompression or digest failure) is the
 * cause of whatever libarchive or the caller saw after it. */
static int reader_fail(const struct reader *r, struct kiln_err **err)
{
        return kiln_err_set(err, r->err->domain, r->err->code, "%s", r->err->msg);
}

/* ---------- set of paths created by the current layer ---------- */

struct strset {
        char **slot;
        size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static bool strset_has(const struct strset *s, const char *k)
{
        if (!s->cap)
                return false;
        for (size_t i = str_hash(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
                if (!s->slot[i])
                        return false;
                if (!strcmp(s->slot[i], k))
                        return true;
        }
}

static void strset_add(struct strset *s, const char *k)
{
        if (strset_has(s, k))
                return;
        if ((s->n + 1) * 2 > s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 256;
                char **ns = kiln_xcalloc(ncap, sizeof(char *));
                for (size_t j = 0; j < s->cap; j++) {
                        if (!s->slot[j])
                                continue;
                        size_t i = str_hash(s->slot[j]) & (ncap - 1);
                        while (ns[i])
                                i = (i + 1) & (ncap - 1);
                        ns[i] = s->slot[j];
                }
                free(s->slot);
                s->slot = ns;
                s->cap = ncap;
        }
        size_t i = str_hash(k) & (s->cap - 1);
        while (s->slot[i])
                i = (i + 1) & (s->cap - 1);
        s->slot[i] = kiln_xstrdup(k);
        s->n++;
}

static void strset_release(struct strset *s)
{
        for (size_t i = 0; i < s->cap; i++)
                free(s->slot[i]);
        free(s->slot);
}

/* ---------- applying entries ---------- */

struct dir_time {
        char *path;
        struct timespec mtime;
};

struct unpack {
        int rootfd;
        const char *what;
        struct kiln_unpack_stats *stats;
        struct strset created;
        struct strset devices; /* device nodes of this layer, left out */
        struct dir_time *dirs;
        size_t ndirs, capdirs;
        char *cache_path; /* parent directory last opened */
        int cache_fd;
        bool warned_owner;
        uint64_t xattr_failures;
};

static void cache_drop(struct unpack *u)
{
        free(u->cache_path);
        u->cache_path = NULL;
        if (u->cache_fd >= 0)
                close(u->cache_fd);
        u->cache_fd = -1;
}

/* Normalises a tar path: drops "./" prefixes, "." components, repeated and
 * trailing slashes. Absolute paths and ".." are refused, never rewritten:
 * a layer that contains them was made to attack. */
static int normalise(const char *raw, char **out, struct kiln_err **err)
{
        if (raw[0] == '/')
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "absolute path refused");
        _cleanup_buf_ struct kiln_buf b = {0};
        const char *p = raw;
        while (*p) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t len = (size_t)(e - p);
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"..\" component refused");
                /* no file system holds it: the layer is malformed, not the host */
                if (len > NAME_MAX)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "a name of %zu bytes (the limit is %d)", len, NAME_MAX);
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (b.len)
                                kiln_buf_append(&b, "/", 1);
                        kiln_buf_append(&b, p, len);
                }
                p = e;
        }
        if (b.len >= PATH_MAX)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "a path of %zu bytes (the limit is %d)", b.len, PATH_MAX - 1);
        *out = b.data ? kiln_buf_steal(&b) : kiln_xstrdup("");
        return 0;
}

static void split(char *rel, const char **parent, const char **name)
{
        char *slash = strrchr(rel, '/');
        if (slash) {
                *slash = '\0';
                *parent = rel;
                *name = slash + 1;
        } else {
                *parent = "";
                *name = rel;
        }
}

static char *join(const char *parent, const char *name)
{
        return *parent ? kiln_xasprintf("%s/%s", parent, name) : kiln_xstrdup(name);
}

static int open_err(struct kiln_err **err, const char *dir)
{
        if (errno == ENOTDIR)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "parent \"%s\" is not a directory",
                                    dir);
        if (errno == ELOOP)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "parent \"%s\" has too many levels of symlinks", dir);
        if (errno == ENAMETOOLONG)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "parent \"%s\" is too long a path once its symlinks are "
                                    "resolved",
                                    dir);
        return kiln_err_sys(err, "open parent \"%s\"", dir);
}

/* The parent directory of an entry, created (0755) where the layer did not
 * list it. Returns a borrowed fd. */
static int get_parent(struct unpack *u, const char *parent, struct kiln_err **err)
{
        if (u->cache_path && !strcmp(u->cache_path, parent))
                return u->cache_fd;
        cache_drop(u);
        int fd = kiln_archive_open_in_root(u->rootfd, parent);
        if (fd < 0 && errno == ENOENT) {
                _cleanup_free_ char *prefix = kiln_xstrdup(parent);
                for (char *s = prefix;; s++) {
                        if (*s != '/' && *s)
                                continue;
                        char saved = *s;
                        *s = '\0';
                        _cleanup_close_ int pfd = kiln_archive_open_in_root(u->rootfd, prefix);
                        if (pfd < 0 && errno == ENOENT) {
                                _cleanup_free_ char *dir = kiln_xstrdup(prefix);
                                const char *dp, *dn;
                                split(dir, &dp, &dn);
                                _cleanup_close_ int gfd = kiln_archive_open_in_root(u->rootfd, dp);
                                if (gfd < 0)
                                        return open_err(err, dp);
                                if (mkdirat(gfd, dn, 0755) < 0) {
                                        if (errno == EEXIST)
                                                return kiln_err_set(
                                                    err, KILN_ERR_FORMAT, 0,
                                                    "parent \"%s\" is a symlink that does not "
                                                    "resolve to a directory inside the root",
                                                    prefix);
                                        return kiln_err_sys(err, "create directory \"%s\"", prefix);
                                }
                                strset_add(&u->created, prefix);
                        } else if (pfd < 0) {
                                return open_err(err, prefix);
                        }
                        *s = saved;
                        if (!saved)
                                break;
                }
                fd = kiln_archive_open_in_root(u->rootfd, parent);
        }
        if (fd < 0)
                return open_err(err, parent);
        u->cache_path = kiln_xstrdup(parent);
        u->cache_fd = fd;
        return fd;
}

static int remove_at(struct unpack *u, int dirfd, const char *name, const char *shown,
                     struct kiln_err **err)
{
        /* the cached parent may be inside what goes away; callers re-open */
        int rc = kiln_archive_rm_rf_at(dirfd, name);
        cache_drop(u);
        if (rc < 0)
                return kiln_err_sys(err, "remove \"%s\"", shown);
        return 0;
}

static int apply_opaque(struct unpack *u, const char *dir, struct kiln_err **err)
{
        _cleanup_close_ int pfd = kiln_archive_open_in_root(u->rootfd, dir);
        if (pfd < 0)
                return errno == ENOENT ? 0 : open_err(err, dir);
        _cleanup_strv_ char **names = NULL;
        size_t n = 0;
        _cleanup_free_ char *what = kiln_xasprintf("\"%s\"", dir);
        if (kiln_dir_names(pfd, what, &names, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = join(dir, names[i]);
                /* What this layer itself put here stays. */
                if (strset_has(&u->created, path))
                        continue;
                if (remove_at(u, pfd, names[i], path, err) < 0)
                        return -1;
        }
        return 0;
}

static int apply_whiteout(struct unpack *u, const char *parent, const char *name,
                          struct kiln_err **err)
{
        if (!strcmp(name, ".wh..wh..opq"))
                return apply_opaque(u, parent, err);
        if (kiln_str_has_prefix(name, ".wh..wh."))
                return 0; /* aufs bookkeeping (.wh..wh.plnk ...), nothing to apply */
        const char *victim = name + 4;
        if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "invalid whiteout name");
        _cleanup_close_ int pfd = kiln_archive_open_in_root(u->rootfd, parent);
        if (pfd < 0)
                return errno == ENOENT ? 0 : open_err(err, parent);
        _cleanup_free_ char *path = join(parent, victim);
        return remove_at(u, pfd, victim, path, err);
}

static void warn_owner(struct unpack *u, const char *path, uid_t uid, gid_t gid)
{
        u->stats->ownership_lost++;
        if (u->warned_owner)
                return;
        u->warned_owner = true;
        kiln_warn("%s: cannot set owner %u:%u of \"%s\" (user namespace without those ids?); "
                  "files keep the current owner",
                  u->what, (unsigned)uid, (unsigned)gid, path);
}

static bool xattr_dropped(const char *name)
{
        /* overlay's own attributes would change how the snapshot behaves as a
         * lower layer; a layer has no business setting them */
        return kiln_str_has_prefix(name, "trusted.overlay.") ||
               kiln_str_has_prefix(name, "user.overlay.");
}

static int apply_xattrs(struct unpack *u, struct archive_entry *e, int fd, int pfd,
                        const char *name, const char *path, struct kiln_err **err)
{
        if (archive_entry_xattr_reset(e) == 0)
                return 0;
        const char *xn;
        const void *xv;
        size_t xs;
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d/", pfd);
        _cleanup_free_ char *ppath = kiln_xasprintf("%s%s", proc, name);
        while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
                if (xattr_dropped(xn))
                        continue;
                if ((fd >= 0 ? fsetxattr(fd, xn, xv, xs, 0) : lsetxattr(ppath, xn, xv, xs, 0)) == 0)
                        continue;
                if (!strcmp(xn, "security.capability"))
                        return kiln_err_sys(err, "set security.capability on \"%s\"", path);
                if (kiln_str_has_prefix(xn, "trusted.") && (errno == EPERM || errno == EACCES))
                        continue; /* needs CAP_SYS_ADMIN in the initial namespace */
                if (u->xattr_failures++ == 0)
                        kiln_warn("%s: cannot set xattr %s on \"%s\": %s", u->what, xn, path,
                                  strerror(errno));
        }
        return 0;
}

static void record_dir_time(struct unpack *u, const char *path, struct archive_entry *e)
{
        if (u->ndirs == u->capdirs) {
                u->capdirs = u->capdirs ? u->capdirs * 2 : 64;
                u->dirs = kiln_xrealloc(u->dirs, u->capdirs * sizeof(*u->dirs));
        }
        u->dirs[u->ndirs++] = (struct dir_time){
            .path = kiln_xstrdup(path),
            .mtime = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
        };
}

static int copy_data(struct archive *a, int fd, const char *path, struct archive_entry *e,
                     struct kiln_err **err)
{
        const void *buf;
        size_t size;
        la_int64_t off;
        int r;
        while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
                const char *p = buf;
                while (size > 0) {
                        ssize_t n = pwrite(fd, p, size, off);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return kiln_err_sys(err, "write \"%s\"", path);
                        p += n;
                        size -= (size_t)n;
                        off += n;
                }
        }
        if (r != ARCHIVE_EOF)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "read data: %s",
                                    archive_error_string(a));
        /* sparse files may end in a hole */
        if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
                return kiln_err_sys(err, "truncate \"%s\"", path);
        return 0;
}

static int hardlink_missing(struct kiln_err **err, const char *target)
{
        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                            "hardlink to \"%s\": no such file in the layers so far", target);
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e,
                        const char *rel_in, struct kiln_err **err)
{
        _cleanup_free_ char *rel = kiln_xstrdup(rel_in);
        const char *hardlink = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        uid_t uid = (uid_t)archive_entry_uid(e);
        gid_t gid = (gid_t)archive_entry_gid(e);
        mode_t mode = archive_entry_perm(e) & 07777;

        if (!*rel) {
                /* "./": the root itself; only its metadata can change */
                if (type != AE_IFDIR || hardlink)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "the root can only be a directory");
                if (fchownat(u->rootfd, ".", uid, gid, 0) < 0) {
                        if (errno != EINVAL && errno != EPERM)
                                return kiln_err_sys(err, "chown the root");
                        warn_owner(u, "/", uid, gid);
                }
                if (fchmodat(u->rootfd, ".", mode, 0) < 0)
                        return kiln_err_sys(err, "chmod the root");
                record_dir_time(u, "", e);
                return 0;
        }

        const char *parent, *name;
        split(rel, &parent, &name);
        if (kiln_str_has_prefix(name, ".wh."))
                return apply_whiteout(u, parent, name, err);

        int pfd = get_parent(u, parent, err);
        if (pfd < 0)
                return -1;
        _cleanup_free_ char *path = join(parent, name);

        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                bool keep = type == AE_IFDIR && !hardlink && S_ISDIR(st.st_mode);
                if (!keep) {
                        if (remove_at(u, pfd, name, path, err) < 0)
                                return -1;
                        pfd = get_parent(u, parent, err);
                        if (pfd < 0)
                                return -1;
                }
        } else if (errno != ENOENT) {
                return kiln_err_sys(err, "stat \"%s\"", path);
        }

        if (hardlink) {
                _cleanup_free_ char *target = NULL;
                if (normalise(hardlink, &target, err) < 0)
                        return kiln_err_prefix(err, "hardlink target \"%s\"", hardlink);
                if (!*target)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "hardlink to the root refused");
                if (strset_has(&u->devices, target)) {
                        /* another name of a device node: left out too */
                        strset_add(&u->devices, path);
                        u->stats->skipped_devices++;
                        return 0;
                }
                const char *tparent, *tname;
                split(target, &tparent, &tname);
                _cleanup_close_ int tfd = kiln_archive_open_in_root(u->rootfd, tparent);
                if (tfd < 0 && errno == ENOENT)
                        return hardlink_missing(err, hardlink);
                if (tfd < 0)
                        return open_err(err, tparent);
                /* a layer links to what an earlier entry made, never to a
                 * directory or to nothing: either is a malformed layer */
                struct stat tst;
                if (fstatat(tfd, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
                                return kiln_err_sys(err, "hardlink to \"%s\"", hardlink);
                        return hardlink_missing(err, hardlink);
                }
                if (S_ISDIR(tst.st_mode))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "hardlink to \"%s\": a directory", hardlink);
                if (linkat(tfd, tname, pfd, name, 0) < 0)
                        return kiln_err_sys(err, "hardlink to \"%s\"", hardlink);
                strset_add(&u->created, path);
                return 0;
        }

        _cleanup_close_ int fd = -1;
        switch (type) {
        case AE_IFREG:
                fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return kiln_err_sys(err, "create \"%s\"", path);
                if (copy_data(a, fd, path, e, err) < 0)
                        return -1;
                break;
        case AE_IFDIR:
                if (mkdirat(pfd, name, 0700) < 0 && errno != EEXIST)
                        return kiln_err_sys(err, "create directory \"%s\"", path);
                fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return kiln_err_sys(err, "open directory \"%s\"", path);
                break;
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (!target)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "symlink without target");
                if (strlen(target) >= PATH_MAX)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "symlink target of %zu bytes (the limit is %d)",
                                            strlen(target), PATH_MAX - 1);
                if (symlinkat(target, pfd, name) < 0)
                        return kiln_err_sys(err, "create symlink \"%s\"", path);
                break;
        }
        case AE_IFIFO:
                if (mknodat(pfd, name, S_IFIFO | 0600, 0) < 0)
                        return kiln_err_sys(err, "create fifo \"%s\"", path);
                break;
        case AE_IFCHR:
        case AE_IFBLK:
                /* Never created, in any mode: a device node in the cache
                 * would open the host's device for whoever reaches it, and
                 * no step needs one (the sandbox brings its own /dev). The
                 * entry is absent, as when moby or containerd unpack in a
                 * user namespace; the layer's blob keeps it. Whatever was
                 * at the path before is gone, as the layer says. */
                strset_add(&u->devices, path);
                u->stats->skipped_devices++;
                return 0;
        default:
                kiln_warn("%s: skipping \"%s\": unsupported entry type %#o", u->what, path,
                          (unsigned)type);
                return 0;
        }
        strset_add(&u->created, path);

        int rc =
            fd >= 0 ? fchown(fd, uid, gid) : fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
        if (rc < 0) {
                if (errno != EINVAL && errno != EPERM)
                        return kiln_err_sys(err, "chown \"%s\"", path);
                warn_owner(u, path, uid, gid);
        }
        /* after chown, which clears setuid/setgid */
        if (type != AE_IFLNK) {
                rc = fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, name, mode, 0);
                if (rc < 0)
                        return kiln_err_sys(err, "chmod \"%s\"", path);
        }
        /* after chown too, which drops security.capability */
        if (apply_xattrs(u, e, fd, pfd, name, path, err) < 0)
                return -1;
        if (type == AE_IFDIR) {
                record_dir_time(u, path, e);
                return 0;
        }
        struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                                 {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
        rc = fd >= 0 ? futimens(fd, ts) : utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
        if (rc < 0)
                return kiln_err_sys(err, "set mtime of \"%s\"", path);
        return 0;
}

/* Directory mtimes last: creating their children changed them. */
static int apply_dir_times(struct unpack *u, struct kiln_err **err)
{
        cache_drop(u);
        for (size_t i = u->ndirs; i-- > 0;) {
                struct dir_time *d = &u->dirs[i];
                struct timespec ts[2] = {d->mtime, d->mtime};
                if (!*d->path) {
                        if (utimensat(u->rootfd, ".", ts, 0) < 0)
                                return kiln_err_sys(err, "set mtime of the root");
                        continue;
                }
                _cleanup_free_ char *copy = kiln_xstrdup(d->path);
                const char *parent, *name;
                split(copy, &parent, &name);
                _cleanup_close_ int pfd = kiln_archive_open_in_root(u->rootfd, parent);
                if (pfd < 0)
                        continue; /* removed by a later entry */
                if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
                        return kiln_err_sys(err, "set mtime of \"%s\"", d->path);
        }
        return 0;
}

static void unpack_release(struct unpack *u)
{
        cache_drop(u);
        strset_release(&u->created);
        strset_release(&u->devices);
        for (size_t i = 0; i < u->ndirs; i++)
                free(u->dirs[i].path);
        free(u->dirs);
        *u = (struct unpack){.cache_fd = -1};
}
#define _cleanup_unpack_ _cleanup_(unpack_release)

static void archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
        *a = NULL;
}
#define _cleanup_archive_read_ _cleanup_(archive_read_freep)

int kiln_archive_unpack(int rootfd, int blobfd, const char *media_type, const char *diff_id,
                        const char *what, struct kiln_unpack_stats *stats, struct kiln_err **err)
{
        enum kiln_compression comp = kiln_mt_layer_compression(media_type);
        if (comp == KILN_COMP_UNKNOWN)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: unsupported media type %s", what,
                                    media_type);
        struct kiln_unpack_stats local = {0};
        if (!stats)
                stats = &local;
        _cleanup_reader_ struct reader r = {0};
        _cleanup_unpack_ struct unpack u = {
            .rootfd = rootfd, .what = what, .stats = stats, .cache_fd = -1};
        _cleanup_archive_read_ struct archive *a = NULL;

        if (reader_init(&r, blobfd, comp, what, err) < 0)
                return -1;
        if (reader_check_magic(&r) < 0)
                return reader_fail(&r, err);
        a = archive_read_new();
        archive_read_support_format_tar(a);
        if (archive_read_open(a, &r, NULL, reader_cb, NULL) != ARCHIVE_OK) {
                if (r.err)
                        return reader_fail(&r, err);
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: not a tar archive: %s", what,
                                    archive_error_string(a));
        }
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        if (r.err)
                                return reader_fail(&r, err);
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: bad tar: %s", what,
                                            archive_error_string(a));
                }
                const char *raw = archive_entry_pathname(e);
                if (!raw)
                        raw = archive_entry_pathname_utf8(e);
                if (!raw)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: entry without a path",
                                            what);
                _cleanup_free_ char *shown = kiln_xstrdup(raw);
                _cleanup_free_ char *rel = NULL;
                stats->entries++;
                if (normalise(raw, &rel, err) < 0 || unpack_entry(&u, a, e, rel, err) < 0) {
                        if (r.err) {
                                kiln_err_clear(err);
                                return reader_fail(&r, err);
                        }
                        return kiln_err_prefix(err, "%s: entry \"%s\"", what, shown);
                }
        }
        if (reader_drain(&r) < 0)
                return reader_fail(&r, err);
        if (apply_dir_times(&u, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        if (u.xattr_failures > 1)
                kiln_warn("%s: %" PRIu64 " xattrs could not be set", what, u.xattr_failures);
        if (diff_id) {
                char got[KILN_DIGEST_MAX];
                kiln_sha256_final(r.h, got);
                if (strcmp(got, diff_id) != 0)
                        return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                            "%s: uncompressed content has diff_id %s, expected %s",
                                            what, got, diff_id);
        }
        return 0;
}
