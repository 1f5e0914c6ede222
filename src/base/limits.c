/* SPDX-License-Identifier: MIT */
/* The one limits vocabulary: defaults, ceilings, parsing and checks. */
#include <errno.h>
#include <string.h>

#include "airlock.h"
#include "error.h"
#include "util.h"

const al_limits al_limits_default = {
        .wall_ms = 10000,
        .cpu_ms = 10000,
        .memory_mb = 256,
        .pids = 64,
        .disk_mb = 64,
        .output_bytes = 1024 * 1024,
        .open_files = 256,
        /* the proxy's defaults: AL_NET_DEFAULT_* of src/sandbox/egress.h
         * (test-limits checks they agree) */
        .net_connections = 32,
        .net_bytes_out = 100ull << 20,
        .net_bytes_in = 100ull << 20,
        .net_idle_ms = 30000,
};

/* Ceilings: a request above these is refused, not clamped, so a caller
 * never gets silently less than it asked for. Chosen so that one run
 * cannot hold a host for long or take all of a typical machine. */
const al_limits al_limits_max = {
        .wall_ms = 3600 * 1000,         /* one hour */
        .cpu_ms = 3600 * 1000,          /* one CPU hour */
        .memory_mb = 64 * 1024,         /* 64 GiB */
        .pids = 4096,
        .disk_mb = 16 * 1024,           /* tmpfs, charged to memory */
        .output_bytes = 64 * 1024 * 1024, /* per stream */
        .open_files = 65536,
        /* each client connection costs the supervisor two fds and about
         * 150 KiB of buffers: 256 sockets bound one run's proxy to ~20 MiB */
        .net_connections = 256,
        .net_bytes_out = 16ull << 30, /* 16 GiB each way */
        .net_bytes_in = 16ull << 30,
        .net_idle_ms = 3600 * 1000, /* as long as the longest run */
};

struct field {
        const char *name;
        size_t off;
        uint64_t min;
};

static const struct field fields[] = {
        {"wall_ms", offsetof(al_limits, wall_ms), 1},
        {"cpu_ms", offsetof(al_limits, cpu_ms), 1},
        {"memory_mb", offsetof(al_limits, memory_mb), 1},
        {"pids", offsetof(al_limits, pids), 1},
        {"disk_mb", offsetof(al_limits, disk_mb), 1},
        {"output_bytes", offsetof(al_limits, output_bytes), 1},
        {"open_files", offsetof(al_limits, open_files), 16},
        /* two: one connection to the proxy and one out */
        {"net_connections", offsetof(al_limits, net_connections), 2},
        {"net_bytes_out", offsetof(al_limits, net_bytes_out), 1},
        {"net_bytes_in", offsetof(al_limits, net_bytes_in), 1},
        {"net_idle_ms", offsetof(al_limits, net_idle_ms), 1},
};

static uint64_t get(const al_limits *l, const struct field *f) {
        return *(const uint64_t *)((const char *)l + f->off);
}

void al_limits_init(al_limits *l) {
        *l = al_limits_default;
}

static int check(const struct field *f, uint64_t v, al_error *err) {
        uint64_t max = get(&al_limits_max, f);
        if (v < f->min || v > max)
                return al_error_set(err, ERANGE,
                                    "limit %s=%llu out of range (%llu..%llu)",
                                    f->name, (unsigned long long)v,
                                    (unsigned long long)f->min,
                                    (unsigned long long)max);
        return 0;
}

int al_limits_set(al_limits *l, const char *name, const char *value,
                  al_error *err) {
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                if (strcmp(fields[i].name, name) != 0)
                        continue;
                uint64_t v;
                int r = al_parse_u64(value, &v);
                if (r == -ERANGE)
                        return al_error_set(err, ERANGE,
                                            "limit %s: %s is too large", name,
                                            value);
                if (r < 0)
                        return al_error_set(err, EINVAL,
                                            "limit %s: '%s' is not a whole "
                                            "non-negative number",
                                            name, value);
                r = check(&fields[i], v, err);
                if (r < 0)
                        return r;
                *(uint64_t *)((char *)l + fields[i].off) = v;
                return 0;
        }
        return al_error_set(err, EINVAL, "unknown limit '%s'", name);
}

int al_limits_validate(const al_limits *l, al_error *err) {
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                int r = check(&fields[i], get(l, &fields[i]), err);
                if (r < 0)
                        return r;
        }
        return 0;
}
