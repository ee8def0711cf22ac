/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-hsm.c: on the real stack (tools/devstack): the sandboxed teep-agentd signs with a
 * key in a SoftHSM2 token, and a component's TAM list fails over past a TAM that is down */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "harness.h"
#include "macro.h"
#include "teep-cose.h"

static Stack stack;
static char tmp[256];   /* the token, its configuration, the PIN and the drop-in */
static char module[256];

static int run(const char *cmd) {
        int st = system(cmd);
        return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        cr_assert_eq(fchmod(fd, mode), 0);
        close(fd);
}

static char *read_text(const char *path) {
        uint8_t *data = NULL;
        size_t len;
        if (read_full_file(path, 1 << 22, &data, &len) < 0)
                return strdup("");
        return (char *)data;
}

static bool find_module(void) {
        const char *cands[] = { getenv("SOFTHSM2_MODULE"), "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                                "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/softhsm/libsofthsm2.so" };
        for (size_t i = 0; i < ELEMENTSOF(cands); i++)
                if (cands[i] && access(cands[i], R_OK) == 0) {
                        snprintf(module, sizeof(module), "%s", cands[i]);
                        return true;
                }
        return false;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
        return remove(path);
}

/* Up with a SoftHSM2 token holding the device key, KeyURI= pointing at it, and extra drop-in
 * text. The token lives outside the stack directory (devstack recreates that) and is open to
 * every uid: the agent's uid is chosen by devstack only at start. */
static void up_hsm(const char *extra_conf, const char *const *extra_args) {
        char path[512], cmd[2048], conf[2048];
        const char *why = NULL;
        const char *args[8] = { "--conf", NULL };
        size_t n = 2;

        if (!stack_can_run(&why))
                cr_skip_test("%s", why);
        if (!find_module() || run("command -v softhsm2-util >/dev/null && command -v p11tool >/dev/null") != 0)
                cr_skip_test("SoftHSM2 or p11tool is not installed (apt-get install softhsm2 gnutls-bin)");
        snprintf(tmp, sizeof(tmp), "%s/teep-hsm-test-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        cr_assert(mkdtemp(tmp));
        cr_assert_eq(chmod(tmp, 0755), 0);
        snprintf(path, sizeof(path), "%s/tokens", tmp);
        cr_assert_eq(mkdir(path, 0777), 0);
        cr_assert_eq(chmod(path, 01777), 0);
        snprintf(cmd, sizeof(cmd), "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", path);
        snprintf(path, sizeof(path), "%s/softhsm2.conf", tmp);
        write_text(path, cmd, 0644);
        cr_assert_eq(setenv("SOFTHSM2_CONF", path, 1), 0); /* devstack hands it to the agent */
        cr_assert_eq(run("softhsm2-util --init-token --free --label teepdev --pin 1234 --so-pin 0000 >/dev/null"), 0);
        snprintf(cmd, sizeof(cmd),
                 "GNUTLS_PIN=1234 p11tool --provider %s --login --generate-privkey ecdsa --curve secp256r1 "
                 "--label device 'pkcs11:token=teepdev' >%s/token-pub.pem 2>/dev/null && chmod -R a+rwX %s/tokens",
                 module, tmp, tmp);
        cr_assert_eq(run(cmd), 0, "p11tool could not make a key on the token");
        snprintf(path, sizeof(path), "%s/pin", tmp);
        write_text(path, "1234\n", 0644);

        snprintf(conf, sizeof(conf),
                 "[Agent]\nKeyURI=pkcs11:token=teepdev;object=device;type=private\nPKCS11Module=%s\nPinFile=%s/pin\n%s",
                 module, tmp, extra_conf ?: "");
        snprintf(path, sizeof(path), "%s/50-hsm.conf", tmp);
        write_text(path, conf, 0644);
        args[1] = path;
        for (size_t i = 0; extra_args && extra_args[i] && n < ELEMENTSOF(args) - 1; i++)
                args[n++] = extra_args[i];
        args[n] = NULL;
        cr_assert_eq(stack_up(&stack, args), 0, "tools/devstack up failed");
}

static void down(void) {
        stack_down(&stack);
        if (tmp[0] && !getenv("TEEP_KEEP_STACK"))
                (void)nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        tmp[0] = '\0';
}

TestSuite(hsm, .fini = down, .timeout = 240);

static int teepctl_as_app(const char *const *args, char **out, char **err) {
        const char *argv[12] = { getenv("TEEPCTL") };
        size_t n = 1;

        cr_assert(argv[0], "TEEPCTL is not set");
        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        return run_cmd_as(stack.uid_app, stack.gid_app, argv, 120, out, err);
}

static void thumbprint_of_pem_file(const char *path, uint8_t out[32]) {
        _cleanup_free_ uint8_t *pem = NULL;
        _cleanup_(teep_key_freep) TeepKey *k = NULL;
        size_t len;

        cr_assert_eq(read_full_file(path, 1 << 16, &pem, &len), 0, "%s", path);
        cr_assert_eq(teep_key_from_pem(&k, pem, len, NULL), 0, "%s: not a key", path);
        cr_assert_eq(teep_key_thumbprint(k, out), 0);
}

Test(hsm, the_sandboxed_agent_signs_with_the_token_and_a_tc_installs) {
        _cleanup_free_ char *out = NULL, *err = NULL, *log = NULL;
        uint8_t token_kid[32], enrolled_kid[32];
        char path[512];
        pid_t pid;

        up_hsm(NULL, NULL);
        /* the key devstack enrolled at the TAM (the agent's --print-key) is the token's */
        snprintf(path, sizeof(path), "%s/token-pub.pem", tmp);
        thumbprint_of_pem_file(path, token_kid);
        thumbprint_of_pem_file(stack_path(&stack, "tam/devices/device.pem"), enrolled_kid);
        cr_assert_arr_eq(enrolled_kid, token_kid, 32, "the enrolled device key is not the token's");

        /* the TAM verifies the QueryResponse and the Success signed in the token */
        cr_assert_eq(teepctl_as_app((const char *const[]){ "request", stack.demo_component, NULL }, &out, &err), 0,
                     "teepctl request: %s %s\nagent log:\n%s", out, err, (log = read_text(stack_path(&stack, "log/agent.log"))));
        free(log);
        log = read_text(stack_path(&stack, "log/agent.log"));
        cr_assert(strstr(log, "is in a PKCS#11 token"), "%s", log);
        cr_assert(strstr(log, "update (1 manifest(s), 0 unneeded) → success"), "%s", log);
        cr_assert_null(strstr(log, "Sanitizer"), "%s", log);
        cr_assert_neq(access(stack_path(&stack, "var/lib/teepkit/agent/device-key.pem"), F_OK), 0,
                      "the agent wrote a key file although KeyURI= is set");

        /* and it did so confined */
        pid = stack_bus_name_pid("org.teepkit.Agent1");
        cr_assert_gt(pid, 1);
        cr_assert(stack_proc_status_has(pid, "Seccomp:\t2"), "teep-agentd runs without its filter");
}

Test(hsm, a_components_tam_list_fails_over_past_a_dead_tam) {
        _cleanup_free_ char *out = NULL, *err = NULL, *alog = NULL, *blog = NULL;
        const char *dead = "http://127.0.0.1:1/tam"; /* nothing listens on port 1: refused at once */

        up_hsm("[TAM]\nURI=http://127.0.0.1:1/tam\n", NULL);
        cr_assert_eq(teepctl_as_app((const char *const[]){ "request", stack.demo_component, "--tam", dead, "--tam",
                                                           stack.tam_uri, NULL },
                                    &out, &err),
                     0, "teepctl request: %s %s", out, err);
        alog = read_text(stack_path(&stack, "log/agent.log"));
        blog = read_text(stack_path(&stack, "log/broker.log"));
        cr_assert(strstr(alog, "exchange with TAM http://127.0.0.1:1/tam failed"), "the dead TAM was not tried first:\n%s",
                  alog);
        cr_assert(strstr(alog, "→ success"), "%s\n%s", alog, blog);
}
