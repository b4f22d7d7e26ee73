package io.vringj.vhostuser.backend;

import io.vringj.device.rng.EntropySource;
import io.vringj.device.rng.RngDevice;
import io.vringj.device.rng.RngLimits;
import io.vringj.vhostuser.frontend.net.NetPeerCommand;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * The command line: {@code java -jar vringj-vhost-user.jar rng --socket PATH}. Runs until
 * SIGINT/SIGTERM, when a shutdown hook closes the listening socket and removes the socket file.
 */
@Command(name = "vringj-vhost-user", mixinStandardHelpOptions = true, version = "vringj vhost-user 0.1.0",
    description = "A pure-Java vhost-user back end for QEMU.",
    subcommands = {VhostUserCommand.Rng.class, NetCommand.class, NetPeerCommand.class})
public final class VhostUserCommand implements Runnable {

    /** Creates the command (picocli instantiates it). */
    public VhostUserCommand() {
    }

    /**
     * Entry point.
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format",
                "%1$tFT%1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
        }
        System.exit(new CommandLine(new VhostUserCommand()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(new PrintWriter(System.err, true));
    }

    /** {@code rng}: serve a virtio-rng device. */
    /** Keeps the configured logger reachable (java.util.logging holds loggers weakly). */
    private static final java.util.logging.Logger[] VERBOSE_LOGGER = new java.util.logging.Logger[1];

    @Command(name = "rng", mixinStandardHelpOptions = true,
        description = "Serve a virtio-rng device (entropy from SecureRandom) on a vhost-user socket.")
    static final class Rng implements Callable<Integer> {
        /** The parsed command, so a refused option is reported on its error stream (picocli injects it). */
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--socket", required = true, paramLabel = "PATH",
            description = "Unix socket to create and listen on (QEMU: -chardev socket,path=PATH).")
        String socket;

        @Option(names = {"-v", "--verbose"},
            description = "Log every front-end request and IOTLB message (java.util.logging level FINE).")
        boolean verbose;

        @Option(names = "--allow-unsealed-memory",
            description = "Accept guest memory whose file is not sealed against shrinking. RISK: the back end "
                + "checks the file's size before each pass over a ring and closes a connection whose file "
                + "shrank, but a front end that truncates its file while the back end is touching it can end "
                + "the whole process (the JVM does not turn every such SIGBUS into an exception). QEMU's "
                + "memory-backend-memfd is sealed and needs no such permission.")
        boolean allowUnsealedMemory;

        @Option(names = "--max-connections", paramLabel = "N",
            defaultValue = "" + BackendOptions.DEFAULT_MAX_CONNECTIONS,
            description = "Front ends served at once, each with its own memory, rings and workers; one more is "
                + "refused with a logged reason (default: ${DEFAULT-VALUE}).")
        int maxConnections;

        @Option(names = "--busy-poll-us", paramLabel = "MICROS", defaultValue = "0",
            description = "Busy poll a vring this many microseconds, 0.." + BackendOptions.MAX_BUSY_POLL_MICROS
                + ", before sleeping: after its ring runs dry (kicks stay disabled) and while a translation "
                + "misses in the device IOTLB, like Linux vhost's busyloop_timeout. Trades a spinning core for "
                + "lower latency per request (default: ${DEFAULT-VALUE}, never).")
        int busyPollMicros;

        @Option(names = "--rng-max-bytes-per-chain", paramLabel = "BYTES",
            defaultValue = "" + RngLimits.DEFAULT_MAX_BYTES_PER_CHAIN,
            description = "Most entropy bytes written into one buffer chain (default: ${DEFAULT-VALUE}).")
        int maxBytesPerChain;

        @Option(names = "--rng-max-bytes", paramLabel = "BYTES",
            defaultValue = "" + RngLimits.DEFAULT_MAX_BYTES_PER_PERIOD,
            description = "Most entropy bytes per period and queue, like QEMU's rng max-bytes; a faster driver "
                + "waits for the next period (default: ${DEFAULT-VALUE}).")
        long maxBytesPerPeriod;

        @Option(names = "--rng-period", paramLabel = "MILLIS",
            defaultValue = "" + RngLimits.DEFAULT_PERIOD_MILLIS,
            description = "The rate-limit period in milliseconds, 1..1000, like QEMU's rng period "
                + "(default: ${DEFAULT-VALUE}).")
        long periodMillis;

        @Option(names = "--seed", paramLabel = "N",
            description = "Use a deterministic byte stream with this seed instead of SecureRandom (tests only).")
        Long seed;

        @Override
        public Integer call() throws Exception {
            if (verbose) {
                java.util.logging.Logger logger = java.util.logging.Logger.getLogger("io.vringj.vhostuser");
                logger.setLevel(java.util.logging.Level.FINE);
                java.util.logging.ConsoleHandler handler = new java.util.logging.ConsoleHandler();
                handler.setLevel(java.util.logging.Level.FINE);
                logger.addHandler(handler);
                logger.setUseParentHandlers(false);
                VERBOSE_LOGGER[0] = logger;
            }
            Long s = seed;
            RngLimits limits;
            try {
                limits = new RngLimits(maxBytesPerChain, maxBytesPerPeriod, periodMillis);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "rng limits: " + e.getMessage());
            }
            RngDevice device = new RngDevice(
                s == null ? EntropySource::secureRandom : () -> EntropySource.deterministic(s), true, limits);
            BackendOptions options;
            try {
                options = BackendOptions.defaults().withAllowUnsealedMemory(allowUnsealedMemory)
                    .withMaxConnections(maxConnections);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--max-connections: " + e.getMessage());
            }
            try {
                options = options.withBusyPollMicros(busyPollMicros);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--busy-poll-us: " + e.getMessage());
            }
            VhostUserServer server = VhostUserServer.bind(socket, device, options);
            Thread hook = new Thread(() -> {
                server.close();
                // java.util.logging resets its handlers in its own shutdown hook: report directly
                System.err.println("vringj-vhost-user: stopped, socket " + socket + " removed; "
                    + server.statistics());
            }, "vhost-user-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            server.run();
            return 0;
        }
    }
}
