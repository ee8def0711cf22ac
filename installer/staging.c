/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* staging.c: see staging.h */
#include "staging.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool staging_id_valid(const char *id) {
        size_t k;

        if (!id)
                return false;
        for (k = 0; k < STAGING_ID_LEN; k++)
                if (!((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f')))
                        return false; /* also stops at a NUL before STAGING_ID_LEN */
        return id[k] == '\0';
}

Staging *staging_find(StagingTable *t, const char *id) {
        if (!id)
                return NULL;
        for (size_t k = 0; k < t->n; k++)
                if (strcmp(t->entries[k].id, id) == 0)
                        return &t->entries[k];
        return NULL;
}

Staging *staging_find_file(StagingTable *t, dev_t dev, ino_t ino) {
        for (size_t k = 0; k < t->n; k++) {
                Staging *e = &t->entries[k];

                if (e->error == 0 && e->file.name[0] && e->file.dev == dev && e->file.ino == ino)
                        return e;
        }
        return NULL;
}

int staging_add(StagingTable *t, const char *id, uint64_t now_usec, Staging **ret) {
        Staging *e;

        if (!staging_id_valid(id))
                return -EINVAL;
        if (staging_find(t, id))
                return -EEXIST;
        if (t->n >= INSTALLER_MAX_STAGED)
                return -EBUSY;
        e = &t->entries[t->n++];
        *e = (Staging){.created_usec = now_usec};
        memcpy(e->id, id, STAGING_ID_LEN + 1);
        *ret = e;
        return 0;
}

int staging_set_error(Staging *e, int error, const char *name, const char *message) {
        char *copy = strdup(message ?: "");

        if (!copy)
                return -ENOMEM;
        free(e->error_message);
        e->error = error < 0 ? error : -EIO;
        e->error_name = name;
        e->error_message = copy;
        e->file = (StoreStaged){};
        return 0;
}

int staging_forget(StagingTable *t, Store *s, Staging *e) {
        size_t k = (size_t)(e - t->entries);
        int removed = 0;

        if (k >= t->n)
                return 0;
        if (e->error == 0 && e->file.name[0] && s)
                removed = store_unstage(s, &e->file) > 0;
        free(e->error_message);
        /* Order does not matter (16 entries, found by id): the last one fills the gap. */
        t->entries[k] = t->entries[t->n - 1];
        t->entries[--t->n] = (Staging){};
        return removed;
}

size_t staging_expire(StagingTable *t, Store *s, uint64_t now_usec, uint64_t ttl_usec) {
        size_t dropped = 0;

        for (size_t k = 0; k < t->n;) {
                if (t->entries[k].created_usec <= now_usec &&
                    now_usec - t->entries[k].created_usec >= ttl_usec) {
                        /* staging_forget() moves the last entry to k: look at k again */
                        (void)staging_forget(t, s, &t->entries[k]);
                        dropped++;
                } else
                        k++;
        }
        return dropped;
}

size_t staging_clear(StagingTable *t, Store *s) {
        size_t dropped = 0;

        while (t->n > 0) {
                (void)staging_forget(t, s, &t->entries[t->n - 1]);
                dropped++;
        }
        return dropped;
}

uint64_t staging_oldest(const StagingTable *t) {
        uint64_t oldest = UINT64_MAX;

        for (size_t k = 0; k < t->n; k++)
                if (t->entries[k].created_usec < oldest)
                        oldest = t->entries[k].created_usec;
        return oldest;
}
