/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teepctl.h: the verbs teepctl dispatches to */
#pragma once

/* Exit codes (teepctl(1)): 0 ok, 1 failure, 64 usage, 65 malformed input, 66 unreadable input,
 * 69 unsupported, 77 a signature did not verify; the errno table in libteep maps the rest. */
enum {
        EXIT_USAGE = 64,
        EXIT_DATAERR = 65,
        EXIT_NOINPUT = 66,
        EXIT_TRUST = 77,
};

int verb_inspect(int argc, char **argv);
