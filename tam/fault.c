/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fault.c: see fault.h */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "macro.h"

static const struct {
        const char *name;
        unsigned default_steps;
        bool takes_arg;
        uint64_t default_arg;
} faults[_TAM_FAULT_MAX] = {
        [TAM_FAULT_WRONG_SIGNATURE] = {"wrong-signature", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE, false,
                                       0},
        [TAM_FAULT_UNTRUSTED_KEY] = {"untrusted-key", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_WRONG_TOKEN] = {"wrong-token", TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_REPLAY_UPDATE] = {"replay-update", TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_ROLLBACK] = {"rollback", TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_DIGEST_MISMATCH] = {"digest-mismatch", TAM_STEP_UPDATE | TAM_STEP_PAYLOAD, false, 0},
        [TAM_FAULT_OVERSIZED_BODY] = {"oversized-body", TAM_STEP_QUERY_REQUEST, true,
                                      TAM_FAULT_OVERSIZED_DEFAULT},
        [TAM_FAULT_TRUNCATED_BODY] = {"truncated-body", TAM_STEP_QUERY_REQUEST, false, 0},
        [TAM_FAULT_TRUNCATED_CBOR] = {"truncated-cbor", TAM_STEP_QUERY_REQUEST, false, 0},
        [TAM_FAULT_SLOW] = {"slow", TAM_STEP_ALL, true, 5},
        [TAM_FAULT_HTTP_500] = {"http-500", TAM_STEP_QUERY_REQUEST, false, 0},
        [TAM_FAULT_UNKNOWN_CRITICAL] = {"unknown-critical-header", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE,
                                        false, 0},
        [TAM_FAULT_MISSING_SIGNATURE] = {"missing-signature", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE, false,
                                         0},
        [TAM_FAULT_WRONG_ROLE_KEY] = {"wrong-role-key", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_UNKNOWN_ALG] = {"unknown-alg", TAM_STEP_QUERY_REQUEST | TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_MISSING_TOKEN] = {"missing-token", TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_BAD_CHALLENGE] = {"bad-challenge", TAM_STEP_QUERY_REQUEST, true, 65},
        [TAM_FAULT_UNSUPPORTED_SUITE] = {"unsupported-suite", TAM_STEP_QUERY_REQUEST, false, 0},
        [TAM_FAULT_QUERY_LOOP] = {"query-loop", TAM_STEP_UPDATE, false, 0},
        [TAM_FAULT_HTTP_STATUS] = {"http-status", TAM_STEP_QUERY_REQUEST, true, 503},
        [TAM_FAULT_WRONG_CONTENT_TYPE] = {"wrong-content-type", TAM_STEP_QUERY_REQUEST, false, 0},
        [TAM_FAULT_NESTED_CBOR] = {"nested-cbor", TAM_STEP_QUERY_REQUEST, true, 10000},
        [TAM_FAULT_SLOW_LORIS] = {"slow-loris", TAM_STEP_QUERY_REQUEST, true, 1000},
};

static const struct {
        const char *name;
        TamStep step;
} steps[] = {
        {"query-request", TAM_STEP_QUERY_REQUEST},
        {"update", TAM_STEP_UPDATE},
        {"end", TAM_STEP_END},
        {"payload", TAM_STEP_PAYLOAD},
        {"all", TAM_STEP_ALL},
};

const char *tam_fault_to_string(TamFaultKind kind) {
        return kind < _TAM_FAULT_MAX ? faults[kind].name : NULL;
}

const char *tam_step_to_string(TamStep step) {
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                if (steps[i].step == step)
                        return steps[i].name;
        return NULL;
}

const char *tam_fault_names(void) {
        return "wrong-signature, untrusted-key, wrong-token, replay-update, rollback, digest-mismatch, "
               "oversized-body[:BYTES], truncated-body, truncated-cbor, slow[:SEC], http-500, "
               "unknown-critical-header, missing-signature, wrong-role-key (with --fault-key), unknown-alg, "
               "missing-token, bad-challenge[:BYTES], unsupported-suite, query-loop, http-status[:CODE], "
               "wrong-content-type, nested-cbor[:DEPTH], slow-loris[:MS]";
}

static int parse_steps(const char *s, unsigned *ret) {
        unsigned mask = 0;

        while (*s) {
                size_t n = strcspn(s, ",");
                bool found = false;

                for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                        if (strlen(steps[i].name) == n && strncmp(s, steps[i].name, n) == 0) {
                                mask |= steps[i].step;
                                found = true;
                        }
                if (!found)
                        return -EINVAL;
                s += n;
                if (*s == ',')
                        s++;
        }
        if (mask == 0)
                return -EINVAL;
        *ret = mask;
        return 0;
}

int tam_fault_parse(TamFaults *f, const char *spec, char *errbuf, size_t errbuf_size) {
        _cleanup_free_ char *copy = NULL;
        char *name, *arg, *at;
        unsigned mask;
        uint64_t value;

        if (!f || !spec)
                return -EINVAL;
        copy = strdup(spec);
        if (!copy)
                return -ENOMEM;
        name = copy;
        at = strchr(name, '@');
        if (at)
                *at++ = 0;
        arg = strchr(name, ':');
        if (arg)
                *arg++ = 0;

        for (size_t k = 0; k < _TAM_FAULT_MAX; k++) {
                if (strcmp(name, faults[k].name) != 0)
                        continue;
                mask = faults[k].default_steps;
                value = faults[k].default_arg;
                if (at && parse_steps(at, &mask) < 0) {
                        snprintf(errbuf, errbuf_size,
                                 "'%s': unknown step '%s' (query-request, update, end, payload, all)", spec,
                                 at);
                        return -EINVAL;
                }
                if (arg) {
                        char *end;
                        if (!faults[k].takes_arg) {
                                snprintf(errbuf, errbuf_size, "'%s': %s takes no argument", spec, name);
                                return -EINVAL;
                        }
                        errno = 0;
                        value = strtoull(arg, &end, 10);
                        if (errno != 0 || *end || end == arg || *arg == '-') {
                                snprintf(errbuf, errbuf_size, "'%s': '%s' is not a number", spec, arg);
                                return -EINVAL;
                        }
                }
                if (k == TAM_FAULT_SLOW && value > TAM_FAULT_SLOW_MAX_SEC) {
                        snprintf(errbuf, errbuf_size, "'%s': at most %u seconds", spec,
                                 TAM_FAULT_SLOW_MAX_SEC);
                        return -EINVAL;
                }
                if (k == TAM_FAULT_OVERSIZED_BODY && (value < 16 || value > TAM_FAULT_OVERSIZED_MAX)) {
                        snprintf(errbuf, errbuf_size, "'%s': between 16 bytes and 64 MiB", spec);
                        return -EINVAL;
                }
                if (k == TAM_FAULT_BAD_CHALLENGE && (value < 1 || value > TAM_FAULT_CHALLENGE_MAX)) {
                        snprintf(errbuf, errbuf_size, "'%s': between 1 and %u bytes", spec, TAM_FAULT_CHALLENGE_MAX);
                        return -EINVAL;
                }
                if (k == TAM_FAULT_HTTP_STATUS && (value < 200 || value > 599)) {
                        snprintf(errbuf, errbuf_size, "'%s': an HTTP status between 200 and 599", spec);
                        return -EINVAL;
                }
                if (k == TAM_FAULT_NESTED_CBOR && (value < 1 || value > TAM_FAULT_NESTED_MAX)) {
                        snprintf(errbuf, errbuf_size, "'%s': between 1 and %u levels", spec, TAM_FAULT_NESTED_MAX);
                        return -EINVAL;
                }
                if (k == TAM_FAULT_SLOW_LORIS && (value < 1 || value > TAM_FAULT_TRICKLE_MAX_MS)) {
                        snprintf(errbuf, errbuf_size, "'%s': between 1 and %u ms per byte", spec,
                                 TAM_FAULT_TRICKLE_MAX_MS);
                        return -EINVAL;
                }
                f->fault[k] = (TamFault){.enabled = true, .steps = mask, .arg = value};
                return 0;
        }
        snprintf(errbuf, errbuf_size, "unknown fault '%s' (known: %s)", name, tam_fault_names());
        return -EINVAL;
}
