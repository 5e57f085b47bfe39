/* RFC 4648 base64: Docker's config.json "auth" fields and Basic auth. */
#include <string.h>

#include "kiln/registry.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *kiln_base64_encode(const void *p, size_t n)
{
        const unsigned char *in = p;
        char *out = kiln_xmalloc((n + 2) / 3 * 4 + 1);
        char *o = out;
        size_t i = 0;
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                *o++ = B64[v >> 18];
                *o++ = B64[(v >> 12) & 63];
                *o++ = B64[(v >> 6) & 63];
                *o++ = B64[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                *o++ = B64[v >> 18];
                *o++ = B64[(v >> 12) & 63];
                *o++ = '=';
                *o++ = '=';
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                *o++ = B64[v >> 18];
                *o++ = B64[(v >> 12) & 63];
                *o++ = B64[(v >> 6) & 63];
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

/* Accepts both alphabets so JWT-style url-safe values decode too. */
static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

int kiln_base64_decode(const char *s, struct kiln_buf *out)
{
        size_t len = strlen(s);
        size_t pad = 0;
        while (pad < len && s[len - 1 - pad] == '=')
                pad++;
        if (pad > 2 || (pad > 0 && len % 4 != 0))
                return -1;
        size_t n = len - pad;
        if (n % 4 == 1)
                return -1;
        uint32_t acc = 0;
        int bits = 0;
        size_t start = out->len;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value(s[i]);
                if (v < 0) {
                        out->len = start;
                        if (out->data)
                                out->data[start] = '\0';
                        return -1;
                }
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        unsigned char byte = (unsigned char)(acc >> bits);
                        kiln_buf_append(out, &byte, 1);
                        acc &= (1u << bits) - 1;
                }
        }
        if (!out->data)
                kiln_buf_append(out, "", 0);
        return 0;
}
