#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/packaging/test-dpkg.sh: a real dpkg installs the example app (examples/hello-tee) into a
# scratch root whose teepkit package carries the trigger and the postinst of packaging/debian;
# the trigger's teepctl sync talks to the devstack (real bus, broker, agent, installer, TAM).
#   1. install  → the TC is requested by package:hello-tee and installed; syncing again is a no-op
#   2. purge    → unrequested and removed
#   3. a running app (user teep-app) also requested it → purge leaves it installed for the app
#   4. a broken declaration, and a bus that is not there, never fail dpkg; without the agent,
#      sync changes nothing
#   5. sync as a user who is not root: AccessDenied, nothing changes
# Environment (tests/meson.build): TEEP_SOURCE_ROOT, TEEP_BUILD_DIR, TEEPCTL (default: the build
# dir's). Exit 77 = skipped.
set -euo pipefail

SRC=${TEEP_SOURCE_ROOT:?}
BUILD=${TEEP_BUILD_DIR:?}
TEEPCTL=${TEEPCTL:-$BUILD/teepctl/teepctl}

skip() {
        echo "SKIP: $*"
        exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (dpkg --root with maintainer scripts, the devstack's users)"
for tool in dpkg dpkg-deb dpkg-parsechangelog dbus-daemon busctl setpriv unshare; do
        command -v $tool >/dev/null || skip "$tool is missing"
done

WORK=$(mktemp -d /tmp/teepkit-dpkg-XXXXXX)
chmod 0755 "$WORK"
STACK=$WORK/stack
ROOT=$WORK/root
cleanup() {
        "$SRC/tools/devstack" down --quiet --dir "$STACK" >/dev/null 2>&1 || true
        [ "${TEEP_KEEP_STACK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
        echo "FAIL: $*" >&2
        for f in "$WORK"/*.out "$STACK"/log/broker.log "$STACK"/log/agent.log; do
                [ -s "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }
        done
        exit 1
}
step() { echo "== $*"; }

"$SRC/tools/devstack" up --quiet --dir "$STACK" --build "$BUILD" --lifetime 300 >/dev/null ||
        fail "the devstack did not start"
# shellcheck disable=SC1091
source "$STACK/env"
[ "$TEEP_DISTINCT_USERS" = 1 ] || skip "the devstack runs without distinct users"
COMP=$TEEP_DEMO_COMPONENT
STORE=$STACK/var/lib/teepkit/tc
as_app() { setpriv --reuid="$TEEP_UID_APP" --regid="$TEEP_GID_APP" --clear-groups -- "$@"; }

# ---- the packages ----

# teepkit as far as dpkg's trigger machinery is concerned: the very triggers file and postinst
# of packaging/debian (debhelper's #DEBHELPER# snippets start units; there are none here).
VERSION=$(dpkg-parsechangelog -l "$SRC/packaging/debian/changelog" -S Version)
PKG=$WORK/teepkit
mkdir -p "$PKG/DEBIAN" "$PKG/usr/share/teepkit/requests.d"
cat >"$PKG/DEBIAN/control" <<EOF
Package: teepkit
Version: $VERSION
Architecture: all
Maintainer: teepkit developers <teepkit@example.org>
Description: teepkit's trigger and postinst (tests/packaging/test-dpkg.sh)
 Built from packaging/debian/teepkit.triggers and teepkit.postinst.
EOF
cp "$SRC/packaging/debian/teepkit.triggers" "$PKG/DEBIAN/triggers"
grep -q '^#DEBHELPER#$' "$SRC/packaging/debian/teepkit.postinst" || fail "teepkit.postinst lost its #DEBHELPER# line"
sed 's/^#DEBHELPER#$/: # (debhelper snippets)/' "$SRC/packaging/debian/teepkit.postinst" >"$PKG/DEBIAN/postinst"
chmod 0755 "$PKG/DEBIAN/postinst"
dpkg-deb --build --root-owner-group "$PKG" "$WORK/teepkit.deb" >/dev/null

# the example app, as shipped in examples/
cp -r "$SRC/examples/hello-tee" "$WORK/hello-tee"
chmod -R u=rwX,go=rX "$WORK/hello-tee"
dpkg-deb --build --root-owner-group "$WORK/hello-tee" "$WORK/hello-tee.deb" >/dev/null

# an app whose declaration is broken (line 3)
mkdir -p "$WORK/bad-app/DEBIAN" "$WORK/bad-app/usr/share/teepkit/requests.d"
sed -e 's/^Package: hello-tee/Package: bad-app/' "$SRC/examples/hello-tee/DEBIAN/control" >"$WORK/bad-app/DEBIAN/control"
printf '[Component]\nId=TEEP-Device/other/ta\nTAM=ftp://tam.example.com/\n' \
        >"$WORK/bad-app/usr/share/teepkit/requests.d/bad-app.conf"
dpkg-deb --build --root-owner-group "$WORK/bad-app" "$WORK/bad-app.deb" >/dev/null

# ---- the scratch root ----

mkdir -p "$ROOT"/var/lib/dpkg/{info,updates,triggers,alternatives} "$ROOT/var/log"
touch "$ROOT/var/lib/dpkg/status" "$ROOT/var/lib/dpkg/available"
# The maintainer scripts run here, not chrooted (dpkg sets DPKG_ROOT for them); they find the
# build tree's teepctl first on PATH and the devstack's bus in DBUS_SYSTEM_BUS_ADDRESS.
PATH=$(dirname "$TEEPCTL"):$PATH
export PATH
n=0
dpkg_root() {
        n=$((n + 1))
        timeout 120 dpkg --root="$ROOT" --force-script-chrootless --log="$WORK/dpkg.log" "$@" \
                >"$WORK/dpkg-$n.out" 2>&1
}

# wait_for WHAT CMD...: until CMD succeeds, 60 s at most.
wait_for() {
        local what=$1
        shift
        for _ in $(seq 300); do
                "$@" && return 0
                sleep 0.2
        done
        fail "timed out waiting for: $what"
}
listed() { "$TEEPCTL" list >"$WORK/list.out" 2>&1 && grep -Eq "$1" "$WORK/list.out"; }
not_listed() { "$TEEPCTL" list >"$WORK/list.out" 2>&1 && ! grep -Eq "$1" "$WORK/list.out"; }
store_files() { find "$STORE" -type f ! -name '.*' | wc -l; }
store_empty() { [ "$(store_files)" = 0 ]; }

step "teepkit (trigger + postinst) into the scratch root"
dpkg_root --install "$WORK/teepkit.deb" || fail "dpkg --install teepkit failed"
grep -q "in sync" "$WORK/dpkg-$n.out" || fail "teepkit's postinst did not run teepctl sync"

# ---- 1. install ----
step "1. dpkg --install hello-tee: the trigger requests its TC for package:hello-tee"
dpkg_root --install "$WORK/hello-tee.deb" || fail "dpkg --install hello-tee failed"
grep -q "Processing triggers for teepkit" "$WORK/dpkg-$n.out" || fail "dpkg did not run teepkit's trigger"
grep -q "package:hello-tee: request $COMP: queued as /org/teepkit/Broker1/job/" "$WORK/dpkg-$n.out" ||
        fail "the trigger did not queue the request"
wait_for "$COMP installed for package:hello-tee" listed "^$COMP +installed .*package:hello-tee"
[ "$(store_files)" = 1 ] || fail "the store holds $(store_files) files, not 1"
cmp -s "$(find "$STORE" -type f ! -name '.*')" "$STACK/tam/payloads/demo-ta.bin" ||
        fail "the stored TC differs from what the signer signed"

step "   syncing again changes nothing (no job)"
"$TEEPCTL" sync --root "$ROOT" --block >"$WORK/sync.out" 2>&1 || fail "teepctl sync by hand failed"
grep -q "1 declared component in $ROOT/usr/share/teepkit/requests.d, 1 package request recorded: in sync" \
        "$WORK/sync.out" || fail "a second sync was not a no-op"
grep -Eq "queued|: (un)?request " "$WORK/sync.out" && fail "a second sync made a job"
dpkg_root --triggers-only teepkit || true # nothing pending: dpkg may say so
"$TEEPCTL" sync --root "$ROOT" --dry-run >"$WORK/sync.out" 2>&1 || fail "teepctl sync --dry-run failed"
grep -q "in sync" "$WORK/sync.out" || fail "--dry-run after sync is not in sync"

# ---- 5. not root ----
step "5. sync as teep-app (not root), after the declaration is gone: AccessDenied, nothing changes"
mv "$ROOT/usr/share/teepkit/requests.d/hello-tee.conf" "$WORK/hello-tee.conf.aside"
rc=0
as_app "$TEEPCTL" sync --root "$ROOT" --block >"$WORK/sync-app.out" 2>&1 || rc=$?
mv "$WORK/hello-tee.conf.aside" "$ROOT/usr/share/teepkit/requests.d/hello-tee.conf"
[ $rc = 4 ] || fail "sync as a user exited $rc, not 4 (access denied)"
grep -q "org.teepkit.Error.AccessDenied" "$WORK/sync-app.out" || fail "no AccessDenied from the broker"
listed "^$COMP +installed .*package:hello-tee" || fail "a user's sync changed the package's request"

# ---- 2. purge ----
step "2. dpkg --purge hello-tee: the trigger unrequests it, the TC is removed"
dpkg_root --purge hello-tee || fail "dpkg --purge hello-tee failed"
grep -q "package:hello-tee: unrequest $COMP: queued" "$WORK/dpkg-$n.out" || fail "the trigger did not unrequest"
wait_for "the TC removed from the store" store_empty
wait_for "$COMP gone from the list" not_listed "^$COMP "

# ---- 3. a running app also needs it ----
step "3. the TC requested by hello-tee and by a running app: purging hello-tee leaves it"
dpkg_root --install "$WORK/hello-tee.deb" || fail "dpkg --install hello-tee (again) failed"
wait_for "$COMP installed for package:hello-tee" listed "^$COMP +installed .*package:hello-tee"
as_app "$TEEPCTL" request "$COMP" >"$WORK/app.out" 2>&1 || fail "the app's request failed"
listed "package:hello-tee, uid:$TEEP_UID_APP|uid:$TEEP_UID_APP, package:hello-tee" ||
        fail "the TC is not requested by both the package and the app"
dpkg_root --purge hello-tee || fail "dpkg --purge hello-tee (again) failed"
wait_for "package:hello-tee's request withdrawn" not_listed "package:hello-tee"
sleep 1 # a wrong removal would have a moment to happen
listed "^$COMP +installed .*uid:$TEEP_UID_APP" || fail "the TC is gone although the app still requests it"
[ "$(store_files)" = 1 ] || fail "the store lost the app's TC"
as_app "$TEEPCTL" unrequest "$COMP" >"$WORK/app.out" 2>&1 || fail "the app's unrequest failed"
wait_for "the TC removed once the app let go" store_empty

# ---- 4. dpkg never fails because of teepkit ----
step "4. a broken declaration: dpkg succeeds, the error names file and line, nothing is requested"
dpkg_root --install "$WORK/bad-app.deb" || fail "dpkg failed because of a broken declaration"
grep -q "/usr/share/teepkit/requests.d/bad-app.conf:3: TAM= 'ftp://tam.example.com/' is not" "$WORK/dpkg-$n.out" ||
        fail "the error does not name bad-app.conf:3"
not_listed "TEEP-Device/other/ta" || fail "a broken declaration was requested"
step "   the bus is not there: dpkg still succeeds"
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$WORK/no-such-bus dpkg_root --purge bad-app ||
        fail "dpkg failed because the bus was not there"
grep -q "cannot connect to the system bus" "$WORK/dpkg-$n.out" || fail "the missing bus was not reported"
step "   the agent stops: the broker keeps what it last said (it rests between sessions too)"
kill -TERM "$(cat "$STACK/run/agent.pid")"
wait_for "the agent off the bus" sh -c '! busctl --system --no-legend list | grep -q "^org.teepkit.Agent1 "'
"$TEEPCTL" status >"$WORK/status.out" 2>&1 && grep -q "Agent: teep-agentd " "$WORK/status.out" ||
        fail "the broker forgot the agent when it stopped: $(cat "$WORK/status.out")"
step "   a broker that never heard from the agent: sync refuses to guess from an empty record"
"$SRC/tools/devstack" down --quiet --dir "$STACK" >/dev/null 2>&1
"$SRC/tools/devstack" up --quiet --dir "$STACK" --build "$BUILD" --lifetime 120 --no-agent >/dev/null ||
        fail "the devstack without an agent did not start"
sync_refuses() {
        ! "$TEEPCTL" sync --root "$ROOT" --block >"$WORK/sync.out" 2>&1 &&
                grep -q "the broker has not heard from teep-agentd yet" "$WORK/sync.out"
}
wait_for "sync to refuse without the agent" sync_refuses
dpkg_root --purge teepkit || fail "dpkg --purge teepkit failed"

echo "PASS: dpkg trigger → teepctl sync → broker, against the devstack"
