package io.vringj.vhostuser.frontend;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** What this process holds, from /proc: open fds and mappings of a memfd. */
public final class Resources {
    private Resources() {
    }

    /** @return the open fds of this process, as "fd -> target" lines (for messages) */
    public static List<String> openFds() {
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

    /** @return how many mappings of the memfd whose name starts with {@code prefix} this process has */
    public static long memfdMappings(String prefix) {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("/memfd:" + prefix)).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits up to {@code millis} for as many open fds as {@code expected} (threads finish closing); returns them. */
    static List<String> awaitFds(List<String> expected, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000;
        List<String> now = openFds();
        while (now.size() != expected.size() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            now = openFds();
        }
        return now;
    }

    /** The test JVM's modules and class path, as one class path for a child JVM. */
    public static String classPath() {
        List<String> entries = new ArrayList<>();
        for (String property : new String[] {"jdk.module.path", "java.class.path"}) {
            String value = System.getProperty(property);
            if (value != null && !value.isEmpty()) {
                entries.add(value);
            }
        }
        return String.join(File.pathSeparator, entries);
    }
}
