package io.vringj.perf.regress;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Two one-thread benchmarks of one class measured in one JVM, taking turns in short slices, so that
 * both see the same machine: the harness the regression runner uses for the one-thread ratios
 * (q3, q4, q5, q8, and q6's bounce vs copy).
 *
 * <p>Why not one JMH fork each: on a shared VM the host moves a one-thread DMA trip between two
 * speeds about 2x apart (87 ns and 165–180 ns for the same code, with no steal time and a plain
 * arithmetic loop unaffected), and stays at each for one to a few seconds. Two forks measured
 * seconds apart land on either speed independently, so their ratio swung by 2x between rounds and
 * between runs. Here the peers alternate every {@code slice} (10 ms in both profiles) in the order
 * A B B A A B B A ..., so both sides' totals cover the same mixture of speeds and their ratio
 * cancels it; the ABBA order cancels what the order of two adjacent slices does to each.
 *
 * <p>The order in which the two sides are set up is not neutral: on a 2-vCPU Xeon VM the side set
 * up first measured about 1.5% slower than when set up second (q3's monomorphic/premapped 0.957
 * against 0.971, q4's passthrough/direct 0.977 against 0.993, six JVMs each; which side slices
 * first made no difference, and no GC ran). So in every round the runner measures a pair in two
 * JVMs, one per order ({@link #SET_UP_DENOMINATOR_FIRST}), each for half the time, and adds them
 * up ({@link Result#plus}): each side carries the handicap once. (Alternating the order by round
 * left 3 rounds of 5 in one order, and the effect reached 10% on some pairs.)
 *
 * <p>What changes against a JMH fork of its own: each benchmark class builds one instance per side,
 * each set up for its method, in one JVM. Code the two share (the trip through the ring, the
 * {@code DmaOps} call site) sees both sides' types: at most two, which C2 still inlines behind a
 * type check. Allocation (question 7) is still measured by JMH's {@code gc} profiler, in forks of
 * their own.
 *
 * <p>A benchmark class takes part by declaring {@code static Interleaved.Target interleavedTarget(String
 * method)} (any access), which returns an instance set up for {@code method} and a loop running it;
 * a class whose benchmarks take {@code @Param}s declares {@code interleavedTarget(String method,
 * Map<String, String> params)} instead, and both sides of a pair run at the same values.
 * The forked JVM's {@link #main} prints one line, {@value #RESULT_PREFIX}, that {@link Result#parse}
 * reads.
 */
public final class Interleaved {
    /** {@link #main}'s leading option: set up the denominator's instance before the numerator's. */
    public static final String SET_UP_DENOMINATOR_FIRST = "--set-up-denominator-first";
    /** The first word of the result line a forked JVM prints. */
    public static final String RESULT_PREFIX = "interleaved-result";
    /** How many operations one call of {@link Trips#run} performs between two looks at the clock. */
    static final int CHUNK = 64;

    private Interleaved() {
    }

    /** A benchmark method's loop. */
    @FunctionalInterface
    public interface Trips {
        /**
         * @param n how many operations to run
         * @return a value that depends on every operation's result, so none can be left out
         * @throws Exception if an operation fails (a benchmark's own check)
         */
        long run(int n) throws Exception;
    }

    /** One operation of a benchmark method (one call of it). */
    @FunctionalInterface
    public interface Operation {
        /**
         * @return a value that depends on the operation's result
         * @throws Exception if the operation fails (a benchmark's own check)
         */
        long run() throws Exception;
    }

    /**
     * @param operation one call of a benchmark method
     * @return a loop that runs it {@code n} times and sums what it returns
     */
    public static Trips repeat(Operation operation) {
        return n -> {
            long sink = 0;
            for (int i = 0; i < n; i++) {
                sink += operation.run();
            }
            return sink;
        };
    }

    /**
     * One side of a measurement: the loop of a benchmark method on an instance set up for it.
     *
     * @param method the benchmark method's name
     * @param trips its loop
     * @param tearDown frees what set-up built
     */
    public record Target(String method, Trips trips, Runnable tearDown) {
        /**
         * @param method the method's name
         * @param trips its loop
         * @param tearDown frees the instance
         */
        public Target {
            java.util.Objects.requireNonNull(method, "method");
            java.util.Objects.requireNonNull(trips, "trips");
            java.util.Objects.requireNonNull(tearDown, "tearDown");
        }
    }

    /**
     * What one measurement found.
     *
     * @param numerator the first side's method
     * @param numeratorOps operations it ran while measured
     * @param numeratorNanos the time those took
     * @param denominator the second side's method
     * @param denominatorOps operations it ran while measured
     * @param denominatorNanos the time those took
     * @param slicePairs how many pairs of slices were measured
     * @param pairRatioMedian the median over those pairs of the first side's rate / the second's
     */
    public record Result(String numerator, long numeratorOps, long numeratorNanos, String denominator,
                         long denominatorOps, long denominatorNanos, int slicePairs, double pairRatioMedian) {
        /** @return the first side's operations per second */
        public double numeratorRate() {
            return numeratorOps * 1e9 / numeratorNanos;
        }

        /** @return the second side's operations per second */
        public double denominatorRate() {
            return denominatorOps * 1e9 / denominatorNanos;
        }

        /** @return the first side's rate / the second's, over the whole measurement */
        public double ratio() {
            return numeratorRate() / denominatorRate();
        }

        /** @return the line {@link #main} prints */
        public String line() {
            return String.format(Locale.ROOT, "%s %s %d %d %s %d %d %d %.6f", RESULT_PREFIX, numerator, numeratorOps,
                numeratorNanos, denominator, denominatorOps, denominatorNanos, slicePairs, pairRatioMedian);
        }

        /**
         * @param line a line a forked JVM printed
         * @return the result it carries
         * @throws IllegalArgumentException if it is not a result line (the message quotes it)
         */
        public static Result parse(String line) {
            String[] f = line.trim().split(" ");
            if (f.length != 9 || !f[0].equals(RESULT_PREFIX)) {
                throw new IllegalArgumentException("\"" + line + "\" is not an interleaved result line (\""
                    + RESULT_PREFIX + " method ops nanos method ops nanos pairs median\")");
            }
            try {
                Result r = new Result(f[1], Long.parseLong(f[2]), Long.parseLong(f[3]), f[4], Long.parseLong(f[5]),
                    Long.parseLong(f[6]), Integer.parseInt(f[7]), Double.parseDouble(f[8]));
                if (r.numeratorOps <= 0 || r.numeratorNanos <= 0 || r.denominatorOps <= 0 || r.denominatorNanos <= 0) {
                    throw new IllegalArgumentException("\"" + line + "\": operations and times must be positive");
                }
                return r;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("\"" + line + "\" has a field that is not a number", e);
            }
        }

        /**
         * @param other the same two sides measured in another JVM (the other set-up order)
         * @return both measurements as one: operations and times added up side by side, the slice
         *     pairs counted together, and as the median the geometric mean of the two medians
         * @throws IllegalArgumentException if {@code other} measured other sides, or them the other way round
         */
        public Result plus(Result other) {
            if (!numerator.equals(other.numerator) || !denominator.equals(other.denominator)) {
                throw new IllegalArgumentException("cannot add " + other.numerator + "/" + other.denominator + " to "
                    + numerator + "/" + denominator + ": a pair adds up only with the same numerator and denominator");
            }
            return new Result(numerator, numeratorOps + other.numeratorOps, numeratorNanos + other.numeratorNanos,
                denominator, denominatorOps + other.denominatorOps, denominatorNanos + other.denominatorNanos,
                slicePairs + other.slicePairs, Math.sqrt(pairRatioMedian * other.pairRatioMedian));
        }
    }

    /**
     * Alternates two loops in slices A B B A A B B A ...: first for {@code warmupNanos} (not counted,
     * so the JIT compiles both while they alternate), then for {@code measureNanos}.
     *
     * @param a the first side (the ratio's numerator)
     * @param b the second side (its denominator)
     * @param warmupNanos how long to alternate before measuring
     * @param measureNanos how long to measure, both sides together
     * @param sliceNanos how long one side runs before the other takes over
     * @param clock the time in nanoseconds ({@link System#nanoTime} outside tests)
     * @return both sides' operations and times
     * @throws Exception if a loop fails
     */
    public static Result measure(Target a, Target b, long warmupNanos, long measureNanos, long sliceNanos,
                                 LongSupplier clock) throws Exception {
        if (sliceNanos <= 0 || measureNanos < 2 * sliceNanos || warmupNanos < 0) {
            throw new IllegalArgumentException("slice " + sliceNanos + " ns must be positive and measurement "
                + measureNanos + " ns must hold at least two slices; warm-up " + warmupNanos + " ns must be at least 0");
        }
        long sink = 0;
        long warmupEnd = clock.getAsLong() + warmupNanos;
        for (int turn = 0; clock.getAsLong() < warmupEnd; turn++) {
            sink += slice(abba(turn) ? a : b, sliceNanos, clock)[2];
        }
        long[] opsAndNanos = new long[4];
        double[] pairRatios = new double[(int) Math.min(1 << 20, measureNanos / sliceNanos / 2 + 2)];
        int pairs = 0;
        double pendingA = Double.NaN;
        double pendingB = Double.NaN;
        long measureEnd = clock.getAsLong() + measureNanos;
        for (int turn = 0; clock.getAsLong() < measureEnd || turn % 2 == 1; turn++) {
            boolean first = abba(turn);
            long[] s = slice(first ? a : b, sliceNanos, clock);
            sink += s[2];
            opsAndNanos[first ? 0 : 2] += s[0];
            opsAndNanos[first ? 1 : 3] += s[1];
            double rate = (double) s[0] / s[1];
            if (first) {
                pendingA = rate;
            } else {
                pendingB = rate;
            }
            if (turn % 2 == 1 && pairs < pairRatios.length) {
                pairRatios[pairs++] = pendingA / pendingB;
            }
        }
        if (sink == Long.MIN_VALUE + 42) {
            // keeps every result alive, as JMH's Blackhole does; this line is practically never taken
            System.out.print("");
        }
        return new Result(a.method(), opsAndNanos[0], opsAndNanos[1], b.method(), opsAndNanos[2], opsAndNanos[3], pairs,
            Rounds.median(Arrays.copyOf(pairRatios, pairs)));
    }

    /** @return whether turn {@code turn} of the order A B B A A B B A ... is A's */
    static boolean abba(int turn) {
        int phase = turn & 3;
        return phase == 0 || phase == 3;
    }

    /** Runs one side for a slice; returns {operations, nanoseconds, sink}. */
    private static long[] slice(Target t, long sliceNanos, LongSupplier clock) throws Exception {
        long start = clock.getAsLong();
        long ops = 0;
        long sink = 0;
        long now;
        do {
            sink += t.trips().run(CHUNK);
            ops += CHUNK;
            now = clock.getAsLong();
        } while (now - start < sliceNanos);
        return new long[] {ops, now - start, sink};
    }

    /**
     * @param benchmarkClass a benchmark class declaring {@code static Target interleavedTarget(String)}
     * @param method one of its benchmark methods
     * @return an instance set up for the method, and its loop
     * @throws Exception if the class has no such factory or set-up fails
     */
    public static Target target(Class<?> benchmarkClass, String method) throws Exception {
        return target(benchmarkClass, method, Map.of());
    }

    /**
     * @param benchmarkClass a benchmark class declaring {@code static Target interleavedTarget(String,
     *     Map<String, String>)}, or {@code interleavedTarget(String)} if it has no parameters
     * @param method one of its benchmark methods
     * @param params the {@code @Param} values to set it up with (empty for none)
     * @return an instance set up for the method at those values, and its loop
     * @throws Exception if the class has no such factory (or none taking parameters when some are
     *     given), or set-up fails
     */
    public static Target target(Class<?> benchmarkClass, String method, Map<String, String> params) throws Exception {
        Method factory = factory(benchmarkClass, Map.class);
        if (factory == null && params.isEmpty()) {
            factory = factory(benchmarkClass);
        }
        if (factory == null) {
            throw new IllegalArgumentException(benchmarkClass.getName() + " declares no static interleavedTarget("
                + (params.isEmpty() ? "String" : "String, Map<String, String>, for the parameters " + params)
                + "): it cannot be measured interleaved");
        }
        factory.setAccessible(true);
        try {
            return (Target) (factory.getParameterCount() == 2 ? factory.invoke(null, method, Map.copyOf(params))
                : factory.invoke(null, method));
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof Exception cause ? cause : e;
        }
    }

    private static Method factory(Class<?> benchmarkClass, Class<?>... more) {
        Class<?>[] types = new Class<?>[more.length + 1];
        types[0] = String.class;
        System.arraycopy(more, 0, types, 1, more.length);
        try {
            return benchmarkClass.getDeclaredMethod("interleavedTarget", types);
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    /**
     * @param args {@code name=value} arguments
     * @return the parameters they set, in order
     * @throws IllegalArgumentException naming an argument that is not {@code name=value}
     */
    static Map<String, String> params(List<String> args) {
        Map<String, String> params = new LinkedHashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0 || params.put(arg.substring(0, eq), arg.substring(eq + 1)) != null) {
                throw new IllegalArgumentException("\"" + arg + "\" is not a parameter NAME=VALUE (each name once)");
            }
        }
        return params;
    }

    /**
     * Measures one pair and prints its {@link Result#line}: {@code [--set-up-denominator-first]
     * CLASS NUMERATOR DENOMINATOR WARMUP_MS MEASURE_MS SLICE_US [NAME=VALUE ...]}. Exits 2 on a
     * usage error, 1 if a side fails.
     *
     * @param args as above
     */
    public static void main(String[] args) {
        boolean denominatorFirst = args.length > 0 && args[0].equals(SET_UP_DENOMINATOR_FIRST);
        List<String> rest = List.of(args).subList(denominatorFirst ? 1 : 0, args.length);
        Map<String, String> params = null;
        try {
            params = rest.size() < 6 ? null : params(rest.subList(6, rest.size()));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
        }
        if (params == null) {
            System.err.println("usage: Interleaved [" + SET_UP_DENOMINATOR_FIRST + "] CLASS NUMERATOR DENOMINATOR"
                + " WARMUP_MS MEASURE_MS SLICE_US [NAME=VALUE ...]; got " + args.length + " arguments");
            System.exit(2);
        }
        Target[] sides = new Target[2];
        try {
            setUp(Class.forName(rest.get(0)), rest.get(1), rest.get(2), params, denominatorFirst, sides);
            Result r = measure(sides[0], sides[1], Long.parseLong(rest.get(3)) * 1_000_000,
                Long.parseLong(rest.get(4)) * 1_000_000, Long.parseLong(rest.get(5)) * 1_000, System::nanoTime);
            System.out.println(r.line());
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        } finally {
            for (Target t : sides) {
                if (t != null) {
                    t.tearDown().run();
                }
            }
        }
        System.exit(0);
    }

    /**
     * Sets up both sides of a pair in the order asked for.
     *
     * @param cls the benchmark class
     * @param numerator the numerator's method
     * @param denominator the denominator's
     * @param params the {@code @Param} values of both
     * @param denominatorFirst whether the denominator's instance is set up first
     * @param sides receives the numerator's target at 0 and the denominator's at 1, each as soon as
     *     it is set up (so a caller can tear down the one that was, if the other fails)
     * @throws Exception if a set-up fails
     */
    static void setUp(Class<?> cls, String numerator, String denominator, Map<String, String> params,
                      boolean denominatorFirst, Target[] sides) throws Exception {
        if (denominatorFirst) {
            sides[1] = target(cls, denominator, params);
            sides[0] = target(cls, numerator, params);
        } else {
            sides[0] = target(cls, numerator, params);
            sides[1] = target(cls, denominator, params);
        }
    }
}
