/* SPDX-License-Identifier: MIT */
/* Benchmark helper: check FILE as LANG with the default policy ROUNDS
 * times in one process and print {"median_ms": M, "min_ms": m,
 * "findings": N} — the cost of static validation without process start.
 * Used by bench/check.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock-check.h"

static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: check-time LANG FILE ROUNDS\n");
                return 2;
        }
        int rounds = atoi(argv[3]);
        FILE *f = fopen(argv[2], "rb");
        if (!f || rounds < 1 || rounds > 100000)
                return 2;
        static char buf[8 << 20];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        al_error e = {0};
        al_policy *p = al_policy_load(NULL, &e);
        double *t = calloc((size_t)rounds, sizeof(*t));
        if (!p || !t)
                return 1;
        size_t n = 0;
        for (int i = 0; i < rounds; i++) {
                al_findings fs;
                double t0 = now_ms();
                if (al_check_code(p, argv[1], buf, len, &fs, &e) < 0) {
                        fprintf(stderr, "%s\n", e.msg);
                        return 1;
                }
                t[i] = now_ms() - t0;
                n = fs.n;
                al_findings_free(&fs);
        }
        qsort(t, (size_t)rounds, sizeof(*t), cmp);
        printf("{\"median_ms\": %.4f, \"min_ms\": %.4f, \"findings\": %zu}\n",
               t[rounds / 2], t[0], n);
        free(t);
        al_policy_free(p);
        return 0;
}
