/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* list.h: an intrusive doubly-linked list (a few lines after systemd's LIST_* idiom) */
#pragma once

#include <stddef.h>

/* Embed LIST_FIELDS(Type, name) in Type; keep a `Type *head` wherever the list lives. */
#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                __typeof__(*(head)) **_head = &(head), *_item = (item); \
                _item->name##_prev = NULL;                              \
                _item->name##_next = *_head;                            \
                if (*_head)                                             \
                        (*_head)->name##_prev = _item;                  \
                *_head = _item;                                         \
        } while (0)

/* Append in O(n): our lists are short (jobs of one session, sessions of one broker). */
#define LIST_APPEND(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_head = &(head), *_item = (item), *_tail; \
                _item->name##_next = NULL;                              \
                if (!*_head) {                                          \
                        _item->name##_prev = NULL;                      \
                        *_head = _item;                                 \
                        break;                                          \
                }                                                       \
                for (_tail = *_head; _tail->name##_next; _tail = _tail->name##_next) \
                        ;                                               \
                _tail->name##_next = _item;                             \
                _item->name##_prev = _tail;                             \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_head = &(head), *_item = (item); \
                if (_item->name##_next)                                 \
                        _item->name##_next->name##_prev = _item->name##_prev; \
                if (_item->name##_prev)                                 \
                        _item->name##_prev->name##_next = _item->name##_next; \
                else if (*_head == _item)                               \
                        *_head = _item->name##_next;                    \
                _item->name##_next = _item->name##_prev = NULL;         \
        } while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* Safe against removal of i inside the loop. */
#define LIST_FOREACH_SAFE(name, i, n, head) \
        for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
