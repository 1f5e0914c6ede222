/* SPDX-License-Identifier: MIT */
/*
 * al_run from a threaded caller (airlock serve's workers, run's audit
 * writer): while other threads of the process are alive, every run must
 * still come up. glibc's set*id wrappers in a child cloned from such a
 * process wait for threads the child does not have; a sandbox that used
 * them hung until its wall limit, status timeout, cpu 0.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "airlock.h"
#include "tap.h"

static int hold[2] = {-1, -1};

static void *idle_thread(void *arg) {
        (void)arg;
        char c;
        while (read(hold[0], &c, 1) < 0)
                ;
        return NULL;
}

static void runs_beside_live_threads(void) {
        pthread_t t[3];
        ASSERT_INT_EQ(pipe(hold), 0);
        for (int i = 0; i < 3; i++)
                ASSERT_INT_EQ(pthread_create(&t[i], NULL, idle_thread, NULL),
                              0);
        int good = 0;
        for (int i = 0; i < 6; i++) {
                al_error e = {0};
                al_spec *s = al_spec_new();
                al_result *r = NULL;
                const char *code = "echo up";
                if (s && al_spec_set_language(s, "sh", &e) == 0 &&
                    al_spec_set_code(s, code, strlen(code), &e) == 0) {
                        al_spec_limits(s)->wall_ms = 5000;
                        if (al_run(s, &r, &e) == 0 && r)
                                printf("#   run %d: %s, %zu bytes out\n", i,
                                       al_status_name(r->status),
                                       r->stdout_len);
                        else
                                printf("#   run %d: %s\n", i, e.msg);
                }
                if (r && r->status == AL_STATUS_OK && r->stdout_len == 3 &&
                    !memcmp(r->stdout_buf, "up\n", 3))
                        good++;
                al_result_free(r);
                al_spec_free(s);
        }
        /* closing the write end wakes the threads: read returns 0 */
        close(hold[1]);
        for (int i = 0; i < 3; i++)
                pthread_join(t[i], NULL);
        close(hold[0]);
        ASSERT_INT_EQ(good, 6);
}

int main(void) {
        RUN(runs_beside_live_threads);
        TAP_END();
}
