/* Helpers shared by the probes in this directory (each builds alone:
 * `cc -O2 -o /tmp/NAME NAME.c`; the quoted include is found beside it). */
#ifndef PALISADE_PROBE_H
#define PALISADE_PROBE_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static inline double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

/* order = a random permutation of 0..n (Fisher–Yates, fixed seed). */
static inline void shuffle(size_t *order, size_t n) {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = xorshift(&s) % (i + 1), t = order[i];
        order[i] = order[j]; order[j] = t;
    }
}

#endif
