/* kiln_ignore_add and kiln_ignore_match on hostile patterns and paths.
 * Input: byte 0 picks the syntax (bit 0: docker) and whether paths are
 * directories (bit 1); then the ignore file's text up to the first NUL;
 * then paths, one per line, each matched. The matcher promises time
 * linear in the path whatever the pattern (an NFA, no backtracking):
 * libFuzzer's -timeout is the judge of that. Under git's syntax nothing
 * below an excluded directory comes back, which is checked too. */
#include "fuzz-common.h"

#include "kiln/imagespec.h"

/* A path as kiln_ignore_match takes it: relative, '/'-separated, clean. */
static bool clean(const char *p)
{
        if (!*p || *p == '/')
                return false;
        for (const char *c = p; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                if (*c == '/' && !*++c)
                        return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        bool docker = data[0] & 1, dirs = data[0] & 2;
        const char *text = (const char *)data + 1;
        size_t rest = size - 1;
        const char *nul = memchr(text, '\0', rest);
        size_t text_len = nul ? (size_t)(nul - text) : rest;

        _cleanup_ignore_ struct kiln_ignore *ig =
            kiln_ignore_new(docker ? KILN_IGNORE_DOCKER : KILN_IGNORE_GIT);
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_ignore_add(ig, "", text, text_len, "fuzz", &err) < 0) {
                fuzz_debug_err("add", err);
                if (!docker || !err || !err->msg)
                        abort(); /* git patterns never fail; a failure says why */
                return 0;
        }
        if (!nul)
                return 0;
        _cleanup_free_ char *paths = fuzz_cstr((const uint8_t *)nul + 1, rest - text_len - 1);
        for (char *save = NULL, *p = strtok_r(paths, "\n", &save); p;
             p = strtok_r(NULL, "\n", &save)) {
                bool m = kiln_ignore_match(ig, p, dirs);
                if (docker || !dirs || !m || strlen(p) > 200 || !clean(p))
                        continue;
                /* An excluded directory's children stay excluded. */
                _cleanup_free_ char *child = kiln_xasprintf("%s/x", p);
                if (!kiln_ignore_match(ig, child, false))
                        fuzz_die("git: %s excluded but %s is not", p, child);
        }
        return 0;
}
