/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* report.c: SUIT reports (draft-ietf-suit-report-18) for Success and Error */
#include <errno.h>

#include "agent-internal.h"
#include "teep-suit.h"

/*
 * SUIT_Report = {
 *   99: [manifest-uri: tstr, manifest-digest: [-16, bstr]],
 *   ? 2: nonce (the Update's token),
 *   3: [* system-property-claims],     ; the installed component: {0: id, 3: digest, 14: size}
 *   4: true / {5: result-code, 6: SUIT_Record, 7: reason}
 * }
 * SUIT_Record = [manifest-id [], section, offset, component-index, properties {}]
 *
 * The report goes unprotected (SUIT_Report_Unprotected): it travels inside the TEEP Success or
 * Error, which the device key signs, and the draft wants a report key different from the
 * TEEP key, which the device does not have.
 */

const char *agent_suit_reason_to_string(int reason) {
        static const char *const names[] = {
                [SUIT_REPORT_REASON_OK] = "ok",
                [SUIT_REPORT_REASON_CBOR_PARSE] = "cbor-parse",
                [SUIT_REPORT_REASON_COSE_UNSUPPORTED] = "cose-unsupported",
                [SUIT_REPORT_REASON_ALG_UNSUPPORTED] = "alg-unsupported",
                [SUIT_REPORT_REASON_UNAUTHORISED] = "unauthorised",
                [SUIT_REPORT_REASON_COMMAND_UNSUPPORTED] = "command-unsupported",
                [SUIT_REPORT_REASON_COMPONENT_UNSUPPORTED] = "component-unsupported",
                [SUIT_REPORT_REASON_COMPONENT_UNAUTHORISED] = "component-unauthorised",
                [SUIT_REPORT_REASON_PARAMETER_UNSUPPORTED] = "parameter-unsupported",
                [SUIT_REPORT_REASON_SEVERING_UNSUPPORTED] = "severing-unsupported",
                [SUIT_REPORT_REASON_CONDITION_FAILED] = "condition-failed",
                [SUIT_REPORT_REASON_OPERATION_FAILED] = "operation-failed",
                [SUIT_REPORT_REASON_INVOKE_PENDING] = "invoke-pending",
        };
        if (reason < 0 || (size_t)reason >= sizeof(names) / sizeof(names[0]) || !names[reason])
                return "unknown";
        return names[reason];
}

static void put_digest(TeepCborWriter *w, const uint8_t sha[32]) {
        teep_cbor_put_array(w, 2);
        teep_cbor_put_int(w, COSE_ALG_SHA256);
        teep_cbor_put_bytes(w, sha, 32);
}

int agent_suit_report_encode(const AgentSuitReport *r, uint8_t **ret, size_t *ret_len) {
        static const uint8_t zero[32];
        TeepCborWriter w;
        bool has_record = r->component_id_raw.len > 0;

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, 3 + (r->nonce != NULL));
        /* ascending keys: 2, 3, 4, 99 */
        if (r->nonce) {
                teep_cbor_put_uint(&w, SUIT_REPORT_NONCE);
                teep_cbor_put_buf(&w, *r->nonce);
        }
        teep_cbor_put_uint(&w, SUIT_REPORT_RECORDS);
        teep_cbor_put_array(&w, has_record);
        if (has_record) {
                teep_cbor_put_map(&w, r->has_image ? 3 : 1);
                teep_cbor_put_uint(&w, 0); /* system-component-id */
                teep_cbor_put_raw(&w, r->component_id_raw);
                if (r->has_image) {
                        teep_cbor_put_uint(&w, SUIT_PARAM_IMAGE_DIGEST);
                        teep_cbor_put_bytes_head(&w, 36);
                        put_digest(&w, r->image_sha256);
                        teep_cbor_put_uint(&w, SUIT_PARAM_IMAGE_SIZE);
                        teep_cbor_put_uint(&w, r->image_size);
                }
        }
        teep_cbor_put_uint(&w, SUIT_REPORT_RESULT);
        if (r->ok)
                teep_cbor_put_bool(&w, true);
        else {
                teep_cbor_put_map(&w, 3);
                teep_cbor_put_uint(&w, SUIT_REPORT_RESULT_CODE);
                teep_cbor_put_int(&w, r->result_code);
                teep_cbor_put_uint(&w, SUIT_REPORT_RESULT_RECORD);
                teep_cbor_put_array(&w, 5);
                teep_cbor_put_array(&w, 0);             /* manifest-id: the root manifest */
                teep_cbor_put_int(&w, r->section);
                teep_cbor_put_uint(&w, r->offset);
                teep_cbor_put_uint(&w, r->component_index);
                teep_cbor_put_map(&w, 0);
                teep_cbor_put_uint(&w, SUIT_REPORT_RESULT_REASON);
                teep_cbor_put_uint(&w, (uint64_t)r->reason);
        }
        teep_cbor_put_uint(&w, SUIT_REPORT_REFERENCE);
        teep_cbor_put_array(&w, 2);
        teep_cbor_put_cstr(&w, r->manifest_uri ?: "");
        put_digest(&w, r->has_digest ? r->manifest_digest : zero);
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
