/*
 * Dependent-load latency over a region of a given size: a random cyclic
 * pointer chase, one 64-byte line per step. Shows where this machine's
 * cache levels end and what a DRAM miss costs.
 *
 *   cc -O2 -o /tmp/latency latency.c
 *   taskset -c 1 /tmp/latency <MiB> <huge: 1 = MADV_HUGEPAGE, 0 = 4 KiB pages>
 */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <MiB> <huge 0|1>\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atol(argv[1]) << 20, lines = bytes / 64;
    char *m = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || lines < 2) return 1;
    madvise(m, bytes, atoi(argv[2]) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    size_t *order = malloc(lines * sizeof *order);
    if (!order) return 1;
    shuffle(order, lines);
    for (size_t i = 0; i < lines; i++)
        *(char **)(m + order[i] * 64) = m + order[(i + 1) % lines] * 64;
    char *p = m + order[0] * 64;
    long steps = 20000000;
    double t0 = now_ns();
    for (long i = 0; i < steps; i++) p = *(char **)p;
    printf("%s MiB, huge=%s: %.1f ns per dependent load (%p)\n", argv[1], argv[2],
           (now_ns() - t0) / steps, (void *)p);
    return 0;
}
