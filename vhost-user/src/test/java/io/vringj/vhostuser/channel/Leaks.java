package io.vringj.vhostuser.channel;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What this process holds (fds, threads, memfd mappings), to prove a closed channel left nothing behind. */
final class Leaks {
    /** The name the connecting end gives its memfd: /proc/PID/maps shows {@code /memfd:vringj-channel}. */
    static final String MEMFD = "vringj-channel";

    private Leaks() {
    }

    static List<String> openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(p -> {
                try {
                    return p.getFileName() + " -> " + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    // the directory stream's own fd is gone by the time it is read
                    return p.getFileName() + " -> (closed)";
                }
            }).filter(s -> !s.endsWith("(closed)")).sorted().collect(Collectors.toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** @return live threads of the channel and the vhost-user layers under it */
    static List<String> channelThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
            .filter(n -> n.startsWith("vringj-channel") || n.startsWith("vhost-user")).sorted()
            .collect(Collectors.toList());
    }

    static long memfdMappings() {
        return memfdMappings(MEMFD);
    }

    /** @return how many mappings of memfds whose name starts with {@code name} this process has */
    static long memfdMappings(String name) {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("/memfd:" + name)).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits up to 10 s for the fds to be those of {@code before}, no channel thread and no channel mapping; asserts it. */
    static void assertNoneLeft(List<String> fdsBefore) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline && (!openFds().equals(fdsBefore) || !channelThreads().isEmpty()
            || memfdMappings() != 0)) {
            Thread.sleep(20);
        }
        assertEquals(fdsBefore, openFds(), "every fd of the channel is closed");
        assertEquals(List.of(), channelThreads(), "every thread of the channel ended");
        assertEquals(0, memfdMappings(), "the shared memory is unmapped");
    }

    /**
     * As {@link #assertNoneLeft}, while another channel of the same JVM stays open: its threads and
     * mappings are left alone; only the fds must be back to {@code fdsBefore}, and at most
     * {@code otherMappings} mappings of a channel memfd remain.
     */
    static void assertNoneLeftBut(List<String> fdsBefore, int otherMappings) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline && (!openFds().equals(fdsBefore) || memfdMappings() > otherMappings * 2L)) {
            Thread.sleep(20);
        }
        assertEquals(fdsBefore, openFds(), "every fd of the closed channel is closed");
        assertTrue(memfdMappings() <= otherMappings * 2L, "the closed channel's memory is unmapped");
    }

    /** The test JVM's modules and class path, as one class path for a child JVM. */
    static String classPath() {
        List<String> entries = new ArrayList<>();
        for (String property : new String[] {"jdk.module.path", "java.class.path"}) {
            String value = System.getProperty(property);
            if (value != null && !value.isEmpty()) {
                entries.add(value);
            }
        }
        return String.join(File.pathSeparator, entries);
    }

    /** Starts {@code Ping args...} in a child JVM, its output in {@code log}. */
    static Process ping(Path log, String... args) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
            classPath(), "io.vringj.vhostuser.channel.example.Ping"));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }
}
