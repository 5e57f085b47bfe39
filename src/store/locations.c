/* Blob locations: ROOT/locations/<registry>/<digest hex> holds the
 * repository, <registry> being the first 16 hex digits of the sha256 of
 * the registry's domain (a domain has characters a file name must not). */
#include "kiln/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define REPO_MAX 1024

static char *registry_dir(const struct kiln_store *s, const char *domain)
{
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(domain, strlen(domain), d);
        return kiln_xasprintf("%s/locations/%.16s", kiln_store_root(s), kiln_digest_hex(d));
}

static char *note_path(const struct kiln_store *s, const char *domain, const char *digest,
                       const char *suffix)
{
        _cleanup_free_ char *dir = registry_dir(s, domain);
        return kiln_xasprintf("%s/%s%s", dir, kiln_digest_hex(digest), suffix);
}

char *kiln_store_blob_location(const struct kiln_store *s, const char *domain, const char *digest)
{
        if (!domain || kiln_digest_validate(digest, NULL) < 0)
                return NULL;
        _cleanup_free_ char *p = note_path(s, domain, digest, "");
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *ignored = NULL;
        if (kiln_read_file(p, REPO_MAX, &b, &ignored) < 0)
                return NULL;
        if (!b.len || memchr(b.data, '\n', b.len) || memchr(b.data, '\0', b.len))
                return NULL;
        return steal_pointer(&b.data);
}

void kiln_store_note_blob_location(const struct kiln_store *s, const char *domain,
                                   const char *digest, const char *repo)
{
        if (!domain || !repo || strlen(repo) >= REPO_MAX || strchr(repo, '\n') ||
            kiln_digest_validate(digest, NULL) < 0)
                return;
        _cleanup_free_ char *dir = registry_dir(s, domain);
        _cleanup_free_ char *p = note_path(s, domain, digest, "");
        _cleanup_err_ struct kiln_err *ignored = NULL;
        /* No fsync: a note lost in a crash is only a missed mount. */
        _cleanup_free_ char *tmp = kiln_tmp_sibling(p);
        if (kiln_mkdir_p(dir, 0755, &ignored) == 0) {
                _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd >= 0 && kiln_write_all(fd, repo, strlen(repo)) == 0 && rename(tmp, p) == 0)
                        return;
                unlink(tmp);
        }
}

void kiln_store_note_missing(const struct kiln_store *s, const char *domain, const char *repo,
                             const struct kiln_descriptor *layers, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!kiln_store_has(s, layers[i].digest, layers[i].size))
                        kiln_store_note_blob_location(s, domain, layers[i].digest, repo);
}

int kiln_store_push_lock(const struct kiln_store *s, const char *domain, const char *digest,
                         int *fd, struct kiln_err **err)
{
        *fd = -1;
        if (kiln_digest_validate(digest, err) < 0)
                return -1;
        _cleanup_free_ char *dir = registry_dir(s, domain);
        if (kiln_mkdir_p(dir, 0755, err) < 0)
                return -1;
        _cleanup_free_ char *p = note_path(s, domain, digest, ".lock");
        return kiln_lock_file(p, fd, err);
}

int kiln_store_fetch_lock(const struct kiln_store *s, const char *digest, int *fd,
                          struct kiln_err **err)
{
        *fd = -1;
        if (kiln_digest_validate(digest, err) < 0)
                return -1;
        _cleanup_free_ char *dir = kiln_xasprintf("%s/locks", kiln_store_root(s));
        if (kiln_mkdir_p(dir, 0755, err) < 0)
                return -1;
        _cleanup_free_ char *p = kiln_xasprintf("%s/fetch-%s.lock", dir, kiln_digest_hex(digest));
        return kiln_lock_file(p, fd, err);
}
