/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.c: the drafts' names for labels, keys, commands and claims, for printing */

#include <stdlib.h>

#include "names.h"
#include "teep-component.h"
#include "teep-cose.h"
#include "teep-message.h"
#include "teep-suit.h"

typedef struct Name {
        int64_t n;
        const char *name;
} Name;

static const char *lookup(const Name *t, size_t len, int64_t n) {
        for (size_t i = 0; i < len; i++)
                if (t[i].n == n)
                        return t[i].name;
        return NULL;
}
#define LOOKUP(table, n) lookup(table, sizeof(table) / sizeof(table[0]), n)

const char *name_teep_label(int64_t label) {
        return label < 0 ? NULL : teep_label_to_string((uint64_t)label);
}

const char *name_teep_message_type(uint64_t type) {
        return teep_message_type_to_string((int)(type > 255 ? 255 : type));
}

const char *name_cose_alg(int64_t alg) {
        return teep_cose_alg_to_string(alg);
}

static const Name cose_headers[] = {
        { 1, "alg" }, { 2, "crit" }, { 3, "content type" }, { 4, "kid" },
        { 5, "IV" },  { 6, "Partial IV" }, { 33, "x5chain" }, { 34, "x5t" },
        { -1, "ephemeral key" },
};
const char *name_cose_header(int64_t label) {
        return LOOKUP(cose_headers, label);
}

static const Name cbor_tags[] = {
        { 16, "COSE_Encrypt0" }, { 17, "COSE_Mac0" }, { 18, "COSE_Sign1" }, { 24, "encoded CBOR" },
        { 61, "CWT" },           { 96, "COSE_Encrypt" }, { 98, "COSE_Sign" }, { 107, "SUIT_Envelope" },
        { 112, "IANA PEN" },
};
const char *name_cbor_tag(uint64_t tag) {
        return tag > INT64_MAX ? NULL : LOOKUP(cbor_tags, (int64_t)tag);
}

static const Name suit_envelope_keys[] = {
        { 2, "authentication-wrapper" }, { 3, "manifest" }, { 15, "dependency-resolution" },
        { 16, "payload-fetch" }, { 18, "candidate-verification" }, { 20, "install" }, { 23, "text" },
};
const char *name_suit_envelope_key(int64_t key) {
        return LOOKUP(suit_envelope_keys, key);
}

static const Name suit_manifest_keys[] = {
        { 1, "manifest-version" }, { 2, "manifest-sequence-number" }, { 3, "common" },
        { 4, "reference-uri" }, { 5, "manifest-component-id" }, { 7, "validate" }, { 8, "load" },
        { 9, "invoke" }, { 15, "dependency-resolution" }, { 16, "payload-fetch" },
        { 18, "candidate-verification" }, { 20, "install" }, { 23, "text" }, { 24, "uninstall" },
};
const char *name_suit_manifest_key(int64_t key) {
        return LOOKUP(suit_manifest_keys, key);
}

static const Name suit_common_keys[] = {
        { 1, "dependencies" }, { 2, "components" }, { 4, "shared-sequence" },
};
const char *name_suit_common_key(int64_t key) {
        return LOOKUP(suit_common_keys, key);
}

const char *name_suit_command(int64_t label) {
        return teep_suit_command_to_string(label);
}

static const Name suit_parameters[] = {
        { 1, "vendor-identifier" }, { 2, "class-identifier" }, { 3, "image-digest" },
        { 5, "component-slot" }, { 12, "strict-order" }, { 13, "soft-failure" }, { 14, "image-size" },
        { 18, "content" }, { 19, "encryption-info" }, { 21, "uri" }, { 22, "source-component" },
        { 23, "invoke-args" }, { 24, "device-identifier" }, { 25, "fetch-arguments" }, { 28, "version" },
};
const char *name_suit_parameter(int64_t label) {
        return LOOKUP(suit_parameters, label);
}

static const Name eat_claims[] = {
        { 1, "iss" }, { 2, "sub" }, { 4, "exp" }, { 6, "iat" }, { 8, "cnf" }, { 10, "eat_nonce" },
        { 256, "ueid" }, { 257, "sueids" }, { 258, "oemid" }, { 259, "hwmodel" }, { 260, "hwversion" },
        { 265, "eat_profile" }, { 270, "swname" }, { 271, "swversion" }, { 272, "manifests" },
        { 273, "measurements" },
};
const char *name_eat_claim(int64_t key) {
        return LOOKUP(eat_claims, key);
}

int name_component_id(TeepCborReader r, size_t n, char **ret) {
        TeepBuf segments[TEEP_COMPONENT_MAX_SEGMENTS];

        if (n == 0 || n > TEEP_COMPONENT_MAX_SEGMENTS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (teep_cbor_read_bytes(&r, &segments[i], NULL) < 0)
                        return -EBADMSG;
        return teep_suit_component_id_to_string(segments, n, ret);
}
