/* Python's repr() of the values a spec holds, because the image tag is the
 * md5 of str(dict) as CPython prints it: one differing quote or digit
 * changes every tag. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

#include "unicode_nonprintable.inc"

static bool cp_printable(uint32_t cp)
{
        size_t lo = 0, hi = sizeof(kiln_nonprintable) / sizeof(kiln_nonprintable[0]);

        if (cp < 0x80)
                return cp >= 0x20 && cp < 0x7f;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cp < kiln_nonprintable[mid][0])
                        hi = mid;
                else if (cp > kiln_nonprintable[mid][1])
                        lo = mid + 1;
                else
                        return false;
        }
        return true;
}

/* Decodes one UTF-8 sequence (the YAML parser has validated the text);
 * returns its length. A stray byte decodes as itself so nothing is lost. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
        size_t len;
        uint32_t c = p[0];

        if (c < 0x80) {
                *cp = c;
                return 1;
        }
        if ((c & 0xe0) == 0xc0) {
                len = 2;
                c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
                len = 3;
                c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
                len = 4;
                c &= 0x07;
        } else {
                *cp = c;
                return 1;
        }
        if (len > n) {
                *cp = p[0];
                return 1;
        }
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80) {
                        *cp = p[0];
                        return 1;
                }
                c = (c << 6) | (p[i] & 0x3f);
        }
        *cp = c;
        return len;
}

void kiln_spec_str_repr(struct kiln_buf *b, const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        bool has_single = memchr(s, '\'', len) != NULL;
        bool has_double = memchr(s, '"', len) != NULL;
        char quote = has_single && !has_double ? '"' : '\'';

        kiln_buf_append(b, &quote, 1);
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);

                if (cp == (uint32_t)quote || cp == '\\')
                        kiln_buf_printf(b, "\\%c", (char)cp);
                else if (cp == '\t')
                        kiln_buf_puts(b, "\\t");
                else if (cp == '\n')
                        kiln_buf_puts(b, "\\n");
                else if (cp == '\r')
                        kiln_buf_puts(b, "\\r");
                else if (cp_printable(cp))
                        kiln_buf_append(b, p + i, n);
                else if (cp <= 0xff)
                        kiln_buf_printf(b, "\\x%02x", cp);
                else if (cp <= 0xffff)
                        kiln_buf_printf(b, "\\u%04x", cp);
                else
                        kiln_buf_printf(b, "\\U%08x", cp);
                i += n;
        }
        kiln_buf_append(b, &quote, 1);
}

void kiln_spec_float_repr(double d, char out[32])
{
        char tmp[40], digits[20];
        int exp10 = 0, nd = 0, decpt;
        char *o = out;

        if (isnan(d)) {
                strcpy(out, "nan");
                return;
        }
        if (isinf(d)) {
                strcpy(out, d < 0 ? "-inf" : "inf");
                return;
        }
        if (d == 0) {
                strcpy(out, signbit(d) ? "-0.0" : "0.0");
                return;
        }
        /* The shortest correctly rounded digit string that reads back as
         * the same double: what CPython's repr (dtoa mode 0) prints. */
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
                if (strtod(tmp, NULL) == d)
                        break;
        }
        for (const char *p = tmp; *p && *p != 'e'; p++)
                if (*p >= '0' && *p <= '9')
                        digits[nd++] = *p;
        exp10 = atoi(strchr(tmp, 'e') + 1);
        while (nd > 1 && digits[nd - 1] == '0')
                nd--;
        digits[nd] = '\0';
        decpt = exp10 + 1; /* value = 0.DIGITS * 10^decpt */

        if (d < 0)
                *o++ = '-';
        if (decpt <= -4 || decpt > 16) {
                *o++ = digits[0];
                if (nd > 1) {
                        *o++ = '.';
                        memcpy(o, digits + 1, nd - 1);
                        o += nd - 1;
                }
                sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
                return;
        }
        if (decpt <= 0) {
                *o++ = '0';
                *o++ = '.';
                for (int i = 0; i < -decpt; i++)
                        *o++ = '0';
                memcpy(o, digits, nd);
                o += nd;
        } else if (decpt >= nd) {
                memcpy(o, digits, nd);
                o += nd;
                for (int i = nd; i < decpt; i++)
                        *o++ = '0';
                *o++ = '.';
                *o++ = '0';
        } else {
                memcpy(o, digits, decpt);
                o += decpt;
                *o++ = '.';
                memcpy(o, digits + decpt, nd - decpt);
                o += nd - decpt;
        }
        *o = '\0';
}

void kiln_spec_value_repr(struct kiln_buf *b, const struct kiln_spec_value *v)
{
        switch (v->type) {
        case KILN_SPEC_STR:
                kiln_spec_str_repr(b, v->text, strlen(v->text));
                return;
        case KILN_SPEC_NULL:
        case KILN_SPEC_BOOL:
        case KILN_SPEC_INT:
        case KILN_SPEC_FLOAT:
                kiln_buf_puts(b, v->text);
                return;
        case KILN_SPEC_LIST:
                kiln_buf_puts(b, "[");
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                kiln_buf_puts(b, ", ");
                        kiln_spec_value_repr(b, v->items[i]);
                }
                kiln_buf_puts(b, "]");
                return;
        case KILN_SPEC_MAP:
                kiln_buf_puts(b, "{");
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                kiln_buf_puts(b, ", ");
                        kiln_spec_value_repr(b, v->keys[i]);
                        kiln_buf_puts(b, ": ");
                        kiln_spec_value_repr(b, v->items[i]);
                }
                kiln_buf_puts(b, "}");
                return;
        }
}
