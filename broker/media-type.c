/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-type.c: see media-type.h */
#include "media-type.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

/* Labels TAMs in the wild put on TEEP messages (older drafts, tamproto, generic CBOR/COSE). */
static const char *const tolerated[] = {
        "application/teep+cose",
        "application/teep",
        "application/cbor",
        "application/cose",
        "application/octet-stream",
};

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

MediaTypeVerdict media_type_classify(const char *content_type) {
        const char *s, *e;
        size_t n;

        if (!content_type)
                return MEDIA_TYPE_TOLERATED;
        s = content_type;
        while (is_space(*s))
                s++;
        if (*s == '\0')
                return MEDIA_TYPE_TOLERATED;
        /* type/subtype ends at ';' (parameters) or trailing whitespace */
        for (e = s; *e && *e != ';'; e++)
                ;
        while (e > s && is_space(e[-1]))
                e--;
        n = (size_t)(e - s);

        if (n == sizeof(TEEP_MEDIA_TYPE) - 1 && strncasecmp(s, TEEP_MEDIA_TYPE, n) == 0)
                return MEDIA_TYPE_TEEP;
        for (size_t i = 0; i < ELEMENTSOF(tolerated); i++) {
                size_t l = strlen(tolerated[i]);
                if (n == l && strncasecmp(s, tolerated[i], n) == 0)
                        return MEDIA_TYPE_TOLERATED;
        }
        return MEDIA_TYPE_REFUSED;
}

const char *media_type_verdict_to_string(MediaTypeVerdict v) {
        switch (v) {
        case MEDIA_TYPE_TEEP:
                return "teep";
        case MEDIA_TYPE_TOLERATED:
                return "tolerated";
        case MEDIA_TYPE_REFUSED:
                return "refused";
        }
        return "?";
}
