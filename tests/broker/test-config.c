/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-config.c: the [Broker] keys of teepkit.conf */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "broker-config.h"

static int load(const char *text, BrokerConfig *c, char *err, size_t n) {
        TeepConf *conf = NULL;
        int r;

        cr_assert_eq(teep_conf_load_string(text, "test.conf", &conf, err, n), 0, "%s", err);
        r = broker_config_load(c, conf, err, n);
        teep_conf_free(conf);
        return r;
}

Test(broker_config, defaults) {
        BrokerConfig c;
        char err[256] = "";

        cr_assert_eq(load("", &c, err, sizeof(err)), 0);
        cr_assert_str_eq(c.agent_user, "teep-agent");
        cr_assert_eq(c.connect_timeout_usec, 10ull * 1000000);
        cr_assert_eq(c.timeout_usec, 60ull * 1000000);
        cr_assert_eq(c.payload_timeout_usec, 600ull * 1000000);
        cr_assert_eq(c.max_message_size, 1ull << 20);
        cr_assert_eq(c.max_payload_size, 64ull << 20);
        cr_assert_eq(c.policy_check_interval_usec, 3600ull * 1000000);
        cr_assert_null(c.ca_file);
        cr_assert_eq(c.n_tam_uris, 0);
        broker_config_done(&c);
}

Test(broker_config, values_and_tams) {
        BrokerConfig c;
        char err[256] = "";

        cr_assert_eq(load("[Broker]\nAgentUser=agent7\nConnectTimeoutSec=2s\nTimeoutSec=1min\nPayloadTimeoutSec=2h\n"
                          "CAFile=/etc/ssl/tam.pem\nMaxMessageSize=64K\nMaxPayloadSize=2M\nPolicyCheckInterval=30min\n"
                          "[TAM]\nURI=https://a.example/tam\n[TAM]\nURI=http://b.example/tam\n",
                          &c, err, sizeof(err)),
                     0, "%s", err);
        cr_assert_str_eq(c.agent_user, "agent7");
        cr_assert_eq(c.connect_timeout_usec, 2000000);
        cr_assert_eq(c.timeout_usec, 60000000);
        cr_assert_eq(c.payload_timeout_usec, 7200ull * 1000000);
        cr_assert_str_eq(c.ca_file, "/etc/ssl/tam.pem");
        cr_assert_eq(c.max_message_size, 64 * 1024);
        cr_assert_eq(c.max_payload_size, 2 * 1024 * 1024);
        cr_assert_eq(c.policy_check_interval_usec, 1800ull * 1000000);
        cr_assert_eq(c.n_tam_uris, 2);
        cr_assert_str_eq(c.tam_uris[0], "https://a.example/tam");
        cr_assert_str_eq(c.tam_uris[1], "http://b.example/tam");
        broker_config_done(&c);
}

Test(broker_config, bad_values_name_the_line) {
        BrokerConfig c;
        char err[256] = "";

        cr_assert_eq(load("[Broker]\nTimeoutSec=soon\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "test.conf:2"), "%s", err);

        err[0] = '\0';
        cr_assert_eq(load("[Broker]\n\nMaxMessageSize=0\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "test.conf:3"), "%s", err);
        cr_assert(strstr(err, "MaxMessageSize"), "%s", err);

        cr_assert_eq(load("[Broker]\nMaxPayloadSize=8G\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert_eq(load("[Broker]\nConnectTimeoutSec=0\n", &c, err, sizeof(err)), -EINVAL);
        cr_assert_eq(load("[Broker]\nPayloadTimeoutSec=0\n", &c, err, sizeof(err)), -EINVAL);
}

Test(broker_config, empty_assignment_keeps_the_default) {
        BrokerConfig c;
        char err[256] = "";

        cr_assert_eq(load("[Broker]\nAgentUser=x\nAgentUser=\nCAFile=\n", &c, err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(c.agent_user, "teep-agent");
        cr_assert_null(c.ca_file);
        broker_config_done(&c);
}

Test(broker_config, copy_is_deep) {
        BrokerConfig c, d;
        char err[256] = "";

        cr_assert_eq(load("[Broker]\nCAFile=/x.pem\n[TAM]\nURI=http://a/\n[TAM]\nURI=http://b/\n", &c, err, sizeof(err)), 0);
        cr_assert_eq(broker_config_copy(&d, &c), 0);
        cr_assert_neq(d.ca_file, c.ca_file);
        cr_assert_neq(d.agent_user, c.agent_user);
        broker_config_done(&c);
        cr_assert_str_eq(d.ca_file, "/x.pem");
        cr_assert_str_eq(d.agent_user, "teep-agent");
        cr_assert_eq(d.n_tam_uris, 2);
        cr_assert_str_eq(d.tam_uris[1], "http://b/");
        broker_config_done(&d);
}
