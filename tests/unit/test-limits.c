/* SPDX-License-Identifier: MIT */
/* The limits vocabulary: defaults, parsing, refusals with clear words. */
#include <errno.h>

#include "airlock.h"
#include "egress.h"
#include "tap.h"

static void defaults(void) {
        al_limits l;
        al_limits_init(&l);
        ASSERT_INT_EQ(l.wall_ms, 10000);
        ASSERT_INT_EQ(l.cpu_ms, 10000);
        ASSERT_INT_EQ(l.memory_mb, 256);
        ASSERT_INT_EQ(l.pids, 64);
        ASSERT_INT_EQ(l.disk_mb, 64);
        ASSERT_INT_EQ(l.output_bytes, 1048576);
        al_error e = {0};
        ASSERT_INT_EQ(al_limits_validate(&l, &e), 0);
}

static void set_ok(void) {
        al_limits l;
        al_limits_init(&l);
        al_error e = {0};
        ASSERT_INT_EQ(al_limits_set(&l, "memory_mb", "128", &e), 0);
        ASSERT_INT_EQ(l.memory_mb, 128);
        ASSERT_INT_EQ(al_limits_set(&l, "wall_ms", "3600000", &e), 0);
        ASSERT_INT_EQ(l.wall_ms, 3600000);
}

static void refusals(void) {
        al_limits l;
        al_limits_init(&l);
        al_error e = {0};
        ASSERT_INT_EQ(al_limits_set(&l, "memory_mb", "0", &e), -ERANGE);
        ASSERT_TRUE(strstr(e.msg, "memory_mb") != NULL);
        ASSERT_INT_EQ(al_limits_set(&l, "memory_mb", "-5", &e), -EINVAL);
        ASSERT_INT_EQ(al_limits_set(&l, "pids", "99999999999999999999", &e),
                      -ERANGE);
        ASSERT_INT_EQ(al_limits_set(&l, "wall_ms", "3600001", &e), -ERANGE);
        ASSERT_INT_EQ(al_limits_set(&l, "wall_ms", "1.5", &e), -EINVAL);
        ASSERT_INT_EQ(al_limits_set(&l, "bogus", "1", &e), -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "bogus") != NULL);
        /* nothing changed by the refusals */
        ASSERT_INT_EQ(l.memory_mb, 256);
        l.pids = 0;
        ASSERT_INT_EQ(al_limits_validate(&l, &e), -ERANGE);
}

/* The proxy's caps are limits by name; their defaults are the proxy's. */
static void net_caps(void) {
        al_limits l;
        al_limits_init(&l);
        ASSERT_INT_EQ(l.net_connections, AL_NET_DEFAULT_CONNECTIONS);
        ASSERT_INT_EQ(l.net_bytes_out, AL_NET_DEFAULT_BYTES);
        ASSERT_INT_EQ(l.net_bytes_in, AL_NET_DEFAULT_BYTES);
        ASSERT_INT_EQ(l.net_idle_ms, AL_NET_DEFAULT_IDLE_MS);
        al_error e = {0};
        ASSERT_INT_EQ(al_limits_set(&l, "net_bytes_in", "1000", &e), 0);
        ASSERT_INT_EQ(l.net_bytes_in, 1000);
        ASSERT_INT_EQ(al_limits_set(&l, "net_bytes_out", "17179869184", &e), 0);
        ASSERT_INT_EQ(al_limits_set(&l, "net_bytes_out", "17179869185", &e),
                      -ERANGE);
        ASSERT_TRUE(strstr(e.msg, "net_bytes_out") != NULL);
        ASSERT_INT_EQ(al_limits_set(&l, "net_connections", "1", &e), -ERANGE);
        ASSERT_INT_EQ(al_limits_set(&l, "net_connections", "256", &e), 0);
        ASSERT_INT_EQ(al_limits_set(&l, "net_connections", "257", &e), -ERANGE);
        ASSERT_INT_EQ(al_limits_set(&l, "net_idle_ms", "0", &e), -ERANGE);
        ASSERT_INT_EQ(al_limits_set(&l, "net_idle_ms", "500", &e), 0);
        ASSERT_INT_EQ(l.net_idle_ms, 500);
        ASSERT_INT_EQ(al_limits_validate(&l, &e), 0);
}

int main(void) {
        RUN(defaults);
        RUN(net_caps);
        RUN(set_ok);
        RUN(refusals);
        TAP_END();
}
