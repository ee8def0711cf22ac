/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker.h: teep-brokerd's state — the bus API, jobs, TEEP sessions per TAM, the agent's mirror */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent-cache.h"
#include "broker-config.h"
#include "list.h"
#include "transport.h"

typedef struct Broker Broker;
typedef struct Job Job;
typedef struct UidJobs UidJobs;
typedef struct Session Session;
typedef struct Fetch Fetch;
typedef struct RouteBatch RouteBatch;
typedef struct CallerLookup CallerLookup;

/* Limits a local user cannot push past (each job costs an agent call and some memory). */
#define BROKER_MAX_JOBS 4096          /* unfinished, all users */
#define BROKER_MAX_JOBS_PER_UID 256   /* unfinished, one uid */
#define BROKER_MAX_FETCHES 8          /* concurrent PayloadFetcher1.Fetch */
#define BROKER_JOB_LINGER_USEC (30ull * 1000000ull)
#define BROKER_MAX_JOB_OBJECTS 8192  /* job objects in all, finished ones lingering included */
#define BROKER_MAX_TAM_HOPS 8         /* TAM URIs tried for one job after failures */
/* TAM messages in one session: a normal one has two (QueryRequest, Update); a TAM that never
 * ends it (another QueryRequest, and another) is cut off here */
#define BROKER_MAX_SESSION_MESSAGES 16

/* Timeouts of our calls to the agent. ProcessTeepMessage may run a whole SUIT update,
 * downloads included; the bus's own reply timeout may cut it shorter. */
#define BROKER_AGENT_CALL_TIMEOUT_USEC (30ull * 1000000ull)
#define BROKER_AGENT_PROCESS_TIMEOUT_USEC (600ull * 1000000ull)
/* Agent1.RequestTAMany/UnrequestTA calls in flight at once; more jobs wait in the broker (the bus
 * caps a connection's pending replies: dbus-daemon's max_replies_per_connection, 128 on a system bus). */
#define BROKER_MAX_AGENT_ROUTE_CALLS 64
/* RequestTA jobs in one Agent1.RequestTAMany call (the agent takes at most 256) */
#define BROKER_MAX_ROUTE_BATCH 256

/* A job's Progress and TamURI are announced at most this often (State and Result at once). */
#define BROKER_PROGRESS_COALESCE_USEC (200ull * 1000ull)

#define BROKER_JOB_HASH_SIZE 1024
#define BROKER_UID_HASH_SIZE 64 /* Broker.uid_jobs: buckets by uid */

#define BROKER_JOB_PATH_PREFIX "/org/teepkit/Broker1/job"
/* A job failed because the TAM did not deliver what was asked for (see the agent's log). */

typedef enum JobKind {
        JOB_REQUEST,
        JOB_UNREQUEST,
        JOB_POLICY_CHECK,
        _JOB_KIND_MAX,
        _JOB_KIND_INVALID = -EINVAL,
} JobKind;

typedef enum JobState {
        JOB_QUEUED,    /* waiting: for the agent's answer, or for a session to the TAM */
        JOB_RUNNING,   /* a session that serves it is talking to the TAM */
        JOB_SUCCEEDED,
        JOB_FAILED,
        _JOB_STATE_MAX,
        _JOB_STATE_INVALID = -EINVAL,
} JobState;

struct Job {
        Broker *broker;
        uint32_t id;
        char path[64];
        JobKind kind;
        JobState state;
        unsigned progress;
        char *component;    /* NULL for a policy check */
        char *requester;
        uid_t uid;          /* the caller's */
        char *creator;      /* the caller's unique bus name: JobFinished goes there (NULL: none) */
        char **tam_uris;    /* the caller's suggestions (NULL-terminated, may be NULL) */
        char *tam_uri;      /* the TAM the agent chose */
        bool was_installed; /* component installed when the job started (unrequest) */
        char *result;
        char *error_name;
        char *error_message;

        char *tried[BROKER_MAX_TAM_HOPS]; /* TAM URIs that failed for this job */
        unsigned n_tried;

        Session *session;   /* the session whose covered or waiting list holds it */
        bool covered;
        int policy_list;    /* policy checks: 0 none, 1 the running round, 2 waiting for the next */
        sd_bus_slot *slot;  /* our pending call to the agent */
        bool routing;       /* waits for the agent's route answer (counted in n_agent_routes): queued
                             * in route_queue, in a RequestTAMany batch, or slot is its UnrequestTA */
        bool route_queued;  /* in route_queue, not sent yet */
        RouteBatch *batch;  /* the RequestTAMany call carrying it */
        size_t batch_index;
        unsigned dirty;     /* JOB_PROP_* changed since the last PropertiesChanged (in dirty_jobs) */
        sd_event_source *linger;

        LIST_FIELDS(Job, jobs);
        LIST_FIELDS(Job, session);
        LIST_FIELDS(Job, policy);
        LIST_FIELDS(Job, route);
        LIST_FIELDS(Job, dirty);
        LIST_FIELDS(Job, unfinished);
        Job *hash_next;     /* Broker.job_hash chain */
};

/* Job properties that emit PropertiesChanged (Job.dirty) */
enum {
        JOB_PROP_STATE = 1u << 0,
        JOB_PROP_PROGRESS = 1u << 1,
        JOB_PROP_TAM_URI = 1u << 2,
        JOB_PROP_RESULT = 1u << 3, /* Result, ErrorName, ErrorMessage */
        /* announced once the bus is drained; the others every BROKER_PROGRESS_COALESCE_USEC */
        JOB_PROPS_AT_ONCE = JOB_PROP_STATE | JOB_PROP_RESULT,
};

/* One Agent1.RequestTAMany call in flight; jobs[i] is NULL once that job went away. */
struct RouteBatch {
        Broker *broker;
        sd_bus_slot *slot;
        size_t n;
        LIST_FIELDS(RouteBatch, batches);
        Job *jobs[];
};

/* One per TAM URI with work. A "run" is one TEEP/HTTP session: empty POST ... 204. */
struct Session {
        Broker *broker;
        char *tam_uri;
        uint64_t number;      /* of the current run, counted over all TAMs (log lines) */
        bool running;
        bool query_answered;  /* the agent was handed the run's first TAM message */
        unsigned n_exchanges;
        Job *covered;         /* jobs whose requests the running session carries */
        Job *waiting;         /* arrived too late for it: served by the next run */
        HttpRequest *http;
        sd_bus_slot *slot;    /* pending call to the agent */
        char *failure;        /* transport failure text while ProcessError is pending */
        char *refusal_name;   /* the agent answered this run's TAM with an Error: why (Refused) */
        char *refusal_message;
        uint64_t held_since;  /* CLOCK_MONOTONIC µs: a run waits for requests still on their way (0: not) */
        LIST_FIELDS(Session, sessions);
};

/* how many unfinished jobs one uid has (the per-uid limit, asked on every call; job.c) */
struct UidJobs {
        uid_t uid;
        unsigned n;
        UidJobs *next;
};

struct Broker {
        sd_event *event;
        sd_bus *bus;
        BrokerConfig config;
        uid_t agent_uid;
        Transport *transport;

        AgentCache agent;
        char *agent_owner;        /* unique name of org.teepkit.Agent1's owner */
        sd_bus_slot *agent_match_props;
        sd_bus_slot *agent_match_refused;
        sd_bus_slot *agent_match_requests;
        sd_bus_slot *agent_match_owner;
        sd_bus_slot *agent_refresh_slot;
        bool agent_stale;         /* the mirror may have missed a change: a GetAll is on its way */

        Job *jobs;                /* oldest first */
        Job *jobs_tail;
        unsigned n_jobs;          /* all job objects, finished ones lingering included */
        unsigned n_jobs_unfinished;
        Job *unfinished_jobs;     /* the jobs not finished yet (Job.unfinished) */
        Job *job_hash[BROKER_JOB_HASH_SIZE]; /* by id % size: job objects looked up by path */
        UidJobs *uid_jobs[BROKER_UID_HASH_SIZE]; /* unfinished jobs per uid, by uid % size (job.c) */
        unsigned n_agent_routes;  /* jobs waiting for their route answer (Job.routing) */
        unsigned n_agent_calls;   /* RequestTAMany/UnrequestTA calls in flight */
        Job *route_queue;         /* jobs to send to the agent once the bus is drained */
        Job *route_queue_tail;
        unsigned n_route_queued;  /* jobs in route_queue */
        RouteBatch *batches;
        sd_event_source *route_flush;
        Job *dirty_jobs;          /* jobs with changes to announce (Job.dirty) */
        unsigned dirty_props;     /* Broker1 properties to announce (BROKER_PROP_*) */
        sd_event_source *emit_flush;
        sd_event_source *bus_drain;   /* bus_attach_event() */
        sd_event_source *emit_timer;  /* Progress/TamURI changes (BROKER_PROGRESS_COALESCE_USEC) */
        uint32_t next_job_id;
        Session *sessions;
        uint64_t n_sessions_started;
        uint64_t last_policy_check;  /* CLOCK_REALTIME µs */
        Fetch *fetches;
        unsigned n_fetches;
        CallerLookup *caller_lookups; /* new callers whose credentials are on their way (broker-bus.c) */
        unsigned n_caller_lookups;
        bool caller_rerun;            /* running the calls a lookup held (on_caller_credentials()) */

        /* Policy checks run in rounds (HTTP-15 §5.6): Agent1.RequestPolicyCheck names one TAM
         * after the other until it answers "", each TAM gets a session. One round at a time;
         * checks asked for meanwhile share the next round. */
        Job *policy_jobs;         /* served by the running round; the first one goes to the sessions */
        Job *policy_waiting;
        bool policy_active;
        bool policy_any_session;
        unsigned policy_calls;
        char *policy_error_name;  /* the round's first failure */
        char *policy_error_message;
        sd_bus_slot *policy_slot;

        bool stopping;
};

/* ---- broker.c ---- */
int broker_new(sd_event *event, const BrokerConfig *config, Broker **ret);
Broker *broker_free(Broker *b);
/* Answer (Busy) and drop the calls still waiting for their caller's credentials (broker-bus.c). */
void broker_caller_lookups_free(Broker *b);
/* Connect to the bus, publish the objects, take the name, watch the agent. */
int broker_start(Broker *b);
/* Fail what is still running (SIGTERM) and flush the bus. */
void broker_stop(Broker *b);
/* PropertiesChanged on /org/teepkit/Broker1 for the given NULL-terminated names, and for the
 * jobs' changes: collected while the bus has messages queued, then one signal per object. */
void broker_emit_changed(Broker *b, const char *const *names);
/* Send what is collected now (before a signal that must come after it). */
void broker_emit_flush(Broker *b);
/* Mark a job's properties changed (JOB_PROP_*). */
void broker_job_changed(Job *j, unsigned props);
void broker_job_forget(Job *j);
/* Send j's changes (and props) and the broker's now: job_finish, before Finished. */
void broker_emit_job_now(Job *j, unsigned props);

/* ---- broker-bus.c: the public Broker1 interface and PayloadFetcher1 ---- */
int broker_bus_register(Broker *b);

/* ---- agent.c: calls to org.teepkit.Agent1 and the mirror of its properties ---- */
int broker_agent_watch(Broker *b);
/* Call method on the agent; types/... as sd_bus_message_append(). */
int broker_agent_call(Broker *b, sd_bus_slot **slot, const char *method, uint64_t timeout_usec,
                      sd_bus_message_handler_t callback, void *userdata, const char *types, ...);
/* GetAll on the agent, applied to the mirror; then callback(b, error or NULL, userdata). */
typedef void (*AgentRefreshFn)(Broker *b, const sd_bus_error *error, void *userdata);
int broker_agent_refresh(Broker *b, sd_bus_slot **slot, AgentRefreshFn callback, void *userdata);
/* The D-Bus error name a job reports for a failed agent call: the agent's own
 * org.teepkit.Error.* names pass through; "the agent is not there" becomes AgentUnavailable. */
const char *broker_agent_error_name(const sd_bus_error *e);

/* ---- job.c ---- */
const char *job_kind_to_string(JobKind k);
JobKind job_kind_from_string(const char *s);
const char *job_state_to_string(JobState s);
JobState job_state_from_string(const char *s);
bool job_state_is_final(JobState s);
bool job_state_transition_is_valid(JobState from, JobState to);

/* Create a queued job (announced with JobNew when the broker is on a bus). */
int job_new(Broker *b, JobKind kind, const char *component, char *const *tam_uris, const char *requester,
            uid_t uid, Job **ret);
Job *job_free(Job *j);
Job *broker_find_job(Broker *b, const char *path);
unsigned broker_count_unfinished_jobs(Broker *b, uid_t uid);

int job_set_state(Job *j, JobState s);
/* Monotonic; at most 99 until the job finished. */
void job_set_progress(Job *j, unsigned progress);
void job_set_tam_uri(Job *j, const char *uri);
/* End the job: Finished signal, then the object lingers for BROKER_JOB_LINGER_USEC. */
int job_succeed(Job *j, const char *result);
int job_fail(Job *j, const char *error_name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool job_tried(const Job *j, const char *uri);
void job_note_tried(Job *j, const char *uri);

/* Ask the agent (RequestTA / UnrequestTA / RequestPolicyCheck); the answer routes the job. */
int job_start(Job *j);
/* After a session, or after the agent said there is nothing to do: decide the job's outcome
 * from the (just refreshed) mirror of the agent's state. */
void job_evaluate(Job *j, bool via_session);

int broker_job_register(Broker *b);
/* broker_free: drop the RequestTAMany calls still in flight */
void job_route_batches_free(Broker *b);

/* ---- session.c ---- */
/* Hand a job whose request the agent has recorded to the session for uri (created, and
 * started, as needed). */
int session_attach(Broker *b, const char *uri, Job *j);
/* Take a job out of its session's lists (job_finish does it). */
void session_detach(Job *j);
Session *session_free(Session *s);
/* Start the runs held back while requests were on their way to the agent, once they are there. */
void session_kick_held(Broker *b);
void broker_emit_sessions_changed(Broker *b);
/* The agent's Refused signal: the running session with tam_uri ends its unmet jobs with name. */
void session_note_refusal(Broker *b, const char *tam_uri, const char *name, const char *message);

/* ---- policy.c: policy-check rounds ---- */
#define BROKER_MAX_POLICY_CALLS 32  /* RequestPolicyCheck calls in one round */
void policy_round_add(Job *j);
void policy_round_detach(Job *j);
/* The session that served a round's lead job is over (error_name NULL: it ran through). */
void policy_round_session_ended(Job *j, const char *error_name, const char *message);
void policy_round_free(Broker *b);

/* ---- fetcher.c: org.teepkit.PayloadFetcher1 ---- */
int method_fetch(sd_bus_message *m, void *userdata, sd_bus_error *error);
void broker_fetches_abort(Broker *b);

#include "macro.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(Broker *, broker_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);
