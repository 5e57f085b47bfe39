/* The store's notes of where blobs live on registries (what lets a push
 * mount instead of upload) and its per-blob locks (what lets builds side
 * by side download and upload a shared blob once). */
#include "kiln/store.h"
#include "test.h"

#include <errno.h>
#include <sys/file.h>
#include <sys/wait.h>

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
                kiln_store_free(s);
        }
        CHECK(kiln_rm_rf(root, NULL) == 0, "cleanup");
        TEST_DONE();
}
