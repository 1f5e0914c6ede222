/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Alert sinks for the audit log: a structured log line (always, written at
 * once), then a command and an HTTP webhook, fed from a bounded queue and
 * retried with backoff. Nothing here can block or fail a run: a full queue
 * drops the alert (counted, and said in the log line); the audit record
 * itself is already committed when an alert is raised.
 */
#include <stdbool.h>
#include <stdint.h>

#include "airlock.h"

typedef struct al_alert_config {
        char *log_path;     /* NULL: stderr; else a file, appended */
        char *command;      /* run with /bin/sh -c, the alert on stdin */
        char *webhook;      /* http:// or https:// URL, POSTed JSON */
        unsigned timeout_ms; /* per attempt, command and webhook */
        unsigned retries;   /* attempts after the first */
        unsigned queue;     /* alerts waiting at most */
} al_alert_config;

typedef struct al_alerter al_alerter;

/* Copies what it needs of c. */
al_alerter *al_alerter_new(const al_alert_config *c);
/* Stops the thread (if any) after at most the current delivery. */
void al_alerter_free(al_alerter *a);
/* event: one JSON object on one line, without the newline. */
void al_alerter_raise(al_alerter *a, const char *event);
int al_alerter_start(al_alerter *a, al_error *err);
/* The log line on stderr (no log file configured) in words for a person
 * at a terminal instead of JSON: `airlock run` without --json. */
void al_alerter_set_human(al_alerter *a, bool on);
void al_alerter_drain(al_alerter *a, unsigned timeout_ms);
void al_alerter_counts(al_alerter *a, uint64_t *dropped, uint64_t *failed);
