#!/bin/sh
# The cross-language figure of the message channel (issue #13): vringj's MessageChannel as the
# driver end against DPDK testpmd's net_vhost back end in macswap forwarding (every frame goes
# back with its Ethernet addresses swapped), beside DPDK's own front end, net_virtio_user, against
# the same testpmd: the DPDK-to-DPDK peer figure. Each configuration runs our pairing and DPDK's
# one after the other, round after round, so both see the same machine load. Not a test: it
# prints a table and asserts nothing.
#
#   messages/s   our channel sending batches of 32 (perf's ChannelDpdkLoad --mode send)
#                vs testpmd net_virtio_user --forward-mode=txonly (bursts of 32)       at 64, 1024, 4096 B
#   round trip   our channel, one 64-byte message in flight (ChannelDpdkLoad --mode pingpong)
#                vs testpmd net_virtio_user --forward-mode=macswap --tx-first --burst=1: one frame
#                bouncing between the two testpmds
#
# Every rate is the mean of the back end's per-second Rx-pps samples, the same counter for both
# pairings, leaving out the first two (connection, JIT warm-up) and the last (partial). With one
# message in flight Rx-pps is round trips per second; the round-trip time is its inverse. Neither
# sender receives in the throughput pairing (txonly does not; the back end's transmit into a full
# receive queue is dropped and counted by testpmd). The back end gets CPU 0, the front end (our JVM
# or testpmd) CPU 1, as in vhost-user/interop/net-bench.sh.
#
# Usage: channel-bench.sh [-d SECONDS] [-r ROUNDS] [-j JAR] [-t TESTPMD] [-o DIR] [-P]
#   -d  seconds per measurement (default 10; the first 2 samples are warm-up)
#   -r  rounds (default 3)
#   -j  perf's jar (default: perf/target/vringj-perf.jar next to this script; ./mvnw -B package -DskipTests)
#   -t  dpdk-testpmd (default: from PATH; vhost-user/interop/setup-dpdk.sh installs it)
#   -o  where logs go (default: a new directory under /tmp)
#   -P  packed rings on both front ends (default: split)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
duration=10
rounds=3
jar="$here/target/vringj-perf.jar"
testpmd=$(command -v dpdk-testpmd || true)
out=""
packed=0
while getopts d:r:j:t:o:P opt; do
    case "$opt" in
        d) duration=$OPTARG ;;
        r) rounds=$OPTARG ;;
        j) jar=$OPTARG ;;
        t) testpmd=$OPTARG ;;
        o) out=$OPTARG ;;
        P) packed=1 ;;
        *) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [-j JAR] [-t TESTPMD] [-o DIR] [-P]" >&2; exit 2 ;;
    esac
done
[ "$duration" -ge 4 ] 2>/dev/null || { echo "channel-bench.sh: -d $duration must be an integer >= 4 (2 warm-up samples)" >&2; exit 2; }
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "channel-bench.sh: -r $rounds must be an integer >= 1" >&2; exit 2; }
[ -n "$testpmd" ] && [ -x "$testpmd" ] || { echo "channel-bench.sh: dpdk-testpmd not found (run vhost-user/interop/setup-dpdk.sh, or pass -t)" >&2; exit 2; }
[ -f "$jar" ] || { echo "channel-bench.sh: jar $jar not found (./mvnw -B package -DskipTests)" >&2; exit 2; }
java_home=$(sh "$here/../.mvn/find-jdk.sh") || exit 2
java="$java_home/bin/java"
[ -n "$out" ] || out=$(mktemp -d /tmp/vringj-channel-bench.XXXXXX)
mkdir -p "$out"
sock="$out/s.sock"
layout=split; vq=""; pk=""
if [ "$packed" -eq 1 ]; then layout=packed; vq=",packed_vq=1"; pk="--packed"; fi

pids=""
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$sock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eal() { # eal CPU PREFIX: no hugepages, one CPU for both lcores, a unique file prefix
    echo "--lcores=0@$1,1@$1 --no-pci --no-huge -m 512 --file-prefix=vringj-chbench-$$-$2"
}
# mbufs with room for a 4 KiB frame in one segment (the default holds 2 KiB)
mbuf="--mbuf-size=4608 --total-num-mbufs=16384"

start_dpdk_be() { # LOG: net_vhost, macswap
    rm -f "$sock"
    # shellcheck disable=SC2046,SC2086 # word splitting of the EAL and mbuf options is wanted
    "$testpmd" $(eal 0 be) --vdev "net_vhost0,iface=$sock,queues=1" -- --forward-mode=macswap --auto-start \
        --stats-period 1 --nb-cores=1 $mbuf </dev/null >"$1" 2>&1 &
    be=$!
    pids="$pids $be"
    i=0
    while [ ! -S "$sock" ]; do
        i=$((i + 1)); [ "$i" -lt 300 ] || { echo "channel-bench.sh: testpmd did not create $sock; see $1" >&2; exit 1; }
        sleep 0.1
    done
}

start_dpdk_fe() { # LOG FORWARDING-OPTIONS...: net_virtio_user
    log=$1; shift
    # shellcheck disable=SC2046,SC2086
    "$testpmd" $(eal 1 fe) --vdev "net_virtio_user0,path=$sock,queues=1,queue_size=256$vq" -- \
        "$@" --auto-start --stats-period 1 --nb-cores=1 --rxd=256 --txd=256 $mbuf </dev/null >"$log" 2>&1 &
    fe=$!
    pids="$pids $fe"
    i=0
    until grep -a -q 'packet forwarding - ports=' "$log" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -lt 600 ] || { echo "channel-bench.sh: testpmd front end did not start; see $log" >&2; break; }
        sleep 0.1
    done
}

stop() { # PID: SIGINT, as testpmd expects
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Mpps: the mean of the per-second samples while traffic flowed, leaving out the first two and the last
steady_mean() {
    awk '$1 > 0 {v[++n] = $1} END {k = 0; s = 0; for (i = 3; i < n; i++) {s += v[i]; k++}
        if (k) printf "%.4f", s / k / 1e6; else print "0"}'
}
mean_rx_pps() { # LOG
    grep -a -o 'Rx-pps: *[0-9]*' "$1" | awk '{print $2}' | steady_mean
}

measure_dpdk() { # TAG FORWARDING-OPTIONS...: DPDK's front end against the back end -> Mpps at the back end
    tag=$1; shift
    start_dpdk_be "$out/$tag-be.log"
    start_dpdk_fe "$out/$tag-fe.log" "$@"
    sleep "$duration"
    stop "$fe"; stop "$be"
    mean_rx_pps "$out/$tag-be.log"
}

measure_ours() { # TAG LOAD-OPTIONS...: our channel against the back end -> Mpps at the back end
    tag=$1; shift
    start_dpdk_be "$out/$tag-be.log"
    # shellcheck disable=SC2086
    timeout $((duration + 60)) taskset -c 1 "$java" --enable-native-access=ALL-UNNAMED -cp "$jar" \
        io.vringj.perf.channel.ChannelDpdkLoad --socket "$sock" --seconds "$duration" $pk "$@" \
        >"$out/$tag-ours.log" 2>&1 || echo "channel-bench.sh: our channel failed; see $out/$tag-ours.log" >&2
    stop "$be"
    mean_rx_pps "$out/$tag-be.log"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.2fx", a / b}'; }
micros() { awk -v m="$1" 'BEGIN {if (m + 0 == 0) print "n/a"; else printf "%.1f", 1 / m}'; }

echo "channel-bench: $(date -u +%FT%TZ), $layout rings, ${duration}s per measurement, $rounds round(s), logs in $out"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-18s | %-14s %-14s %-6s\n' round what "vringj" "DPDK" "ratio"
r=1
while [ "$r" -le "$rounds" ]; do
    for size in 64 1024 4096; do
        tag="r$r-$size"
        # redirected, not substituted: the measurements run in this shell, whose trap cleans up
        measure_ours "$tag-ours" --mode send --size "$size" --batch 32 >"$out/a"
        measure_dpdk "$tag-dpdk" --forward-mode=txonly --txpkts="$size" --burst=32 >"$out/b"
        a=$(cat "$out/a"); b=$(cat "$out/b")
        printf '%-5s %-18s | %-14s %-14s %-6s\n' "$r" "$size B Mmsg/s" "$a" "$b" "$(ratio "$a" "$b")"
    done
    tag="r$r-rtt"
    measure_ours "$tag-ours" --mode pingpong --size 64 >"$out/a"
    measure_dpdk "$tag-dpdk" --forward-mode=macswap --tx-first --burst=1 --txpkts=64 >"$out/b"
    a=$(cat "$out/a"); b=$(cat "$out/b")
    # ratio of round trips per second = DPDK's round-trip time / ours
    printf '%-5s %-18s | %-14s %-14s %-6s\n' "$r" "64 B round trip us" "$(micros "$a")" "$(micros "$b")" \
        "$(ratio "$a" "$b")"
    r=$((r + 1))
done
echo "ratios: vringj / DPDK messages per second; for the round trip, DPDK's round-trip time / vringj's (higher is better)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
