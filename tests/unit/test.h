/* Minimal table-driven test harness: CHECK records a failure and goes on,
 * so one run reports every broken row; main returns non-zero on any. */
#ifndef KILN_TEST_H
#define KILN_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                test_checks++;                                                                     \
                if (!(cond)) {                                                                     \
                        test_failures++;                                                           \
                        fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);   \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fputc('\n', stderr);                                                       \
                }                                                                                  \
        } while (0)

#define CHECK_STR(got, want)                                                                       \
        do {                                                                                       \
                const char *_g = (got), *_w = (want);                                              \
                CHECK((_g && _w && !strcmp(_g, _w)) || (!_g && !_w), "got \"%s\", want \"%s\"",    \
                      _g ? _g : "(null)", _w ? _w : "(null)");                                     \
        } while (0)

#define TEST_DONE()                                                                                \
        do {                                                                                       \
                printf("%d checks, %d failed\n", test_checks, test_failures);                      \
                return test_failures ? 1 : 0;                                                      \
        } while (0)

#endif
