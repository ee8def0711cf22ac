# SPDX-License-Identifier: LGPL-2.1-or-later
# tools/lib.sh: shared by tools/demo and tools/check — install what is missing, configure, build.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"

# Debian 12 packages the build, the tests and the demo need.
PACKAGES=(
        gcc clang pkg-config meson ninja-build
        libcbor-dev libgnutls28-dev gnutls-bin libcriterion-dev
        libsystemd-dev libcurl4-gnutls-dev libseccomp-dev libmicrohttpd-dev
        dbus python3-docutils libclang-rt-14-dev
        dpkg-dev debhelper fakeroot lintian
        nettle-dev libgmp-dev
        softhsm2 p11-kit
)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_missing() {
        local missing=() p
        for p in "${PACKAGES[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        say "installing ${missing[*]}"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update
        "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

find_vectors() {
        local d
        for d in "${TEEP_VECTORS:-}" "$TOP/../shared/teep-vectors" "$TOP/shared/teep-vectors"; do
                if [ -n "$d" ] && [ -d "$d" ]; then
                        (cd "$d" && pwd)
                        return 0
                fi
        done
        echo "tools: cannot find the TEEP test vectors; put shared/ beside the checkout or set TEEP_VECTORS" >&2
        return 1
}

# build DIR [meson options...]
build() {
        local dir=$1
        shift
        local vectors
        vectors=$(find_vectors)
        if [ ! -f "$dir/build.ninja" ]; then
                say "configuring $dir"
                meson setup "$dir" -Dvectors_dir="$vectors" "$@"
        else
                meson configure "$dir" -Dvectors_dir="$vectors" "$@" >/dev/null
        fi
        say "building $dir"
        ninja -C "$dir"
}
