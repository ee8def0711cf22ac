/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-keys.c: a device key in a PKCS#11 token (SoftHSM2): the agent signs through the
 * token, never holds the private key, and refuses to start rather than fall back to a key file */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-test.h"
#include "conf.h"
#include "fileio.h"
#include "macro.h"

static Fixture fx;
static char module[300];
static char token_uri[512];

/* Debian's SoftHSM2 module (libsofthsm2), or the one SOFTHSM2_MODULE names. */
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

static int run(const char *cmd) {
        int st = system(cmd);
        return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

/* A fresh SoftHSM2 token "teepdev" (user PIN 1234) in the fixture's directory, with a P-256
 * key pair "device" made on the token by p11tool. */
static void make_token(void) {
        char path[512], cmd[2048];

        if (!find_module())
                cr_skip_test("SoftHSM2 is not installed (apt-get install softhsm2)");
        if (run("command -v softhsm2-util >/dev/null && command -v p11tool >/dev/null") != 0)
                cr_skip_test("softhsm2-util or p11tool (gnutls-bin) is missing");
        snprintf(path, sizeof(path), "%s/tokens", fx.dir);
        cr_assert_eq(mkdir(path, 0700), 0);
        snprintf(cmd, sizeof(cmd), "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", path);
        snprintf(path, sizeof(path), "%s/softhsm2.conf", fx.dir);
        write_text(path, cmd, 0600);
        cr_assert_eq(setenv("SOFTHSM2_CONF", path, 1), 0);
        cr_assert_eq(run("softhsm2-util --init-token --free --label teepdev --pin 1234 --so-pin 0000 >/dev/null"), 0);
        snprintf(cmd, sizeof(cmd),
                 "GNUTLS_PIN=1234 p11tool --provider %s --login --generate-privkey ecdsa --curve secp256r1 "
                 "--label device 'pkcs11:token=teepdev' >%s/device-pub.pem 2>/dev/null",
                 module, fx.dir);
        cr_assert_eq(run(cmd), 0, "p11tool could not make a key on the token");
        snprintf(token_uri, sizeof(token_uri), "pkcs11:token=teepdev;object=device;type=private");
        snprintf(path, sizeof(path), "%s/pin", fx.dir);
        write_text(path, "1234\n", 0600);
}

/* Point the agent at the token (uri, PinFile= when pin) and start it again. */
static int restart_with(const char *uri, bool pin_file, bool with_module) {
        char path[512];
        Agent *a = NULL;
        int r;

        free(fx.cfg.key_uri);
        free(fx.cfg.pin_file);
        free(fx.cfg.pkcs11_module);
        fx.cfg.key_uri = strdup(uri);
        snprintf(path, sizeof(path), "%s/pin", fx.dir);
        fx.cfg.pin_file = pin_file ? strdup(path) : NULL;
        fx.cfg.pkcs11_module = with_module ? strdup(module) : NULL;
        /* a new state directory: no device-key.pem from the file-key start */
        snprintf(fx.state_dir, sizeof(fx.state_dir), "%s/state-hsm", fx.dir);
        free(fx.cfg.state_dir);
        fx.cfg.state_dir = strdup(fx.state_dir);
        fx.agent = agent_free(fx.agent);
        r = agent_new(&a, &fx.cfg, NULL, NULL, NULL, NULL);
        cr_assert_eq(r, 0);
        r = agent_start(a);
        agent_free(a);
        return r;
}

static void setup(void) {
        fx_setup(&fx, TEEP_KEY_P256);
}

static void teardown(void) {
        fx_teardown(&fx);
}

TestSuite(keys, .init = setup, .fini = teardown, .timeout = 120);

static TeepKey *token_public_key(void) {
        _cleanup_free_ uint8_t *pem = NULL;
        char path[512];
        size_t len;
        TeepKey *k = NULL;

        snprintf(path, sizeof(path), "%s/device-pub.pem", fx.dir);
        cr_assert_eq(read_full_file(path, 1 << 16, &pem, &len), 0);
        cr_assert_eq(teep_key_from_pem(&k, pem, len, NULL), 0, "p11tool did not print a public key");
        return k;
}

Test(keys, the_agent_signs_with_the_token_key_end_to_end) {
        _cleanup_(teep_key_freep) TeepKey *tok = NULL;
        uint8_t want[32], got[32], kid[32];
        char path[512];

        make_token();
        tok = token_public_key();
        cr_assert_eq(restart_with(token_uri, true, true), 0);
        /* fx_restart: the fixture's own agent (fake store) with the same configuration */
        fx_restart(&fx);
        cr_assert_eq(teep_key_thumbprint(tok, want), 0);
        cr_assert_eq(teep_key_thumbprint(fx.device_pub, got), 0);
        cr_assert_arr_eq(got, want, 32, "the agent's public key is not the token's");
        cr_assert_eq(agent_get_device_key(fx.agent, NULL, NULL, NULL, kid), 0);
        cr_assert_arr_eq(kid, want, 32);

        /* every reply of a whole install is verified against the token's key by fx_process */
        fx_install(&fx, TEST_COMPONENT, 1, "hsm-signed");
        cr_assert(fx_store_has(&fx, TEST_COMPONENT, "hsm-signed"));

        /* the private key never touched the disk */
        snprintf(path, sizeof(path), "%s/device-key.pem", fx.state_dir);
        cr_assert_neq(access(path, F_OK), 0, "a device key file was written although KeyURI= is set");
}

Test(keys, pin_value_in_the_uri_and_p11kit_modules) {
        char uri[600];

        make_token();
        snprintf(uri, sizeof(uri), "%s;pin-value=1234", token_uri);
        cr_assert_eq(restart_with(uri, false, true), 0, "pin-value in the URI");
}

Test(keys, refusals_never_fall_back_to_a_key_file) {
        char path[512];

        make_token();
        /* (before any login succeeds: a PKCS#11 login holds for the whole process) */
        /* no PIN at all */
        cr_assert_lt(restart_with(token_uri, false, true), 0, "no PIN must fail the start");
        /* wrong PIN */
        snprintf(path, sizeof(path), "%s/pin", fx.dir);
        write_text(path, "9999\n", 0600);
        cr_assert_lt(restart_with(token_uri, true, true), 0, "a wrong PIN must fail the start");
        write_text(path, "1234\n", 0600);
        /* an object that is not on the token */
        cr_assert_lt(restart_with("pkcs11:token=teepdev;object=nosuchkey;type=private", true, true), 0);
        /* a token that does not exist */
        cr_assert_lt(restart_with("pkcs11:token=nosuchtoken;object=device;type=private", true, true), 0);
        snprintf(path, sizeof(path), "%s/device-key.pem", fx.state_dir);
        cr_assert_neq(access(path, F_OK), 0, "a refused token key must not make a key file");
}

Test(keys, a_module_that_does_not_load) {
        make_token();
        snprintf(module, sizeof(module), "%s/no-such-module.so", fx.dir);
        cr_assert_lt(restart_with(token_uri, true, true), 0);
}

/* ---- configuration ---- */

static int load_conf(const char *text, AgentConfig *c, char *errbuf, size_t n) {
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        char path[512];
        int r;

        snprintf(path, sizeof(path), "%s/test.conf", fx.dir);
        write_text(path, text, 0644);
        r = teep_conf_load(path, &conf, errbuf, n);
        cr_assert_eq(r, 0, "%s", errbuf);
        agent_config_init(c);
        return agent_config_load(c, conf, errbuf, n);
}

Test(keys, config_keys) {
        AgentConfig c;
        char err[512];

        cr_assert_eq(load_conf("[Agent]\nKeyURI=pkcs11:token=a;object=b\nPKCS11Module=/usr/lib/x.so\nPinFile=/etc/pin\n"
                               "[TAM]\nURI=http://a/tam\nSuite=ES256\nPolicyCheckInterval=30min\nManageAnyComponent=yes\n"
                               "[TAM]\nURI=http://b/tam\n",
                               &c, err, sizeof(err)),
                     0, "%s", err);
        cr_assert_str_eq(c.key_uri, "pkcs11:token=a;object=b");
        cr_assert_str_eq(c.pkcs11_module, "/usr/lib/x.so");
        cr_assert_str_eq(c.pin_file, "/etc/pin");
        cr_assert_eq(c.n_tams, 2);
        cr_assert_eq(c.tams[0].suite, -7);
        cr_assert_eq(c.tams[0].policy_check_interval_usec, UINT64_C(1800) * 1000000);
        cr_assert(c.tams[0].manage_any);
        cr_assert_eq(c.tams[1].suite, 0);
        cr_assert(!c.tams[1].manage_any);
        agent_config_done(&c);

        cr_assert_eq(load_conf("[Agent]\nKeyURI=/var/lib/key.pem\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "KeyURI"), "%s", err);
        agent_config_done(&c);
        cr_assert_eq(load_conf("[Agent]\nPinFile=pin.txt\n", &c, err, sizeof(err)), -EINVAL);
        agent_config_done(&c);
        cr_assert_eq(load_conf("[TAM]\nURI=http://a/tam\nSuite=RS256\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "Suite"), "%s", err);
        agent_config_done(&c);
        cr_assert_eq(load_conf("[TAM]\nURI=http://a/tam\nPolicyCheckInterval=soon\n", &c, err, sizeof(err)), -EINVAL);
        agent_config_done(&c);
        cr_assert_eq(load_conf("[TAM]\nURI=http://a/tam\nManageAnyComponent=perhaps\n", &c, err, sizeof(err)), -EINVAL);
        agent_config_done(&c);
}
