#include "kiln/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>

struct kiln_sha256 {
        EVP_MD_CTX *ctx;
};

struct kiln_sha256 *kiln_sha256_new(void)
{
        struct kiln_sha256 *h = kiln_xcalloc(1, sizeof(*h));
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
                abort();
        return h;
}

void kiln_sha256_update(struct kiln_sha256 *h, const void *p, size_t n)
{
        if (n)
                EVP_DigestUpdate(h->ctx, p, n);
}

void kiln_sha256_final(struct kiln_sha256 *h, char out[KILN_DIGEST_MAX])
{
        unsigned char md[32];
        unsigned int len = 0;
        EVP_DigestFinal_ex(h->ctx, md, &len);
        static const char hex[] = "0123456789abcdef";
        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
                out[7 + 2 * i] = hex[md[i] >> 4];
                out[7 + 2 * i + 1] = hex[md[i] & 15];
        }
        out[7 + 64] = '\0';
}

void kiln_sha256_free(struct kiln_sha256 *h)
{
        if (!h)
                return;
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

void kiln_sha256_freep(struct kiln_sha256 **h)
{
        kiln_sha256_free(*h);
        *h = NULL;
}

void kiln_sha256_digest(const void *p, size_t n, char out[KILN_DIGEST_MAX])
{
        _cleanup_sha256_ struct kiln_sha256 *h = kiln_sha256_new();
        kiln_sha256_update(h, p, n);
        kiln_sha256_final(h, out);
}

int kiln_sha256_file(const char *path, char out[KILN_DIGEST_MAX], struct kiln_err **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", path);
        _cleanup_sha256_ struct kiln_sha256 *h = kiln_sha256_new();
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "read %s", path);
                if (n == 0)
                        break;
                kiln_sha256_update(h, buf, (size_t)n);
        }
        kiln_sha256_final(h, out);
        return 0;
}

static bool all_lower_hex(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int kiln_digest_validate(const char *digest, struct kiln_err **err)
{
        const char *colon = digest ? strchr(digest, ':') : NULL;
        if (!colon)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "invalid digest \"%s\": no algorithm",
                                    digest ? digest : "");
        size_t alg = (size_t)(colon - digest);
        size_t hex = strlen(colon + 1);
        size_t want = 0;
        if (alg == 6 && !memcmp(digest, "sha256", 6))
                want = 64;
        else if (alg == 6 && !memcmp(digest, "sha512", 6))
                want = 128;
        else
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "invalid digest \"%.80s\": unsupported algorithm", digest);
        if (hex != want || !all_lower_hex(colon + 1, hex))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "invalid digest \"%.80s\": want %zu lowercase hex digits",
                                    digest, want);
        return 0;
}

const char *kiln_digest_hex(const char *digest)
{
        const char *c = strchr(digest, ':');
        return c ? c + 1 : digest;
}
