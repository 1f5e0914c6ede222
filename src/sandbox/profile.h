/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Language profiles: data, loaded from JSON (the built-in
 * languages/default.json embedded in the library, optionally replaced or
 * extended by a file). Adding a language never needs a C change.
 */
#include <stdbool.h>

#include "airlock.h"

typedef struct al_profile {
        char *name;
        char **aliases; /* NULL-terminated */
        char *description;
        char *file;           /* source file name in the workspace */
        char **compile;       /* argv template or NULL */
        char *compile_output; /* file the compile step must produce */
        al_limits compile_limits;
        char **run;      /* argv template */
        char **ro_paths; /* base + profile paths, NULL-terminated */
        char **env;      /* NAME=VALUE, NULL-terminated */
        /* sessions: the driver's argv template ({driver}: its source) and
         * its built-in source (al_session_driver), or NULL: no sessions */
        char **session_run;
        const char *session_driver;
} al_profile;

/* The built-in session driver named name ("python.py": the file under
 * languages/sessions/, embedded in the library), or NULL. */
const char *al_session_driver(const char *name);

/* Caps on what a profile file may hold (it is operator input, but a typo
 * should give an error, not an unbounded allocation). */
#define AL_PROFILE_MAX_LANGS 128
#define AL_PROFILE_MAX_LIST 128

/* Look a profile up by name or alias; loads the built-in set on first use. */
const al_profile *al_profile_find(const char *name);
const al_profile *al_profile_at(size_t i);
/* Parse profiles from JSON text, replacing same-named ones. */
int al_profiles_load_json(const char *text, al_error *err);
/* Is the program at argv[0] of the template present on this host? */
bool al_profile_available(const al_profile *p);
