package io.vringj.perf.regress;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** A one-line description of the machine a run measured, for reports and baselines. */
public final class Machine {
    private Machine() {
    }

    /** @return OS, architecture, CPU count and model (where the OS tells), JDK */
    public static String describe() {
        Runtime.Version v = Runtime.version();
        return System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
            + System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " CPUs" + cpuModel()
            + ", JDK " + v + " (" + System.getProperty("java.vm.vendor") + ")" + loadAverage();
    }

    /**
     * @return {@code ", load average N"} (the 1-minute figure where the OS tells it), or empty: a
     *     figure above the CPU count means other work competed with the benchmarks
     */
    public static String loadAverage() {
        Path loadavg = Path.of("/proc/loadavg");
        if (!Files.isReadable(loadavg)) {
            return "";
        }
        try {
            String first = Files.readString(loadavg).trim().split("\\s+")[0];
            return ", load average " + first;
        } catch (IOException | RuntimeException e) {
            // the load is a nicety; without it the description still stands
            return "";
        }
    }

    private static String cpuModel() {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(cpuinfo)) {
            return "";
        }
        try {
            List<String> lines = Files.readAllLines(cpuinfo);
            for (String line : lines) {
                if (line.startsWith("model name")) {
                    return " (" + line.substring(line.indexOf(':') + 1).trim() + ")";
                }
            }
        } catch (IOException | RuntimeException e) {
            // the model is a nicety; without it the description still names the CPU count
            return "";
        }
        return "";
    }
}
