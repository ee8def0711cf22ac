/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conf.h: teepkit.conf and its drop-ins — systemd-style INI, read by every daemon and tool */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Syntax (documented for users in teepkit.conf(5)):
 *
 *   # comment            ; comment
 *   [Section]            a section; the same section may appear many times
 *   Key=Value            whitespace around key and value is dropped
 *
 * The main file is read first, then every *.conf in "<main>.d/" in lexical order, as if
 * appended. For single-valued keys the last assignment wins; list keys (teep_conf_get_list)
 * collect every assignment in order, and an empty assignment ("Key=") clears what came
 * before. A missing main file or drop-in directory is not an error (defaults apply); a file
 * that cannot be parsed is (-EBADMSG, with file:line in the error text).
 *
 * Repeated sections are kept apart: [TAM] twice gives two TAM records, walked with
 * teep_conf_sections().
 */

typedef struct TeepConf TeepConf;
typedef struct TeepConfSection TeepConfSection;

/* Limits: a config file is small and hand-written; anything bigger is a mistake or an attack. */
#define TEEP_CONF_MAX_FILE (256u * 1024u)
#define TEEP_CONF_MAX_LINE 4096u

/*
 * Load path and "<path>.d/ *.conf". errbuf (if non-NULL) receives "file:line: what" on failure.
 * Returns 0 or -errno.
 */
int teep_conf_load(const char *path, TeepConf **ret, char *errbuf, size_t errbuf_size);
/* Parse one buffer (for tests); name is used in error text. */
/* Format an error message into buf (nothing when buf is NULL or size 0): what every parser here
 * that reports into a caller's buffer uses. */
void teep_errfmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int teep_conf_load_string(const char *text, const char *name, TeepConf **ret, char *errbuf,
                          size_t errbuf_size);
TeepConf *teep_conf_free(TeepConf *c);

/* Iterate the sections called name, in file order: pass NULL to start. */
const TeepConfSection *teep_conf_sections(const TeepConf *c, const char *name, const TeepConfSection *prev);

/* Last value of key in section s (NULL if unset or cleared). */
const char *teep_conf_section_get(const TeepConfSection *s, const char *key);
/* All values of key in s, in order, since the last empty assignment. *ret is a borrowed
 * NULL-terminated array the caller frees (not the strings). Returns the count or -ENOMEM. */
int teep_conf_section_get_list(const TeepConfSection *s, const char *key, const char ***ret);
/* Where a key was set ("file:line"), for error messages; NULL if unset. */
const char *teep_conf_section_where(const TeepConfSection *s, const char *key);
/* Every section in file order, whatever its name: the count, the i-th (NULL when out of range)
 * and its name. */
size_t teep_conf_n_sections(const TeepConf *c);
const TeepConfSection *teep_conf_section_at(const TeepConf *c, size_t i);
const char *teep_conf_section_name(const TeepConfSection *s);
/* Where the section's [Header] line is ("file:line"), for error messages about the section. */
const char *teep_conf_section_header_where(const TeepConfSection *s);
/* The number of assignments in s, in file order (for readers that refuse unknown or repeated
 * keys). */
size_t teep_conf_section_n_entries(const TeepConfSection *s);
/* The i-th assignment of s: key, value ("" for an empty assignment) and "file:line" (each may
 * be NULL when not wanted). Returns 0, or -ERANGE when i is out of range. */
int teep_conf_section_entry(const TeepConfSection *s, size_t i, const char **ret_key, const char **ret_value,
                            const char **ret_where);

/* Convenience over every section called section (later sections win for single values,
 * lists are concatenated): */
const char *teep_conf_get(const TeepConf *c, const char *section, const char *key);
int teep_conf_get_list(const TeepConf *c, const char *section, const char *key, const char ***ret);

/* Typed getters over teep_conf_get(): return 0 and leave *ret untouched when unset, 1 when
 * set, -EINVAL (with a message in errbuf) when the value does not parse. */
int teep_conf_get_bool(const TeepConf *c, const char *section, const char *key, bool *ret,
                       char *errbuf, size_t errbuf_size);
/* Unsigned with an optional suffix: K, M, G (x1024) for sizes. */
int teep_conf_get_size(const TeepConf *c, const char *section, const char *key, uint64_t *ret,
                       char *errbuf, size_t errbuf_size);
/* Time span: plain seconds or a number with ms, s, min, h, d. Result in microseconds. */
int teep_conf_get_usec(const TeepConf *c, const char *section, const char *key, uint64_t *ret,
                       char *errbuf, size_t errbuf_size);

/* Log a warning ("file:line: unknown key [Section] Key=, ignored") for every key of every
 * section called section that is not in known (NULL-terminated). Returns how many. Unknown
 * keys never stop a daemon: a drop-in written for a newer release must not brick an older one. */
int teep_conf_warn_unknown(const TeepConf *c, const char *section, const char *const *known);

/* Helpers also used for command-line values. */
int teep_parse_bool(const char *s, bool *ret);
int teep_parse_size(const char *s, uint64_t *ret);
int teep_parse_usec(const char *s, uint64_t *ret);

#include "macro.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(TeepConf *, teep_conf_free);
