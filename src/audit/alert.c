/* SPDX-License-Identifier: MIT */
/*
 * Alert delivery. Webhooks go through httpc.c, which loads libcurl with
 * dlopen() the first time: linking it would add its ~35 shared libraries,
 * ~4.5 ms, to the start of every airlock process, audited or not (measured
 * on the development VM). Debian's libcurl4 provides libcurl.so.4.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alert.h"
#include "error.h"
#include "httpc.h"
#include "macro.h"
#include "util.h"

struct al_alerter {
        al_alert_config c;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        char **q; /* ring of queued alerts */
        unsigned head, n;
        bool thread_on, stop;
        bool human; /* stderr line in words (al_alerter_set_human) */
        pthread_t thread;
        uint64_t dropped, failed;
};

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

al_alerter *al_alerter_new(const al_alert_config *c) {
        al_alerter *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->c = (al_alert_config){
                .log_path = dup_or_null(c->log_path),
                .command = dup_or_null(c->command),
                .webhook = dup_or_null(c->webhook),
                .timeout_ms = c->timeout_ms ? c->timeout_ms : 5000,
                .retries = c->retries,
                .queue = c->queue ? c->queue : 64,
        };
        a->q = calloc(a->c.queue, sizeof(*a->q));
        if (!a->q) {
                free(a);
                return NULL;
        }
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->cond, NULL);
        return a;
}

void al_alerter_free(al_alerter *a) {
        if (!a)
                return;
        if (a->thread_on) {
                pthread_mutex_lock(&a->lock);
                a->stop = true;
                pthread_cond_signal(&a->cond);
                pthread_mutex_unlock(&a->lock);
                pthread_join(a->thread, NULL);
        }
        for (unsigned i = 0; i < a->n; i++)
                free(a->q[(a->head + i) % a->c.queue]);
        free(a->q);
        free(a->c.log_path);
        free(a->c.command);
        free(a->c.webhook);
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->cond);
        free(a);
}

void al_alerter_set_human(al_alerter *a, bool on) {
        if (a)
                a->human = on;
}

/* "airlock: alert flagged: status ok, flags /proc/self (audit ID)", every
 * value made safe for a terminal (flags and reasons come from the code). */
static char *human_line(const char *event) {
        json_t *e = json_loads(event, 0, NULL);
        if (!e)
                return NULL;
        const char *kind = json_string_value(json_object_get(e, "alert"));
        const char *status = json_string_value(json_object_get(e, "status"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        const char *id = json_string_value(json_object_get(e, "id"));
        char flags[512] = "";
        size_t i, o = 0;
        json_t *x;
        json_array_foreach(json_object_get(e, "flags"), i, x) {
                int k = snprintf(
                        flags + o, sizeof(flags) - o, "%s%s", o ? ", " : "",
                        json_string_value(x) ? json_string_value(x) : "?");
                if (k < 0 || (size_t)k >= sizeof(flags) - o)
                        break;
                o += (size_t)k;
        }
        char *line = NULL;
        if (asprintf(&line, "airlock: alert %s:%s%s%s%s%s%s (audit %.12s)\n",
                     kind ? kind : "?", status ? " status " : "",
                     status ? status : "", *flags ? " flags " : "", flags,
                     reason ? ": " : "", reason ? reason : "",
                     id ? id : "?") < 0)
                line = NULL;
        json_decref(e);
        if (!line)
                return NULL;
        /* one line: a newline inside a value must not start another */
        size_t n = strlen(line);
        for (size_t k = 0; k + 1 < n; k++)
                if (line[k] == '\n')
                        line[k] = ' ';
        char *safe = al_term_sanitize(line, n, AL_TERM_KEEP_NEWLINES);
        free(line);
        return safe;
}

/* The always-on sink: one line, written with one write(). */
static void log_line(al_alerter *a, const char *event, bool queued) {
        if (a->human && !a->c.log_path) {
                _cleanup_free_ char *h = human_line(event);
                if (h) {
                        ssize_t w = write(2, h, strlen(h));
                        (void)w;
                        return;
                }
        }
        size_t n = strlen(event);
        _cleanup_free_ char *line = malloc(n + 64);
        if (!line)
                return;
        /* the event is a JSON object: add the delivery state inside it */
        int len = snprintf(line, n + 64, "%.*s,\"queued\":%s}\n",
                           (int)(n ? n - 1 : 0), event,
                           queued ? "true" : "false");
        int fd = 2;
        _cleanup_close_ int own = -1;
        if (a->c.log_path) {
                own = open(a->c.log_path,
                           O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
                                   O_NOFOLLOW,
                           0600);
                if (own >= 0)
                        fd = own;
        }
        ssize_t w = write(fd, line, (size_t)len);
        (void)w;
}

void al_alerter_raise(al_alerter *a, const char *event) {
        if (!a || !event)
                return;
        bool want = a->c.command || a->c.webhook, queued = false;
        if (want) {
                char *copy = strdup(event);
                pthread_mutex_lock(&a->lock);
                if (copy && a->n < a->c.queue) {
                        a->q[(a->head + a->n) % a->c.queue] = copy;
                        a->n++;
                        queued = true;
                        pthread_cond_signal(&a->cond);
                } else {
                        a->dropped++;
                        free(copy);
                }
                pthread_mutex_unlock(&a->lock);
        }
        log_line(a, event, queued);
}

/* --- the command sink ------------------------------------------------- */

static int run_command(al_alerter *a, const char *event) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                dup2(p[0], 0);
                int null = open("/dev/null", O_WRONLY);
                if (null >= 0)
                        dup2(null, 1);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                execl("/bin/sh", "sh", "-c", a->c.command, (char *)NULL);
                _exit(127);
        }
        close(p[0]);
        /* the alert is small; a command that does not read it gets EPIPE,
         * which must not kill us */
        size_t n = strlen(event), off = 0;
        sigset_t pipe_set, old;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        while (off < n) {
                ssize_t w = write(p[1], event + off, n - off);
                if (w <= 0)
                        break;
                off += (size_t)w;
        }
        ssize_t w = write(p[1], "\n", 1);
        (void)w;
        close(p[1]);
        struct timespec ts = {0, 0};
        sigtimedwait(&pipe_set, NULL, &ts); /* drop a pending SIGPIPE */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        double end = al_now_ms() + a->c.timeout_ms;
        int st = 0;
        for (;;) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        break;
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (al_now_ms() > end) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return -ETIMEDOUT;
                }
                struct timespec d = {0, 5 * 1000 * 1000};
                nanosleep(&d, NULL);
        }
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* --- the webhook sink (httpc.c: libcurl, loaded on first use) ------- */

static int post_webhook(al_alerter *a, const char *event) {
        static const char *const headers[] = {"Content-Type: application/json",
                                              NULL};
        al_http_response r;
        al_error e = {0};
        int rc = al_http_post(a->c.webhook, headers, event, strlen(event),
                              (long)a->c.timeout_ms, 0, NULL, &r, &e);
        if (rc < 0)
                return rc == -ENOSYS ? rc : -EIO;
        return r.status >= 200 && r.status < 300 ? 0 : -EPROTO;
}

/* One alert to every sink, with retries; false if a sink gave up. The
 * caller's deadline (ms, 0: none) cuts the backoff short. */
static bool deliver(al_alerter *a, const char *event, double deadline) {
        bool ok = true;
        for (int sink = 0; sink < 2; sink++) {
                if (!(sink == 0 ? a->c.command : a->c.webhook))
                        continue;
                unsigned backoff = 200;
                int r = -1;
                for (unsigned i = 0; i <= a->c.retries; i++) {
                        r = sink == 0 ? run_command(a, event)
                                      : post_webhook(a, event);
                        if (r == 0 || r == -ENOSYS)
                                break;
                        if (i == a->c.retries ||
                            (deadline && al_now_ms() + backoff > deadline))
                                break;
                        struct timespec d = {backoff / 1000,
                                             (long)(backoff % 1000) * 1000000};
                        nanosleep(&d, NULL);
                        backoff *= 2;
                }
                if (r < 0) {
                        ok = false;
                        char msg[256];
                        int n = snprintf(msg, sizeof(msg),
                                         "{\"level\":\"error\",\"msg\":\"alert "
                                         "delivery failed\",\"sink\":\"%s\","
                                         "\"error\":\"%s\"}\n",
                                         sink == 0 ? "command" : "webhook",
                                         r == -ENOSYS ? "libcurl.so.4 not found"
                                                      : strerror(-r));
                        ssize_t w = write(2, msg, (size_t)n);
                        (void)w;
                }
        }
        return ok;
}

static char *pop(al_alerter *a) {
        if (!a->n)
                return NULL;
        char *e = a->q[a->head];
        a->head = (a->head + 1) % a->c.queue;
        a->n--;
        return e;
}

static void *worker(void *arg) {
        al_alerter *a = arg;
        pthread_mutex_lock(&a->lock);
        for (;;) {
                while (!a->n && !a->stop)
                        pthread_cond_wait(&a->cond, &a->lock);
                if (a->stop)
                        break;
                char *e = pop(a);
                pthread_mutex_unlock(&a->lock);
                bool ok = deliver(a, e, 0);
                free(e);
                pthread_mutex_lock(&a->lock);
                if (!ok)
                        a->failed++;
        }
        pthread_mutex_unlock(&a->lock);
        return NULL;
}

int al_alerter_start(al_alerter *a, al_error *err) {
        if (!a || a->thread_on || (!a->c.command && !a->c.webhook))
                return 0;
        if (a->c.webhook) /* before any other thread: curl_global_init */
                al_http_init();
        /* the thread must not take the signals the service waits for */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int r = pthread_create(&a->thread, NULL, worker, a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r)
                return al_error_errno(err, r, "cannot start the alert thread");
        a->thread_on = true;
        return 0;
}

void al_alerter_drain(al_alerter *a, unsigned timeout_ms) {
        if (!a || a->thread_on)
                return;
        double deadline = al_now_ms() + timeout_ms;
        char *e;
        while ((e = pop(a))) {
                if (!deliver(a, e, deadline))
                        a->failed++;
                free(e);
                if (al_now_ms() > deadline)
                        break;
        }
}

void al_alerter_counts(al_alerter *a, uint64_t *dropped, uint64_t *failed) {
        pthread_mutex_lock(&a->lock);
        *dropped = a->dropped;
        *failed = a->failed;
        pthread_mutex_unlock(&a->lock);
}
