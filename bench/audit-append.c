/* SPDX-License-Identifier: MIT */
/* Benchmark helper: append N durable audit records (N/2 executions, each
 * a started and a finished record, as `airlock run` writes them) from one
 * writer, and print {"records": N, "seconds": S}. Used by bench/audit.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock-audit.h"
#include "airlock.h"

static double now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: audit-append STATE_DIR N\n");
                return 2;
        }
        long n = strtol(argv[2], NULL, 10);
        al_error e = {0};
        al_audit *a = NULL;
        if (al_audit_open(argv[1], &a, &e) < 0) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
        }
        al_spec *s = al_spec_new();
        const char *code = "import math\nprint(math.sqrt(2))\n";
        if (al_spec_set_language(s, "python", &e) < 0 ||
            al_spec_set_code(s, code, strlen(code), &e) < 0) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
        }
        al_audit_who w = {.source = "cli", .actor = "user:bench"};
        al_result r = {.status = AL_STATUS_OK, .wall_ms = 17, .cpu_ms = 15};
        r.stdout_buf = (unsigned char *)"1.4142135623730951\n";
        r.stdout_len = strlen((char *)r.stdout_buf);
        double t0 = now();
        for (long i = 0; i < n / 2; i++) {
                char id[AL_AUDIT_ID_SIZE];
                if (al_audit_started(a, &w, s, NULL, id, &e) < 0 ||
                    al_audit_finished(a, id, &r, &e) < 0) {
                        fprintf(stderr, "%s\n", e.msg);
                        return 1;
                }
        }
        double dt = now() - t0;
        printf("{\"records\": %ld, \"seconds\": %.6f}\n", (n / 2) * 2, dt);
        al_spec_free(s);
        al_audit_close(a);
        return 0;
}
