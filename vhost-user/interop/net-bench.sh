#!/bin/sh
# Measures vringj's virtio-net over vhost-user against DPDK, side by side in one run: each
# configuration runs our pairing and DPDK's pairing one after the other, round after round, so
# both see the same machine load. Not a test: it prints a table and asserts nothing.
#
#   DPDK front end (net_virtio_user txonly) -> our back end (net sink)   vs  -> DPDK back end (net_vhost rxonly)
#   our front end (net-peer send)           -> DPDK back end (rxonly)    vs  DPDK front end -> DPDK back end
#
# at 64 and 1500 bytes, split and packed. Rates are the mean of testpmd's per-second Rx-pps
# samples on the receiving side (our sink: its own per-second counters), after a warm-up, so
# start-up time is left out the same way for every pairing. Gbit/s counts frame bytes (no FCS,
# preamble or gap). Each testpmd gets one CPU (main and forwarding lcore on it): the front end
# CPU 1, the back end CPU 0; our JVMs are placed on the same CPU with taskset.
#
# Usage: net-bench.sh [-d SECONDS] [-r ROUNDS] [-j JAR] [-t TESTPMD] [-o DIR]
#   -d  seconds per measurement (default 10; the first 2 samples are warm-up)
#   -r  rounds (default 3)
#   -j  the vringj-vhost-user jar (default: vhost-user/target/vringj-vhost-user.jar next to this script)
#   -t  dpdk-testpmd (default: from PATH; setup-dpdk.sh installs it)
#   -o  where logs go (default: a new directory under /tmp)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
duration=10
rounds=3
jar="$here/../target/vringj-vhost-user.jar"
testpmd=$(command -v dpdk-testpmd || true)
out=""
while getopts d:r:j:t:o: opt; do
    case "$opt" in
        d) duration=$OPTARG ;;
        r) rounds=$OPTARG ;;
        j) jar=$OPTARG ;;
        t) testpmd=$OPTARG ;;
        o) out=$OPTARG ;;
        *) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [-j JAR] [-t TESTPMD] [-o DIR]" >&2; exit 2 ;;
    esac
done
[ "$duration" -ge 4 ] 2>/dev/null || { echo "net-bench.sh: -d $duration must be an integer >= 4 (2 warm-up samples)" >&2; exit 2; }
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "net-bench.sh: -r $rounds must be an integer >= 1" >&2; exit 2; }
[ -n "$testpmd" ] && [ -x "$testpmd" ] || { echo "net-bench.sh: dpdk-testpmd not found (run setup-dpdk.sh, or pass -t)" >&2; exit 2; }
[ -f "$jar" ] || { echo "net-bench.sh: jar $jar not found (./mvnw -pl vhost-user -am package)" >&2; exit 2; }
# the JDK 25 the build uses (.mvn/find-jdk.sh looks where ./mvnw and ./vringj look), else JAVA_HOME's or PATH's java
jdk=$(sh "$here/../../.mvn/find-jdk.sh" 2>/dev/null || true)
if [ -n "$jdk" ] && [ -x "$jdk/bin/java" ]; then java="$jdk/bin/java"; else java=${JAVA_HOME:+$JAVA_HOME/bin/}java; fi
[ -n "$out" ] || out=$(mktemp -d /tmp/vringj-net-bench.XXXXXX)
mkdir -p "$out"
sock="$out/s.sock"
# our back end exists once the jar has a 'net' subcommand
if "$java" -jar "$jar" net --help 2>&1 | grep -q '^Usage: vringj-vhost-user net '; then have_net=1; else have_net=0; fi

pids=""
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$sock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eal() { # eal CPU PREFIX: no hugepages, one CPU for both lcores, a unique file prefix
    echo "--lcores=0@$1,1@$1 --no-pci --no-huge -m 512 --file-prefix=vringj-bench-$$-$2"
}

start_dpdk_be() { # LOG
    rm -f "$sock"
    # shellcheck disable=SC2046 # word splitting of the EAL options is wanted
    "$testpmd" $(eal 0 be) --vdev "net_vhost0,iface=$sock,queues=1" -- --forward-mode=rxonly --auto-start \
        --stats-period 1 --nb-cores=1 --total-num-mbufs=16384 </dev/null >"$1" 2>&1 &
    be=$!
    pids="$pids $be"
    i=0
    while [ ! -S "$sock" ]; do
        i=$((i + 1)); [ "$i" -lt 300 ] || { echo "net-bench.sh: testpmd did not create $sock; see $1" >&2; exit 1; }
        sleep 0.1
    done
}

start_dpdk_fe() { # LOG SIZE PACKED(0|1)
    vq=""; [ "$3" -eq 1 ] && vq=",packed_vq=1"
    # shellcheck disable=SC2046
    "$testpmd" $(eal 1 fe) --vdev "net_virtio_user0,path=$sock,queues=1,queue_size=256$vq" -- \
        --forward-mode=txonly --txpkts="$2" --auto-start --stats-period 1 --nb-cores=1 --rxd=256 --txd=256 \
        --total-num-mbufs=16384 </dev/null >"$1" 2>&1 &
    fe=$!
    pids="$pids $fe"
    # the measurement starts once the front end forwards (its start-up takes seconds on a busy machine)
    i=0
    until grep -a -q 'packet forwarding - ports=' "$1" 2>/dev/null; do
        i=$((i + 1)); [ "$i" -lt 600 ] || { echo "net-bench.sh: testpmd front end did not start; see $1" >&2; break; }
        sleep 0.1
    done
}

stop() { # PID: SIGINT, as testpmd expects (it installs its own handler)
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_jvm() { # PID: SIGTERM (a background job of a non-interactive shell ignores SIGINT)
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Mpps: the mean of the per-second samples while traffic flowed, leaving out the first two
# (connection, JIT warm-up) and the last one (partial)
steady_mean() {
    awk '$1 > 0 {v[++n] = $1} END {k = 0; s = 0; for (i = 3; i < n; i++) {s += v[i]; k++}
        if (k) printf "%.3f", s / k / 1e6; else print "0"}'
}
mean_rx_pps() { # LOG
    grep -a -o 'Rx-pps: *[0-9]*' "$1" | awk '{print $2}' | steady_mean
}
mean_sink_pps() { # LOG with per-second lines "... txFramesPerSecond=N"
    grep -a -o 'txFramesPerSecond=[0-9]*' "$1" | cut -d= -f2 | steady_mean
}

measure_dpdk_dpdk() { # TAG SIZE PACKED -> Mpps
    start_dpdk_be "$out/$1-be.log"
    start_dpdk_fe "$out/$1-fe.log" "$2" "$3"
    sleep "$duration"
    stop "$fe"; stop "$be"
    mean_rx_pps "$out/$1-be.log"
}

measure_ours_dpdk() { # TAG SIZE PACKED: our front end sends into DPDK's back end
    start_dpdk_be "$out/$1-be.log"
    pk=""; [ "$3" -eq 1 ] && pk="--packed"
    taskset -c 1 "$java" -jar "$jar" net-peer --socket "$sock" --mode send --size "$2" $pk \
        --duration "$duration" >"$out/$1-ours.log" 2>&1 || true
    stop "$be"
    mean_rx_pps "$out/$1-be.log"
}

measure_dpdk_ours() { # TAG SIZE PACKED: DPDK's front end sends into our back end's sink
    if [ "$have_net" -eq 0 ]; then echo "n/a"; return; fi
    rm -f "$sock"
    taskset -c 0 "$java" -jar "$jar" net --socket "$sock" --mode sink --allow-unsealed-memory --stats-period 1 >"$out/$1-ours.log" 2>&1 &
    ob=$!
    pids="$pids $ob"
    i=0
    while [ ! -S "$sock" ]; do
        i=$((i + 1))
        if [ "$i" -ge 300 ] || ! kill -0 "$ob" 2>/dev/null; then
            echo "net-bench.sh: our back end did not listen on $sock; see $out/$1-ours.log" >&2
            stop_jvm "$ob"; echo "n/a"; return
        fi
        sleep 0.1
    done
    start_dpdk_fe "$out/$1-fe.log" "$2" "$3"
    sleep "$duration"
    stop "$fe"; stop_jvm "$ob"
    mean_sink_pps "$out/$1-ours.log"
}

gbps() { awk -v m="$1" -v s="$2" 'BEGIN {if (m == "n/a") print "n/a"; else printf "%.2f", m * s * 8 / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b}'; }

echo "net-bench: $(date -u +%FT%TZ), ${duration}s per measurement, $rounds round(s), logs in $out"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-6s %5s | %-22s %-22s %-6s | %-22s %-22s %-6s\n' round layout size \
    "DPDK->ours sink Mpps/Gb" "DPDK->DPDK Mpps/Gb" ratio "ours->DPDK Mpps/Gb" "DPDK->DPDK Mpps/Gb" ratio
r=1
while [ "$r" -le "$rounds" ]; do
    for size in 64 1500; do
        for packed in 0 1; do
            layout=split; [ "$packed" -eq 1 ] && layout=packed
            tag="r$r-$layout-$size"
            # redirected, not substituted: the measurements run in this shell, whose trap cleans up
            measure_dpdk_ours "$tag-dpdk-ours" "$size" "$packed" >"$out/a"
            measure_dpdk_dpdk "$tag-dpdk-dpdk-1" "$size" "$packed" >"$out/b"
            measure_ours_dpdk "$tag-ours-dpdk" "$size" "$packed" >"$out/c"
            measure_dpdk_dpdk "$tag-dpdk-dpdk-2" "$size" "$packed" >"$out/d"
            a=$(cat "$out/a"); b=$(cat "$out/b"); c=$(cat "$out/c"); d=$(cat "$out/d")
            printf '%-5s %-6s %5s | %-22s %-22s %-6s | %-22s %-22s %-6s\n' "$r" "$layout" "$size" \
                "$a / $(gbps "$a" "$size")" "$b / $(gbps "$b" "$size")" "$(ratio "$a" "$b")" \
                "$c / $(gbps "$c" "$size")" "$d / $(gbps "$d" "$size")" "$(ratio "$c" "$d")"
        done
    done
    r=$((r + 1))
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
