/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus.c: see bus.h */
#include "bus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus-util.h"
#include "macro.h"
#include "render.h"
#include "teepctl.h"

int ctl_bus_open(sd_bus **ret) {
        int r = sd_bus_open_system(ret);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot connect to the system bus (%s): %s\n",
                        getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "the default address", strerror(-r));
                return EXIT_FAILURE;
        }
        return 0;
}

int ctl_exit_code_for_error(const char *name) {
        static const struct {
                const char *name;
                int code;
        } table[] = {
                { TEEP_ERROR_ACCESS_DENIED, EXIT_ACCESS_DENIED },
                { SD_BUS_ERROR_ACCESS_DENIED, EXIT_ACCESS_DENIED },
                { SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, EXIT_ACCESS_DENIED },
                { TEEP_ERROR_NOT_REQUESTED, EXIT_NOT_FOUND },
                { TEEP_ERROR_NOT_INSTALLED, EXIT_NOT_FOUND },
                { "org.teepkit.Error.NotAvailable", EXIT_NOT_FOUND },
                { SD_BUS_ERROR_UNKNOWN_OBJECT, EXIT_NOT_FOUND },
        };

        for (size_t i = 0; name && i < ELEMENTSOF(table); i++)
                if (strcmp(name, table[i].name) == 0)
                        return table[i].code;
        return EXIT_FAILURE;
}

int ctl_error(const char *what, const sd_bus_error *e, int r) {
        const char *name = e && e->name ? e->name : NULL;

        if (name && (strcmp(name, SD_BUS_ERROR_SERVICE_UNKNOWN) == 0 ||
                     strcmp(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) == 0)) {
                fprintf(stderr, "teepctl: %s: teep-brokerd is not running (%s is not on the system bus)\n", what,
                        TEEP_BROKER_BUS_NAME);
                return EXIT_FAILURE;
        }
        if (name)
                fprintf(stderr, "teepctl: %s: %s (%s)\n", what, e->message ?: "failed", name);
        else
                fprintf(stderr, "teepctl: %s: %s\n", what, strerror(-r));
        return ctl_exit_code_for_error(name);
}

void job_outcome_done(JobOutcome *o) {
        free(o->path);
        free(o->kind);
        free(o->component);
        free(o->state);
        free(o->result);
        free(o->error_name);
        free(o->error_message);
        *o = (JobOutcome){};
}

static int set_str(char **dst, const char *v) {
        char *s = strdup(v ?: "");
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

/* Take the job properties found in an a{sv} (GetAll or PropertiesChanged). */
static int read_job_properties(sd_bus_message *m, JobOutcome *o) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents = NULL, *v = NULL;
                char **dst = NULL;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (strcmp(key, "Progress") == 0 && contents && strcmp(contents, "u") == 0)
                        r = sd_bus_message_read(m, "v", "u", &o->progress);
                else if (contents && strcmp(contents, "s") == 0 &&
                         ((strcmp(key, "State") == 0 && (dst = &o->state)) ||
                          (strcmp(key, "Result") == 0 && (dst = &o->result)) ||
                          (strcmp(key, "ErrorName") == 0 && (dst = &o->error_name)) ||
                          (strcmp(key, "ErrorMessage") == 0 && (dst = &o->error_message)) ||
                          (strcmp(key, "Kind") == 0 && (dst = &o->kind)) ||
                          (strcmp(key, "Component") == 0 && (dst = &o->component)))) {
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r >= 0)
                                r = set_str(dst, v);
                } else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static bool state_is_final(const char *s) {
        return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0);
}

typedef struct Wait {
        JobOutcome *o;
        const JobWaitOptions *opts;
        bool finished;
        bool broker_gone;
        bool drew;
} Wait;

static void draw_progress(Wait *w) {
        if (!w->opts->progress || !w->o->state)
                return;
        printf("\r\033[K[%3" PRIu32 "%%] %s%s%s: %s", w->o->progress, w->o->kind ?: "job",
               w->o->component && *w->o->component ? " " : "", w->o->component ?: "", w->o->state);
        fflush(stdout);
        w->drew = true;
}

/* Broker1.JobFinished(o job, s result, s error_name, s error_message): the outcome of a job
 * this connection made, addressed to it alone (not every job's broadcast Finished). One that
 * arrives during the method call waits in sd-bus's queue until the path is known. */
static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const char *path, *result, *name, *message;

        if (sd_bus_message_read(m, "osss", &path, &result, &name, &message) < 0)
                return 0;
        if (!w->o->path || strcmp(path, w->o->path) != 0)
                return 0;
        if (set_str(&w->o->result, result) < 0 || set_str(&w->o->error_name, name) < 0 ||
            set_str(&w->o->error_message, message) < 0 ||
            set_str(&w->o->state, *name ? "failed" : "succeeded") < 0)
                return 0;
        w->o->progress = 100;
        w->finished = true;
        return 0;
}

static int on_job_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const char *iface;

        if (!w->o->path || strcmp(sd_bus_message_get_path(m) ?: "", w->o->path) != 0)
                return 0;
        if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, TEEP_BROKER_JOB_INTERFACE) != 0)
                return 0;
        if (read_job_properties(m, w->o) >= 0) {
                if (state_is_final(w->o->state) && w->o->result && *w->o->result)
                        w->finished = true;
                draw_progress(w);
        }
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const char *name, *old, *new;

        if (sd_bus_message_read(m, "sss", &name, &old, &new) >= 0 && strcmp(name, TEEP_BROKER_BUS_NAME) == 0 &&
            !*new)
                w->broker_gone = true;
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int ctl_call_no_block(sd_bus *bus, sd_bus_message *m, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path;
        int r;

        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                r = ctl_error(sd_bus_message_get_member(m), &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0 || !(*ret_path = strdup(path))) {
                fprintf(stderr, "teepctl: the broker's answer does not parse\n");
                return EXIT_FAILURE;
        }
        return 0;
}

int ctl_call_and_wait(sd_bus *bus, sd_bus_message *m, const JobWaitOptions *opts, JobOutcome *ret) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *s1 = NULL, *s2 = NULL, *s3 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *props = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        JobOutcome o = {};
        Wait w = { .o = &o, .opts = opts };
        uint64_t deadline = opts->timeout_usec ? now_usec() + opts->timeout_usec : UINT64_MAX;
        int r;

        /* The outcome's match first: a job can finish before the method call returns. */
        r = sd_bus_match_signal(bus, &s1, TEEP_BROKER_BUS_NAME, TEEP_BROKER_PATH, TEEP_BROKER_INTERFACE, "JobFinished",
                                on_finished, &w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &s3, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, &w);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot subscribe to the broker's signals: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        r = ctl_call_no_block(bus, m, &o.path);
        if (r != 0)
                return r;
        /* Progress of this job only (a rule for every job's PropertiesChanged would wake every
         * teepctl for everyone's jobs); what changed before the rule is in the GetAll below. */
        r = sd_bus_match_signal(bus, &s2, TEEP_BROKER_BUS_NAME, o.path, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_job_changed, &w);
        if (r < 0) {
                fprintf(stderr, "teepctl: cannot subscribe to the job's signals: %s\n", strerror(-r));
                job_outcome_done(&o);
                return EXIT_FAILURE;
        }

        /* Where is it now? (It may be finished already, e.g. "already-installed".) */
        r = sd_bus_call_method(bus, TEEP_BROKER_BUS_NAME, o.path, "org.freedesktop.DBus.Properties", "GetAll", &e,
                               &props, "s", TEEP_BROKER_JOB_INTERFACE);
        if (r < 0) {
                r = ctl_error("reading the job", &e, r);
                sd_bus_error_free(&e);
                job_outcome_done(&o);
                return r;
        }
        if (read_job_properties(props, &o) < 0) {
                fprintf(stderr, "teepctl: the job's properties do not parse\n");
                job_outcome_done(&o);
                return EXIT_FAILURE;
        }
        if (state_is_final(o.state))
                w.finished = true;
        draw_progress(&w);

        while (!w.finished && !w.broker_gone) {
                uint64_t now = now_usec();
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                r = sd_bus_wait(bus, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0 && r != -EINTR)
                        break;
                r = 0;
        }
        if (w.drew) {
                printf("\r\033[K");
                fflush(stdout);
        }
        if (!w.finished) {
                if (w.broker_gone)
                        fprintf(stderr, "teepctl: teep-brokerd left the bus before %s finished\n", o.path);
                else
                        fprintf(stderr, "teepctl: waiting for %s: %s\n", o.path,
                                r == -ETIMEDOUT ? "timed out (the job goes on; see teepctl monitor)" : strerror(-r));
                job_outcome_done(&o);
                return EXIT_FAILURE;
        }
        *ret = o;
        return 0;
}

int job_outcome_exit_code(const JobOutcome *o) {
        if (o->state && strcmp(o->state, "succeeded") == 0)
                return o->result && strcmp(o->result, "nothing-to-do") == 0 ? EXIT_NOTHING_TO_DO : 0;
        return ctl_exit_code_for_error(o->error_name);
}

void json_string(FILE *f, const char *s) {
        if (!s)
                fputs("null", f);
        else
                render_json_string(f, s, strlen(s));
}

void json_hex(FILE *f, const uint8_t *p, size_t n) {
        fputc('"', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", p[i]);
        fputc('"', f);
}

void job_outcome_print_json(FILE *f, const JobOutcome *o) {
        fputs("{\"job\":", f);
        json_string(f, o->path);
        fputs(",\"kind\":", f);
        json_string(f, o->kind);
        fputs(",\"component\":", f);
        json_string(f, o->component && *o->component ? o->component : NULL);
        fputs(",\"state\":", f);
        json_string(f, o->state);
        fputs(",\"result\":", f);
        json_string(f, o->result);
        if (o->error_name && *o->error_name) {
                fputs(",\"error\":{\"name\":", f);
                json_string(f, o->error_name);
                fputs(",\"message\":", f);
                json_string(f, o->error_message);
                fputc('}', f);
        } else
                fputs(",\"error\":null", f);
        fputs("}\n", f);
}

const char *format_timestamp(uint64_t usec, char *buf, size_t n) {
        time_t t = (time_t)(usec / 1000000u);
        struct tm tm;

        if (usec == 0 || !gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, n, "%s", usec == 0 ? "never" : "?");
        return buf;
}

const char *format_timespan(uint64_t usec, char *buf, size_t n) {
        uint64_t s = usec / 1000000u;

        if (s && s % 86400 == 0)
                snprintf(buf, n, "%" PRIu64 "d", s / 86400);
        else if (s && s % 3600 == 0)
                snprintf(buf, n, "%" PRIu64 "h", s / 3600);
        else if (s && s % 60 == 0)
                snprintf(buf, n, "%" PRIu64 "min", s / 60);
        else if (s)
                snprintf(buf, n, "%" PRIu64 "s", s);
        else
                snprintf(buf, n, "%" PRIu64 "ms", usec / 1000u);
        return buf;
}
