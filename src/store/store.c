#include "store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct kiln_store {
        char *root;
        char *blobs; /* ROOT/blobs/sha256 */
        char *tmp;   /* ROOT/tmp */
        int lock;    /* ROOT/lock, held shared; prune takes it exclusive */
};

static char *default_root(void)
{
        const char *v = getenv("KILN_CACHE");
        if (v && *v)
                return kiln_xstrdup(v);
        v = getenv("XDG_CACHE_HOME");
        if (v && *v)
                return kiln_xasprintf("%s/kiln", v);
        v = getenv("HOME");
        return kiln_xasprintf("%s/.cache/kiln", v && *v ? v : "/tmp");
}

/* What kiln keeps at the top of its cache. Base snapshots hold the setuid
 * files and device nodes of images, installer caches are mounted into
 * builds, step results name what was built: the cache is its owner's
 * alone, each of these 0700 whoever else can reach the cache's path. */
static const char *const private_dirs[] = {"blobs", "tmp",    "snapshots", "steps",
                                           "cache", "builds", "locations", "locks"};

/* fd's directory (or file) made 0700 (0600) where it is looser. */
static int make_private_fd(int fd, const char *path, struct kiln_err **err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", path);
        mode_t want = S_ISDIR(st.st_mode) ? 0700 : 0600;
        if ((st.st_mode & 07777) == want)
                return 0;
        if (fchmod(fd, want) < 0)
                return kiln_err_sys(err,
                                    "make %s private (mode %04o, owner uid %u; kiln keeps its "
                                    "cache to its owner)",
                                    path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        return 0;
}

/* name in the cache root made (or created) private. One another user
 * owns (made before kiln ran, in a shared KILN_CACHE such as /tmp) is
 * refused: its owner could swap what kiln keeps there, even after root
 * changed its mode. */
static int make_private_at(int rootfd, const char *root, const char *name, struct kiln_err **err)
{
        _cleanup_free_ char *path = kiln_xasprintf("%s/%s", root, name);
        if (mkdirat(rootfd, name, 0700) < 0 && errno != EEXIST)
                return kiln_err_sys(err, "create %s", path);
        /* followed: a top-level directory may be a link to another disk */
        _cleanup_close_ int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", path);
        if (st.st_uid != geteuid())
                return kiln_err_set(err, KILN_ERR_SYSTEM, EPERM,
                                    "%s is owned by uid %u, not by kiln's user (uid %u): "
                                    "another user could change what the cache holds",
                                    path, (unsigned)st.st_uid, (unsigned)geteuid());
        return make_private_fd(fd, path, err);
}

/* Does the directory hold nothing, or a kiln cache (its lock file)? */
static bool empty_or_cache(int fd)
{
        if (faccessat(fd, "lock", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return true;
        _cleanup_close_ int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d)
                return false;
        (void)steal_fd(&dfd); /* d owns it */
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        return false;
        return true;
}

/* The root is made private when kiln made it, or when its user owns it
 * and it is empty or a kiln cache made looser before: never a shared
 * directory such as /tmp or a home that KILN_CACHE names, whose mode is
 * not kiln's to change (what kiln keeps in it is private anyway). */
static int make_root_private(const char *root, struct kiln_err **err)
{
        bool existed = access(root, F_OK) == 0;
        if (kiln_mkdir_p(root, 0700, err) < 0)
                return -1;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", root);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", root);
        bool ours =
            !existed || (st.st_uid == geteuid() && !(st.st_mode & S_ISVTX) && empty_or_cache(fd));
        if (ours && make_private_fd(fd, root, err) < 0)
                return -1;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", root);
        /* Whoever owns the root, or may write it without the sticky bit,
         * can rename kiln's directories away and put their own in place
         * (in a /tmp/.cache/kiln planted before kiln ran). */
        if (st.st_uid != geteuid() && st.st_uid != 0)
                return kiln_err_set(err, KILN_ERR_SYSTEM, EPERM,
                                    "%s is owned by uid %u, not by kiln's user (uid %u) or root: "
                                    "its owner could change what the cache holds",
                                    root, (unsigned)st.st_uid, (unsigned)geteuid());
        if ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))
                return kiln_err_set(err, KILN_ERR_SYSTEM, EPERM,
                                    "%s (mode %04o) is writable by other users without the sticky "
                                    "bit: they could replace what the cache holds",
                                    root, (unsigned)(st.st_mode & 07777));
        for (size_t i = 0; i < sizeof(private_dirs) / sizeof(private_dirs[0]); i++)
                if (make_private_at(fd, root, private_dirs[i], err) < 0)
                        return -1;
        return 0;
}

int kiln_store_open(const char *root, struct kiln_store **out, struct kiln_err **err)
{
        _cleanup_store_ struct kiln_store *s = kiln_xcalloc(1, sizeof(*s));
        s->root = root ? kiln_xstrdup(root) : default_root();
        s->blobs = kiln_xasprintf("%s/blobs/sha256", s->root);
        s->tmp = kiln_xasprintf("%s/tmp", s->root);
        s->lock = -1;
        if (make_root_private(s->root, err) < 0 || kiln_mkdir_p(s->blobs, 0700, err) < 0)
                return kiln_err_prefix(err, "open cache %s", s->root);
        /* Everyone using the cache holds its lock shared, so prune (which
         * takes it exclusive) never removes what a build is using. */
        _cleanup_free_ char *lp = kiln_xasprintf("%s/lock", s->root);
        s->lock = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock < 0 || flock(s->lock, LOCK_SH) < 0)
                return kiln_err_sys(err, "lock cache %s", lp);
        if (make_private_fd(s->lock, lp, err) < 0)
                return kiln_err_prefix(err, "open cache %s", s->root);
        *out = steal_pointer(&s);
        return 0;
}

void kiln_store_free(struct kiln_store *s)
{
        if (!s)
                return;
        free(s->root);
        free(s->blobs);
        free(s->tmp);
        if (s->lock >= 0)
                close(s->lock);
        free(s);
}

void kiln_store_freep(struct kiln_store **s)
{
        kiln_store_free(*s);
        *s = NULL;
}

int kiln_store_lock_exclusive(struct kiln_store *s, struct kiln_err **err)
{
        if (flock(s->lock, LOCK_EX | LOCK_NB) == 0)
                return 0;
        kiln_info("waiting for builds and pulls using %s to finish", s->root);
        while (flock(s->lock, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kiln_err_sys(err, "lock cache %s", s->root);
        return 0;
}

const char *kiln_store_root(const struct kiln_store *s)
{
        return s->root;
}

char *kiln_store_blob_path(const struct kiln_store *s, const char *digest)
{
        return kiln_xasprintf("%s/%s", s->blobs, kiln_digest_hex(digest));
}

/* Only sha256 is stored: it is what every registry and builder produces, and
 * one algorithm keeps names unique. */
static int check_digest(const char *digest, struct kiln_err **err)
{
        if (kiln_digest_validate(digest, err) < 0)
                return -1;
        if (!kiln_str_has_prefix(digest, "sha256:"))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%.20s…: only sha256 blobs are supported", digest);
        return 0;
}

void kiln_store_touch(const struct kiln_store *s, const char *digest)
{
        if (check_digest(digest, NULL) < 0)
                return;
        _cleanup_free_ char *p = kiln_store_blob_path(s, digest);
        utimensat(AT_FDCWD, p, NULL, 0);
}

bool kiln_store_has(const struct kiln_store *s, const char *digest, int64_t size)
{
        if (check_digest(digest, NULL) < 0)
                return false;
        _cleanup_free_ char *p = kiln_store_blob_path(s, digest);
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        return size < 0 || st.st_size == size;
}

int kiln_store_open_blob(const struct kiln_store *s, const char *digest, int *fd, uint64_t *size,
                         struct kiln_err **err)
{
        if (check_digest(digest, err) < 0)
                return -1;
        _cleanup_free_ char *p = kiln_store_blob_path(s, digest);
        _cleanup_close_ int f = open(p, O_RDONLY | O_CLOEXEC);
        if (f < 0) {
                if (errno == ENOENT)
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                            "blob %s is not in the cache %s", digest, s->root);
                return kiln_err_sys(err, "open blob %s", p);
        }
        struct stat st;
        if (fstat(f, &st) < 0)
                return kiln_err_sys(err, "stat blob %s", p);
        if (size)
                *size = (uint64_t)st.st_size;
        *fd = steal_fd(&f);
        return 0;
}

int kiln_store_read(const struct kiln_store *s, const char *digest, size_t max,
                    struct kiln_buf *out, struct kiln_err **err)
{
        _cleanup_close_ int fd = -1;
        if (kiln_store_open_blob(s, digest, &fd, NULL, err) < 0)
                return -1;
        if (kiln_read_fd(fd, digest, max, out, err) < 0)
                return -1;
        char got[KILN_DIGEST_MAX];
        kiln_sha256_digest(out->data, out->len, got);
        if (strcmp(got, digest) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "cached blob %s is corrupt (content hashes to %s)", digest,
                                    got);
        return 0;
}

struct kiln_blob_writer {
        struct kiln_store *store;
        char *expected;
        int64_t expected_size;
        char *tmp_path;
        int fd;
        uint64_t size;
        struct kiln_sha256 *hash;
        bool committed;
        struct kiln_blob_watch *watch;
};

int kiln_blob_writer_new(struct kiln_store *s, const char *expected, int64_t expected_size,
                         struct kiln_blob_writer **out, struct kiln_err **err)
{
        if (expected && check_digest(expected, err) < 0)
                return -1;
        _cleanup_blob_writer_ struct kiln_blob_writer *w = kiln_xcalloc(1, sizeof(*w));
        w->store = s;
        w->expected = expected ? kiln_xstrdup(expected) : NULL;
        w->expected_size = expected_size;
        w->fd = -1;
        w->tmp_path = kiln_xasprintf("%s/blob-XXXXXX", s->tmp);
        w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
        if (w->fd < 0) {
                free(w->tmp_path);
                w->tmp_path = NULL;
                return kiln_err_sys(err, "create temporary blob in %s", s->tmp);
        }
        w->hash = kiln_sha256_new();
        *out = steal_pointer(&w);
        return 0;
}

int kiln_blob_writer_write(struct kiln_blob_writer *w, const void *p, size_t n,
                           struct kiln_err **err)
{
        if (w->expected_size >= 0 && w->size + n > (uint64_t)w->expected_size)
                return kiln_err_set(
                    err, KILN_ERR_DIGEST, 0, "blob %s: more data than its declared size %lld",
                    w->expected ? w->expected : "(new)", (long long)w->expected_size);
        if (kiln_write_all(w->fd, p, n) < 0)
                return kiln_err_sys(err, "write %s", w->tmp_path);
        kiln_sha256_update(w->hash, p, n);
        w->size += n;
        watch_writer_wrote(w->watch, w->size);
        return 0;
}

void kiln_blob_writer_watch(struct kiln_blob_writer *w, struct kiln_blob_watch *watch)
{
        w->watch = watch;
        watch_writer_started(watch, w->tmp_path);
}

uint64_t kiln_blob_writer_size(const struct kiln_blob_writer *w)
{
        return w->size;
}

int kiln_blob_writer_reset(struct kiln_blob_writer *w, struct kiln_err **err)
{
        if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
                return kiln_err_sys(err, "reset %s", w->tmp_path);
        kiln_sha256_free(w->hash);
        w->hash = kiln_sha256_new();
        w->size = 0;
        watch_writer_reset(w->watch);
        return 0;
}

int kiln_blob_writer_commit(struct kiln_blob_writer *w, char out[KILN_DIGEST_MAX],
                            struct kiln_err **err)
{
        char got[KILN_DIGEST_MAX];
        kiln_sha256_final(w->hash, got);
        if (w->expected && strcmp(got, w->expected) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "content does not match its digest: expected %s, got %s",
                                    w->expected, got);
        if (w->expected_size >= 0 && w->size != (uint64_t)w->expected_size)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "blob %s: got %llu bytes, expected %lld", got,
                                    (unsigned long long)w->size, (long long)w->expected_size);
        if (fchmod(w->fd, 0444) < 0 || fsync(w->fd) < 0)
                return kiln_err_sys(err, "flush %s", w->tmp_path);
        _cleanup_free_ char *dst = kiln_store_blob_path(w->store, got);
        if (rename(w->tmp_path, dst) < 0)
                return kiln_err_sys(err, "publish blob %s", dst);
        w->committed = true;
        kiln_blob_watch_done(w->watch);
        if (out)
                memcpy(out, got, KILN_DIGEST_MAX);
        return 0;
}

void kiln_blob_writer_free(struct kiln_blob_writer *w)
{
        if (!w)
                return;
        if (w->fd >= 0)
                close(w->fd);
        if (w->tmp_path && !w->committed) {
                unlink(w->tmp_path);
                kiln_blob_watch_failed(w->watch);
        }
        kiln_sha256_free(w->hash);
        free(w->tmp_path);
        free(w->expected);
        free(w);
}

void kiln_blob_writer_freep(struct kiln_blob_writer **w)
{
        kiln_blob_writer_free(*w);
        *w = NULL;
}

int kiln_store_put(struct kiln_store *s, const void *data, size_t len, char out[KILN_DIGEST_MAX],
                   struct kiln_err **err)
{
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(data, len, d);
        if (out)
                memcpy(out, d, KILN_DIGEST_MAX);
        if (kiln_store_has(s, d, (int64_t)len))
                return 0;
        _cleanup_blob_writer_ struct kiln_blob_writer *w = NULL;
        if (kiln_blob_writer_new(s, d, (int64_t)len, &w, err) < 0 ||
            kiln_blob_writer_write(w, data, len, err) < 0 ||
            kiln_blob_writer_commit(w, NULL, err) < 0)
                return -1;
        return 0;
}
