/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message.c: verify every incoming TEEP message, dispatch it, sign every answer */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-internal.h"
#include "log.h"
#include "macro.h"

int agent_sign_message(Agent *a, size_t tam, int64_t alg, const TeepMessage *m, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *payload = NULL;
        size_t len = 0;
        TeepBuf kid = agent_kid_for(a, tam);
        int r;

        r = teep_message_encode(m, &payload, &len);
        if (r < 0)
                return r;
        return teep_cose_sign1(a->device_key, alg, &kid, TEEP_BUF(payload, len), false, ret, ret_len);
}

int agent_add_supported_suites(Agent *a, TeepMessage *m) {
        return teep_message_add_cipher_suite(m, COSE_TAG_SIGN1, teep_key_default_alg(a->device_key));
}

int agent_take_refusal(Agent *a, const char **ret_msg) {
        int r = a->refusal_errno;

        a->refusal_errno = 0;
        a->refusal_hint = 0;
        if (ret_msg)
                *ret_msg = a->refusal_msg;
        return r;
}

/* The errno an Error stands for when its caller did not say (docs/errors.md, read backwards). */
static int errno_for_err_code(uint64_t code) {
        switch (code) {
        case TEEP_ERR_UNSUPPORTED_MSG_VERSION:
        case TEEP_ERR_UNSUPPORTED_CIPHER_SUITES:
        case TEEP_ERR_UNSUPPORTED_FRESHNESS_MECHANISMS:
                return -EOPNOTSUPP;
        case TEEP_ERR_TEMPORARY_ERROR:
                return -EAGAIN;
        default:
                return -EPROTO;
        }
}

int agent_build_error(Agent *a, size_t tam, int64_t alg, const TeepBuf *token, uint64_t code, const char *msg,
                      const TeepBuf *suit_reports, size_t n_suit_reports, uint8_t **ret, size_t *ret_len) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        char text[TEEP_MSG_MAX + 1];
        size_t n = 0;
        int r;

        a->refusal_errno = a->refusal_hint ?: errno_for_err_code(code);
        a->refusal_hint = 0;
        (void)snprintf(a->refusal_msg, sizeof(a->refusal_msg), "%s", msg ?: "");

        r = teep_message_new(&m, TEEP_TYPE_ERROR);
        if (r < 0)
                return r;
        if (token && token->len >= TEEP_TOKEN_MIN && token->len <= TEEP_TOKEN_MAX) {
                m->has_token = true;
                m->token = *token;
        }
        /* err-msg: printable ASCII only (it may quote what a peer sent), at most 128 bytes */
        for (const char *p = msg; p && *p && n < TEEP_MSG_MAX; p++)
                text[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        text[n] = '\0';
        if (n > 0) {
                m->has_err_msg = true;
                m->err_msg = TEEP_BUF(text, n);
        }
        m->has_err_code = true;
        m->err_code = code;
        switch (code) {
        case TEEP_ERR_UNSUPPORTED_CIPHER_SUITES:
                r = agent_add_supported_suites(a, m);
                break;
        case TEEP_ERR_UNSUPPORTED_MSG_VERSION:
                r = teep_message_add_uint(m, TEEP_LABEL_VERSIONS, 0);
                break;
        case TEEP_ERR_UNSUPPORTED_FRESHNESS_MECHANISMS:
                r = teep_message_add_uint(m, TEEP_LABEL_SUPPORTED_FRESHNESS_MECHANISMS, TEEP_FRESHNESS_NONCE);
                break;
        default:
                break;
        }
        for (size_t i = 0; i < n_suit_reports && r >= 0; i++)
                r = teep_message_add_buf(m, TEEP_LABEL_SUIT_REPORTS, suit_reports[i]);
        if (r < 0)
                return r;
        return agent_sign_message(a, tam, alg, m, ret, ret_len);
}

/* The TEEP err-code for a libteep errno (docs/errors.md). */
static uint64_t err_code_for(int r) {
        return teep_errno_mapping(r)->teep_err_code;
}

/*
 * Input we could not authenticate (malformed COSE, no key, bad signature). The draft says to
 * answer with an Error; but a signed answer to anyone's bytes is an oracle and costs a
 * signature, so such answers are rate-limited, carry nothing from the input (no token) and
 * say only what failed. Over the limit nothing is sent (-EKEYREJECTED to the broker).
 */
static int reply_unauthenticated(Agent *a, size_t tam, const char *tam_uri, int r, const char *what,
                                 const TeepError *err, uint8_t **ret, size_t *ret_len) {
        uint64_t now = agent_now_usec();
        uint64_t code = err_code_for(r);
        char msg[512];
        int k;

        if (now - a->unauth_window_usec > 60 * 1000000ULL) {
                a->unauth_window_usec = now;
                a->unauth_count = 0;
        }
        log_warning("TAM %s: %s: %s (%s); no state change", tam_uri ?: "?", what,
                    err && err->detail[0] ? err->detail : strerror(-r), teep_reason_to_string(err ? err->reason : 0));
        if (++a->unauth_count > AGENT_UNAUTH_ERRORS_PER_MINUTE) {
                log_warning("TAM %s: more than %d unauthenticated messages this minute: not answering", tam_uri ?: "?",
                            AGENT_UNAUTH_ERRORS_PER_MINUTE);
                return -EKEYREJECTED;
        }
        (void)snprintf(msg, sizeof(msg), "%s: %s", what, teep_reason_to_string(err ? err->reason : 0));
        a->refusal_hint = r;
        k = agent_build_error(a, tam, 0, NULL, code, msg, NULL, 0, ret, ret_len);
        return k < 0 ? k : 0;
}

int agent_process_message(Agent *a, const char *tam_uri, TeepBuf in, uint8_t **ret, size_t *ret_len) {
        _cleanup_(teep_message_freep) TeepMessage *m = NULL;
        _cleanup_(teep_key_freep) TeepKey *leaf = NULL;
        TeepKey *keys[AGENT_MAX_KEYS];
        TeepCoseMessage cose;
        TeepError err = {};
        size_t tam, n_keys, ki = 0, si = 0;
        int64_t alg;
        int r;

        *ret = NULL;
        *ret_len = 0;
        if (!a->started || !a->device_key)
                return -EAGAIN;
        tam = agent_find_tam(a, tam_uri);
        if (tam == SIZE_MAX && a->cfg.n_tams > 0) {
                log_warning("message from %s refused: not a configured TAM", tam_uri ?: "?");
                return -EPERM;
        }

        r = teep_cose_decode(in, &cose, &err);
        if (r < 0)
                return reply_unauthenticated(a, tam, tam_uri, r, "malformed COSE", &err, ret, ret_len);
        n_keys = agent_tam_keys(a, tam, keys, ELEMENTSOF(keys));
        if (cose.kind == TEEP_COSE_SIGN1 && cose.body.has_x5chain) {
                /* a certificate chain names the key: it must lead to a CA this TAM may use */
                r = agent_x5chain_leaf(a, tam, &cose.body, &leaf, &err);
                if (r < 0)
                        return reply_unauthenticated(a, tam, tam_uri, r, "certificate chain rejected", &err, ret, ret_len);
                keys[0] = leaf;
                n_keys = 1;
        }
        r = teep_cose_verify(&cose, NULL, keys, n_keys, &ki, &si, &err);
        if (r == -EOPNOTSUPP) {
                /* signed only with algorithms we do not know: tell which we do (Error 5) */
                log_warning("TAM %s: no signature with a supported algorithm (%s)", tam_uri ?: "?", err.detail);
                r = agent_build_error(a, tam, 0, NULL, TEEP_ERR_UNSUPPORTED_CIPHER_SUITES,
                                      "no signature with a supported algorithm", NULL, 0, ret, ret_len);
                return r < 0 ? r : 0;
        }
        if (r < 0)
                return reply_unauthenticated(a, tam, tam_uri, r, r == -ENOKEY ? "no trusted TAM key" : "signature check failed",
                                             &err, ret, ret_len);
        alg = cose.signers[si].headers.alg;

        r = teep_message_decode(cose.payload, &m, &err);
        if (r < 0) {
                char msg[512];
                log_warning("TAM %s: malformed TEEP message: %s (%s); no state change", tam_uri ?: "?", err.detail,
                            teep_reason_to_string(err.reason));
                (void)snprintf(msg, sizeof(msg), "malformed message: %s", teep_reason_to_string(err.reason));
                a->refusal_hint = r;
                r = agent_build_error(a, tam, 0, NULL, TEEP_ERR_PERMANENT_ERROR, msg, NULL, 0, ret, ret_len);
                return r < 0 ? r : 0;
        }

        switch (m->type) {
        case TEEP_TYPE_QUERY_REQUEST:
                return agent_handle_query_request(a, tam, tam_uri, m, alg, ret, ret_len);
        case TEEP_TYPE_UPDATE:
                return agent_handle_update(a, tam, tam_uri, m, alg, ret, ret_len);
        default:
                log_warning("TAM %s: %s: not a message a TAM sends to an agent; answered with ERR_PERMANENT_ERROR",
                            tam_uri ?: "?", teep_message_type_to_string(m->type) ?: "unknown type");
                r = agent_build_error(a, tam, 0, m->has_token ? &m->token : NULL, TEEP_ERR_PERMANENT_ERROR,
                                      "unexpected message type", NULL, 0, ret, ret_len);
                return r < 0 ? r : 0;
        }
}
