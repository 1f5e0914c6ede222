/* SPDX-License-Identifier: MIT */
/* Language profiles are data: the built-in set loads, files extend it,
 * bad files are refused with the reason. */
#include <errno.h>

#include "profile.h"
#include "tap.h"

static void builtin(void) {
        const char *want[] = {"python", "node", "bash", "sh", "c"};
        for (size_t i = 0; i < 5; i++)
                ASSERT_TRUE(al_profile_find(want[i]) != NULL);
        const al_profile *py = al_profile_find("python3");
        ASSERT_TRUE(py != NULL);
        ASSERT_STR_EQ(py->name, "python");
        ASSERT_STR_EQ(py->file, "main.py");
        ASSERT_STR_EQ(py->run[0], "/usr/bin/python3");
        /* base paths are merged into every profile */
        bool has_usr = false;
        for (char **p = py->ro_paths; *p; p++)
                has_usr |= strcmp(*p, "/usr") == 0;
        ASSERT_TRUE(has_usr);
        const al_profile *c = al_profile_find("c");
        ASSERT_TRUE(c->compile != NULL);
        ASSERT_STR_EQ(c->compile_output, "main");
        ASSERT_INT_EQ(c->compile_limits.memory_mb, 512);
        ASSERT_TRUE(al_profile_find("cobol") == NULL);
}

static void extend(void) {
        al_error e = {0};
        const char *j = "{\"languages\":{\"lua\":{\"file\":\"main.lua\","
                        "\"run\":[\"/usr/bin/lua\",\"{file}\"],"
                        "\"aliases\":[\"lua5\"]}}}";
        ASSERT_INT_EQ(al_profiles_load_json(j, &e), 0);
        const al_profile *p = al_profile_find("lua5");
        ASSERT_TRUE(p != NULL);
        ASSERT_STR_EQ(p->run[1], "{file}");
        ASSERT_TRUE(al_profile_find("python") != NULL);
        /* no base_ro_paths in the file: the built-in base applies */
        bool has_usr = false;
        for (char **q = p ? p->ro_paths : NULL; q && *q; q++)
                has_usr |= strcmp(*q, "/usr") == 0;
        ASSERT_TRUE(has_usr);
}

static void refuse(void) {
        al_error e = {0};
        ASSERT_INT_EQ(al_profiles_load_json("{", &e), -EINVAL);
        ASSERT_INT_EQ(al_profiles_load_json(
                              "{\"languages\":{\"x\":{\"file\":\"../x\","
                              "\"run\":[\"/bin/x\"]}}}",
                              &e),
                      -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "file") != NULL);
        ASSERT_INT_EQ(al_profiles_load_json(
                              "{\"languages\":{\"x\":{\"file\":\"x\","
                              "\"run\":[]}}}",
                              &e),
                      -EINVAL);
        ASSERT_INT_EQ(al_profiles_load_json(
                              "{\"languages\":{\"x\":{\"file\":\"x\","
                              "\"run\":[\"/bin/x\"],"
                              "\"ro_paths\":[\"/usr/../root\"]}}}",
                              &e),
                      -EINVAL);
        ASSERT_TRUE(strstr(e.msg, "ro path") != NULL);
        ASSERT_INT_EQ(al_profiles_load_json(
                              "{\"languages\":{\"x\":{\"file\":\"x\","
                              "\"run\":[\"/bin/x\"],"
                              "\"compile_limits\":{\"memory_mb\":0}}}}",
                              &e),
                      -ERANGE);
        ASSERT_TRUE(al_profile_find("x") == NULL);
}

int main(void) {
        RUN(builtin);
        RUN(extend);
        RUN(refuse);
        TAP_END();
}
