/* SPDX-License-Identifier: MIT */
#pragma once
/* Private to extract.c; tests include it to try the bounds quickly. */
#include <stddef.h>

/* Budgets for the parses of the calling thread instead of
 * AL_EXTRACT_MAX_MEMORY and AL_EXTRACT_MAX_CPU_MS; 0 restores each. */
void al_extract_set_test_budgets(size_t max_memory, long max_cpu_ms);
