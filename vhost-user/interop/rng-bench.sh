#!/bin/sh
# Measures how fast a Linux guest reads /dev/hwrng through vringj's vhost-user rng back end
# against QEMU's built-in virtio-rng, side by side in one run, with and without a vIOMMU
# (intel-iommu with a device IOTLB: every chain's buffer is a fresh IOVA, so our back end misses
# and asks QEMU over the back-end channel, while QEMU's own device walks the vIOMMU in process).
# Not a test: it prints a table and asserts nothing.
#
#   plain:   vhost-user-rng-pci + our back end          vs  virtio-rng-pci
#   viommu:  the same, iommu_platform=on,ats=on behind intel-iommu,device-iotlb=on, guest intel_iommu=on
#
# Each boot reads BYTES from /dev/hwrng in the guest (timed there, from /proc/uptime, so boot time
# is left out). Guests run under TCG on one vCPU; rounds alternate the peers so both see the same
# load. For our back end behind the vIOMMU it also prints how a miss round trip splits: worker
# to socket (our sender thread), the front end's answer (QEMU), update to worker awake (ours).
#
# Usage: rng-bench.sh [-b BYTES] [-r ROUNDS] [-p MICROS] [-j JAR] [-w WORKDIR] [-o DIR]
#   -b  bytes per read, a multiple of 4096 (default 524288)
#   -r  rounds (default 3)
#   -p  our back end's --busy-poll-us, 0..1000000 (default 0: its workers sleep in poll at once)
#   -j  the vringj-vhost-user jar (default: vhost-user/target/vringj-vhost-user.jar next to this script)
#   -w  kernel and initramfs from setup.sh (default: vhost-user/target/interop; made if missing)
#   -o  where logs go (default: a new directory under /tmp)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bytes=524288
rounds=3
busy=0
jar="$here/../target/vringj-vhost-user.jar"
work="$here/../target/interop"
out=""
while getopts b:r:p:j:w:o: opt; do
    case "$opt" in
        b) bytes=$OPTARG ;;
        r) rounds=$OPTARG ;;
        p) busy=$OPTARG ;;
        j) jar=$OPTARG ;;
        w) work=$OPTARG ;;
        o) out=$OPTARG ;;
        *) echo "usage: $0 [-b BYTES] [-r ROUNDS] [-p MICROS] [-j JAR] [-w WORKDIR] [-o DIR]" >&2; exit 2 ;;
    esac
done
[ "$bytes" -ge 4096 ] 2>/dev/null && [ $((bytes % 4096)) -eq 0 ] || {
    echo "rng-bench.sh: -b $bytes must be a positive multiple of 4096" >&2; exit 2; }
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "rng-bench.sh: -r $rounds must be an integer >= 1" >&2; exit 2; }
[ "$busy" -ge 0 ] 2>/dev/null && [ "$busy" -le 1000000 ] || {
    echo "rng-bench.sh: -p $busy must be an integer 0..1000000 (microseconds)" >&2; exit 2; }
[ -f "$jar" ] || { echo "rng-bench.sh: jar $jar not found (./mvnw -pl vhost-user -am package)" >&2; exit 2; }
# the initramfs must carry this script's /init (it times the read): rebuild it when older
if [ ! -f "$work/vmlinuz" ] || [ ! -f "$work/initrd.gz" ] || [ "$here/init" -nt "$work/initrd.gz" ]; then
    sh "$here/setup.sh" "$work" >&2
fi
# the JDK 25 the build uses (.mvn/find-jdk.sh looks where ./mvnw and ./vringj look), else JAVA_HOME's or PATH's java
jdk=$(sh "$here/../../.mvn/find-jdk.sh" 2>/dev/null || true)
if [ -n "$jdk" ] && [ -x "$jdk/bin/java" ]; then java="$jdk/bin/java"; else java=${JAVA_HOME:+$JAVA_HOME/bin/}java; fi
[ -n "$out" ] || out=$(mktemp -d /tmp/vringj-rng-bench.XXXXXX)
mkdir -p "$out"
sock="$out/rng.sock"

pids=""
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$sock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# boot CONFIG PEER ROUND: one guest; prints "bytes centis" (or "0 0" on failure)
boot() {
    config=$1 peer=$2 round=$3
    log="$out/$config-$peer-$round"
    iommu="" append="" bus="" platform=""
    if [ "$config" = viommu ]; then
        iommu="-device intel-iommu,intremap=on,device-iotlb=on -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1"
        append="intel_iommu=on"
        bus=",bus=rp1"
        platform=",iommu_platform=on,ats=on"
    fi
    be=""
    if [ "$peer" = vringj ]; then
        rm -f "$sock"
        "$java" -jar "$jar" rng --socket "$sock" --busy-poll-us "$busy" >"$log.backend" 2>&1 &
        be=$!
        pids="$pids $be"
        i=0
        while [ ! -S "$sock" ]; do
            i=$((i + 1))
            [ "$i" -lt 300 ] || { echo "rng-bench.sh: the back end did not create $sock; see $log.backend" >&2; exit 1; }
            sleep 0.1
        done
        device="-chardev socket,id=c0,path=$sock -device vhost-user-rng-pci,chardev=c0$bus$platform"
    else
        device="-device virtio-rng-pci$bus$platform"
    fi
    # shellcheck disable=SC2086 # word splitting of the device options is wanted
    timeout 600 qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 512 -smp 1 -nographic -no-reboot -nic none \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet vringj.rngbytes=$bytes $append" \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        $iommu $device </dev/null >"$log.console" 2>&1 || true
    if [ -n "$be" ]; then
        kill -TERM "$be" 2>/dev/null || true
        wait "$be" 2>/dev/null || true
    fi
    line=$(grep -a 'VRINGJ hwrng_bytes=' "$log.console" | tail -n 1)
    n=$(echo "$line" | sed -n 's/.*hwrng_bytes=\([0-9]*\).*/\1/p')
    c=$(echo "$line" | sed -n 's/.*centis=\([0-9]*\).*/\1/p')
    if [ "${n:-0}" != "$bytes" ] || [ "${c:-0}" -le 0 ]; then
        echo "rng-bench.sh: $config/$peer round $round read ${n:-nothing} of $bytes bytes; see $log.console" >&2
        echo "0 0"
    else
        echo "$n $c"
    fi
}

kib_s() { # BYTES CENTIS
    awk -v b="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.1f", b / 1024 / (c / 100); else printf "-" }'
}

echo "rng-bench: $bytes bytes per read, $rounds rounds, busy poll $busy us, load $(cut -d' ' -f1-3 /proc/loadavg), logs in $out"
printf '%-8s %-6s %-8s %12s\n' config round peer "KiB/s"
for config in plain viommu; do
    ratios=""
    for r in $(seq 1 "$rounds"); do
        # alternate which peer goes first, so neither always meets a warmer or colder machine
        if [ $((r % 2)) -eq 1 ]; then order="vringj qemu"; else order="qemu vringj"; fi
        for peer in $order; do
            # shellcheck disable=SC2046 # "bytes centis" split into two words; "0 0" if boot printed nothing
            set -- $(boot "$config" "$peer" "$r") 0 0
            rate=$(kib_s "$1" "$2")
            printf '%-8s %-6s %-8s %12s\n' "$config" "$r" "$peer" "$rate"
            eval "rate_$peer=$rate"
        done
        # shellcheck disable=SC2154 # set by the eval above
        ratios="$ratios $(awk -v v="$rate_vringj" -v q="$rate_qemu" 'BEGIN { if (q > 0 && v > 0) printf "%.3f", v / q; else printf "-" }')"
    done
    median=$(echo "$ratios" | tr ' ' '\n' | grep -v '^-\?$' | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }')
    echo "$config: vringj/qemu per round:$ratios; median $median"
    if [ "$config" = viommu ]; then
        for f in "$out"/viommu-vringj-*.backend; do
            split=$(grep -o 'missToSocket=[^ ]* missAnswer=[^ ]* updateToWorker=[^ ]*' "$f" | tail -n 1)
            echo "  $(basename "$f" .backend): miss round trip (count/mean/max) ${split:-not reported}"
        done
    fi
done
