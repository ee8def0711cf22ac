# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/installer-common.sh: sourced by bench/installer-bigfile and bench/installer-killtest.
# Brings up a devstack with only the installer (bus-activated from BUILD), builds the small
# bus client bench/installer-client.c, and offers `agent CMD...` to run a command as the agent.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
STACK=$(mktemp -d /tmp/teep-bench-installer-XXXXXX)
CLIENT=$STACK/installer-client

die() {
        echo "$(basename "$0"): $*" >&2
        exit 1
}

bench_cleanup() {
        "$TOP/tools/devstack" down --dir "$STACK/stack" --quiet >/dev/null 2>&1 || true
        rm -rf "$STACK"
}
trap bench_cleanup EXIT

bench_up() {
        [ -x "$BUILD/installer/teep-installer" ] || die "no $BUILD/installer/teep-installer (meson setup build && ninja -C build)"
        cc -O2 -o "$CLIENT" "$TOP/bench/installer-client.c" $(pkg-config --cflags --libs libsystemd gnutls) ||
                die "cannot build the bus client"
        # Stay up between calls: the benchmarks read the installer's /proc entry after a call.
        printf '[Installer]\nIdleTimeoutSec=5min\n' >"$STACK/bench.conf"
        "$TOP/tools/devstack" up --dir "$STACK/stack" --build "$BUILD" --no-tam --no-agent --no-broker \
                --lifetime 7200 --conf "$STACK/bench.conf" --quiet >/dev/null || die "tools/devstack up failed"
        # shellcheck disable=SC1091
        source "$STACK/stack/env"
        STORE=$STACK/stack/var/lib/teepkit/tc
        chmod 0755 "$STACK"
}

# agent CMD...: run as the stack's agent user (the only uid the installer answers).
agent() {
        if [ "$TEEP_DISTINCT_USERS" = 1 ]; then
                setpriv --reuid="$TEEP_UID_AGENT" --regid="$TEEP_GID_AGENT" --clear-groups -- "$@"
        else
                "$@"
        fi
}

# The running installer's pid (activating it if needed).
installer_pid() {
        agent "$CLIENT" pid
}

now_ns() {
        date +%s%N
}
