/*
 * A micro-model of process()'s memory pattern at many flows: per packet, a
 * bucket-tags line (16 bytes per 8 slots) and an entry line (64 bytes) at
 * random in a huge-page table, both prefetched, then read and the entry
 * written; `w1` and `w2` units of register-only work stand for the
 * per-packet work before and after the prefetch. Bursts of 32.
 *
 *   two-pass (lag 0): stage + prefetch all 32, then decide all 32
 *                     (process()'s structure)
 *   fused (lag D):    one loop; packet i is staged and prefetched while
 *                     packet i - D is decided (a software pipeline)
 *
 *   cc -O2 -o /tmp/pipeline-model pipeline-model.c
 *   taskset -c 1 /tmp/pipeline-model <log2 entry lines> <flows> <w1> <w2> <lag>
 *   e.g. 21 1048576 5 35 0   (2^21 entries = 128 MiB, as process()'s 1 M bench)
 *        21 1024    5 35 0   (the same work with the flows in cache)
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BURST 32

static uint64_t acc[4];

static inline __attribute__((always_inline)) void work(int n) {
    uint64_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int k = 0; k < n; k++) {
        __asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3));
        a0 += a1 ^ k; a1 += a2 ^ k; a2 += a3 ^ k; a3 += a0 ^ k;
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s <log2 lines> <flows, a power of two> <w1> <w2> <lag>\n", argv[0]);
        return 2;
    }
    int lg = atoi(argv[1]), w1 = atoi(argv[3]), w2 = atoi(argv[4]), lag = atoi(argv[5]);
    size_t flows = (size_t)atol(argv[2]);
    size_t lines = (size_t)1 << lg, ebytes = lines * 64, tbytes = lines / 8 * 16;
    char *e = mmap(0, ebytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *t = mmap(0, tbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (e == MAP_FAILED || t == MAP_FAILED || flows == 0 || (flows & (flows - 1))) return 1;
    madvise(e, ebytes, MADV_HUGEPAGE);
    madvise(t, tbytes, MADV_HUGEPAGE);
    memset(e, 1, ebytes);
    memset(t, 1, tbytes);
    /* The flows' hashes, visited in order (as the bench's frames are). */
    uint64_t *hashes = malloc(flows * sizeof *hashes), seed = 12345;
    for (size_t i = 0; i < flows; i++) hashes[i] = xorshift(&seed);
    char *entry[BURST], *tags[BURST];
    uint64_t sum = 0;
    long bursts = 100000;
    double best = 1e30;
    for (int round = 0; round < 7; round++) {
        double t0 = now_ns();
        for (long b = 0; b < bursts; b++) {
            for (int i = 0; i < BURST + lag; i++) {
                if (i < BURST) {
                    work(w1);
                    size_t slot = hashes[(b * BURST + i) & (flows - 1)] & (lines - 1);
                    entry[i] = e + slot * 64;
                    tags[i] = t + slot / 8 * 16;
                    __builtin_prefetch(tags[i]);
                    __builtin_prefetch(entry[i]);
                }
                if (lag == 0 && i + 1 < BURST) continue;
                int first = lag == 0 ? 0 : i - lag, last = lag == 0 ? BURST - 1 : i - lag;
                for (int j = first < 0 ? BURST : first; j <= last; j++) {
                    work(w2);
                    sum += *(volatile uint64_t *)tags[j];
                    uint64_t *x = (uint64_t *)entry[j];
                    sum += *x;
                    *x += 1;
                }
            }
        }
        double per_packet = (now_ns() - t0) / (bursts * (double)BURST);
        if (per_packet < best) best = per_packet;
    }
    printf("2^%d entry lines, %zu flows, work %d+%d, lag %d: %.2f ns a packet (%lu)\n", lg, flows,
           w1, w2, lag, best, (unsigned long)(sum & 1));
    return 0;
}
