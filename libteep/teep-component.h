/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-component.h: SUIT component identifiers and their one-to-one textual names */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teep-cbor.h"
#include "teep-errors.h"

/*
 * A SUIT_Component_Identifier is [* bstr]. We bound it like a path: at most 16 segments of at
 * most 255 bytes each (the installer maps segments to directory entries, NAME_MAX is 255).
 */
#define TEEP_COMPONENT_MAX_SEGMENTS    16
#define TEEP_COMPONENT_MAX_SEGMENT_LEN 255

/* A decoded component identifier: views into the buffer it was decoded from. */
typedef struct TeepSuitComponentId {
        size_t n_segments;
        TeepBuf segments[TEEP_COMPONENT_MAX_SEGMENTS];
        TeepBuf raw; /* the encoded array, as it appeared in the input */
} TeepSuitComponentId;

/*
 * Read one SUIT_Component_Identifier (an array of byte strings) from r into views.
 * An empty array is accepted (the CDDL allows it; it has no textual name).
 * Returns 0, -EBADMSG (TEEP_REASON_SUIT_COMPONENT or a CBOR reason) or -E2BIG (more than
 * TEEP_COMPONENT_MAX_SEGMENTS segments or a segment longer than TEEP_COMPONENT_MAX_SEGMENT_LEN).
 * ret is untouched on failure.
 */
int teep_suit_component_id_read(TeepCborReader *r, TeepSuitComponentId *ret, TeepError *err);

/* Decode a buffer that holds exactly one encoded SUIT_Component_Identifier. Same errors. */
int teep_suit_component_id_decode(TeepBuf in, TeepSuitComponentId *ret, TeepError *err);

/* Append the deterministic encoding of id to a writer (segments as definite byte strings). */
void teep_suit_component_id_put(TeepCborWriter *w, const TeepSuitComponentId *id);

/* Encode id into a fresh buffer (free() it). Returns 0, -EINVAL (too many segments) or -ENOMEM. */
int teep_suit_component_id_encode(const TeepSuitComponentId *id, uint8_t **ret, size_t *ret_len);

/* True if a and b have the same segments (independent of how each was encoded). */
bool teep_suit_component_id_equal(const TeepSuitComponentId *a, const TeepSuitComponentId *b);

/*
 * The textual name of a component identifier (docs/design.md, "Component names"): segments
 * joined by '/'. Each segment is written in exactly one way, tried in this order:
 *   - as is, if it is 1..255 bytes of [A-Za-z0-9._-], is not "." or "..", does not start
 *     with "0x" and does not have the shape of a lower-case canonical UUID;
 *   - as a lower-case canonical UUID (8-4-4-4-12), if it is 16 bytes;
 *   - otherwise "0x" followed by lower-case hex ("0x" alone is the empty segment).
 * So the ASCII text of a UUID and the 16 bytes of that UUID get different names.
 * It takes the segments as an array of views so that any representation of an identifier
 * (TeepSuitComponentId.segments, or another module's) can be named.
 * Returns 0 with a NUL-terminated string to free(), -EINVAL for an identifier with no segment,
 * more than TEEP_COMPONENT_MAX_SEGMENTS segments or a segment over
 * TEEP_COMPONENT_MAX_SEGMENT_LEN, -ENOMEM. ret is untouched on failure.
 */
int teep_suit_component_id_to_string(const TeepBuf *segments, size_t n_segments, char **ret);

/*
 * Parse a textual name back into an encoded SUIT_Component_Identifier (a CBOR array of byte
 * strings, returned in a fresh buffer). Strict: the name must be exactly what
 * teep_suit_component_id_to_string() prints for its identifier, so the mapping is one-to-one
 * ("0x6162" is refused because that segment is written "ab"; upper-case hex and "0X" likewise).
 * Refused with -EINVAL: the empty string, empty segments ("a//b", "x/"), "." and "..",
 * characters outside the alphabet, more than TEEP_COMPONENT_MAX_SEGMENTS segments, a segment
 * over TEEP_COMPONENT_MAX_SEGMENT_LEN bytes. -ENOMEM on allocation failure.
 * ret and ret_len are untouched on failure.
 */
int teep_suit_component_id_from_string(const char *s, uint8_t **ret, size_t *ret_len);
