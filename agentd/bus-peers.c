/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-peers.c: Installer1.Install/Remove/List/Restore/Discard/Stage/Staged/Unstage and PayloadFetcher1.Fetch as the agent core's interfaces */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-peers.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"

/* Copying a 64 MiB image through the installer, or downloading it through the broker, may take
 * a while; the broker's own HTTP timeouts (TimeoutSec=) bound the download. */
#define INSTALL_TIMEOUT_USEC (UINT64_C(300) * 1000000)
#define LIST_TIMEOUT_USEC (UINT64_C(30) * 1000000)
#define FETCH_TIMEOUT_USEC (UINT64_C(600) * 1000000)

/* A named error from a peer as an errno the core understands. */
static int peer_errno(const sd_bus_error *e, int r) {
        if (sd_bus_error_has_name(e, TEEP_ERROR_NOT_INSTALLED))
                return -ENOENT;
        if (sd_bus_error_has_name(e, TEEP_ERROR_DIGEST_MISMATCH) || sd_bus_error_has_name(e, TEEP_ERROR_SIZE_MISMATCH))
                return -EKEYREJECTED;
        if (sd_bus_error_has_name(e, TEEP_ERROR_TAM_UNREACHABLE))
                return -EHOSTUNREACH;
        if (sd_bus_error_has_name(e, "org.teepkit.Error.LimitExceeded"))
                return -EFBIG;
        if (sd_bus_error_has_name(e, TEEP_ERROR_ACCESS_DENIED))
                return -EACCES;
        if (sd_bus_error_has_name(e, TEEP_ERROR_INVALID_COMPONENT))
                return -ENAMETOOLONG; /* a name the store's layout cannot hold */
        if (sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.ServiceUnknown") ||
            sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                return -ENOTCONN;
        return r < 0 ? r : -EIO;
}

static int bus_install(void *userdata, const char *component, int fd, uint64_t size, const uint8_t sha256[32]) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *file = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Install");
        if (r >= 0)
                r = sd_bus_message_append(m, "sht", component, fd, size);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', sha256, 32);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, INSTALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_error("Installer1.Install %s: %s", component, error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (sd_bus_message_read(reply, "s", &file) >= 0)
                log_debug("Installer1.Install %s: %s", component, file);
        return 0;
}

static int bus_remove(void *userdata, const char *component) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE, "Remove",
                               &error, &reply, "s", component);
        if (r < 0) {
                r = peer_errno(&error, r);
                if (r != -ENOENT)
                        log_error("Installer1.Remove %s: %s", component, error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        return 0;
}

static int bus_list(void *userdata, AgentStoreEntry **ret, size_t *ret_n) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        AgentStoreEntry *e = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "List");
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, LIST_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_warning("Installer1.List: %s", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(stayt)");
        while (r >= 0) {
                const char *component;
                uint64_t size, mtime;
                const void *sha;
                size_t sha_len;
                AgentStoreEntry *ne;

                r = sd_bus_message_enter_container(reply, 'r', "stayt");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "st", &component, &size);
                if (r >= 0)
                        r = sd_bus_message_read_array(reply, 'y', &sha, &sha_len);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "t", &mtime);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                if (sha_len != 32)
                        continue;
                ne = reallocarray(e, n + 1, sizeof(*e));
                if (!ne) {
                        r = -ENOMEM;
                        break;
                }
                e = ne;
                e[n].component = strdup(component);
                if (!e[n].component) {
                        r = -ENOMEM;
                        break;
                }
                e[n].size = size;
                memcpy(e[n].sha256, sha, 32);
                n++;
        }
        if (r < 0) {
                agent_store_entries_free(e, n);
                return log_warning_errno(r, "Installer1.List: unexpected reply: %s", strerror(-r));
        }
        *ret = e;
        *ret_n = n;
        return 0;
}

static int bus_restore(void *userdata, const char *component) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *what = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Restore");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", component);
        if (r < 0)
                return r;
        /* a rename and an fsync, but the installer may have to be started first */
        r = sd_bus_call(bus, m, LIST_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_error("Installer1.Restore %s: %s", component, error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (sd_bus_message_read(reply, "s", &what) >= 0)
                log_debug("Installer1.Restore %s: %s", component, what);
        return 0;
}

/* The answer to a call sent without waiting (userdata: the method's name): only a failure is
 * worth a line, since nothing waits for it. */
static int on_unwaited_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_warning("%s: %s", (const char *)userdata, e->message ?: e->name);
        return 0;
}

static int bus_discard(void *userdata, const char *const *components, size_t n, bool wait) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Discard");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; i < n && r >= 0; i++)
                r = sd_bus_message_append(m, "s", components[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        if (!wait) {
                /* floating slot: the reply is handled (and freed) whenever the loop gets to it;
                 * nothing depends on it: a record left behind is dropped by the next change of
                 * its file or the next Discard */
                r = sd_bus_call_async(bus, NULL, m, on_unwaited_reply, (void *)"Installer1.Discard", LIST_TIMEOUT_USEC);
                if (r < 0)
                        log_warning("Installer1.Discard: %s", strerror(-r));
                return r;
        }
        r = sd_bus_call(bus, m, LIST_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_error("Installer1.Discard: %s", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        return 0;
}

/* Installer1.Stage is sent, not waited for: the installer reads the pipe while we write it.
 * Installer1.Staged, called after our end is closed, answers once it has read to the end. */
static int bus_stage_open(void *userdata, const char *id, uint64_t max, int *ret_fd) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int rfd = -1, wfd = -1;
        int p[2], r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rfd = p[0];
        wfd = p[1];
        (void)fcntl(wfd, F_SETPIPE_SZ, 1024 * 1024); /* fewer wake-ups; the default is 64 KiB */
        /* only our end: a full pipe makes us wait in poll(), with the stall timeout */
        if (fcntl(wfd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Stage");
        if (r >= 0)
                r = sd_bus_message_append(m, "sht", id, rfd, max);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        /* a failure is logged when it comes; Staged() reports it again, and waits for it */
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_unwaited_reply, (void *)"Installer1.Stage", INSTALL_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_bus_flush(bus); /* out before we start writing: nobody reads the pipe until then */
        if (r < 0) {
                log_error("Installer1.Stage: %s", strerror(-r));
                return r;
        }
        *ret_fd = TAKE_FD(wfd);
        return 0;
}

static int bus_stage_close(void *userdata, const char *id, int *ret_fd, uint64_t *ret_size, uint8_t ret_sha256[32]) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const void *sha;
        size_t sha_len;
        uint64_t size;
        int fd, r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Staged");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", id);
        if (r < 0)
                return r;
        /* answered once the installer has read to the end and written the last of it */
        r = sd_bus_call(bus, m, INSTALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_error("Installer1.Staged: %s", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "ht", &fd, &size);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &sha, &sha_len);
        if (r < 0)
                return r;
        if (sha_len != 32)
                return -EBADMSG;
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3); /* the message owns its fd */
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_size = size;
        memcpy(ret_sha256, sha, 32);
        return 0;
}

static int bus_unstage(void *userdata, const char *const *ids, size_t n) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_INSTALLER_BUS_NAME, TEEP_INSTALLER_PATH, TEEP_INSTALLER_INTERFACE,
                                           "Unstage");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(m, "s", ids[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        /* not waited for: a staged file left behind expires in the installer, or goes when it
         * exits or the agent does */
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_unwaited_reply, (void *)"Installer1.Unstage", LIST_TIMEOUT_USEC);
        if (r < 0)
                log_warning("Installer1.Unstage: %s", strerror(-r));
        return r;
}

const AgentInstaller bus_installer = {
        .install = bus_install,
        .remove = bus_remove,
        .list = bus_list,
        .restore = bus_restore,
        .discard = bus_discard,
        .stage_open = bus_stage_open,
        .stage_close = bus_stage_close,
        .unstage = bus_unstage,
};

static int bus_fetch(void *userdata, const char *uri, uint64_t max, int *ret_fd, uint64_t *ret_size) {
        sd_bus *bus = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint64_t size = 0;
        int fd = -1, r;

        r = sd_bus_message_new_method_call(bus, &m, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_FETCHER_INTERFACE, "Fetch");
        if (r >= 0)
                r = sd_bus_message_append(m, "st", uri, max);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, FETCH_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = peer_errno(&error, r);
                log_warning("PayloadFetcher1.Fetch %s: %s", uri, error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "ht", &fd, &size);
        if (r < 0)
                return r;
        /* the message owns its fd */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        *ret_size = size;
        return 0;
}

const AgentFetcher bus_fetcher = {
        .fetch = bus_fetch,
};
