package io.vringj.perf.regress;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The machine a run measured: what a baseline is recorded for. Ratios between peers cancel a
 * machine's speed but not its shape (an Intel and an AMD 2-vCPU VM move cache lines between cores
 * at very different costs, and the two-thread ratios differ by 2-4x), so a run is judged only
 * against a baseline of the same machine.
 *
 * <p>Two machines are the same when their CPU model, core count and JDK feature release agree
 * ({@link #sameAs}). The full JDK version and the kernel are recorded and shown, but a patch
 * release of either does not make a baseline useless.
 *
 * @param cpu the CPU model as the OS names it ({@code model name} in /proc/cpuinfo), or the architecture
 * @param cores the processors available to the JVM
 * @param jdk the full JDK version, e.g. {@code 25.0.3+9-LTS}
 * @param kernel the OS name and kernel release, e.g. {@code Linux 6.18.44}
 */
public record Machine(String cpu, int cores, String jdk, String kernel) {
    private static final Pattern LEGACY = Pattern.compile(
        "^(?<os>\\S+) (?<kernel>\\S+) \\S+, (?<cores>\\d+) CPUs(?: \\((?<cpu>.*?)\\))?, JDK (?<jdk>\\S+)");

    /**
     * @param cpu the CPU model
     * @param cores the core count, at least 1
     * @param jdk the JDK version
     * @param kernel the kernel
     */
    public Machine {
        Objects.requireNonNull(cpu, "cpu");
        Objects.requireNonNull(jdk, "jdk");
        Objects.requireNonNull(kernel, "kernel");
        if (cores < 1) {
            throw new IllegalArgumentException("cores " + cores + " must be at least 1");
        }
    }

    /** @return the machine this JVM runs on */
    public static Machine current() {
        return new Machine(cpuModel().orElse(System.getProperty("os.arch")),
            Runtime.getRuntime().availableProcessors(), Runtime.version().toString(),
            System.getProperty("os.name") + " " + System.getProperty("os.version"));
    }

    /**
     * Reads the one-line description baselines carried before they were kept per machine, e.g.
     * {@code Linux 6.18.44 amd64, 2 CPUs (AMD EPYC), JDK 25.0.3+9-LTS (Eclipse Adoptium), load average 1.56}.
     *
     * @param description the old description
     * @return the machine it names
     * @throws IllegalArgumentException if the description is not in that form
     */
    public static Machine parseLegacy(String description) {
        Matcher m = LEGACY.matcher(description);
        if (!m.find()) {
            throw new IllegalArgumentException("machine \"" + description + "\" is not of the form \"<os> <kernel> <arch>,"
                + " <n> CPUs (<model>), JDK <version>\"");
        }
        String cpu = m.group("cpu");
        return new Machine(cpu == null ? "unknown" : cpu, Integer.parseInt(m.group("cores")), m.group("jdk"),
            m.group("os") + " " + m.group("kernel"));
    }

    /** @return the JDK's feature release ({@code 25} of {@code 25.0.3+9-LTS}) */
    public String jdkFeature() {
        int end = 0;
        while (end < jdk.length() && Character.isDigit(jdk.charAt(end))) {
            end++;
        }
        return end == 0 ? jdk : jdk.substring(0, end);
    }

    /**
     * @param other another machine
     * @return whether a baseline recorded on {@code other} can judge a run on this one: same CPU
     *     model, core count and JDK feature release
     */
    public boolean sameAs(Machine other) {
        return cpu.equalsIgnoreCase(other.cpu) && cores == other.cores && jdkFeature().equals(other.jdkFeature());
    }

    /** @return a one-line description for reports */
    public String describe() {
        return String.format(Locale.ROOT, "%s, %d CPUs, JDK %s, %s", cpu, cores, jdk, kernel);
    }

    /**
     * @return the 1-minute load average where the OS tells it ({@code /proc/loadavg}), NaN otherwise:
     *     a figure above the CPU count means other work competed with the benchmarks
     */
    public static double loadAverage() {
        Path loadavg = Path.of("/proc/loadavg");
        if (!Files.isReadable(loadavg)) {
            return Double.NaN;
        }
        try {
            return Double.parseDouble(Files.readString(loadavg).trim().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            // the load is a nicety where the OS does not tell it; the run still stands
            return Double.NaN;
        }
    }

    private static java.util.Optional<String> cpuModel() {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(cpuinfo)) {
            return java.util.Optional.empty();
        }
        try {
            List<String> lines = Files.readAllLines(cpuinfo);
            for (String line : lines) {
                if (line.startsWith("model name")) {
                    return java.util.Optional.of(line.substring(line.indexOf(':') + 1).trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            // without /proc/cpuinfo the architecture names the CPU
            return java.util.Optional.empty();
        }
        return java.util.Optional.empty();
    }
}
