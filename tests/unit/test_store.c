/* The store's notes of where blobs live on registries (what lets a push
 * mount instead of upload), its per-blob locks (what lets builds side by
 * side download and upload a shared blob once), and following a blob as it
 * is written (what lets a base unpack while it downloads). */
#include "kiln/store.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_locations(struct kiln_store *s)
{
        CHECK(kiln_store_blob_location(s, "r.example:5000", D1) == NULL, "nothing noted yet");
        kiln_store_note_blob_location(s, "r.example:5000", D1, "team/base");
        char *at = kiln_store_blob_location(s, "r.example:5000", D1);
        CHECK_STR(at, "team/base");
        free(at);
        /* per registry: the same digest elsewhere is not known there */
        CHECK(kiln_store_blob_location(s, "other.example", D1) == NULL, "notes are per registry");
        CHECK(kiln_store_blob_location(s, "r.example:5000", D2) == NULL, "notes are per blob");
        /* the latest note wins */
        kiln_store_note_blob_location(s, "r.example:5000", D1, "team/app");
        at = kiln_store_blob_location(s, "r.example:5000", D1);
        CHECK_STR(at, "team/app");
        free(at);
        /* what cannot be a repository is never noted, nor a bad digest */
        kiln_store_note_blob_location(s, "r.example:5000", D2, "evil\nrepo");
        CHECK(kiln_store_blob_location(s, "r.example:5000", D2) == NULL, "a newline is refused");
        kiln_store_note_blob_location(s, "r.example:5000", "sha256:../../x", "a/b");
        CHECK(kiln_store_blob_location(s, "r.example:5000", "sha256:../../x") == NULL,
              "a bad digest is refused");
        CHECK(kiln_store_blob_location(s, NULL, D1) == NULL, "no domain, no note");
}

/* A child tries the lock without waiting: it must find it held. */
static bool held_elsewhere(const char *path)
{
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(path, O_RDWR);
                _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_locks(struct kiln_store *s)
{
        struct kiln_err *err = NULL;
        int fd = -1;
        CHECK(kiln_store_fetch_lock(s, D1, &fd, &err) == 0 && fd >= 0, "fetch lock");
        char *p = kiln_xasprintf("%s/locks/fetch-%s.lock", kiln_store_root(s), kiln_digest_hex(D1));
        CHECK(held_elsewhere(p), "another process waits for the fetch lock");
        close(fd);
        CHECK(!held_elsewhere(p), "closing releases the fetch lock");
        free(p);

        CHECK(kiln_store_push_lock(s, "r.example:5000", D1, &fd, &err) == 0 && fd >= 0,
              "push lock");
        int fd2 = -1;
        CHECK(kiln_store_push_lock(s, "other.example", D1, &fd2, &err) == 0 && fd2 >= 0,
              "another registry's push lock is separate");
        close(fd2);
        close(fd);
        CHECK(kiln_store_fetch_lock(s, "sha256:nothex", &fd, &err) < 0 && err,
              "a bad digest is an error");
        kiln_err_free(err);
}

struct follower {
        struct kiln_blob_watch *w;
        struct kiln_store *s;
        char digest[KILN_DIGEST_MAX];
        int out;
        int rc;
        bool restart;
        struct kiln_err *err;
};

static void *follow(void *arg)
{
        struct follower *f = arg;
        f->rc = kiln_blob_watch_follow(f->w, f->s, f->digest, f->out, &f->restart, &f->err);
        close(f->out);
        return NULL;
}

/* Reads what is there within ms; the bytes appended to got. */
static void read_some(int fd, struct kiln_buf *got, int ms)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[65536];
        while (poll(&p, 1, ms) == 1) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        return;
                kiln_buf_append(got, buf, (size_t)n);
                ms = 0;
        }
}

static void start_follow(struct follower *f, pthread_t *t, int *in, struct kiln_store *s,
                         const char *digest)
{
        int sp[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0, "socketpair");
        *f = (struct follower){.w = kiln_blob_watch_new(), .s = s, .out = sp[1]};
        snprintf(f->digest, sizeof(f->digest), "%s", digest);
        *in = sp[0];
        pthread_create(t, NULL, follow, f);
}

static void test_watch(struct kiln_store *s)
{
        /* 96 KiB of content in three parts (less than a socket holds) */
        static char data[3][32768];
        for (int i = 0; i < 3; i++)
                memset(data[i], 'a' + i, sizeof(data[i]));
        char digest[KILN_DIGEST_MAX];
        struct kiln_sha256 *h = kiln_sha256_new();
        for (int i = 0; i < 3; i++)
                kiln_sha256_update(h, data[i], sizeof(data[i]));
        kiln_sha256_final(h, digest);
        kiln_sha256_free(h);
        struct kiln_err *err = NULL;

        /* bytes pass on as they are written, before the blob is complete;
         * the follow ends only once it is committed */
        struct follower f;
        pthread_t t;
        int in;
        start_follow(&f, &t, &in, s, digest);
        struct kiln_blob_writer *w = NULL;
        CHECK(kiln_blob_writer_new(s, digest, sizeof(data), &w, &err) == 0, "writer");
        kiln_blob_writer_watch(w, f.w);
        _cleanup_buf_ struct kiln_buf got = {0};
        CHECK(kiln_blob_writer_write(w, data[0], sizeof(data[0]), &err) == 0, "write");
        read_some(in, &got, 2000);
        CHECK(got.len == sizeof(data[0]),
              "the first part passed on before the rest is written: %zu", got.len);
        CHECK(kiln_blob_writer_write(w, data[1], sizeof(data[1]), &err) == 0 &&
                  kiln_blob_writer_write(w, data[2], sizeof(data[2]), &err) == 0,
              "write");
        read_some(in, &got, 200);
        struct pollfd p = {.fd = in, .events = POLLIN};
        char c;
        /* a byte still on its way when read_some gave up is content, not
         * the end: keep it */
        ssize_t r = poll(&p, 1, 100) == 0 ? -1 : read(in, &c, 1);
        if (r == 1)
                kiln_buf_append(&got, &c, 1);
        CHECK(r != 0, "no end of stream before the blob is committed");
        CHECK(kiln_blob_writer_commit(w, NULL, &err) == 0, "commit");
        kiln_blob_writer_free(w);
        pthread_join(t, NULL);
        read_some(in, &got, 2000);
        close(in);
        CHECK(f.rc == 0, "follow: %s", f.err ? f.err->msg : "");
        CHECK(got.len == sizeof(data) && !memcmp(got.data, data, sizeof(data)),
              "every byte, in order: %zu", got.len);
        kiln_blob_watch_free(f.w);

        /* done with no writer seen (another process fetched it): all of it
         * from the store */
        start_follow(&f, &t, &in, s, digest);
        kiln_blob_watch_done(f.w);
        pthread_join(t, NULL);
        kiln_buf_release(&got);
        read_some(in, &got, 2000);
        close(in);
        CHECK(f.rc == 0 && got.len == sizeof(data), "from the store: %zu", got.len);
        kiln_blob_watch_free(f.w);

        /* a download that starts over after bytes went out voids them */
        start_follow(&f, &t, &in, s, D2);
        CHECK(kiln_blob_writer_new(s, NULL, -1, &w, &err) == 0, "writer");
        kiln_blob_writer_watch(w, f.w);
        CHECK(kiln_blob_writer_write(w, data[0], sizeof(data[0]), &err) == 0, "write");
        kiln_buf_release(&got);
        read_some(in, &got, 2000);
        CHECK(kiln_blob_writer_reset(w, &err) == 0, "reset");
        pthread_join(t, NULL);
        CHECK(f.rc < 0 && f.restart, "a reset after bytes passed on fails the follow, to restart");
        kiln_err_free(f.err);
        close(in);
        kiln_blob_writer_free(w);
        kiln_blob_watch_free(f.w);

        /* a writer that fails (freed uncommitted) fails the follow */
        start_follow(&f, &t, &in, s, D2);
        CHECK(kiln_blob_writer_new(s, NULL, -1, &w, &err) == 0, "writer");
        kiln_blob_writer_watch(w, f.w);
        kiln_blob_writer_free(w);
        pthread_join(t, NULL);
        CHECK(f.rc < 0 && f.restart, "a failed download fails the follow");
        kiln_err_free(f.err);
        close(in);
        kiln_blob_watch_free(f.w);

        /* a consumer that gives up ends the follow, no restart wanted */
        start_follow(&f, &t, &in, s, D2);
        kiln_blob_watch_cancel(f.w);
        pthread_join(t, NULL);
        CHECK(f.rc < 0 && !f.restart, "cancelled");
        kiln_err_free(f.err);
        close(in);
        kiln_blob_watch_free(f.w);
}

static mode_t mode_of(const char *dir, const char *name)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, name);
        struct stat st;
        return stat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static int open_close(const char *root, struct kiln_err **err)
{
        struct kiln_store *s = NULL;
        if (kiln_store_open(root, &s, err) < 0)
                return -1;
        kiln_store_free(s);
        return 0;
}

/* The cache is its owner's alone: what kiln makes is 0700 (the lock 0600),
 * a cache made looser before is tightened, a shared directory KILN_CACHE
 * names keeps its mode, and a top-level directory someone else owns is
 * refused. */
static void test_private(const char *tmp)
{
        static const char *const tops[] = {"blobs", "tmp",    "snapshots", "steps",
                                           "cache", "builds", "locations", "locks"};
        struct kiln_err *err = NULL;
        _cleanup_free_ char *fresh = kiln_xasprintf("%s/new/cache", tmp);
        CHECK(open_close(fresh, &err) == 0, "open a new cache: %s", err ? err->msg : "");
        CHECK(mode_of(fresh, ".") == 0700, "a new cache root is 0700, not %o", mode_of(fresh, "."));
        for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
                CHECK(mode_of(fresh, tops[i]) == 0700, "new %s is 0700, not %o", tops[i],
                      mode_of(fresh, tops[i]));
        CHECK(mode_of(fresh, "lock") == 0600, "the lock is 0600, not %o", mode_of(fresh, "lock"));

        /* a cache kiln made before this change: 0755 everywhere */
        _cleanup_free_ char *old = kiln_xasprintf("%s/old", tmp);
        CHECK(mkdir(old, 0755) == 0 && chmod(old, 0755) == 0, "mkdir old");
        for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
                _cleanup_free_ char *p = kiln_xasprintf("%s/%s", old, tops[i]);
                CHECK(mkdir(p, 0755) == 0 && chmod(p, 0755) == 0, "mkdir %s", p);
        }
        _cleanup_free_ char *lock = kiln_xasprintf("%s/lock", old);
        int fd = open(lock, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && fchmod(fd, 0644) == 0, "old lock");
        close(fd);
        CHECK(open_close(old, &err) == 0, "open the 0755 cache: %s", err ? err->msg : "");
        CHECK(mode_of(old, ".") == 0700, "an old cache's root is made 0700, not %o",
              mode_of(old, "."));
        for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
                CHECK(mode_of(old, tops[i]) == 0700, "old %s is made 0700, not %o", tops[i],
                      mode_of(old, tops[i]));
        CHECK(mode_of(old, "lock") == 0600, "the old lock is made 0600");

        /* a home or project directory named as the cache: not kiln's to change */
        _cleanup_free_ char *shared = kiln_xasprintf("%s/home", tmp);
        CHECK(mkdir(shared, 0755) == 0 && chmod(shared, 0755) == 0, "mkdir home");
        _cleanup_free_ char *note = kiln_xasprintf("%s/notes.txt", shared);
        CHECK(kiln_write_file_atomic(note, "x", 1, 0644, NULL) == 0, "notes");
        CHECK(open_close(shared, &err) == 0, "open a home as cache: %s", err ? err->msg : "");
        CHECK(mode_of(shared, ".") == 0755, "a directory holding other files keeps its mode");
        CHECK(mode_of(shared, "snapshots") == 0700, "what kiln makes in it is 0700");
        /* a sticky, world-writable directory (/tmp) */
        free(shared);
        shared = kiln_xasprintf("%s/sticky", tmp);
        CHECK(mkdir(shared, 0755) == 0 && chmod(shared, 01777) == 0, "mkdir sticky");
        CHECK(open_close(shared, &err) == 0, "open a sticky dir: %s", err ? err->msg : "");
        CHECK(mode_of(shared, ".") == 01777, "a sticky directory keeps its mode, not %o",
              mode_of(shared, "."));
        CHECK(mode_of(shared, "blobs") == 0700, "its blobs/ is 0700");

        /* a directory of ours that others may write (no sticky bit) */
        _cleanup_free_ char *open_dir = kiln_xasprintf("%s/open", tmp);
        _cleanup_free_ char *open_note = kiln_xasprintf("%s/open/notes.txt", tmp);
        CHECK(mkdir(open_dir, 0755) == 0 && chmod(open_dir, 0777) == 0 &&
                  kiln_write_file_atomic(open_note, "x", 1, 0644, NULL) == 0,
              "mkdir open");
        CHECK(open_close(open_dir, &err) < 0, "a root others may write is refused");
        CHECK(err && strstr(err->msg, "writable by other users"), "says why: %s",
              err ? err->msg : "(none)");
        kiln_err_free(err);
        err = NULL;

        /* a top-level directory another user made first (in a shared /tmp) */
        if (geteuid() != 0)
                return;
        /* a root another user planted (/tmp/.cache/kiln) */
        _cleanup_free_ char *planted = kiln_xasprintf("%s/planted", tmp);
        CHECK(mkdir(planted, 0700) == 0 && chown(planted, 65534, 65534) == 0, "make planted");
        CHECK(open_close(planted, &err) < 0, "a root another user owns is refused");
        CHECK(err && strstr(err->msg, "owned by uid 65534"), "names the owner: %s",
              err ? err->msg : "(none)");
        kiln_err_free(err);
        err = NULL;
        _cleanup_free_ char *theirs = kiln_xasprintf("%s/theirs", tmp);
        _cleanup_free_ char *p = kiln_xasprintf("%s/snapshots", theirs);
        CHECK(mkdir(theirs, 01777) == 0 && chmod(theirs, 01777) == 0 && mkdir(p, 0777) == 0 &&
                  chown(p, 65534, 65534) == 0,
              "make theirs");
        CHECK(open_close(theirs, &err) < 0, "a top-level directory of another user is refused");
        CHECK(err && err->domain == KILN_ERR_SYSTEM && strstr(err->msg, p) &&
                  strstr(err->msg, "owned by uid 65534"),
              "the error names the directory and its owner: %s", err ? err->msg : "(none)");
        kiln_err_free(err);
}

int main(void)
{
        char root[] = "/tmp/kiln-store-test-XXXXXX";
        CHECK(mkdtemp(root) != NULL, "mkdtemp");
        struct kiln_store *s = NULL;
        struct kiln_err *err = NULL;
        CHECK(kiln_store_open(root, &s, &err) == 0, "open store: %s", err ? err->msg : "");
        if (s) {
                test_locations(s);
                test_locks(s);
                test_watch(s);
                kiln_store_free(s);
        }
        CHECK(kiln_rm_rf(root, NULL) == 0, "cleanup");
        char priv[] = "/tmp/kiln-store-test-XXXXXX";
        CHECK(mkdtemp(priv) != NULL, "mkdtemp");
        test_private(priv);
        CHECK(kiln_rm_rf(priv, NULL) == 0, "cleanup");
        TEST_DONE();
}
