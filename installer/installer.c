/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* installer.c: teep-installer — org.teepkit.Installer1, the only writer of the TC store */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "bus-util.h"
#include "conf.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "sandbox.h"
#include "staging.h"
#include "store.h"

#define EXIT_USAGE 64
#define DEFAULT_IDLE_USEC (UINT64_C(30) * 1000000u)
/* How long a new instance waits for an exiting one to let go of the store. */
#define STORE_LOCK_TIMEOUT_MS 20000u

/* What the command line set wins over the configuration file. */
typedef struct Settings {
        const char *config;
        char *store_dir;
        StoreLayout layout;
        char *agent_user;
        uint64_t idle_usec;
        bool layout_set, idle_set; /* by the command line */
        bool sandbox_self_test;    /* hidden --sandbox-self-test */
} Settings;

typedef struct Installer {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *slot;
        sd_event_source *idle;
        sd_event_source *bus_drain; /* bus_attach_event() */
        sd_event_source *stage_expiry; /* the oldest staged entry's INSTALLER_STAGE_TTL_USEC */
        sd_bus_slot *agent_watch;      /* NameOwnerChanged of org.teepkit.Agent1 */
        Store *store;
        StagingTable staging;
        uid_t agent_uid;
        uint64_t idle_usec;
} Installer;

static void settings_done(Settings *s) {
        free(s->store_dir);
        free(s->agent_user);
}

static void installer_done(Installer *i) {
        /* Staged payloads were for this instance's agent calls; a new instance knows nothing
         * of them (and would remove them at start as leftovers anyway). */
        if (i->store && i->staging.n > 0) {
                size_t n = staging_clear(&i->staging, i->store);
                log_info("dropped %zu staged payload(s) on exit", n);
        }
        i->stage_expiry = sd_event_source_disable_unref(i->stage_expiry);
        i->agent_watch = sd_bus_slot_unref(i->agent_watch);
        i->idle = sd_event_source_unref(i->idle);
        i->slot = sd_bus_slot_unref(i->slot);
        i->bus_drain = sd_event_source_disable_unref(i->bus_drain);
        i->bus = sd_bus_flush_close_unref(i->bus);
        i->event = sd_event_unref(i->event);
        i->store = store_free(i->store);
}

/* Restart the idle countdown: called on every method call, before and after the work. */
static void installer_touch(Installer *i) {
        if (!i->idle)
                return;
        if (sd_event_source_set_time_relative(i->idle, i->idle_usec) < 0 ||
            sd_event_source_set_enabled(i->idle, SD_EVENT_ONESHOT) < 0)
                log_warning("cannot re-arm the idle timer; staying up");
}

/* Every method begins here: the agent's uid only (the bus policy said so already), and only the
 * agent's calls keep the installer alive. */
static int agent_call(Installer *i, sd_bus_message *m, sd_bus_error *error) {
        int r = bus_require_sender_uid(m, i->agent_uid, error);

        if (r < 0)
                return r;
        installer_touch(i);
        return 0;
}

static int reply_invalid_component(const Installer *i, sd_bus_error *error, const char *component, int r) {
        if (r == -ENOMEM)
                return r;
        if (r == -ENAMETOOLONG)
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                         "Component name is too long to be a file name (%zu bytes; at most %d)",
                                         strlen(component), STORE_FILE_NAME_MAX);
        if (i->store->layout == STORE_LAYOUT_OPTEE && store_component_validate(component) == 0)
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                         "Component '%s' has no single UUID segment; the optee layout stores <uuid>.ta",
                                         component);
        return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                 "'%s' is not a component name (segments of [A-Za-z0-9._-], a UUID or 0x-hex, joined by '/')",
                                 component);
}

/* The options dictionary is for growth: no key is known yet, so any key is refused. */
static int read_options(sd_bus_message *m, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'e', "sv");
        if (r < 0)
                return r;
        if (r > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%s'", key);
        }
        return sd_bus_message_exit_container(m);
}

/* The payload must be a readable descriptor of data: not O_PATH, not write-only, not a dir. */
static int check_payload_fd(int fd, sd_bus_error *error) {
        struct stat st;
        int flags;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Payload descriptor is unusable: %s",
                                         strerror(errno));
        if ((flags & O_PATH) || ((flags & O_ACCMODE) != O_RDONLY && (flags & O_ACCMODE) != O_RDWR))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Payload descriptor is not open for reading");
        if (fstat(fd, &st) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Payload descriptor is unusable: %s",
                                         strerror(errno));
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Payload descriptor is a directory");
        return 0;
}

/* The one reply of an Install that store_install() or store_install_staged() refused. */
static int reply_install_error(const Installer *i, sd_bus_error *error, const StoreTarget *t, uint64_t size,
                               const char *want_hex, int r) {
        switch (r) {
        case -EMSGSIZE:
                log_warning("refused install of %s: payload is not the announced %" PRIu64 " bytes", t->component, size);
                return sd_bus_error_setf(error, TEEP_ERROR_SIZE_MISMATCH,
                                         "Payload for %s is not %" PRIu64 " bytes; nothing was changed", t->component, size);
        case -EKEYREJECTED:
                /* the store only says it differs; log what we were promised */
                log_warning("refused install of %s: payload SHA-256 is not %s", t->component, want_hex);
                return sd_bus_error_setf(error, TEEP_ERROR_DIGEST_MISMATCH,
                                         "Payload for %s does not have SHA-256 %s; nothing was changed", t->component, want_hex);
        case -EEXIST:
                log_warning("refused install of %s: %s belongs to another component or was not installed by teepkit",
                            t->component, t->file);
                return sd_bus_error_setf(error, TEEP_ERROR_INVALID_COMPONENT,
                                         "%s is already in the store and does not belong to %s (another component with this TA UUID, or a TA teepkit did not install)",
                                         t->file, t->component);
        case -ETIMEDOUT:
                log_warning("refused install of %s: no payload data for %u ms", t->component, i->store->stall_timeout_ms);
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED,
                                         "Payload for %s stalled (no data for %u s); nothing was changed", t->component,
                                         i->store->stall_timeout_ms / 1000u);
        case -ESTALE:
                log_error("cannot install %s: its staged file in %s is gone or changed", t->component, i->store->path);
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED,
                                         "Cannot install %s: the staged file is gone or changed; nothing was changed",
                                         t->component);
        default:
                log_error("cannot install %s as %s in %s: %s", t->component, t->file, i->store->path, strerror(-r));
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot install %s: %s", t->component, strerror(-r));
        }
}

static void installer_staging_changed(Installer *i);

static int method_install(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(store_target_done) StoreTarget t = {};
        _cleanup_(store_entry_done) StoreEntry e = {};
        Installer *i = userdata;
        const char *component;
        const void *digest;
        char want_hex[65];
        size_t digest_len;
        Staging *staged = NULL;
        bool was_staged;
        struct stat st;
        uint64_t size;
        int fd, r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sht", &component, &fd, &size);
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 'y', &digest, &digest_len);
        if (r < 0)
                return r;
        if (digest_len != 32)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "sha256 must be 32 bytes, got %zu", digest_len);
        r = read_options(m, error);
        if (r < 0)
                return r;
        r = check_payload_fd(fd, error);
        if (r < 0)
                return r;
        r = store_target(i->store, component, &t);
        if (r < 0) {
                log_warning("refused install of '%s': not a component this store can hold", component);
                return reply_invalid_component(i, error, component, r);
        }

        hexstr(digest, 32, want_hex);
        /* A descriptor of a file this instance staged: install that very file, no copy. */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                staged = staging_find_file(&i->staging, st.st_dev, st.st_ino);
        was_staged = staged;
        if (staged) {
                StoreStaged file = staged->file;

                /* the staged file is consumed whatever the outcome: renamed, or unlinked */
                r = store_install_staged(i->store, &t, &file, size, digest, &e);
                (void)staging_forget(&i->staging, i->store, staged);
                installer_staging_changed(i);
        } else
                r = store_install(i->store, &t, fd, size, digest, &e);
        installer_touch(i);
        if (r < 0)
                return reply_install_error(i, error, &t, size, want_hex, r);
        log_info("installed %s as %s (%" PRIu64 " bytes, sha256 %s)%s", t.component, t.file, e.size, want_hex,
                 was_staged ? " (staged, no copy)" : "");
        return sd_bus_reply_method_return(m, "s", t.file);
}

/* ---- staging: Stage, Staged, Unstage (see staging.h) ---- */

static int on_stage_expiry(sd_event_source *source, uint64_t usec, void *userdata) {
        Installer *i = userdata;
        uint64_t now;
        size_t n;

        /* the loop may run late: what is due by now goes, not only what was due at usec */
        if (sd_event_now(i->event, CLOCK_MONOTONIC, &now) < 0)
                now = usec;
        n = staging_expire(&i->staging, i->store, now, INSTALLER_STAGE_TTL_USEC);
        if (n > 0)
                log_notice("dropped %zu staged payload(s) not installed within %" PRIu64 " s", n,
                           INSTALLER_STAGE_TTL_USEC / 1000000u);
        installer_staging_changed(i);
        return 0;
}

/* Arm the expiry timer for the oldest entry, or disarm it when nothing is staged. */
static void installer_staging_changed(Installer *i) {
        uint64_t oldest = staging_oldest(&i->staging);
        int r;

        if (oldest == UINT64_MAX) {
                if (i->stage_expiry)
                        (void)sd_event_source_set_enabled(i->stage_expiry, SD_EVENT_OFF);
                return;
        }
        if (!i->stage_expiry) {
                /* 1 s accuracy: the TTL is a bound on disk use, not a deadline anyone waits on */
                r = sd_event_add_time(i->event, &i->stage_expiry, CLOCK_MONOTONIC, oldest + INSTALLER_STAGE_TTL_USEC,
                                      1000000u, on_stage_expiry, i);
        } else {
                r = sd_event_source_set_time(i->stage_expiry, oldest + INSTALLER_STAGE_TTL_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(i->stage_expiry, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                /* the entries still go when they are installed or unstaged, or at exit */
                log_warning("cannot arm the expiry of staged payloads: %s", strerror(-r));
}

/* org.teepkit.Agent1 lost its owner (the agent crashed, or was restarted): nobody will install
 * or unstage what it staged, and a new agent knows nothing of it. */
static int on_agent_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Installer *i = userdata;
        const char *name, *old_owner, *new_owner;
        size_t n;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || strcmp(name, TEEP_AGENT_BUS_NAME) != 0 ||
            !old_owner[0])
                return 0; /* malformed, another name, or the name only just got an owner */
        if (i->staging.n == 0)
                return 0;
        n = staging_clear(&i->staging, i->store);
        log_notice("%s left the bus: dropped %zu staged payload(s)", TEEP_AGENT_BUS_NAME, n);
        installer_staging_changed(i);
        return 0;
}

/* Watch the agent's name from the first Stage on (one match for the installer's lifetime). */
static void watch_agent(Installer *i) {
        int r;

        if (i->agent_watch)
                return;
        r = sd_bus_add_match(i->bus, &i->agent_watch, BUS_NAME_OWNER_CHANGED_MATCH(TEEP_AGENT_BUS_NAME),
                             on_agent_owner_changed, i);
        if (r >= 0)
                return;
        /* what it staged still goes when installed, unstaged or expired */
        log_warning("cannot watch %s: %s", TEEP_AGENT_BUS_NAME, strerror(-r));
}

/* What a failed staging replies, now and to the Staged() that collects it. */
static void stage_error(const Installer *i, const char *id, int r, uint64_t max, const char **ret_name,
                        char **ret_message) {
        char *message = NULL;
        int k;

        switch (r) {
        case -EFBIG:
                *ret_name = TEEP_ERROR_LIMIT_EXCEEDED;
                k = asprintf(&message, "Payload %s is more than %" PRIu64 " bytes; nothing was staged", id, max);
                break;
        case -ETIMEDOUT:
                *ret_name = TEEP_ERROR_FAILED;
                k = asprintf(&message, "Payload %s stalled (no data for %u s); nothing was staged", id,
                             i->store->stall_timeout_ms / 1000u);
                break;
        default:
                *ret_name = TEEP_ERROR_FAILED;
                k = asprintf(&message, "Cannot stage payload %s: %s", id, strerror(-r));
                break;
        }
        *ret_message = k < 0 ? NULL : message;
}

static int method_stage(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        Installer *i = userdata;
        const char *id, *name;
        char hex[65];
        uint64_t max, now;
        Staging *e;
        int fd, r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sht", &id, &fd, &max);
        if (r < 0)
                return r;
        r = read_options(m, error);
        if (r < 0) {
                log_warning("refused stage: %s", error->message ?: strerror(-r));
                return r;
        }
        if (!staging_id_valid(id)) {
                log_warning("refused stage: the id is not %u lowercase hex characters", STAGING_ID_LEN);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "A staging id is exactly %u lowercase hex characters", STAGING_ID_LEN);
        }
        if (max == 0) {
                log_warning("refused stage %s: max_size 0", id);
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "max_size must be at least 1");
        }
        r = check_payload_fd(fd, error);
        if (r < 0) {
                log_warning("refused stage %s: %s", id, error->message);
                return r;
        }
        r = sd_event_now(i->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        /* Before a byte is read: a refusal here leaves the payload unread. */
        r = staging_add(&i->staging, id, now, &e);
        if (r >= 0)
                watch_agent(i);
        if (r == -EEXIST) {
                log_warning("refused stage %s: that id is staged already", id);
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY, "Something is staged under %s already", id);
        }
        if (r == -EBUSY) {
                log_warning("refused stage %s: %u payloads are staged already", id, INSTALLER_MAX_STAGED);
                return sd_bus_error_setf(error, TEEP_ERROR_BUSY,
                                         "%u payloads are staged already; install or unstage one first",
                                         INSTALLER_MAX_STAGED);
        }
        if (r < 0)
                return r;

        /* Blocks the loop while it copies, as Install does: the agent sent this call without
         * waiting and feeds the pipe meanwhile. */
        r = store_stage(i->store, fd, max, &e->file);
        installer_touch(i);
        if (r >= 0) {
                log_info("staged %s: %" PRIu64 " bytes, sha256 %s, as %s", id, e->file.size,
                         hexstr(e->file.sha256, 32, hex), e->file.name);
                installer_staging_changed(i);
                return sd_bus_reply_method_return(m, NULL);
        }

        stage_error(i, id, r, max, &name, &message);
        if (r == -EFBIG || r == -ETIMEDOUT)
                log_warning("refused stage %s: %s", id, message ?: strerror(-r));
        else
                log_error("cannot stage %s in %s: %s", id, i->store->path, strerror(-r));
        /* kept for Staged(id), which reports it once */
        if (!message || staging_set_error(e, r, name, message) < 0) {
                (void)staging_forget(&i->staging, i->store, e);
                installer_staging_changed(i);
                return -ENOMEM;
        }
        installer_staging_changed(i);
        return sd_bus_error_set(error, name, message);
}

static int method_staged(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -1;
        Installer *i = userdata;
        uint64_t queued = 1;
        const char *id;
        Staging *e;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (!staging_id_valid(id)) {
                log_warning("refused staged: the id is not %u lowercase hex characters", STAGING_ID_LEN);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "A staging id is exactly %u lowercase hex characters", STAGING_ID_LEN);
        }
        e = staging_find(&i->staging, id);
        if (!e) {
                log_warning("refused staged %s: nothing is staged under that id", id);
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Nothing is staged under %s", id);
        }
        if (e->error < 0) {
                /* the failure is reported once, then forgotten */
                r = sd_bus_error_set(error, e->error_name, e->error_message);
                (void)staging_forget(&i->staging, i->store, e);
                installer_staging_changed(i);
                return r;
        }
        fd = store_staged_open(i->store, &e->file);
        if (fd < 0) {
                log_error("cannot open the file staged under %s (%s): %s", id, e->file.name,
                          fd == -ESTALE ? "gone or changed" : strerror(-fd));
                r = sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot open what is staged under %s: %s", id,
                                      fd == -ESTALE ? "the file is gone or changed" : strerror(-fd));
                (void)staging_forget(&i->staging, i->store, e);
                installer_staging_changed(i);
                return r;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ht", fd, e->file.size);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', e->file.sha256, sizeof(e->file.sha256));
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        /* The agent has its answer and now writes its manifest copy and journal; sync the file
         * meanwhile, so that its Install only renames (the flushes of the two processes overlap
         * instead of following each other). Only when the answer has left (nothing queued to
         * write: sd_bus_send() writes at once when the socket takes it), so that the sync never
         * delays it; otherwise, and after a failure here, Install syncs as before. */
        if (!e->file.synced && sd_bus_get_n_queued_write(sd_bus_message_get_bus(m), &queued) >= 0 && queued == 0) {
                r = store_staged_sync(i->store, &e->file);
                if (r < 0)
                        log_warning("cannot sync the file staged under %s yet (%s); the install will",
                                    id, strerror(-r));
        }
        return 1;
}

static int method_unstage(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Installer *i = userdata;
        uint32_t removed = 0;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        for (;;) {
                const char *id;
                Staging *e;

                r = sd_bus_message_read(m, "s", &id);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                e = staging_find(&i->staging, id); /* unknown ids (malformed ones too): nothing to do */
                if (e) {
                        (void)staging_forget(&i->staging, i->store, e);
                        removed++;
                }
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (removed > 0) {
                log_info("unstaged %" PRIu32 " payload(s)", removed);
                installer_staging_changed(i);
        }
        return sd_bus_reply_method_return(m, "u", removed);
}

static int method_remove(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(store_target_done) StoreTarget t = {};
        Installer *i = userdata;
        const char *component;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &component);
        if (r < 0)
                return r;
        r = store_target(i->store, component, &t);
        if (r < 0) {
                log_warning("refused remove of '%s': not a component this store can hold", component);
                return reply_invalid_component(i, error, component, r);
        }
        r = store_remove(i->store, &t);
        installer_touch(i);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, TEEP_ERROR_NOT_INSTALLED, "%s is not installed", t.component);
        if (r < 0) {
                log_error("cannot remove %s (%s) from %s: %s", t.component, t.file, i->store->path, strerror(-r));
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot remove %s: %s", t.component, strerror(-r));
        }
        log_info("removed %s (%s)", t.component, t.file);
        return sd_bus_reply_method_return(m, NULL);
}

/* Undo the last change of one component (store_restore()): the agent's rollback of a commit. */
static int method_restore(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(store_target_done) StoreTarget t = {};
        static const char *const what[] = { "none", "previous", "removed" };
        Installer *i = userdata;
        const char *component;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &component);
        if (r < 0)
                return r;
        r = store_target(i->store, component, &t);
        if (r == -ENAMETOOLONG || (r == -EINVAL && store_component_validate(component) == 0))
                /* a component this store cannot hold was never installed: nothing to undo (the
                 * agent undoes the Install that was refused for that very reason) */
                return sd_bus_reply_method_return(m, "s", "none");
        if (r < 0) {
                log_warning("refused restore of '%s': not a component name", component);
                return r == -ENOMEM ? r : reply_invalid_component(i, error, component, -EINVAL);
        }
        r = store_restore(i->store, &t);
        installer_touch(i);
        if (r < 0) {
                log_error("cannot restore %s (%s) in %s: %s", t.component, t.file, i->store->path, strerror(-r));
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot restore %s: %s", t.component, strerror(-r));
        }
        if (r == 1)
                log_notice("restored the previous %s (%s)", t.component, t.file);
        else if (r == 2)
                log_notice("undid the install of %s: removed %s", t.component, t.file);
        else
                log_info("restore of %s: no change to undo", t.component);
        return sd_bus_reply_method_return(m, "s", what[r]);
}

/* Drop undo records: of the components named, or all of them (empty array). */
static int method_discard(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Installer *i = userdata;
        StoreTarget *targets = NULL;
        size_t n = 0, allocated = 0, named = 0;
        uint32_t removed = 0;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        /* every name is checked before any record goes: a bad one changes nothing */
        for (;;) {
                const char *component;

                r = sd_bus_message_read(m, "s", &component);
                if (r < 0)
                        goto out;
                if (r == 0)
                        break;
                if (++named > STORE_LIST_MAX) {
                        r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "More than %u components", STORE_LIST_MAX);
                        goto out;
                }
                if (GREEDY_GROW(targets, allocated, n + 1, 8) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = store_target(i->store, component, &targets[n]);
                if (r == -ENAMETOOLONG || (r == -EINVAL && store_component_validate(component) == 0))
                        continue; /* a component this store cannot hold has no file, so no record */
                if (r < 0) {
                        log_warning("refused discard of '%s': not a component name", component);
                        r = r == -ENOMEM ? r : reply_invalid_component(i, error, component, -EINVAL);
                        goto out;
                }
                n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto out;
        if (named == 0) {
                r = store_discard(i->store, NULL);
                if (r >= 0)
                        removed = (uint32_t)r;
        }
        for (size_t k = 0; k < n && r >= 0; k++) {
                r = store_discard(i->store, &targets[k]);
                if (r >= 0)
                        removed += (uint32_t)r;
        }
        installer_touch(i);
        if (r < 0) {
                log_error("cannot discard undo records in %s: %s", i->store->path, strerror(-r));
                r = sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot discard undo records: %s", strerror(-r));
                goto out;
        }
        if (removed > 0)
                log_debug("discarded %" PRIu32 " undo record(s)", removed);
        r = sd_bus_reply_method_return(m, "u", removed);
out:
        for (size_t k = 0; k < n; k++)
                store_target_done(&targets[k]);
        free(targets);
        return r;
}

static int method_list(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Installer *i = userdata;
        StoreEntry *entries = NULL;
        size_t n = 0;
        int r;

        r = agent_call(i, m, error);
        if (r < 0)
                return r;
        r = store_list(i->store, &entries, &n);
        installer_touch(i);
        if (r < 0) {
                log_error("cannot list %s: %s", i->store->path, strerror(-r));
                return sd_bus_error_setf(error, TEEP_ERROR_FAILED, "Cannot list the store: %s",
                                         r == -E2BIG ? "too many entries" : strerror(-r));
        }

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(stayt)");
        for (size_t k = 0; r >= 0 && k < n; k++) {
                r = sd_bus_message_open_container(reply, 'r', "stayt");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "st", entries[k].component, entries[k].size);
                if (r >= 0)
                        r = sd_bus_message_append_array(reply, 'y', entries[k].sha256, sizeof(entries[k].sha256));
                if (r >= 0)
                        r = sd_bus_message_append(reply, "t", entries[k].mtime_usec);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        store_entries_free(entries, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_check(sd_bus *bus, Installer *i, sd_bus_error *error) {
        sd_bus_message *m = sd_bus_get_current_message(bus);

        /* Properties are answered to the agent only, like the methods. */
        if (!m)
                return -EACCES;
        return bus_require_sender_uid(m, i->agent_uid, error);
}

static int property_get_store_directory(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error) {
        Installer *i = userdata;
        int r;

        r = property_check(bus, i, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", i->store->path);
}

static int property_get_layout(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Installer *i = userdata;
        int r;

        r = property_check(bus, i, error);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "s", store_layout_to_string(i->store->layout));
}

static const sd_bus_vtable installer_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("StoreDirectory", "s", property_get_store_directory, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Layout", "s", property_get_layout, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        /* UNPRIVILEGED: otherwise sd-bus would ask for CAP_SYS_ADMIN, which the agent lacks;
         * agent_call() (bus_require_sender_uid()) in each handler is the check that counts. */
        SD_BUS_METHOD_WITH_ARGS("Install",
                                SD_BUS_ARGS("s", component, "h", payload, "t", size, "ay", sha256, "a{sv}", options),
                                SD_BUS_RESULT("s", file),
                                method_install, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_ARGS("s", component), SD_BUS_NO_RESULT,
                                method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("List", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(stayt)", entries),
                                method_list, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restore", SD_BUS_ARGS("s", component), SD_BUS_RESULT("s", restored),
                                method_restore, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Discard", SD_BUS_ARGS("as", components), SD_BUS_RESULT("u", removed),
                                method_discard, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stage", SD_BUS_ARGS("s", id, "h", payload, "t", max_size, "a{sv}", options),
                                SD_BUS_NO_RESULT, method_stage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Staged", SD_BUS_ARGS("s", id), SD_BUS_RESULT("h", staged, "t", size, "ay", sha256),
                                method_staged, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unstage", SD_BUS_ARGS("as", ids), SD_BUS_RESULT("u", removed),
                                method_unstage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/*
 * Idle: give the name back first, so that a call arriving from now on starts a new instance
 * (bus activation) instead of reaching one that is about to exit; then answer whatever was
 * already queued for us, and leave.
 */
static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Installer *i = userdata;

        /* The agent is in the middle of an update: what it staged waits for its Install (each
         * entry for INSTALLER_STAGE_TTL_USEC at most), and an exit would throw it away. */
        if (i->staging.n > 0) {
                log_debug("no calls for %" PRIu64 " s, but %zu payload(s) staged: staying", i->idle_usec / 1000000u,
                          i->staging.n);
                installer_touch(i);
                return 0;
        }
        log_info("no calls for %" PRIu64 " s, exiting", i->idle_usec / 1000000u);
        bus_release_name_and_drain(i->bus, TEEP_INSTALLER_BUS_NAME);
        return sd_event_exit(i->event, 0);
}

static const char *conf_where(const TeepConf *c, const char *section, const char *key) {
        const TeepConfSection *s = NULL;
        const char *where = NULL;

        while ((s = teep_conf_sections(c, section, s)))
                if (teep_conf_section_where(s, key))
                        where = teep_conf_section_where(s, key);
        return where ?: "?";
}

static int load_config(Settings *set) {
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        char err[512] = "";
        uint64_t idle_usec = 0;
        const char *v;
        int r;

        r = teep_conf_load(set->config, &conf, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "cannot read configuration %s: %s", set->config,
                                       err[0] ? err : strerror(-r));

        (void)teep_conf_warn_unknown(conf, "Installer",
                                     (const char *const[]){ "StoreDirectory", "Layout", "AgentUser", "IdleTimeoutSec", NULL });
        v = teep_conf_get(conf, "Installer", "StoreDirectory");
        if (v && !set->store_dir) {
                set->store_dir = strdup(v);
                if (!set->store_dir)
                        return log_error_errno(-ENOMEM, "out of memory");
        }
        v = teep_conf_get(conf, "Installer", "Layout");
        if (v) {
                StoreLayout layout;

                /* A value that does not parse fails the start even when overridden. */
                if (store_layout_from_string(v, &layout) < 0)
                        return log_error_errno(-EINVAL, "%s: Layout=%s: expected 'default' or 'optee'",
                                               conf_where(conf, "Installer", "Layout"), v);
                if (!set->layout_set)
                        set->layout = layout;
        }
        v = teep_conf_get(conf, "Installer", "AgentUser");
        if (v && !set->agent_user) {
                set->agent_user = strdup(v);
                if (!set->agent_user)
                        return log_error_errno(-ENOMEM, "out of memory");
        }
        r = teep_conf_get_usec(conf, "Installer", "IdleTimeoutSec", &idle_usec, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "%s", err); /* err names file:line */
        if (r > 0 && !set->idle_set)
                set->idle_usec = idle_usec;
        return 0;
}

static void help(void) {
        printf("teep-installer [OPTIONS]\n\n"
               "The only writer of the teepkit Trusted Component store; started by bus activation\n"
               "as org.teepkit.Installer1 and answering the TEEP agent only.\n\n"
               "  -h --help               show this help\n"
               "     --version            show the version\n"
               "     --config FILE        read FILE and FILE.d/*.conf (default %s)\n"
               "     --store-dir DIR      [Installer] StoreDirectory=\n"
               "     --layout LAYOUT      [Installer] Layout= (default or optee)\n"
               "     --agent-user USER    [Installer] AgentUser= (name or uid)\n"
               "     --idle-timeout SPAN  [Installer] IdleTimeoutSec= (0: never exit)\n\n"
               "See teep-installer(8).\n",
               TEEP_CONF_FILE);
}

/* Returns 1 to go on, 0 to exit successfully (--help), -EINVAL for a usage error. */
static int parse_argv(int argc, char *argv[], Settings *set) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_STORE_DIR, ARG_LAYOUT, ARG_AGENT_USER, ARG_IDLE_TIMEOUT,
               ARG_SANDBOX_SELF_TEST };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "store-dir", required_argument, NULL, ARG_STORE_DIR },
                { "layout", required_argument, NULL, ARG_LAYOUT },
                { "agent-user", required_argument, NULL, ARG_AGENT_USER },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                /* hidden: start up, enter the box, try forbidden calls, exit (tests/seccomp) */
                { "sandbox-self-test", no_argument, NULL, ARG_SANDBOX_SELF_TEST },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("teep-installer %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        set->config = optarg;
                        break;
                case ARG_SANDBOX_SELF_TEST:
                        set->sandbox_self_test = true;
                        break;
                case ARG_STORE_DIR:
                        free(set->store_dir);
                        set->store_dir = strdup(optarg);
                        if (!set->store_dir)
                                return -ENOMEM;
                        break;
                case ARG_LAYOUT:
                        if (store_layout_from_string(optarg, &set->layout) < 0) {
                                log_error("--layout=%s: expected 'default' or 'optee'", optarg);
                                return -EINVAL;
                        }
                        set->layout_set = true;
                        break;
                case ARG_AGENT_USER:
                        free(set->agent_user);
                        set->agent_user = strdup(optarg);
                        if (!set->agent_user)
                                return -ENOMEM;
                        break;
                case ARG_IDLE_TIMEOUT:
                        if (teep_parse_usec(optarg, &set->idle_usec) < 0) {
                                log_error("--idle-timeout=%s: not a time span", optarg);
                                return -EINVAL;
                        }
                        set->idle_set = true;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(installer_done) Installer i = {};
        _cleanup_(settings_done) Settings set = {
                .config = TEEP_CONF_FILE,
                .layout = STORE_LAYOUT_DEFAULT,
                .idle_usec = DEFAULT_IDLE_USEC,
        };
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv, &set);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : r == -EINVAL ? EXIT_USAGE : EXIT_FAILURE;
        /* The configuration fills in what the command line did not set. */
        r = load_config(&set);
        if (r < 0)
                return EXIT_FAILURE;
        if (!set.store_dir && !(set.store_dir = strdup(TEEP_STATEDIR "/tc")))
                return EXIT_FAILURE;
        if (!set.agent_user && !(set.agent_user = strdup("teep-agent")))
                return EXIT_FAILURE;
        if (set.store_dir[0] != '/') {
                log_error("StoreDirectory=%s: must be an absolute path", set.store_dir);
                return EXIT_FAILURE;
        }

        r = teep_resolve_user(set.agent_user, &i.agent_uid, NULL);
        if (r < 0) {
                log_error("AgentUser=%s: no such user (%s); refusing to start without knowing who may call",
                          set.agent_user, strerror(-r));
                return EXIT_FAILURE;
        }
        i.idle_usec = set.idle_usec;

        r = store_open(set.store_dir, set.layout, &i.store);
        if (r < 0) {
                log_error("cannot open the store %s: %s", set.store_dir, strerror(-r));
                return EXIT_FAILURE;
        }
        r = store_lock(i.store, STORE_LOCK_TIMEOUT_MS);
        if (r < 0) {
                log_error("cannot lock the store %s: %s", set.store_dir,
                          r == -EWOULDBLOCK ? "another teep-installer keeps it" : strerror(-r));
                return EXIT_FAILURE;
        }
        r = store_clean(i.store);
        if (r < 0) {
                log_error("cannot clean up the store %s: %s", set.store_dir, strerror(-r));
                return EXIT_FAILURE;
        }
        if (r > 0)
                log_notice("removed %d leftover temporary file(s) from %s", r, set.store_dir);

        r = sd_event_default(&i.event);
        if (r < 0) {
                log_error("cannot create the event loop: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            sd_event_add_signal(i.event, NULL, SIGTERM, NULL, NULL) < 0 ||
            sd_event_add_signal(i.event, NULL, SIGINT, NULL, NULL) < 0) {
                log_error("cannot set up signal handling");
                return EXIT_FAILURE;
        }

        r = bus_open_and_request_name(i.event, TEEP_INSTALLER_BUS_NAME, &i.bus, &i.bus_drain);
        if (r < 0)
                return EXIT_FAILURE;
        /* If the bus goes away there is nobody left to serve. */
        (void)sd_bus_set_exit_on_disconnect(i.bus, true);
        /* Queued calls are dispatched only from the loop below, so adding the object after
         * taking the name loses none of them. */
        r = sd_bus_add_object_vtable(i.bus, &i.slot, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                     installer_vtable, &i);
        if (r < 0) {
                log_error("cannot publish %s: %s", TEEP_INSTALLER_PATH, strerror(-r));
                return EXIT_FAILURE;
        }
        if (i.idle_usec > 0) {
                r = sd_event_add_time_relative(i.event, &i.idle, CLOCK_MONOTONIC, i.idle_usec, 0, on_idle, &i);
                if (r < 0) {
                        log_error("cannot arm the idle timer: %s", strerror(-r));
                        return EXIT_FAILURE;
                }
        }

        r = installer_sandbox_apply(i.store->path);
        if (r < 0) {
                log_error("cannot install the seccomp filter: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        if (set.sandbox_self_test)
                return installer_sandbox_self_test(i.store->path) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        log_info("ready: store %s (layout %s), answering uid %" PRIu32 " only, idle timeout %" PRIu64 " s",
                 i.store->path, store_layout_to_string(i.store->layout), (uint32_t)i.agent_uid,
                 i.idle_usec / 1000000u);

        r = sd_event_loop(i.event);
        if (r < 0) {
                log_error("event loop failed: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char *argv[]) {
        log_setup("teep-installer");
        return run(argc, argv);
}
