/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.h: the drafts' names for labels, keys, commands and claims, for printing */
#pragma once

#include <stdint.h>

#include "teep-cbor.h"

/* Each returns the draft's name, or NULL when the number has none. */
const char *name_teep_label(int64_t label);
const char *name_teep_message_type(uint64_t type);
const char *name_cose_header(int64_t label);
const char *name_cose_alg(int64_t alg);
const char *name_cbor_tag(uint64_t tag);
const char *name_suit_envelope_key(int64_t key);
const char *name_suit_manifest_key(int64_t key);
const char *name_suit_common_key(int64_t key);
const char *name_suit_command(int64_t label);
const char *name_suit_parameter(int64_t label);
const char *name_eat_claim(int64_t key);

/*
 * The textual form (design.md) of the component identifier whose n segments the reader is
 * positioned at. Returns 0 and a malloc'd string, or -errno (e.g. a segment is not a bstr).
 */
int name_component_id(TeepCborReader r, size_t n, char **ret);
