/* SPDX-License-Identifier: MIT */
#include "airlock.h"

const char *al_status_name(al_status s) {
        static const char *const names[] = {
                [AL_STATUS_OK] = "ok",
                [AL_STATUS_ERROR] = "error",
                [AL_STATUS_TIMEOUT] = "timeout",
                [AL_STATUS_MEMORY_LIMIT] = "memory_limit",
                [AL_STATUS_OUTPUT_LIMIT] = "output_limit",
                [AL_STATUS_KILLED] = "killed",
                [AL_STATUS_REJECTED] = "rejected",
                [AL_STATUS_INTERNAL_ERROR] = "internal_error",
        };
        if ((unsigned)s < sizeof(names) / sizeof(names[0]))
                return names[s];
        return "internal_error";
}
