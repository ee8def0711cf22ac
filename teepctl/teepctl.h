/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teepctl.h: the verbs teepctl dispatches to, and its exit codes (teepctl(1)) */
#pragma once

/*
 * Exit codes of the verbs that talk to the broker: 0 ok, 1 failure, 2 nothing to do,
 * 3 not found, 4 access denied (fwupdmgr's set plus 4), 64 usage.
 * `inspect` keeps its own: 0 ok, 64 usage, 65 malformed input, 66 unreadable input,
 * 69 unsupported, 77 a signature did not verify (the errno table in libteep maps the rest).
 */
enum {
        EXIT_NOTHING_TO_DO = 2,
        EXIT_NOT_FOUND = 3,
        EXIT_ACCESS_DENIED = 4,
        EXIT_USAGE = 64,
        EXIT_DATAERR = 65,
        EXIT_NOINPUT = 66,
        EXIT_TRUST = 77,
};

int verb_inspect(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_list(int argc, char **argv);
int verb_request(int argc, char **argv);
int verb_unrequest(int argc, char **argv);
int verb_policy_check(int argc, char **argv);
int verb_monitor(int argc, char **argv);
int verb_agent_key(int argc, char **argv);
int verb_sync(int argc, char **argv);
