/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-policy.c: the project's bus policy files, loaded by a private dbus-daemon, proven rule by
 * rule with real uids (issue 7, dbus/). The daemons' own credential checks are tested by each
 * daemon's tests; here a stand-in service owns each name so that only the bus policy decides. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

TestSuite(policy, .init = up, .fini = down, .timeout = 60);

typedef struct Who {
        uid_t uid;
        gid_t gid;
} Who;

static Who user(const char *name) {
        if (strcmp(name, "broker") == 0)
                return (Who){ stack.uid_broker, stack.gid_broker };
        if (strcmp(name, "agent") == 0)
                return (Who){ stack.uid_agent, stack.gid_agent };
        if (strcmp(name, "installer") == 0)
                return (Who){ stack.uid_installer, stack.gid_installer };
        if (strcmp(name, "app") == 0)
                return (Who){ stack.uid_app, stack.gid_app };
        return (Who){ 0, 0 };
}

static int try_own(void *userdata) {
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0)
                return 10;
        r = sd_bus_request_name(bus, userdata, 0);
        sd_bus_flush_close_unref(bus);
        return r >= 0 ? 0 : r == -EACCES ? 1 : 11;
}

static int own(const char *who, const char *name) {
        Who w = user(who);
        return run_as(w.uid, w.gid, try_own, (void *)name);
}

Test(policy, each_name_is_owned_by_its_daemon_user_only) {
        static const char *const names[] = { "org.teepkit.Broker1", "org.teepkit.Agent1", "org.teepkit.Installer1" };
        static const char *const owners[] = { "broker", "agent", "installer" };
        static const char *const users[] = { "broker", "agent", "installer", "app" };

        for (size_t n = 0; n < 3; n++)
                for (size_t u = 0; u < 4; u++) {
                        int want = strcmp(owners[n], users[u]) == 0 ? 0 : 1;
                        cr_expect_eq(own(users[u], names[n]), want, "user %s owning %s: got %d, want %s", users[u],
                                     names[n], own(users[u], names[n]), want ? "denied" : "allowed");
                }
}

/* A stand-in service: owns name as the daemon's user and answers any method of iface with "".
 * Runs until killed (bounded by the test's timeout and an alarm). */
static const char *serve_name, *serve_path, *serve_iface;

static int method_any(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "s", "");
}

static int serve(void *userdata) {
        const sd_bus_vtable vtable[] = {
                SD_BUS_VTABLE_START(0),
                SD_BUS_METHOD("Probe", "", "s", method_any, SD_BUS_VTABLE_UNPRIVILEGED),
                SD_BUS_VTABLE_END,
        };
        sd_bus *bus = NULL;
        int *ready = userdata;

        alarm(30);
        if (sd_bus_open_system(&bus) < 0)
                return 10;
        if (sd_bus_add_object_vtable(bus, NULL, serve_path, serve_iface, vtable, NULL) < 0)
                return 11;
        if (sd_bus_request_name(bus, serve_name, 0) < 0)
                return 12;
        if (write(ready[1], "1", 1) != 1)
                return 13;
        for (;;) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 14;
                if (r == 0)
                        sd_bus_wait(bus, UINT64_MAX);
        }
}

/* Start the stand-in in the background as owner; returns its pid once the name is owned. */
static pid_t start_service(const char *owner, const char *name, const char *path, const char *iface) {
        Who w = user(owner);
        int ready[2];
        char c;
        pid_t pid;

        serve_name = name, serve_path = path, serve_iface = iface;
        cr_assert_eq(pipe(ready), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                /* drop here rather than through run_as(): the test kills this very process */
                close(ready[0]);
                if (setgroups(0, NULL) < 0 || setresgid(w.gid, w.gid, w.gid) < 0 || setresuid(w.uid, w.uid, w.uid) < 0)
                        _exit(125);
                _exit(serve(ready));
        }
        close(ready[1]);
        cr_assert_eq(read(ready[0], &c, 1), 1, "the stand-in for %s did not start", name);
        close(ready[0]);
        return pid;
}

static void stop_service(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static const char *call_dest, *call_path, *call_iface;

static int try_call(void *userdata) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        r = sd_bus_call_method(bus, call_dest, call_path, call_iface, "Probe", &error, &reply, "");
        if (r < 0 && !sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                fprintf(stderr, "call failed otherwise: %s: %s\n", error.name, error.message);
        r = r >= 0 ? 0 : sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED) ? 1 : 11;
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r;
}

static int call(const char *who, const char *dest, const char *path, const char *iface) {
        Who w = user(who);
        int r;
        call_dest = dest, call_path = path, call_iface = iface;
        r = run_as(w.uid, w.gid, try_call, NULL);
        if (r > 1)
                cr_log_warn("call %s.Probe as %s: status %d", iface, who, r);
        return r;
}

Test(policy, only_the_broker_user_reaches_the_agent) {
        pid_t pid = start_service("agent", "org.teepkit.Agent1", "/org/teepkit/Agent1", "org.teepkit.Agent1");
        cr_expect_eq(call("broker", "org.teepkit.Agent1", "/org/teepkit/Agent1", "org.teepkit.Agent1"), 0);
        cr_expect_eq(call("app", "org.teepkit.Agent1", "/org/teepkit/Agent1", "org.teepkit.Agent1"), 1);
        cr_expect_eq(call("installer", "org.teepkit.Agent1", "/org/teepkit/Agent1", "org.teepkit.Agent1"), 1);
        stop_service(pid);
}

Test(policy, only_the_agent_user_reaches_the_installer) {
        pid_t pid = start_service("installer", "org.teepkit.Installer1", "/org/teepkit/Installer1",
                                  "org.teepkit.Installer1");
        cr_expect_eq(call("agent", "org.teepkit.Installer1", "/org/teepkit/Installer1", "org.teepkit.Installer1"), 0);
        cr_expect_eq(call("app", "org.teepkit.Installer1", "/org/teepkit/Installer1", "org.teepkit.Installer1"), 1);
        cr_expect_eq(call("broker", "org.teepkit.Installer1", "/org/teepkit/Installer1", "org.teepkit.Installer1"), 1);
        stop_service(pid);
}

Test(policy, anyone_reaches_the_broker_but_only_the_agent_its_fetcher) {
        pid_t pid = start_service("broker", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.Broker1");
        cr_expect_eq(call("app", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.Broker1"), 0);
        cr_expect_eq(call("agent", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.Broker1"), 0);
        stop_service(pid);
        pid = start_service("broker", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.PayloadFetcher1");
        cr_expect_eq(call("agent", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.PayloadFetcher1"), 0);
        cr_expect_eq(call("app", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.PayloadFetcher1"), 1);
        stop_service(pid);
}

Test(policy, nobody_can_impersonate_the_broker_while_it_runs) {
        /* With the broker's name taken, an app cannot queue for it either (own is denied). */
        pid_t pid = start_service("broker", "org.teepkit.Broker1", "/org/teepkit/Broker1", "org.teepkit.Broker1");
        cr_expect_eq(own("app", "org.teepkit.Broker1"), 1);
        cr_expect_eq(own("agent", "org.teepkit.Broker1"), 1);
        stop_service(pid);
}
