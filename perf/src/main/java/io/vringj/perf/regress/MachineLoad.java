package io.vringj.perf.regress;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How busy the machine was while a run measured, from what Linux tells every process: the
 * 1-minute load average ({@code /proc/loadavg}), sampled before every benchmark batch, and the
 * share of CPU time the hypervisor stole from this VM ({@code /proc/stat}, the {@code steal}
 * column) over the whole run.
 *
 * <p>The benchmarks themselves keep up to two threads runnable, so a load average up to
 * {@code min(cores, 2)} is the run's own; the machine counts as too busy to judge when the load
 * average exceeds that by more than half the core count ({@link #loadLimit}), or when more than
 * {@value #STEAL_LIMIT} of the CPU time was stolen. Where the OS tells neither (not Linux), the
 * figures are NaN and only the spread over rounds can say a run was noisy.
 *
 * @param medianLoad the median of the load-average samples, NaN if none
 * @param maxLoad the largest sample, NaN if none
 * @param steal the stolen share of CPU time over the run (0.05 = 5%), NaN if unknown
 * @param cores the processors available
 */
public record MachineLoad(double medianLoad, double maxLoad, double steal, int cores) {
    /** The stolen share of CPU time above which the VM's CPUs were not the run's own. */
    public static final double STEAL_LIMIT = 0.05;

    /**
     * @param cores the processors available
     * @return nothing known about the load (a run evaluated from a results file)
     */
    public static MachineLoad unknown(int cores) {
        return new MachineLoad(Double.NaN, Double.NaN, Double.NaN, cores);
    }

    /**
     * @param cores the processors available
     * @return the load average above which other work competed with the benchmarks for the CPUs:
     *     the benchmarks' own threads ({@code min(cores, 2)}) plus half the cores
     */
    public static double loadLimit(int cores) {
        return Math.min(cores, 2) + 0.5 * cores;
    }

    /** @return why the machine was too busy to judge the run; empty if it was quiet enough (or unknown) */
    public List<String> tooBusy() {
        List<String> reasons = new ArrayList<>();
        double limit = loadLimit(cores);
        if (medianLoad > limit) {
            reasons.add(String.format(Locale.ROOT, "load average %.2f (median while measuring; max %.2f) is above %.2f"
                + " (%d CPUs: the benchmarks' own threads + half the CPUs)", medianLoad, maxLoad, limit, cores));
        }
        if (steal > STEAL_LIMIT) {
            reasons.add(String.format(Locale.ROOT, "the hypervisor stole %.1f%% of the CPU time (limit %.0f%%)",
                steal * 100, STEAL_LIMIT * 100));
        }
        return reasons;
    }

    /** @return the figures in one line for reports */
    public String describe() {
        return String.format(Locale.ROOT, "load average %s (median; max %s; limit %.2f), steal %s",
            num(medianLoad), num(maxLoad), loadLimit(cores), Double.isNaN(steal) ? "unknown"
                : String.format(Locale.ROOT, "%.1f%%", steal * 100));
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "unknown" : String.format(Locale.ROOT, "%.2f", v);
    }

    /**
     * @param line the aggregate {@code cpu} line of /proc/stat
     * @return {total, steal} jiffies; total counts user, nice, system, idle, iowait, irq, softirq
     *     and steal (guest time is already inside user)
     * @throws IllegalArgumentException if the line is not the aggregate cpu line
     */
    static long[] cpuTimes(String line) {
        String[] f = line.trim().split("\\s+");
        if (f.length < 9 || !f[0].equals("cpu")) {
            throw new IllegalArgumentException("not the aggregate cpu line of /proc/stat: \"" + line + "\"");
        }
        long total = 0;
        for (int i = 1; i <= 8; i++) {
            total += Long.parseLong(f[i]);
        }
        return new long[] {total, Long.parseLong(f[8])};
    }

    /** Samples the load while a run measures. */
    public static final class Monitor {
        private final List<Double> loads = new ArrayList<>();
        private final long[] startCpu;

        /** Starts watching: reads the CPU times now. */
        public Monitor() {
            startCpu = readCpu();
        }

        /** Takes one load-average sample (call before each benchmark batch). */
        public void sample() {
            double load = Machine.loadAverage();
            if (!Double.isNaN(load)) {
                loads.add(load);
            }
        }

        /**
         * @param cores the processors available
         * @return what the samples and the CPU times since the start say
         */
        public MachineLoad finish(int cores) {
            long[] end = readCpu();
            double steal = Double.NaN;
            if (startCpu != null && end != null && end[0] > startCpu[0]) {
                steal = (double) (end[1] - startCpu[1]) / (end[0] - startCpu[0]);
            }
            double[] v = loads.stream().mapToDouble(Double::doubleValue).toArray();
            double max = v.length == 0 ? Double.NaN : java.util.Arrays.stream(v).max().orElseThrow();
            return new MachineLoad(Spread.of(v).median(), max, steal, cores);
        }

        private static long[] readCpu() {
            Path stat = Path.of("/proc/stat");
            if (!Files.isReadable(stat)) {
                return null;
            }
            try {
                return cpuTimes(Files.readAllLines(stat).get(0));
            } catch (IOException | RuntimeException e) {
                // steal is unknown where /proc/stat is missing or unfamiliar; the load and spread still count
                return null;
            }
        }
    }
}
