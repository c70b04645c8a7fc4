/*
 * The cost of address translation alone: a dependent chase over 16,384
 * lines (1 MiB, within L2) that sit either side by side or one per 4 KiB
 * page across 64 MiB. The data is the same size; only the number of
 * pages differs. With the region on huge pages in the guest, a gap that
 * stays means the host maps the guest's memory with small pages (each
 * guest huge page is cached in the TLB as 4 KiB pieces).
 *
 *   cc -O2 -o /tmp/translation translation.c
 *   taskset -c 1 /tmp/translation <huge: 1 = MADV_HUGEPAGE, 0 = 4 KiB pages>
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define LINES 16384

/* Line i: side by side, or in page i at a varying offset (so the lines
 * spread over the cache sets rather than share a few). */
static char *line(char *m, size_t i, int spread) {
    return spread ? m + i * 4096 + (i * 64) % 4032 : m + i * 64;
}

static double chase(int spread, int huge) {
    size_t bytes = (size_t)LINES * 4096;
    char *m = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) exit(1);
    madvise(m, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < bytes; i += 4096) m[i] = 1;
    static size_t order[LINES];
    shuffle(order, LINES);
    for (size_t i = 0; i < LINES; i++)
        *(char **)line(m, order[i], spread) = line(m, order[(i + 1) % LINES], spread);
    char *p = line(m, order[0], spread);
    long steps = 20000000;
    double t0 = now_ns();
    for (long i = 0; i < steps; i++) p = *(char **)p;
    double t = (now_ns() - t0) / steps;
    munmap(m, bytes);
    return p ? t : 0;
}

int main(int argc, char **argv) {
    int huge = argc > 1 ? atoi(argv[1]) : 1;
    printf("huge=%d: 16,384 lines side by side %.1f ns; one per 4 KiB page %.1f ns\n", huge,
           chase(0, huge), chase(1, huge));
    return 0;
}
