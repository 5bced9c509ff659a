/*
 * harness.h - a very small test harness: CHECK macros, RUN(test), and a closing line
 * "N passed, M failed" alone on a line (what CTest output readers look for).
 */
#pragma once

#include <stdio.h>
#include <string.h>

static int h_pass;
static int h_fail;
static int h_cur_fail;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("    check failed %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            h_cur_fail++;                                                             \
        }                                                                             \
    } while (0)

#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long _a = (long long)(a), _b = (long long)(b);                           \
        if (_a != _b) {                                                               \
            printf("    check failed %s:%d: %s == %s (%lld != %lld)\n", __FILE__,     \
                   __LINE__, #a, #b, _a, _b);                                         \
            h_cur_fail++;                                                             \
        }                                                                             \
    } while (0)

#define CHECK_MEM(a, b, n)                                                            \
    do {                                                                              \
        if (memcmp((a), (b), (n)) != 0) {                                             \
            printf("    check failed %s:%d: %s == %s (%zu bytes)\n", __FILE__,        \
                   __LINE__, #a, #b, (size_t)(n));                                    \
            h_cur_fail++;                                                             \
        }                                                                             \
    } while (0)

#define RUN(fn)                                                                       \
    do {                                                                              \
        h_cur_fail = 0;                                                               \
        fn();                                                                         \
        if (h_cur_fail) {                                                             \
            h_fail++;                                                                 \
            printf("FAIL %s\n", #fn);                                                 \
        } else {                                                                      \
            h_pass++;                                                                 \
            printf("ok   %s\n", #fn);                                                 \
        }                                                                             \
        fflush(stdout);                                                               \
    } while (0)

#define HARNESS_END()                                                                 \
    do {                                                                              \
        printf("%d passed, %d failed\n", h_pass, h_fail);                            \
        return h_fail != 0;                                                           \
    } while (0)

/* Hex string (no separators) to bytes; returns the byte count. */
static inline size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = 0;
    while (hex[0] != '\0' && hex[1] != '\0') {
        unsigned v = 0;
        for (int i = 0; i < 2; i++) {
            char c = hex[i];
            v <<= 4;
            v |= (unsigned)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
        }
        out[n++] = (unsigned char)v;
        hex += 2;
    }
    return n;
}
