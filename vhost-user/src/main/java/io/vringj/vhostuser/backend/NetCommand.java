package io.vringj.vhostuser.backend;

import io.vringj.device.net.NetDevice;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code net}: serves a virtio-net device (one rx/tx pair) on a vhost-user socket in one of the
 * modes of {@link NetDevice}. Prints the device's report on exit (SIGINT/SIGTERM), on SIGUSR1, and
 * with {@code --stats-period} one line of counters per period. Offers ACCESS_PLATFORM, as the
 * {@code rng} command does: a front end with a vIOMMU (QEMU {@code iommu_platform=on}) gets the
 * rings behind the device IOTLB, any other front end does not negotiate it.
 */
@Command(name = "net", mixinStandardHelpOptions = true,
    description = "Serve a virtio-net device on a vhost-user socket: sink, reflect (MACs swapped) or responder "
        + "(ARP and ICMP echo for one IPv4 address). Offers ACCESS_PLATFORM: a QEMU guest with "
        + "iommu_platform=on gets its rings behind the device IOTLB.")
final class NetCommand implements Callable<Integer> {
    /** This command as picocli sees it: usage errors go to its error stream. */
    @Spec
    CommandSpec spec;

    @Option(names = "--socket", required = true, paramLabel = "PATH",
        description = "Unix socket to create and listen on (QEMU -chardev socket,path=PATH; DPDK net_virtio_user path=PATH).")
    String socket;

    @Option(names = "--mode", required = true, paramLabel = "sink|reflect|responder",
        description = "sink: count and read every frame; reflect: send every frame back with the MACs swapped; "
            + "responder: answer ARP and ICMP echo for --ip.")
    String mode;

    @Option(names = "--mac", paramLabel = "M", defaultValue = "02:00:00:00:00:01",
        description = "The responder's MAC address (default: ${DEFAULT-VALUE}).")
    String mac;

    @Option(names = "--ip", paramLabel = "A", description = "The responder's IPv4 address (responder mode).")
    String ip;

    @Option(names = "--stats-period", paramLabel = "SECONDS", defaultValue = "0",
        description = "Print the counters every this many seconds, 0 for never (default).")
    int statsPeriod;

    @Option(names = "--allow-unsealed-memory",
        description = "Accept guest memory whose file is not sealed against shrinking, as DPDK's virtio_user "
            + "shares it. RISK: as for rng, a front end that truncates its file while the back end touches it can "
            + "end the whole process; the back end checks the size before each pass.")
    boolean allowUnsealedMemory;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "1",
        description = "Front ends served at once (default: ${DEFAULT-VALUE}).")
    int maxConnections;

    /** Creates the command (picocli instantiates it). */
    NetCommand() {
    }

    /**
     * @param text six hex octets separated by colons
     * @return the MAC in the low 48 bits
     */
    static long parseMac(String text) {
        String[] parts = text.split(":", -1);
        if (parts.length != 6) {
            throw new IllegalArgumentException("MAC '" + text + "' is not six hex octets separated by ':'");
        }
        long mac = 0;
        for (String p : parts) {
            if (p.length() < 1 || p.length() > 2) {
                throw new IllegalArgumentException("MAC '" + text + "' has octet '" + p + "'; each is 1-2 hex digits");
            }
            try {
                mac = mac << 8 | Integer.parseInt(p, 16);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("MAC '" + text + "' has octet '" + p + "', which is not hex", e);
            }
        }
        return mac;
    }

    /**
     * @param text a dotted quad
     * @return the address as a big-endian int
     */
    static int parseIpv4(String text) {
        String[] parts = text.split("\\.", -1);
        if (parts.length != 4) {
            throw new IllegalArgumentException("IPv4 address '" + text + "' is not four decimal octets separated by '.'");
        }
        int ip = 0;
        for (String p : parts) {
            int octet;
            try {
                octet = p.isEmpty() || p.length() > 3 ? -1 : Integer.parseInt(p);
            } catch (NumberFormatException e) {
                octet = -1;
            }
            if (octet < 0 || octet > 255) {
                throw new IllegalArgumentException("IPv4 address '" + text + "' has octet '" + p + "'; each is 0..255");
            }
            ip = ip << 8 | octet;
        }
        return ip;
    }

    NetDevice device() {
        return switch (mode.toLowerCase(Locale.ROOT)) {
            case "sink" -> NetDevice.sink();
            case "reflect" -> NetDevice.reflect();
            case "responder" -> {
                if (ip == null) {
                    throw new IllegalArgumentException("--mode responder needs --ip A (the address it answers for)");
                }
                yield NetDevice.responder(parseMac(mac), parseIpv4(ip));
            }
            default -> throw new IllegalArgumentException("--mode '" + mode + "' is not one of sink, reflect, responder");
        };
    }

    @Override
    public Integer call() throws Exception {
        NetDevice device;
        BackendOptions options;
        try {
            device = device();
            if (statsPeriod < 0) {
                throw new IllegalArgumentException("--stats-period " + statsPeriod + " is negative");
            }
            options = BackendOptions.defaults().withAllowUnsealedMemory(allowUnsealedMemory)
                .withMaxConnections(maxConnections);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        VhostUserServer server = VhostUserServer.bind(socket, device, options);
        Thread hook = new Thread(() -> {
            server.close();
            // java.util.logging resets its handlers in its own shutdown hook: report directly
            System.err.println("vringj-vhost-user: stopped, socket " + socket + " removed; " + server.statistics());
            System.out.println(device.report());
            System.out.flush();
        }, "vhost-user-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("USR1"), signal -> {
                System.out.println(device.report());
                System.out.flush();
            });
        } catch (IllegalArgumentException unavailable) {
            System.err.println("net: SIGUSR1 is not available for statistics (" + unavailable.getMessage() + ")");
        }
        if (statsPeriod > 0) {
            Thread.ofPlatform().daemon().name("net-stats").start(() -> printPeriodically(device, statsPeriod));
        }
        server.run();
        return 0;
    }

    /** One line per period: frames taken from tx (and put on rx) in total and per second. */
    private static void printPeriodically(NetDevice device, int seconds) {
        long lastTx = 0;
        long lastRx = 0;
        long last = System.nanoTime();
        while (true) {
            try {
                Thread.sleep(seconds * 1000L);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            var s = device.statistics();
            long tx = s.txFrames();
            long rx = s.rxFrames();
            double dt = (now - last) / 1e9;
            System.out.printf(Locale.ROOT, "net: txFrames=%d rxFrames=%d txFramesPerSecond=%d rxFramesPerSecond=%d drops=%d%n",
                tx, rx, (long) ((tx - lastTx) / dt), (long) ((rx - lastRx) / dt), s.totalDrops());
            System.out.flush();
            lastTx = tx;
            lastRx = rx;
            last = now;
        }
    }
}
