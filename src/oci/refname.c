/* OCI image layout ref names (the org.opencontainers.image.ref.name
 * annotation of an index entry). The image spec's grammar:
 *
 *   ref       ::= component ("/" component)*
 *   component ::= alphanum (separator alphanum)*
 *   separator ::= [-._:@+] | "--"
 *
 * flytekit's tags are URL-safe base64 with '-' turned into '_', so one in
 * 32 starts with '_' (and some end with one, or hold "__"): valid docker
 * tags that no layout reader accepts as a ref. */
#include "oci-internal.h"

#include <string.h>

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_separator(char c)
{
        return c && strchr("-._:@+/", c);
}

bool kiln_oci_ref_name_valid(const char *s)
{
        const char *p = s;
        for (;;) {
                if (!is_alnum(*p))
                        return false;
                while (is_alnum(*p))
                        p++;
                if (!*p)
                        return true;
                if (p[0] == '-' && p[1] == '-')
                        p += 2;
                else if (is_separator(*p))
                        p++;
                else
                        return false;
        }
}

char *kiln_oci_ref_name_for(const char *tag)
{
        struct kiln_buf b = {0};
        /* How many separators end the output so far, and whether they are
         * exactly "-" (which one more '-' may join, as "--"). */
        size_t run = 0;
        bool dash = false;
        for (const char *p = tag; *p; p++) {
                char c = is_alnum(*p) || is_separator(*p) ? *p : '0';
                if (is_alnum(c)) {
                        run = 0;
                } else if (b.len == 0 || (run > 0 && !(run == 1 && dash && c == '-'))) {
                        kiln_buf_puts(&b, "0");
                        run = 1;
                        dash = c == '-';
                } else {
                        dash = run == 0 && c == '-';
                        run++;
                }
                kiln_buf_append(&b, &c, 1);
        }
        if (b.len == 0 || run > 0)
                kiln_buf_puts(&b, "0");
        return kiln_buf_steal(&b);
}
