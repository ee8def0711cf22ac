/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* brokerd.c: teep-brokerd — the TEEP Broker: public bus API, TEEP over HTTP, payload downloads */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "conf.h"
#include "config.h"
#include "http-wire.h"
#include "log.h"
#include "macro.h"
#include "sandbox.h"

static const char *arg_config = TEEP_CONF_FILE;
static bool arg_sandbox_self_test = false;

static void help(FILE *f) {
        fprintf(f,
                "Usage: teep-brokerd [--config FILE]\n\n"
                "The TEEP Broker of teepkit: owns org.teepkit.Broker1 on the system bus, speaks TEEP over\n"
                "HTTP with the TAMs for the TEEP agent, and downloads payloads for it. Its HTTP runs in\n"
                "teep-broker-http, a child it starts beside itself when needed.\n\n"
                "  --config FILE   read FILE and FILE.d/*.conf (default %s)\n"
                "  -h --help       show this help\n"
                "     --version    show the version\n\n"
                "See teep-brokerd(8), org.teepkit.Broker1(5) and teepkit.conf(5).\n",
                TEEP_CONF_FILE);
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_SANDBOX_SELF_TEST };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                /* hidden: start up, enter the box, try forbidden calls, exit (tests/seccomp) */
                { "sandbox-self-test", no_argument, NULL, ARG_SANDBOX_SELF_TEST },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_VERSION:
                        printf("teep-brokerd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_SANDBOX_SELF_TEST:
                        arg_sandbox_self_test = true;
                        break;
                default:
                        help(stderr);
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "teep-brokerd: unexpected argument '%s' (try --help)\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Broker *b = userdata;

        log_info("stopping on %s", strsignal((int)si->ssi_signo));
        broker_stop(b);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* teep-broker-http lives beside this binary: in libexecdir once installed, in the build tree's
 * broker/ for tests. Opened by transport_new() before the sandbox. */
static int helper_path(char **ret) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;

        if (n < 0)
                return -errno;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (!slash)
                return -ENOENT;
        *slash = '\0';
        return asprintf(ret, "%s/%s", exe, HTTP_HELPER_NAME) < 0 ? -ENOMEM : 0;
}

static int run(int argc, char **argv) {
        _cleanup_(teep_conf_freep) TeepConf *conf = NULL;
        _cleanup_(broker_freep) Broker *b = NULL;
        sd_event *event = NULL;
        BrokerConfig config = {};
        char errbuf[512] = "";
        sigset_t mask;
        int r;

        log_setup("teep-brokerd");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        r = teep_conf_load(arg_config, &conf, errbuf, sizeof(errbuf));
        if (r < 0)
                return log_error_errno(r, "cannot read the configuration: %s", errbuf[0] ? errbuf : strerror(-r));
        r = broker_config_load(&config, conf, errbuf, sizeof(errbuf));
        if (r < 0)
                return log_error_errno(r, "bad configuration: %s", errbuf[0] ? errbuf : strerror(-r));
        /* a drop-in written for a newer release must not stop this one: warn, go on */
        (void)teep_conf_warn_unknown(conf, "Broker", broker_config_keys);

        r = helper_path(&config.http_helper);
        if (r < 0) {
                broker_config_done(&config);
                return log_error_errno(r, "cannot find %s: %s", HTTP_HELPER_NAME, strerror(-r));
        }
        (void)signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r >= 0)
                r = broker_new(event, &config, &b);
        broker_config_done(&config);
        if (r < 0) {
                log_error_errno(r, "cannot set up: %s", strerror(-r));
                goto out;
        }
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, b);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, b);
        if (r < 0) {
                log_error_errno(r, "cannot watch signals: %s", strerror(-r));
                goto out;
        }
        r = broker_start(b);
        if (r < 0)
                goto out;

        /* Everything that opens files by name or talks to NSS is done; from here on the broker
         * moves bytes between sockets. */
        r = broker_sandbox_apply();
        if (r < 0) {
                log_error_errno(r, "cannot install the seccomp filter: %s", strerror(-r));
                goto out;
        }
        if (arg_sandbox_self_test) {
                r = broker_sandbox_self_test();
                goto out;
        }

        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %s", strerror(-r));
out:
        b = broker_free(b);
        sd_event_unref(event);
        return r;
}

int main(int argc, char **argv) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
