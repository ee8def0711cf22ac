/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* names.c: see names.h */
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "teep-component.h"

static const char *const layout_names[_STORE_LAYOUT_MAX] = {
        [STORE_LAYOUT_DEFAULT] = "default",
        [STORE_LAYOUT_OPTEE] = "optee",
};

const char *store_layout_to_string(StoreLayout layout) {
        if ((unsigned)layout >= _STORE_LAYOUT_MAX)
                return NULL;
        return layout_names[layout];
}

int store_layout_from_string(const char *s, StoreLayout *ret) {
        if (!s)
                return -EINVAL;
        for (unsigned i = 0; i < _STORE_LAYOUT_MAX; i++)
                if (strcmp(s, layout_names[i]) == 0) {
                        *ret = (StoreLayout)i;
                        return 0;
                }
        return -EINVAL;
}

bool store_text_is_uuid(const char *s, size_t n) {
        if (n != STORE_UUID_STRING_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}

/*
 * Parse component through libteep and render it back: the store only ever sees names that
 * survive the round trip byte for byte, so two spellings of one identifier cannot become two
 * files. On success *ret holds the decoded identifier (views into *ret_encoded).
 */
static int component_parse(const char *component, uint8_t **ret_encoded, TeepSuitComponentId *ret) {
        _cleanup_free_ uint8_t *encoded = NULL;
        _cleanup_free_ char *again = NULL;
        TeepSuitComponentId id;
        TeepError err;
        size_t len;
        int r;

        if (!component)
                return -EINVAL;
        r = teep_suit_component_id_from_string(component, &encoded, &len);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        r = teep_suit_component_id_decode(TEEP_BUF(encoded, len), &id, &err);
        if (r < 0 || id.n_segments == 0)
                return -EINVAL;
        r = teep_suit_component_id_to_string(id.segments, id.n_segments, &again);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (strcmp(again, component) != 0)
                return -EINVAL;
        *ret_encoded = TAKE_PTR(encoded);
        *ret = id;
        return 0;
}

int store_component_validate(const char *component) {
        _cleanup_free_ uint8_t *encoded = NULL;
        TeepSuitComponentId id;

        return component_parse(component, &encoded, &id);
}

int store_name_from_component(const char *component, char **ret) {
        size_t n, extra;
        char *name;
        int r;

        r = store_component_validate(component);
        if (r < 0)
                return r;
        n = strlen(component);
        /* A leading '.' (a first segment such as ".profile") gets a '+' in front: no TC is a
         * dot-file, so none can be mistaken for the installer's ".teep-" files. */
        extra = component[0] == '.' ? 1 : 0;
        if (n + extra > STORE_FILE_NAME_MAX)
                return -ENAMETOOLONG;
        name = malloc(n + extra + 1);
        if (!name)
                return -ENOMEM;
        if (extra)
                name[0] = '+';
        for (size_t i = 0; i < n; i++)
                name[extra + i] = component[i] == '/' ? '+' : component[i];
        name[n + extra] = '\0';
        *ret = name;
        return 0;
}

int store_component_from_name(const char *name, char **ret) {
        _cleanup_free_ char *component = NULL, *again = NULL;
        const char *orig = name;
        size_t n;
        int r;

        if (!name || !*name)
                return -EINVAL;
        if (name[0] == '+') {
                /* Only a name whose component starts with '.' begins with '+'. */
                if (name[1] != '.')
                        return -EINVAL;
                name++;
        } else if (name[0] == '.')
                return -EINVAL;
        n = strlen(name);
        if (n > STORE_FILE_NAME_MAX)
                return -EINVAL;
        component = strdup(name);
        if (!component)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (component[i] == '/')
                        return -EINVAL;
                if (component[i] == '+')
                        component[i] = '/';
        }
        /* Strict: the forward mapping must give back exactly the name we started from. */
        r = store_name_from_component(component, &again);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || strcmp(again, orig) != 0)
                return -EINVAL;
        *ret = TAKE_PTR(component);
        return 0;
}

int store_optee_uuid_from_component(const char *component, char ret[STORE_UUID_STRING_LEN + 1]) {
        _cleanup_free_ uint8_t *encoded = NULL;
        TeepSuitComponentId id;
        const char *found = NULL;
        size_t n_found = 0;
        int r;

        r = component_parse(component, &encoded, &id);
        if (r < 0)
                return r;
        /* Walk the (already validated) text: a segment written as a canonical UUID is exactly a
         * 16-byte segment that is not plain text (teep_suit_component_id_to_string()). */
        for (const char *p = component;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (store_text_is_uuid(p, len)) {
                        found = p;
                        n_found++;
                }
                if (!slash)
                        break;
                p = slash + 1;
        }
        if (n_found != 1)
                return -EINVAL;
        memcpy(ret, found, STORE_UUID_STRING_LEN);
        ret[STORE_UUID_STRING_LEN] = '\0';
        return 0;
}
