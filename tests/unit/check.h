/* A tiny assertion header for the C unit tests: each CHECK prints `file:line: what failed`
 * with both values and marks the test failed; main returns check_result(). */
#ifndef DLC_TESTS_CHECK_H
#define DLC_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                 \
    ((cond) ? (void)0                                                               \
            : (void)(check_failures++,                                              \
                     fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond)))

#define CHECK_EQ_INT(a, b)                                                                \
    do {                                                                                  \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                   \
        if (check_a_ != check_b_) {                                                       \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, \
                    #a, #b, check_a_, check_b_);                                          \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *check_a_ = (a), *check_b_ = (b);                                       \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_)) {                       \
            check_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s == %s failed:\n  \"%s\"\nvs\n  \"%s\"\n", __FILE__, \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                      \
                    check_b_ ? check_b_ : "(null)");                                       \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double check_a_ = (a), check_b_ = (b);                                             \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                       \
            check_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s ~= %s failed: %.17g vs %.17g\n", __FILE__, __LINE__, \
                    #a, #b, check_a_, check_b_);                                           \
        }                                                                                  \
    } while (0)

static inline int check_result(const char *name)
{
    if (check_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    return check_failures ? 1 : 0;
}

/* Exit status that CTest (SKIP_RETURN_CODE) and lit read as "skipped". */
#define CHECK_SKIP 77

#endif
