#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the end-to-end test needs and fetches Debian's kernel:
# QEMU, busybox-static and cpio from apt; the kernel image package with
# `apt-get download` (not installed: only vmlinuz and the modules listed in modules.txt
# are extracted) into the cache directory run.sh reads; and that kernel's
# linux-headers package, installed (it brings the matching gcc and kbuild),
# so kmod/ is built against exactly the kernel the test boots.
#
#   USBTS_E2E_CACHE   where to put the kernel (default ~/.cache/usbtimesync-e2e)
set -euo pipefail
cache=${USBTS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usbtimesync-e2e}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x insmod >/dev/null || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v xz >/dev/null || need+=(xz-utils) # kernels whose modules are .ko.xz
if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

# linux-image-amd64 is a metapackage: the image is the package it depends on.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
    $SUDO apt-get update
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
fi
[ -n "$pkg" ] || { echo "setup.sh: cannot resolve linux-image-amd64 to a kernel package" >&2; exit 1; }

# Its headers: linux-headers-<the same release>, at the same version, both
# read from one query.
release=${pkg#linux-image-}
hdr=linux-headers-$release
versions=$(apt-cache show --no-all-versions "$pkg" "$hdr" 2>/dev/null | sed -n 's/^Package: //p; s/^Version: //p' |
    paste - - | sort -u)
ver=$(awk -v p="$pkg" '$1 == p {print $2}' <<<"$versions")
hver=$(awk -v p="$hdr" '$1 == p {print $2}' <<<"$versions")
if [ -z "$ver" ] || [ "$ver" != "$hver" ]; then
    echo "setup.sh: $pkg ${ver:-?} and $hdr ${hver:-?} are not at one version in apt" >&2
    exit 1
fi
if [ "$(dpkg-query -W -f='${Status} ${Version}' "$hdr" 2>/dev/null)" != "install ok installed $ver" ]; then
    $SUDO apt-get install -y --no-install-recommends "$hdr=$ver"
fi
mkdir -p "$cache"
echo "/usr/src/$hdr" >"$cache/HEADERS"

# The modules every boot loads, and those a boot script adds (modules.txt).
here=$(cd "$(dirname "$0")" && pwd)
modules=$(grep -v '^#' "$here/modules.txt" | tr '\n' ' ')
want="$pkg $ver: $modules"
if [ -f "$cache/PACKAGE" ] && [ "$(cat "$cache/CONTENTS" 2>/dev/null)" = "$want" ] && [ -f "$cache/vmlinuz" ]; then
    echo "setup.sh: $pkg already in $cache"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt downloads as user _apt
(cd "$work" && apt-get download "$pkg=$ver" 2>&1 | tail -n 1)
dpkg-deb -x "$work"/*.deb "$work/x"
mkdir -p "$cache/modules"
cp "$work"/x/boot/vmlinuz-* "$cache/vmlinuz"
for m in $modules; do
    f=$(find "$work/x/lib/modules" -name "$m.ko*" | head -n 1)
    [ -n "$f" ] || { echo "setup.sh: $pkg has no $m module" >&2; exit 1; }
    case "$f" in
        *.ko.xz) xz -dc "$f" >"$cache/modules/$m.ko" ;;
        *.ko.zst) zstd -dc "$f" >"$cache/modules/$m.ko" ;;
        *) cp "$f" "$cache/modules/$m.ko" ;;
    esac
done
echo "$pkg" >"$cache/PACKAGE"
echo "$want" >"$cache/CONTENTS"
echo "setup.sh: $pkg $ver's kernel and USB modules are in $cache; its headers in /usr/src/$hdr"
