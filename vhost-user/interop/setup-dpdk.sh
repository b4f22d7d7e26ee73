#!/bin/sh
# Prepares the DPDK part of the vhost-user interop suite: makes dpdk-testpmd (DPDK 22.11 from the
# distribution) available with the two virtual PMDs the suite uses, net_vhost (DPDK's back end)
# and net_virtio_user (DPDK's front end). Idempotent.
#
# Usage: setup-dpdk.sh WORKDIR
# Leaves WORKDIR/dpdk-testpmd, a link to a runnable testpmd. No hugepages are needed: the suite
# runs testpmd with --no-huge -m 512 --no-pci.
#
# When dpdk-testpmd is not installed, this installs only the runtime libraries testpmd links
# against plus the two PMD packages (apt-get, --no-install-recommends), and unpacks the testpmd
# binary from the dpdk-dev package without installing it (dpdk-dev would pull about 220 packages,
# headers and build tools). Needs root (or sudo) for apt-get.
set -eu

work=${1:?usage: setup-dpdk.sh WORKDIR}
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

# The shared libraries dpdk-testpmd 22.11 (Debian 12) links against, by package, and the PMDs
# the suite loads (EAL loads every PMD under .../dpdk/pmds-23.0 at start).
runtime="librte-net-vhost23 librte-net-virtio23 librte-ethdev23 librte-eal23 librte-cmdline23 \
librte-bus-vdev23 librte-bus-pci23 librte-bus-auxiliary23 librte-bus-dpaa23 librte-common-dpaax23 \
librte-common-iavf23 librte-common-mlx5-23 librte-crypto-scheduler23 librte-mempool-dpaa23 \
librte-net-bnxt23 librte-net-bond23 librte-net-dpaa23 librte-net-i40e23 librte-net-ice23 \
librte-net-ixgbe23 librte-net-mlx5-23 librte-bitratestats23 librte-bpf23 librte-gro23 librte-gso23 \
librte-latencystats23 librte-pdump23 librte-metrics23"

testpmd=$(command -v dpdk-testpmd 2>/dev/null || true)
if [ -z "$testpmd" ] && [ -x "$work/dpdk/usr/bin/dpdk-testpmd" ]; then
    testpmd="$work/dpdk/usr/bin/dpdk-testpmd"
fi
if [ -z "$testpmd" ]; then
    apt_update_once
    # shellcheck disable=SC2086 # a list of package names
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $runtime
    mkdir -p "$work/dpdk-pkg"
    (cd "$work/dpdk-pkg" && { ls ./dpdk-dev_*.deb >/dev/null 2>&1 || apt-get download dpdk-dev; })
    rm -rf "$work/dpdk"
    dpkg-deb -x "$work"/dpdk-pkg/dpdk-dev_*.deb "$work/dpdk"
    testpmd="$work/dpdk/usr/bin/dpdk-testpmd"
fi
for pmd in librte-net-vhost23 librte-net-virtio23; do
    if ! dpkg-query -W -f='${Status}' "$pmd" 2>/dev/null | grep -q 'install ok installed'; then
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pmd"
    fi
done

missing=$(ldd "$testpmd" | awk '/not found/ {print $1}')
[ -z "$missing" ] || { echo "setup-dpdk.sh: $testpmd lacks libraries: $missing" >&2; exit 1; }
ln -sf "$testpmd" "$work/dpdk-testpmd"
echo "setup-dpdk.sh: dpdk-testpmd at $testpmd"
