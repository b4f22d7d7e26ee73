#!/bin/sh
# Prepares the vhost-user interop suite: installs QEMU and busybox from the
# distribution if missing, unpacks the distribution kernel (no install scripts
# run) and builds a small initramfs whose /init proves a virtio-rng device or,
# with vringj.test=net on the kernel command line, pings over virtio-net.
#
# Usage: setup.sh WORKDIR
# Leaves WORKDIR/vmlinuz and WORKDIR/initrd.gz. Needs root (or sudo) for apt-get.
set -eu

work=${1:?usage: setup.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_update=1
apt_update_once() {
    if [ "$need_update" -eq 1 ]; then
        as_root apt-get update -q
        need_update=0
    fi
}

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86
fi
if [ ! -x /bin/busybox ] || ! /bin/busybox --list | grep -qx insmod; then
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static
fi

# The versioned kernel package that linux-image-amd64 points to, unpacked without install scripts.
if [ ! -f "$work/vmlinuz" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        apt_update_once
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || { echo "setup.sh: cannot find the versioned linux-image package" >&2; exit 1; }
    mkdir -p "$work/kernel-pkg"
    (cd "$work/kernel-pkg" && { ls ./"$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" || { apt_update_once; apt-get download "$pkg"; }; })
    rm -rf "$work/kernel"
    dpkg-deb -x "$work/kernel-pkg"/"$pkg"_*.deb "$work/kernel"
    cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
fi

kver=$(ls "$work/kernel/lib/modules" | head -n 1)
mods="$work/kernel/lib/modules/$kver/kernel"

# initramfs: busybox, the virtio modules (rng, and net with the failover modules virtio_net needs),
# and an /init that checks the device the kernel command line names.
root="$work/initramfs"
rm -rf "$root"
mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev"
cp /bin/busybox "$root/bin/busybox"
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/char/hw_random/virtio-rng \
         net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
    src=""
    for ext in .ko .ko.xz .ko.zst; do
        if [ -f "$mods/$m$ext" ]; then src="$mods/$m$ext"; break; fi
    done
    [ -n "$src" ] || { echo "setup.sh: module $m not found under $mods" >&2; exit 1; }
    case "$src" in
        *.xz) xz -dc "$src" > "$root/modules/$(basename "$m").ko" ;;
        *.zst) zstd -qdc "$src" > "$root/modules/$(basename "$m").ko" ;;
        *) cp "$src" "$root/modules/$(basename "$m").ko" ;;
    esac
done
cp "$(dirname "$0")/init" "$root/init"
chmod +x "$root/init"
if command -v cpio >/dev/null 2>&1; then cpio="cpio"; else cpio="/bin/busybox cpio"; fi
(cd "$root" && find . | $cpio -o -H newc > "$work/initrd.cpio")
gzip -1 -c "$work/initrd.cpio" > "$work/initrd.gz"
rm -f "$work/initrd.cpio"
echo "setup.sh: kernel $kver, initramfs $work/initrd.gz"
