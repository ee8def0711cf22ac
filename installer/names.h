/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.h: component identifiers <-> file names in the Trusted Component store */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Two layouts (teep-installer(8), "FILE NAMES"):
 *
 * default  The file name is the component's textual name (docs/design.md, "Component names")
 *          with every '/' written as '+'; a name that would start with '.' gets one more '+'
 *          in front. The textual alphabet is [A-Za-z0-9._-] and '/', so '+' never occurs in
 *          it and the mapping is one-to-one and reversible; no file name contains '/', a
 *          control byte, or is "." or "..", and none starts with '.' (those are the
 *          installer's own files). Names over NAME_MAX (255 bytes) are refused.
 *
 * optee    The file name is "<uuid>.ta" (lower-case canonical UUID) where <uuid> is the one
 *          segment of the component that is written as a UUID (16 bytes that are not plain
 *          text). No such segment, or more than one, is refused. Several components could
 *          name the same UUID, so the owner is recorded in ".teep-owner-<uuid>" (store.c).
 */
typedef enum StoreLayout {
        STORE_LAYOUT_DEFAULT,
        STORE_LAYOUT_OPTEE,
        _STORE_LAYOUT_MAX,
} StoreLayout;

#define STORE_UUID_STRING_LEN 36
#define STORE_FILE_NAME_MAX   255 /* NAME_MAX */

/* Prefix of every file the installer keeps for itself (never a TC file name). */
#define STORE_PRIVATE_PREFIX ".teep-"

const char *store_layout_to_string(StoreLayout layout);
/* "default" or "optee". Returns 0 or -EINVAL. */
int store_layout_from_string(const char *s, StoreLayout *ret);

/*
 * Check that component is a textual component name exactly as teep_suit_component_id_to_string()
 * prints it. Returns 0, -EINVAL (not a component name) or -ENOMEM.
 */
int store_component_validate(const char *component);

/*
 * Default layout: the file name for a component. Returns 0 with a string to free(),
 * -EINVAL (not a valid component name), -ENAMETOOLONG (its file name would exceed
 * STORE_FILE_NAME_MAX) or -ENOMEM. ret is untouched on failure.
 */
int store_name_from_component(const char *component, char **ret);

/*
 * Default layout, the other way: the component a file name stands for. Strict: only names that
 * store_name_from_component() produces are accepted, anything else is -EINVAL (a stray file,
 * one of the installer's own ".teep-" files). Returns 0 with a string to free(), -EINVAL or
 * -ENOMEM.
 */
int store_component_from_name(const char *name, char **ret);

/*
 * OP-TEE layout: the TA UUID of a component, as a lower-case canonical string in ret
 * (STORE_UUID_STRING_LEN + 1 bytes). Returns 0, -EINVAL (not a valid component name, or not
 * exactly one UUID segment) or -ENOMEM.
 */
int store_optee_uuid_from_component(const char *component, char ret[STORE_UUID_STRING_LEN + 1]);

/* Whether s (of length n) is a lower-case canonical UUID: 8-4-4-4-12 hex digits. */
bool store_text_is_uuid(const char *s, size_t n);
