/* SPDX-License-Identifier: MIT */
/* The bash walker of static validation (to be written). */
#include "check-internal.h"

void check_bash(struct check_ctx *c, TSNode root) {
        (void)c;
        (void)root;
}
