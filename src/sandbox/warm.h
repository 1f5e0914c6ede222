/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Warm starts: a pool of sandboxes built ahead of the runs, each with its
 * interpreter started and the trusted preload (e.g. numpy, pandas)
 * imported, waiting for one run's code. A run takes one, runs its code in
 * it as a program (the driver's request R), and the sandbox is destroyed
 * with the run: no sandbox, process, writable file or memory ever serves
 * two runs. The pool refills on a thread of its own.
 *
 *   al_warm_start(lang, preload, size, max_age_s) -> al_run_warm(spec) ...
 *   -> al_warm_stop()
 *
 * al_run_warm falls back to nothing: it says why a run cannot be warm
 * (start_reason) and the caller runs it cold.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock.h"

/* Profiles warmed at once, and sandboxes ready per profile. */
#define AL_WARM_MAX_POOLS 8
#define AL_WARM_MAX_SIZE 64

/* Warm lang (a profile whose driver runs programs: python) with preload
 * ("numpy,pandas": modules the driver imports before any code comes; ""
 * for none), keeping size sandboxes ready, each replaced after max_age_s
 * unused. Sandboxes get the default limits (al_limits_default) and the
 * profile's environment: a run that asks other memory, pids, disk, open
 * files, environment, stdin or arguments is cold. -EINVAL with err for a
 * profile that cannot be warm. */
int al_warm_start(const char *lang, const char *preload, unsigned size,
                  unsigned max_age_s, al_error *err);
/* Stop refilling and destroy every ready sandbox. */
void al_warm_stop(void);

/* Run s in a warm sandbox of its language. 1 when r holds the result
 * (r->start "warm"); 0 when it cannot be warm (why in reason: "no_pool",
 * "pool_empty", "limits", "env", "stdin", "args", "pool_broken", ...),
 * nothing done; -errno on an error after the sandbox was taken (r holds
 * nothing). */
int al_run_warm(const al_spec *s, al_result **r, char *reason,
                size_t reason_size, al_error *err);

typedef struct al_warm_stats {
        char lang[32];
        unsigned ready, size;
        uint64_t warm_runs, cold_runs, built, failed;
        char last_error[256];
} al_warm_stats;
/* The pools' counts, for metrics and doctor: how many filled in. */
size_t al_warm_stats_get(al_warm_stats *v, size_t max);

/* Told (on the filler thread, no lock held) when a profile's sandboxes
 * start failing to build or fail for another reason (error: why, e.g.
 * "preload numpy: ModuleNotFoundError: ..."), and when one builds again
 * after a failure (error ""): once per change, not per retry. */
typedef void (*al_warm_notify_fn)(const char *lang, const char *error);
void al_warm_set_notify(al_warm_notify_fn fn);
