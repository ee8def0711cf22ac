/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-sandbox.c: teep-brokerd's seccomp filter, installed for real in a helper process */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker-test.h"

/* Not inside criterion's worker (its runner needs calls the filter forbids): a helper applies
 * the daemon's own filter (broker_sandbox_apply) and reports step by step. */
Test(sandbox, the_filter_allows_https_by_name_and_forbids_exec_and_raw_sockets, .timeout = 60) {
        const char *helper = getenv("BROKER_SANDBOX_HELPER");
        char dir[] = "/tmp/teepkit-sandbox-XXXXXX", cmd[1200], out[4096] = "";
        FILE *p;
        size_t n;
        int status;

        cr_assert(helper && *helper, "BROKER_SANDBOX_HELPER is not set");
        if (!test_have_certtool())
                cr_skip_test("certtool (gnutls-bin) is not installed");
        cr_assert_not_null(mkdtemp(dir));
        test_make_pki(dir, "ip_address = \"127.0.0.1\"\\ndns_name = \"localhost\"");
        snprintf(cmd, sizeof(cmd), "%s %s 2>&1", helper, dir);
        p = popen(cmd, "r");
        cr_assert_not_null(p);
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        status = pclose(p);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)system(cmd);

        cr_assert(WIFEXITED(status), "the helper died: %#x\n%s", status, out);
        cr_assert_eq(WEXITSTATUS(status), 0, "step %d failed:\n%s", WEXITSTATUS(status), out);
        cr_assert(strstr(out, "https: ok"), "%s", out);
        cr_assert(strstr(out, "pipe: ok"), "%s", out);
        cr_assert(strstr(out, "exec: killed"), "%s", out);
        cr_assert(strstr(out, "execveat by name: refused"), "%s", out);
}
