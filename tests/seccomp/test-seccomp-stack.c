/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-seccomp-stack.c: the boxes in the running stack (tools/devstack through harness.h). The
 * three daemons run confined (Seccomp 2, NoNewPrivs) after a real request went through them;
 * then each daemon binary is started again with --sandbox-self-test, as its own user inside
 * the stack's mount namespace, where it does its normal start-up, enters its box and tries
 * the forbidden calls: each must be refused. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static Stack stack;

static void up(void) {
        const char *why = NULL;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        cr_assert_eq(stack_up(&stack, NULL), 0, "tools/devstack up failed");
}

static void down(void) {
        stack_down(&stack);
}

static void assert_confined(const char *what, pid_t pid, uid_t uid) {
        char uid_line[64];

        cr_assert_gt(pid, 0, "%s is not on the bus", what);
        cr_assert(stack_proc_status_has(pid, "Seccomp:\t2"), "%s (pid %d) runs without a seccomp filter", what, (int)pid);
        cr_assert(stack_proc_status_has(pid, "NoNewPrivs:\t1"), "%s (pid %d): no NoNewPrivs", what, (int)pid);
        snprintf(uid_line, sizeof(uid_line), "Uid:\t%u\t%u\t%u\t%u", uid, uid, uid, uid);
        cr_assert(stack_proc_status_has(pid, uid_line), "%s (pid %d) does not run as uid %u", what, (int)pid, uid);
}

/* SIGTERM to the daemon that owns name (a process of this test's stack), until it left the bus. */
static void stop_owner(const char *name) {
        pid_t pid = stack_bus_name_pid(name);

        if (pid <= 0)
                return;
        cr_assert_eq(kill(pid, SIGTERM), 0);
        for (int i = 0; i < 200 && stack_bus_name_pid(name) > 0; i++)
                usleep(50 * 1000);
        cr_assert_eq(stack_bus_name_pid(name), 0, "%s did not leave the bus", name);
}

/* The broker's child named teep-broker-http (the kernel's comm has 15 characters), or 0. */
static pid_t http_helper_of(pid_t broker) {
        char path[64], buf[512];
        pid_t found = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)broker, (int)broker);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (!found && fscanf(f, "%d", &found) == 1) {
                FILE *c;

                snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
                c = fopen(path, "re");
                if (!c || !fgets(buf, sizeof(buf), c) || strcmp(buf, "teep-broker-htt\n") != 0)
                        found = 0;
                if (c)
                        fclose(c);
        }
        fclose(f);
        return found;
}

/* Run BINARY --config CONF --sandbox-self-test as uid/gid in the stack's mount namespace (where
 * its users exist); teep-broker-http takes no --config. Returns the exit status; out/err get
 * the output. */
static int self_test(const char *binary, uid_t uid, gid_t gid, char **out, char **err) {
        char bin[512], target[32], reuid[32], regid[32];
        FILE *f = fopen(stack_path(&stack, "run/dbus.pid"), "re");
        int ns_pid = 0;

        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%d", &ns_pid), 1);
        fclose(f);
        snprintf(bin, sizeof(bin), "%s/%s", getenv("TEEP_BUILD_DIR") ?: "build", binary);
        snprintf(target, sizeof(target), "%d", ns_pid);
        snprintf(reuid, sizeof(reuid), "--reuid=%u", (unsigned)uid);
        snprintf(regid, sizeof(regid), "--regid=%u", (unsigned)gid);
        {
                const char *argv[] = {
                        "nsenter", "--target", target, "--mount", "--",
                        "setpriv", reuid, regid, "--clear-groups", "--inh-caps=-all", "--",
                        bin, "--config", stack.conf, "--sandbox-self-test", NULL,
                };
                if (strstr(binary, "teep-broker-http")) {
                        argv[12] = "--sandbox-self-test";
                        argv[13] = NULL;
                }
                return run_cmd_as(0, 0, argv, 60, out, err);
        }
}

static void check_self_test(const char *what, const char *out, const char *err) {
        static const char *const must[] = {
                ": execve: killed by SIGSYS", ": mount: killed by SIGSYS", ": bpf: killed by SIGSYS",
                ": socket-packet: refused (EPERM)", ": open-outside: refused (EACCES)",
                "sandbox self-test passed",
        };

        for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
                cr_expect(strstr(out, must[i]), "%s: no '%s' in:\n%s\n%s", what, must[i], out, err);
        cr_expect_null(strstr(out, ": allowed"), "%s: a forbidden call went through:\n%s", what, out);
        /* the EPERM left a log line naming the call */
        cr_expect(strstr(err, "seccomp: refused system call socket ("), "%s: no log line for socket():\n%s", what, err);
}

TestSuite(seccomp_stack, .init = up, .fini = down, .timeout = 300);

Test(seccomp_stack, daemons_run_confined_and_refuse_forbidden_calls) {
        const char *ctl[] = { getenv("TEEPCTL") ?: "teepctl", "request", stack.demo_component, NULL };
        char *out = NULL, *err = NULL;
        int r;

        cr_assert(stack.distinct_users, "the stack runs without distinct users");
        /* a real request: broker → TAM → agent → (activated) installer */
        r = run_cmd_as(stack.uid_app, stack.gid_app, ctl, 120, &out, &err);
        cr_assert_eq(r, 0, "teepctl request: %d\n%s\n%s", r, out, err);
        free(out);
        free(err);
        assert_confined("teep-installer", stack_bus_name_pid("org.teepkit.Installer1"), stack.uid_installer);
        assert_confined("teep-agentd", stack_bus_name_pid("org.teepkit.Agent1"), stack.uid_agent);
        assert_confined("teep-brokerd", stack_bus_name_pid("org.teepkit.Broker1"), stack.uid_broker);
        /* its HTTP helper, still there from the request: the broker's filter and its own */
        {
                pid_t helper = http_helper_of(stack_bus_name_pid("org.teepkit.Broker1"));
                assert_confined("teep-broker-http", helper, stack.uid_broker);
                cr_assert(stack_proc_status_has(helper, "Seccomp_filters:\t2"),
                          "teep-broker-http (pid %d) does not have two filters", (int)helper);
        }

        /* Each self-test takes the daemon's place: its start-up owns the bus name and locks the
         * store or the state, as the real one does. The installer first, before anything could
         * activate it again. */
        stop_owner("org.teepkit.Installer1");
        r = self_test("installer/teep-installer", stack.uid_installer, stack.gid_installer, &out, &err);
        cr_expect_eq(r, 0, "teep-installer --sandbox-self-test: exit %d\n%s\n%s", r, out, err);
        check_self_test("teep-installer", out, err);
        cr_expect(strstr(out, "teep-installer: socket-inet: refused (EPERM)"), "%s", out);
        free(out);
        free(err);

        stop_owner("org.teepkit.Broker1");
        r = self_test("broker/teep-brokerd", stack.uid_broker, stack.gid_broker, &out, &err);
        cr_expect_eq(r, 0, "teep-brokerd --sandbox-self-test: exit %d\n%s\n%s", r, out, err);
        check_self_test("teep-brokerd", out, err);
        free(out);
        free(err);

        r = self_test("broker/teep-broker-http", stack.uid_broker, stack.gid_broker, &out, &err);
        cr_expect_eq(r, 0, "teep-broker-http --sandbox-self-test: exit %d\n%s\n%s", r, out, err);
        check_self_test("teep-broker-http", out, err);
        cr_expect(strstr(out, "teep-broker-http: socket-unix: refused (EPERM)"), "no bus for the helper:\n%s", out);
        free(out);
        free(err);

        stop_owner("org.teepkit.Agent1");
        r = self_test("agentd/teep-agentd", stack.uid_agent, stack.gid_agent, &out, &err);
        cr_expect_eq(r, 0, "teep-agentd --sandbox-self-test: exit %d\n%s\n%s", r, out, err);
        check_self_test("teep-agentd", out, err);
        cr_expect(strstr(out, "teep-agentd: socket-inet: refused (EPERM)"), "%s", out);
        free(out);
        free(err);
}
