/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-harness.c: the stack the integration tests stand on is what it claims to be */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "harness.h"

static Stack stack;

static void up(void) {
        const char *why = NULL;
        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, (const char *const[]){ "--no-tam", "--no-agent", "--no-broker", NULL }), 0);
}

static void down(void) {
        stack_down(&stack);
}

TestSuite(harness, .init = up, .fini = down, .timeout = 60);

static int own_name(void *userdata) {
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0)
                return 10;
        r = sd_bus_request_name(bus, userdata, 0);
        sd_bus_flush_close_unref(bus);
        return r == -EACCES ? 1 : r >= 0 ? 0 : 11;
}

Test(harness, app_user_cannot_own_teepkit_names) {
        /* The default policy denies owning names; the project's policy files grant each name to
         * one daemon user only. teep-app is none of them. */
        cr_assert_eq(run_as(stack.uid_app, stack.gid_app, own_name, (void *)"org.teepkit.Agent1"), 1);
        cr_assert_eq(run_as(stack.uid_app, stack.gid_app, own_name, (void *)"org.teepkit.Broker1"), 1);
}

Test(harness, users_are_distinct_and_commands_run_as_them) {
        const char *argv[] = { "id", "-u", NULL };
        char *out = NULL;
        cr_assert(stack.distinct_users);
        cr_assert_neq(stack.uid_app, stack.uid_agent);
        cr_assert_neq(stack.uid_agent, stack.uid_broker);
        cr_assert_neq(stack.uid_installer, stack.uid_agent);
        cr_assert_eq(run_cmd_as(stack.uid_app, stack.gid_app, argv, 10, &out, NULL), 0);
        cr_assert_eq((unsigned)strtoul(out, NULL, 10), stack.uid_app);
        free(out);
}

Test(harness, private_bus_has_installer_activatable) {
        const char *argv[] = { "busctl", "--system", "--no-legend", "--activatable", "list", NULL };
        char *out = NULL;
        cr_assert_eq(run_cmd_as(stack.uid_app, stack.gid_app, argv, 10, &out, NULL), 0);
        cr_assert(strstr(out, "org.teepkit.Installer1"), "activatable names: %s", out);
        free(out);
        cr_assert(strstr(stack.bus_address, stack.dir));
}

Test(harness, command_timeout_is_enforced) {
        const char *argv[] = { "sleep", "30", NULL };
        cr_assert_eq(run_cmd_as(getuid(), getgid(), argv, 1, NULL, NULL), -ETIMEDOUT);
}
