/* SPDX-License-Identifier: MIT */
/*
 * The session engine (src/sandbox/session.c) with the real python driver
 * in a real sandbox: state across cells, output in order, the cell's wall
 * limit interrupting (the session survives), forged replies on the
 * driver's channel ending the session with "protocol", a dead session
 * answering at once.
 */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "airlock.h"
#include "session.h"
#include "tap.h"

static al_session *start(const char *lang) {
        al_error e = {0};
        al_spec *s = al_spec_new();
        if (!s || al_spec_set_language(s, lang, &e) < 0)
                return NULL;
        al_spec_limits(s)->wall_ms = 120000;
        al_spec_limits(s)->memory_mb = 512;
        al_session *ss = NULL;
        if (al_session_start(s, &ss, &e) < 0) {
                printf("# start: %s\n", e.msg);
                return NULL;
        }
        return ss;
}

static const al_cell_opts cell = {.wall_ms = 5000,
                                  .cpu_ms = 5000,
                                  .output_bytes = 1 << 20,
                                  .grace_ms = 2000};

static int run(al_session *s, const char *code, al_cell_result *r) {
        al_error e = {0};
        int rc = al_session_exec(s, code, strlen(code), &cell, r, &e);
        if (rc < 0)
                printf("# exec: %s\n", e.msg);
        return rc;
}

static const char *plain(const al_cell_result *r) {
        json_t *res = json_object_get(r->reply, "results");
        json_t *last = json_array_get(res, json_array_size(res) - 1);
        return json_string_value(
                json_object_get(json_object_get(last, "data"), "text/plain"));
}

static void state_kept(void) {
        al_session *s = start("python");
        ASSERT_TRUE(s);
        al_cell_result r = {0};
        ASSERT_INT_EQ(run(s, "x = 20\nprint('set')", &r), 0);
        ASSERT_INT_EQ(r.status, AL_CELL_OK);
        ASSERT_INT_EQ(r.out_len, 4);
        ASSERT_TRUE(!memcmp(r.out, "set\n", 4));
        al_cell_result_clear(&r);
        ASSERT_INT_EQ(
                run(s, "import os; os.system('echo child'); x * 2 + 2", &r), 0);
        ASSERT_INT_EQ(r.status, AL_CELL_OK);
        ASSERT_STR_EQ(plain(&r), "42");
        ASSERT_TRUE(r.out_len == 6 && !memcmp(r.out, "child\n", 6));
        al_cell_result_clear(&r);
        al_session_info in;
        al_session_close(s, "closed", NULL, &in);
        ASSERT_STR_EQ(in.end_reason, "closed");
        ASSERT_INT_EQ(in.cells, 2);
}

static void wall_interrupts(void) {
        al_session *s = start("python");
        ASSERT_TRUE(s);
        al_cell_result r = {0};
        al_cell_opts o = cell;
        o.wall_ms = 300;
        al_error e = {0};
        const char *code = "import time\ntime.sleep(30)";
        ASSERT_INT_EQ(al_session_exec(s, code, strlen(code), &o, &r, &e), 0);
        ASSERT_INT_EQ(r.status, AL_CELL_TIMEOUT);
        ASSERT_STR_EQ(r.limits_hit, "wall");
        ASSERT_STR_EQ(json_string_value(json_object_get(
                              json_object_get(r.reply, "error"), "name")),
                      "KeyboardInterrupt");
        al_cell_result_clear(&r);
        ASSERT_INT_EQ(run(s, "1 + 1", &r), 0);
        ASSERT_STR_EQ(plain(&r), "2");
        al_cell_result_clear(&r);
        /* one that ignores SIGINT: killed after the grace, session dead */
        code = "import signal, time\n"
               "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
               "time.sleep(30)";
        o.grace_ms = 300;
        ASSERT_TRUE(al_session_exec(s, code, strlen(code), &o, &r, &e) < 0);
        ASSERT_INT_EQ(r.status, AL_CELL_DEAD);
        ASSERT_TRUE(strstr(r.reason, "interrupt_ignored") != NULL);
        al_cell_result_clear(&r);
        ASSERT_TRUE(run(s, "1", &r) < 0);
        ASSERT_INT_EQ(r.status, AL_CELL_DEAD);
        al_cell_result_clear(&r);
        al_session_close(s, "closed", NULL, NULL);
}

static void forged_reply(void) {
        al_session *s = start("python");
        ASSERT_TRUE(s);
        al_cell_result r = {0};
        /* a result for a cell that is not this one */
        ASSERT_TRUE(
                run(s,
                    "import os\n"
                    "b = b'{\"type\":\"result\",\"seq\":99,\"status\":\"ok\","
                    "\"results\":[]}'\n"
                    "os.write(4, b'%d\\n' % len(b) + b)\n"
                    "import time; time.sleep(1)",
                    &r) < 0);
        ASSERT_INT_EQ(r.status, AL_CELL_DEAD);
        ASSERT_TRUE(strstr(r.reason, "protocol") != NULL);
        al_cell_result_clear(&r);
        al_session_close(s, "closed", NULL, NULL);

        s = start("python");
        ASSERT_TRUE(s);
        /* an announced 1 TB frame */
        ASSERT_TRUE(run(s, "import os; os.write(4, b'999999999999\\n')", &r) <
                    0);
        ASSERT_TRUE(strstr(r.reason, "protocol") != NULL);
        al_cell_result_clear(&r);
        al_session_info in;
        al_session_close(s, "closed", NULL, &in);
        ASSERT_STR_EQ(in.end_reason, "protocol");

        s = start("python");
        ASSERT_TRUE(s);
        /* the answer to this very cell, but of a million values: 2 MB on
         * the channel, some 40 MB of parsed JSON in the supervisor (its
         * 16 MB frame cap would be some 330 MB, outside the sandbox's
         * memory limit); refused before it is parsed */
        ASSERT_TRUE(
                run(s,
                    "import os\n"
                    "b = b'{\"type\":\"result\",\"seq\":1,\"status\":\"ok\","
                    "\"results\":[],\"x\":[' + b'0,' * 999999 + b'0]}'\n"
                    "os.write(4, b'%d\\n' % len(b) + b)\n"
                    "import time; time.sleep(1)",
                    &r) < 0);
        ASSERT_INT_EQ(r.status, AL_CELL_DEAD);
        ASSERT_TRUE(strstr(r.reason, "protocol") != NULL);
        al_cell_result_clear(&r);
        al_session_close(s, "closed", NULL, &in);
        ASSERT_STR_EQ(in.end_reason, "protocol");
        ASSERT_TRUE(strstr(in.end_message, "values") != NULL);
}

/* R: the code as a program, a fresh __main__, exit codes as python's;
 * the channel closed before the code runs, the program's end the
 * session's */
static int script(const char *code, al_cell_result *r) {
        al_session *s = start("python");
        if (!s)
                return -1;
        al_cell_opts o = cell;
        o.script = true;
        al_error e = {0};
        int rc = al_session_exec(s, code, strlen(code), &o, r, &e);
        al_session_close(s, "closed", NULL, NULL);
        return rc;
}

static void script_mode(void) {
        al_cell_result r = {0};
        const char *code = "import sys, os\nprint(sys.argv, __name__)\n"
                           "print(sorted(os.listdir('/proc/self/fd')))\n"
                           "sys.exit(3)";
        ASSERT_INT_EQ(script(code, &r), 0);
        ASSERT_INT_EQ(r.status, AL_CELL_ERROR);
        ASSERT_INT_EQ(json_integer_value(json_object_get(r.reply, "exit_code")),
                      3);
        const char *want = "['main.py'] __main__\n['0', '1', '2', '3']\n";
        ASSERT_TRUE(r.out_len == strlen(want) &&
                    !memcmp(r.out, want, r.out_len));
        al_cell_result_clear(&r);
        code = "def f():\n    raise ValueError('bad')\nf()";
        ASSERT_INT_EQ(script(code, &r), 0);
        ASSERT_INT_EQ(json_integer_value(json_object_get(r.reply, "exit_code")),
                      1);
        ASSERT_TRUE(r.err_len > 0 &&
                    memmem(r.err, r.err_len, "ValueError: bad", 15) &&
                    memmem(r.err, r.err_len, "main.py", 7));
        al_cell_result_clear(&r);
        ASSERT_INT_EQ(script("import atexit\natexit.register(print, 'bye')\n"
                             "print('hi')",
                             &r),
                      0);
        ASSERT_INT_EQ(r.status, AL_CELL_OK);
        ASSERT_TRUE(r.out_len == 7 && !memcmp(r.out, "hi\nbye\n", 7));
        al_cell_result_clear(&r);
}

int main(void) {
        if (access("/usr/bin/python3", X_OK) != 0) {
                printf("1..0 # SKIP no /usr/bin/python3\n");
                return 0;
        }
        RUN(state_kept);
        RUN(wall_interrupts);
        RUN(forged_reply);
        RUN(script_mode);
        TAP_END();
}
