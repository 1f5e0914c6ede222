/* SPDX-License-Identifier: MIT */
/* Benchmark helper: extract the code blocks of FILE ROUNDS times in one
 * process and print one JSON line: al_extract_blocks (first call, median,
 * p90, min) and, as the floor, cmark_parse_document + cmark_node_free on
 * the same bytes with cmark's own allocator. Used by bench/extract.py. */
#include <cmark.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock-extract.h"

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
        if (argc != 3) {
                fprintf(stderr, "usage: extract-bench FILE ROUNDS\n");
                return 2;
        }
        char *end;
        long rounds = strtol(argv[2], &end, 10);
        FILE *f = fopen(argv[1], "rb");
        if (!f || *end || rounds < 1 || rounds > 100000) {
                fprintf(stderr, "extract-bench: bad FILE or ROUNDS\n");
                return 2;
        }
        static char buf[AL_EXTRACT_MAX_INPUT];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        double *t = calloc((size_t)rounds, sizeof(*t));
        double *c = calloc((size_t)rounds, sizeof(*c));
        if (!t || !c)
                return 1;
        size_t n = 0;
        for (long i = 0; i < rounds; i++) {
                al_block *b;
                al_error e;
                double t0 = now_ms();
                if (al_extract_blocks(buf, len, 0, &b, &n, &e) < 0) {
                        fprintf(stderr, "%s\n", e.msg);
                        return 1;
                }
                t[i] = now_ms() - t0;
                al_blocks_free(b, n);
        }
        for (long i = 0; i < rounds; i++) {
                double t0 = now_ms();
                cmark_node *doc = cmark_parse_document(buf, len, 0);
                cmark_node_free(doc);
                c[i] = now_ms() - t0;
        }
        double first = t[0];
        qsort(t, (size_t)rounds, sizeof(*t), cmp);
        qsort(c, (size_t)rounds, sizeof(*c), cmp);
        printf("{\"bytes\": %zu, \"blocks\": %zu, \"first_ms\": %.4f, "
               "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, "
               "\"cmark_median_ms\": %.4f, \"cmark_min_ms\": %.4f}\n",
               len, n, first, t[rounds / 2], t[rounds * 9 / 10], t[0],
               c[rounds / 2], c[0]);
        free(t);
        free(c);
        return 0;
}
