/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-agent-config.c: [Agent]/[TAM] parsing, per-TAM trust anchors and kids */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "agent-test.h"
#include "conf.h"
#include "config.h"
#include "macro.h"

static int load(const char *text, AgentConfig *c, char *err, size_t n) {
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        char perr[256];

        agent_config_init(c);
        cr_assert_eq(teep_conf_load_string(text, "test.conf", &conf, perr, sizeof(perr)), 0, "%s", perr);
        return agent_config_load(c, conf, err, n);
}

Test(config, full) {
        AgentConfig c;
        char err[256];

        cr_assert_eq(load("[Agent]\nStateDirectory=/s\nTrustAnchorDirectory=/t\nSignerDirectory=/g\nKeyType=Ed25519\n"
                          "BrokerUser=1234\nVendorId=c0ddd5f1-5243-5660-87db-4f5b0aa26c2f\n"
                          "ClassId=db42f7093d8c55baa8c5265fc5820f4e 11111111-2222-3333-4444-555555555555\n"
                          "MaxPayloadSize=2M\nPayloadTimeoutSec=2h\nHWModel=board\nIdleTimeoutSec=5min\n"
                          "[TAM]\nURI=https://tam1.test/tam\nKid=0a0b0c\nTrustAnchor=a.pem b.pem\n"
                          "[TAM]\nURI=https://tam2.test/tam\nKid=thumbprint\n",
                          &c, err, sizeof(err)),
                     0, "%s", err);
        cr_assert_str_eq(c.state_dir, "/s");
        cr_assert_str_eq(c.trust_anchor_dir, "/t");
        cr_assert_str_eq(c.signer_dir, "/g");
        cr_assert_eq(c.key_type, TEEP_KEY_ED25519);
        cr_assert_str_eq(c.broker_user, "1234");
        cr_assert_eq(c.n_vendor_ids, 1);
        cr_assert_eq(memcmp(c.vendor_ids[0], test_vendor_id, 16), 0);
        cr_assert_eq(c.n_class_ids, 2);
        cr_assert_eq(memcmp(c.class_ids[0], test_class_id, 16), 0);
        cr_assert_eq(c.max_payload_size, 2 * 1024 * 1024);
        cr_assert_eq(c.payload_timeout_usec, UINT64_C(7200) * 1000000);
        cr_assert_eq(c.idle_timeout_usec, UINT64_C(300) * 1000000);
        cr_assert_eq(c.n_tams, 2);
        cr_assert_str_eq(c.tams[0].uri, "https://tam1.test/tam");
        cr_assert(c.tams[0].has_kid && c.tams[0].kid_len == 3 && c.tams[0].kid[2] == 0x0c);
        cr_assert_str_eq(c.tams[0].trust_anchors[0], "a.pem");
        cr_assert_str_eq(c.tams[0].trust_anchors[1], "b.pem");
        cr_assert_null(c.tams[0].trust_anchors[2]);
        cr_assert(!c.tams[1].has_kid);
        cr_assert_null(c.tams[1].trust_anchors);
        agent_config_done(&c);
}

Test(config, defaults) {
        AgentConfig c;
        char err[256];

        cr_assert_eq(load("", &c, err, sizeof(err)), 0);
        cr_assert_str_eq(c.state_dir, TEEP_STATEDIR "/agent");
        cr_assert_str_eq(c.broker_user, "teep-broker");
        cr_assert_eq(c.key_type, TEEP_KEY_P256);
        cr_assert_eq(c.max_payload_size, AGENT_DEFAULT_MAX_PAYLOAD);
        cr_assert_eq(c.payload_timeout_usec, AGENT_DEFAULT_PAYLOAD_TIMEOUT_USEC);
        cr_assert_eq(c.payload_stall_usec, AGENT_DEFAULT_PAYLOAD_STALL_USEC);
        cr_assert_eq(c.idle_timeout_usec, UINT64_C(120) * 1000000, "the documented default");
        cr_assert_eq(c.n_tams, 0);
        agent_config_done(&c);
}

Test(config, refusals) {
        static const char *const bad[] = {
                "[Agent]\nKeyType=RSA\n",
                "[Agent]\nVendorId=not-a-uuid\n",
                "[Agent]\nMaxPayloadSize=lots\n",
                "[Agent]\nPayloadTimeoutSec=0\n",
                "[Agent]\nPayloadTimeoutSec=later\n",
                "[Agent]\nIdleTimeoutSec=soon\n",
                "[Agent]\nHWModel=0123456789012345678901234567890123456789\n",
                "[TAM]\nKid=00\n",
                "[TAM]\nURI=https://a.test/ has space\n",
                "[TAM]\nURI=https://a.test/\nKid=xyz\n",
                "[TAM]\nURI=https://a.test/\nTrustAnchor=../etc/key.pem\n",
                "[TAM]\nURI=https://a.test/\n[TAM]\nURI=https://a.test/\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                AgentConfig c;
                char err[256] = "";
                cr_assert_lt(load(bad[i], &c, err, sizeof(err)), 0, "accepted: %s", bad[i]);
                agent_config_done(&c);
        }
}

/* ---- per-TAM trust and kid, on a running core ---- */

static Fixture F;

static void setup(void) {
        fx_setup(&F, TEEP_KEY_P256);
}

static void teardown(void) {
        fx_teardown(&F);
}

Test(tam_trust, trust_anchor_list_restricts_keys, .init = setup, .fini = teardown) {
        _cleanup_free_ uint8_t *q = NULL, *raw = NULL;
        _cleanup_(teep_message_freep) TeepMessage *ans = NULL;
        const uint8_t token[16] = "restricted-token";
        char path[400];
        size_t len;

        /* this TAM may sign only with other.pem: the key in tam.pem is refused */
        snprintf(path, sizeof(path), "%s/other.pem", F.anchors);
        fx_write_pem(path, F.other_key);
        F.cfg.tams[0].trust_anchors = calloc(2, sizeof(char *));
        F.cfg.tams[0].trust_anchors[0] = strdup("other.pem");
        fx_restart(&F);
        q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        ans = fx_process(&F, q, len, &raw);
        expect_error(ans, TEEP_ERR_PERMANENT_ERROR, NULL);
        free(q);
        q = tam_query_request(F.other_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        free(raw);
        raw = NULL;
        teep_message_free(ans);
        ans = fx_process(&F, q, len, &raw);
        cr_assert_eq(ans->type, TEEP_TYPE_QUERY_RESPONSE);
}

Test(tam_trust, configured_kid, .init = setup, .fini = teardown) {
        _cleanup_free_ uint8_t *q = NULL, *out = NULL;
        const uint8_t token[16] = "kid-token-kid-to";
        uint8_t thumb[32];
        TeepCoseMessage cose;
        size_t len, out_len = 0;

        cr_assert_eq(agent_get_device_key(F.agent, NULL, NULL, NULL, thumb), 0);
        q = tam_query_request(F.tam_key, token, 16, NULL, 0, TEEP_DATA_TRUSTED_COMPONENTS, NULL, 0, &len);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(q, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert(cose.body.has_kid && teep_buf_eq(cose.body.kid, TEEP_BUF(thumb, 32)), "default kid: the thumbprint");
        free(out);
        out = NULL;

        F.cfg.tams[0].has_kid = true;
        F.cfg.tams[0].kid = (uint8_t *)strdup("enrolled-kid");
        F.cfg.tams[0].kid_len = 12;
        fx_restart(&F);
        cr_assert_eq(agent_process_message(F.agent, TEST_TAM_URI, TEEP_BUF(q, len), &out, &out_len), 0);
        cr_assert_eq(teep_cose_decode(TEEP_BUF(out, out_len), &cose, NULL), 0);
        cr_assert(cose.body.has_kid && teep_buf_eq(cose.body.kid, TEEP_BUF("enrolled-kid", 12)));
}
