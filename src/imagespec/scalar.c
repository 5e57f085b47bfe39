/* Scalar typing exactly as PyYAML's SafeLoader does it (YAML 1.1 implicit
 * resolvers and SafeConstructor), since the tag hashes the typed values:
 * `3.10` must become the float 3.1, `010` the int 8, `1e3` the string. */
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

enum implicit {
        IMPL_STR,
        IMPL_NULL,
        IMPL_BOOL,
        IMPL_INT,
        IMPL_FLOAT,
        IMPL_TIMESTAMP,
        IMPL_MERGE,
        IMPL_VALUE,
};

/* PyYAML's resolver patterns (resolver.py), in POSIX ERE. */
static const char *const float_re = "^([-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+][0-9]+)?"
                                    "|\\.[0-9][0-9_]*([eE][-+][0-9]+)?"
                                    "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*"
                                    "|[-+]?\\.(inf|Inf|INF)"
                                    "|\\.(nan|NaN|NAN))$";
static const char *const int_re = "^([-+]?0b[0-1_]+"
                                  "|[-+]?0[0-7_]+"
                                  "|[-+]?(0|[1-9][0-9_]*)"
                                  "|[-+]?0x[0-9a-fA-F_]+"
                                  "|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$";
static const char *const ts_re =
    "^([0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?"
    ":[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?([ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?)$";
static const char *const pyfloat_re = "^([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$";

static regex_t rx_float, rx_int, rx_ts, rx_pyfloat;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static bool rx_ok;

static void rx_compile(void)
{
        rx_ok = regcomp(&rx_float, float_re, REG_EXTENDED | REG_NOSUB) == 0 &&
                regcomp(&rx_int, int_re, REG_EXTENDED | REG_NOSUB) == 0 &&
                regcomp(&rx_ts, ts_re, REG_EXTENDED | REG_NOSUB) == 0 &&
                regcomp(&rx_pyfloat, pyfloat_re, REG_EXTENDED | REG_NOSUB) == 0;
}

static bool in_list(const char *s, const char *const *list)
{
        for (; *list; list++)
                if (!strcmp(s, *list))
                        return true;
        return false;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const bool_true[] = {"yes",  "Yes", "YES", "true", "True",
                                        "TRUE", "on",  "On",  "ON",   NULL};
static const char *const bool_false[] = {"no",    "No",  "NO",  "false", "False",
                                         "FALSE", "off", "Off", "OFF",   NULL};

/* PyYAML picks candidate resolvers by the first character, then tries them
 * in registration order: bool, float, int, merge, null, timestamp, value. */
static enum implicit resolve(const char *s)
{
        char c = s[0];

        if (c == '\0')
                return IMPL_NULL;
        if (strchr("yYnNtTfFoO", c) && (in_list(s, bool_true) || in_list(s, bool_false)))
                return IMPL_BOOL;
        if (strchr("-+0123456789.", c) && !regexec(&rx_float, s, 0, NULL, 0))
                return IMPL_FLOAT;
        if (strchr("-+0123456789", c) && !regexec(&rx_int, s, 0, NULL, 0))
                return IMPL_INT;
        if (!strcmp(s, "<<"))
                return IMPL_MERGE;
        if (strchr("~nN", c) && in_list(s, null_words))
                return IMPL_NULL;
        if (strchr("0123456789", c) && !regexec(&rx_ts, s, 0, NULL, 0))
                return IMPL_TIMESTAMP;
        if (!strcmp(s, "="))
                return IMPL_VALUE;
        return IMPL_STR;
}

/* ---------- arbitrary-precision ints ---------- */

/* Little-endian base 1e9 limbs: enough to print any int Python prints. */
struct bignum {
        uint32_t *limb;
        size_t n, cap;
};

static void bignum_release(struct bignum *b)
{
        free(b->limb);
        *b = (struct bignum){0};
}
#define _cleanup_bignum_ _cleanup_(bignum_release)

#define INT_TOO_LARGE "integer too large (Python prints at most 4300 digits)"

static void big_muladd(struct bignum *b, uint32_t mul, uint32_t add)
{
        uint64_t carry = add;

        for (size_t i = 0; i < b->n; i++) {
                uint64_t x = (uint64_t)b->limb[i] * mul + carry;
                b->limb[i] = (uint32_t)(x % 1000000000u);
                carry = x / 1000000000u;
        }
        while (carry) {
                if (b->n == b->cap) {
                        b->cap = b->cap ? b->cap * 2 : 8;
                        b->limb = kiln_xrealloc(b->limb, b->cap * sizeof(*b->limb));
                }
                b->limb[b->n++] = (uint32_t)(carry % 1000000000u);
                carry /= 1000000000u;
        }
}

static int digit_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return 99;
}

/* Accumulates digits (no '_') of the given base; false on a bad digit or
 * an empty string, as int() raises ValueError. */
static bool big_digits(struct bignum *b, const char *s, size_t len, int base)
{
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++) {
                int d = digit_value(s[i]);
                if (d >= base)
                        return false;
                big_muladd(b, (uint32_t)base, (uint32_t)d);
        }
        return true;
}

/* Decimal text of sign*b, or NULL when longer than Python prints. */
static char *big_text(const struct bignum *b, bool negative)
{
        _cleanup_buf_ struct kiln_buf out = {0};
        size_t i = b->n;

        while (i > 0 && b->limb[i - 1] == 0)
                i--;
        if (i == 0)
                return kiln_xstrdup("0");
        if (negative)
                kiln_buf_puts(&out, "-");
        kiln_buf_printf(&out, "%u", b->limb[i - 1]);
        while (--i > 0)
                kiln_buf_printf(&out, "%09u", b->limb[i - 1]);
        if (out.len - (negative ? 1 : 0) > KILN_SPEC_INT_MAX_DIGITS)
                return NULL;
        return kiln_buf_steal(&out);
}

/* SafeConstructor.construct_yaml_int on text with '_' removed. */
static int construct_int(struct kiln_spec_value *v, char *s, struct kiln_err **err)
{
        bool neg = false;
        _cleanup_bignum_ struct bignum b = {0};
        bool ok;

        if (*s == '-')
                neg = true;
        if (*s == '-' || *s == '+')
                s++;
        /* Bounds the quadratic conversion; anything this long prints as
         * more digits than Python allows anyway. */
        if (strlen(s) > 16 * KILN_SPEC_INT_MAX_DIGITS)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, INT_TOO_LARGE);
        if (!strcmp(s, "0")) {
                ok = true;
        } else if (!strncmp(s, "0b", 2)) {
                ok = big_digits(&b, s + 2, strlen(s + 2), 2);
        } else if (!strncmp(s, "0x", 2)) {
                ok = big_digits(&b, s + 2, strlen(s + 2), 16);
        } else if (s[0] == '0') {
                ok = big_digits(&b, s, strlen(s), 8);
        } else if (strchr(s, ':')) {
                /* sexagesimal: ((p0 * 60) + p1) * 60 + ... */
                ok = true;
                for (char *part = s, *end; ok; part = end + 1) {
                        end = strchr(part, ':');
                        size_t n = end ? (size_t)(end - part) : strlen(part);
                        _cleanup_bignum_ struct bignum p = {0};
                        ok = big_digits(&p, part, n, 10);
                        if (ok && p.n > 1) {
                                ok = false; /* only the first part may be large */
                                if (part == s) {
                                        bignum_release(&b);
                                        b = p;
                                        p = (struct bignum){0};
                                        ok = true;
                                }
                        } else if (ok) {
                                big_muladd(&b, part == s ? 1 : 60, p.n ? p.limb[0] : 0);
                        }
                        if (!end)
                                break;
                }
        } else {
                ok = big_digits(&b, s, strlen(s), 10);
        }
        if (!ok)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid integer");
        v->text = big_text(&b, neg);
        if (!v->text)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, INT_TOO_LARGE);
        v->type = KILN_SPEC_INT;
        return 0;
}

/* Python's float() of a string already stripped of '_' and lowercased. */
static bool py_float(const char *s, double *out)
{
        if (!strcmp(s, "inf") || !strcmp(s, "infinity")) {
                *out = INFINITY;
                return true;
        }
        if (!strcmp(s, "nan")) {
                *out = NAN;
                return true;
        }
        if (regexec(&rx_pyfloat, s, 0, NULL, 0))
                return false;
        *out = strtod(s, NULL);
        return true;
}

/* SafeConstructor.construct_yaml_float. */
static int construct_float(struct kiln_spec_value *v, char *s, struct kiln_err **err)
{
        double sign = 1, d = 0;
        char repr[32];

        for (char *p = s; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        if (*s == '-')
                sign = -1;
        if (*s == '-' || *s == '+')
                s++;
        if (!strcmp(s, ".inf")) {
                d = sign * INFINITY;
        } else if (!strcmp(s, ".nan")) {
                d = NAN;
        } else if (strchr(s, ':')) {
                /* digits reversed, value += digit * base, base *= 60: the
                 * same double arithmetic in the same order as PyYAML */
                double parts[64], base = 1;
                size_t n = 0;
                for (char *part = s, *end;; part = end + 1) {
                        end = strchr(part, ':');
                        if (end)
                                *end = '\0';
                        if (n == 64 || !py_float(part, &parts[n++]))
                                return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid float");
                        if (!end)
                                break;
                }
                while (n-- > 0) {
                        d += parts[n] * base;
                        base *= 60;
                }
                d *= sign;
        } else {
                if (!py_float(s, &d))
                        return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid float");
                d *= sign;
        }
        kiln_spec_float_repr(d, repr);
        v->type = KILN_SPEC_FLOAT;
        v->number = d;
        v->text = kiln_xstrdup(repr);
        return 0;
}

static void strip_underscores(char *s)
{
        char *o = s;
        for (; *s; s++)
                if (*s != '_')
                        *o++ = *s;
        *o = '\0';
}

int kiln_spec_scalar(struct kiln_spec_value *v, const char *text, size_t len, const char *tag,
                     bool plain, struct kiln_err **err)
{
        enum implicit kind;
        _cleanup_free_ char *s = NULL;

        pthread_once(&rx_once, rx_compile);
        if (!rx_ok)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "internal error: cannot compile the YAML resolver patterns");
        if (memchr(text, '\0', len))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "NUL characters in strings are not supported");
        s = kiln_xstrndup(text, len);

        if (!tag || !strcmp(tag, "!"))
                kind = plain ? resolve(s) : IMPL_STR;
        else if (!strcmp(tag, YAML_STR_TAG))
                kind = IMPL_STR;
        else if (!strcmp(tag, YAML_NULL_TAG))
                kind = IMPL_NULL;
        else if (!strcmp(tag, YAML_BOOL_TAG))
                kind = IMPL_BOOL;
        else if (!strcmp(tag, YAML_INT_TAG))
                kind = IMPL_INT;
        else if (!strcmp(tag, YAML_FLOAT_TAG))
                kind = IMPL_FLOAT;
        else if (!strcmp(tag, YAML_TIMESTAMP_TAG))
                kind = IMPL_TIMESTAMP;
        else
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "unsupported YAML tag '%s'", tag);

        switch (kind) {
        case IMPL_STR:
                v->type = KILN_SPEC_STR;
                v->text = steal_pointer(&s);
                return 0;
        case IMPL_NULL:
                v->type = KILN_SPEC_NULL;
                v->text = kiln_xstrdup("None");
                return 0;
        case IMPL_BOOL: {
                for (char *p = s; *p; p++)
                        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
                bool t = in_list(s, bool_true), f = in_list(s, bool_false);
                if (!t && !f)
                        return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid boolean");
                v->type = KILN_SPEC_BOOL;
                v->boolean = t;
                v->text = kiln_xstrdup(t ? "True" : "False");
                return 0;
        }
        case IMPL_INT:
                strip_underscores(s);
                if (!*s || ((*s == '-' || *s == '+') && !s[1]))
                        return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid integer");
                return construct_int(v, s, err);
        case IMPL_FLOAT:
                strip_underscores(s);
                if (!*s || ((*s == '-' || *s == '+') && !s[1]))
                        return kiln_err_set(err, KILN_ERR_SPEC, 0, "invalid float");
                return construct_float(v, s, err);
        case IMPL_TIMESTAMP:
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "YAML reads this as a date/timestamp, which kiln does not "
                                    "support; quote it to make it a string");
        case IMPL_MERGE:
                /* Only meaningful as a mapping key; the composer handles
                 * that case before calling here. */
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "'<<' (merge key) is only allowed as a mapping key");
        case IMPL_VALUE:
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "'=' is the YAML value key, which PyYAML cannot load; "
                                    "quote it");
        }
        return 0;
}
