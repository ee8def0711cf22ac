/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-peers.h: the agent's installer (org.teepkit.Installer1) and fetcher (the broker's
 * org.teepkit.PayloadFetcher1) over the system bus */
#pragma once

#include <systemd/sd-bus.h>

#include "agent.h"

/* userdata for both: the sd_bus connection */
extern const AgentInstaller bus_installer;
extern const AgentFetcher bus_fetcher;
