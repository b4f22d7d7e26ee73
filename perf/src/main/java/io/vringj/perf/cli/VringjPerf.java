package io.vringj.perf.cli;

import io.vringj.perf.regress.BenchmarkResult;
import io.vringj.perf.regress.JmhJson;
import io.vringj.perf.regress.MachineLoad;
import io.vringj.perf.regress.Profile;
import io.vringj.perf.regress.Question;
import io.vringj.perf.regress.RatioSpec;
import io.vringj.perf.regress.Ratios;
import io.vringj.perf.regress.RegressionRunner;
import io.vringj.perf.regress.Rounds;
import io.vringj.perf.regress.Verdict;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * The {@code vringj-perf} command line: {@code java -jar perf/target/vringj-perf.jar regress --quick}
 * is the project's main job.
 *
 * <pre>
 *   regress [--quick] [--update-baseline [--accept-noise]] [--questions q1,q2] [--include REGEX] [--note TEXT]
 *   report  --results FILE [--results FILE ...] [--quick] [--update-baseline [--accept-noise]] [--note TEXT]
 *           (no benchmarks run; several files are joined, each run's rounds after the previous one's)
 *   list                                                                (questions, ratios, targets)
 *   jmh     [JMH options]                                               (JMH's own command line)
 * </pre>
 *
 * Exit status (fixed; scripts depend on it): 0 judged, no regression; 1 regression; 2 usage or run
 * error; 3 no baseline for this machine (not judged); 4 too noisy to judge. See {@link Verdict}.
 */
@Command(name = "vringj-perf", mixinStandardHelpOptions = true, version = "vringj-perf 0.1.0",
    description = "vringj performance suite: JMH benchmarks against peers and the regression runner.",
    exitCodeListHeading = "%nExit status (regress and report):%n", exitCodeList = {
        "0:judged against this machine's baseline; no regression",
        "1:REGRESSION: a ratio fell below its baseline beyond the noise of both runs and the tolerance, or a hot"
            + " path started allocating",
        "2:usage or run error (bad option, unreadable file, a benchmark failed)",
        "3:NO BASELINE FOR THIS MACHINE: every figure reported, none judged (record one with --update-baseline)",
        "4:TOO NOISY TO JUDGE: load average, steal time or the spread over rounds too high"},
    subcommands = {VringjPerf.Regress.class, VringjPerf.Report.class, VringjPerf.ListCommand.class,
        VringjPerf.Jmh.class})
public final class VringjPerf implements Runnable {
    /** Exit status of bad usage or a failed run (JMH error, unreadable file); the same as picocli's usage error. */
    public static final int FAILED = Verdict.ERROR_EXIT;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Where the subcommands print progress and verdicts. */
    private final PrintStream out;

    /** Creates the top-level command printing to standard output. */
    public VringjPerf() {
        this(System.out);
    }

    private VringjPerf(PrintStream out) {
        this.out = out;
    }

    /**
     * @param args the command line
     */
    public static void main(String[] args) {
        List<String> relaunch = relaunchCommand(args);
        if (!relaunch.isEmpty()) {
            System.exit(relaunch(relaunch));
        }
        System.exit(execute(System.out, args));
    }

    /** The JVM option JDK 24+ needs before JMH's harness reads field offsets through {@code sun.misc.Unsafe}. */
    static final String UNSAFE_FLAG = "--sun-misc-unsafe-memory-access";
    /** Set on a relaunched JVM, so it never relaunches again. */
    static final String RELAUNCHED = "vringj.perf.relaunched";

    /**
     * JMH's own classes (in this JVM as in its forks) read field offsets through
     * {@code sun.misc.Unsafe}, and JDK 24+ then prints four warning lines a user can do nothing
     * about. Only a command-line option silences them, so a JVM started without it starts this
     * command again in a JVM with it, once.
     *
     * @param args the command line
     * @return the command that runs this one again with the option, or empty if this JVM needs no relaunch
     */
    static List<String> relaunchCommand(String[] args) {
        List<String> jvmArgs = java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments();
        if (Runtime.version().feature() < 24 || System.getProperty(RELAUNCHED) != null
            || jvmArgs.stream().anyMatch(a -> a.startsWith(UNSAFE_FLAG))) {
            return List.of();
        }
        java.util.Optional<String> java = ProcessHandle.current().info().command();
        String classPath = System.getProperty("java.class.path");
        if (java.isEmpty() || classPath == null || classPath.isEmpty()) {
            return List.of();
        }
        List<String> command = new java.util.ArrayList<>();
        command.add(java.get());
        command.addAll(jvmArgs);
        command.add(UNSAFE_FLAG + "=allow");
        command.add("-D" + RELAUNCHED + "=true");
        command.add("-cp");
        command.add(classPath);
        command.add(VringjPerf.class.getName());
        command.addAll(List.of(args));
        return command;
    }

    private static int relaunch(List<String> command) {
        try {
            return new ProcessBuilder(command).inheritIO().start().waitFor();
        } catch (java.io.IOException e) {
            // the command still works without the option, with JDK's warnings
            return execute(System.out, command.subList(command.indexOf(VringjPerf.class.getName()) + 1,
                command.size()).toArray(String[]::new));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return FAILED;
        }
    }

    /**
     * Runs the command line without exiting (for tests and embedding).
     *
     * @param out where output goes
     * @param args the command line
     * @return the exit status
     */
    public static int execute(PrintStream out, String... args) {
        // the report draws charts; never try to open a display
        System.setProperty("java.awt.headless", "true");
        CommandLine cl = new CommandLine(new VringjPerf(out));
        cl.setOut(new java.io.PrintWriter(out, true));
        // everything after "jmh" is JMH's: its options are not ours to parse
        cl.getSubcommands().get("jmh").setUnmatchedOptionsArePositionalParams(true).setStopAtPositional(true);
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("vringj-perf: " + e.getMessage());
            // bad input, JMH's own errors (a failed fork, its lock) and I/O say all in their message;
            // anything else is a bug here, and its stack trace is what a report of it needs
            if (!(e instanceof IllegalArgumentException || e instanceof org.openjdk.jmh.runner.RunnerException
                || e instanceof java.io.IOException)) {
                e.printStackTrace(commandLine.getErr());
            }
            return FAILED;
        });
        return cl.execute(args);
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Options shared by {@code regress} and {@code report}. */
    static class Common {
        @Option(names = "--quick", description = "Use the quick profile (a few minutes) and its baseline.")
        boolean quick;

        @Option(names = "--baseline", paramLabel = "FILE",
            description = "Baseline to compare with (default: perf/baseline/<profile>.json, or baseline/<profile>.json"
                + " when run inside perf/).")
        Path baseline;

        @Option(names = "--report-dir", paramLabel = "DIR",
            description = "Where the report goes (default: perf/target/report, or target/report inside perf/).")
        Path reportDir;

        @Option(names = "--update-baseline",
            description = "Write this run's figures as this machine's baseline entry (replacing it, or beside the"
                + " other machines' entries) instead of judging the run. Refused when the run was too noisy.")
        boolean updateBaseline;

        @Option(names = "--accept-noise",
            description = "With --update-baseline: record the figures even if the run was too noisy to judge.")
        boolean acceptNoise;

        @Option(names = "--note", paramLabel = "TEXT",
            description = "Free text for the report and baseline, e.g. what else the machine was running.")
        String note;

        Profile profile() {
            return quick ? Profile.QUICK : Profile.FULL;
        }

        Path baselineFile() {
            if (baseline != null) {
                return baseline;
            }
            String file = profile().id() + ".json";
            return Files.isDirectory(Path.of("perf")) ? Path.of("perf", "baseline", file) : Path.of("baseline", file);
        }

        Path reportDirectory() {
            if (reportDir != null) {
                return reportDir;
            }
            return Files.isDirectory(Path.of("perf")) ? Path.of("perf", "target", "report") : Path.of("target", "report");
        }
    }

    /** Runs the suite and compares it with the baseline. */
    @Command(name = "regress", mixinStandardHelpOptions = true,
        description = {"Run the benchmarks of every question (JMH, with -prof gc) in short rounds with the peers back"
            + " to back, compute the tracked ratios (median and interquartile range over the rounds), judge them"
            + " against this machine's entry in the baseline and write the report (Markdown, PNG charts, raw JMH"
            + " JSON)."},
        exitCodeListHeading = "%nExit status:%n", exitCodeList = {
            "0:judged against this machine's baseline; no regression",
            "1:REGRESSION: a ratio fell below its baseline beyond the noise of both runs and the tolerance, or a"
                + " hot path started allocating",
            "2:usage or run error (bad option, unreadable file, a benchmark failed)",
            "3:NO BASELINE FOR THIS MACHINE: every figure reported, none judged",
            "4:TOO NOISY TO JUDGE: load average, steal time or the spread over rounds too high"})
    static final class Regress extends Common implements Callable<Integer> {
        @Option(names = "--questions", split = ",", paramLabel = "qN",
            description = "Only these questions (default: q1..q6 and q8..q10; q7, allocation, is checked in every run).")
        List<String> questions;

        @Option(names = "--include", paramLabel = "REGEX", description = "Only benchmarks whose name matches.")
        String include;

        @Option(names = "--verbose", description = "Show JMH's own output instead of one line per benchmark.")
        boolean verbose;

        @Option(names = "--confirmations", paramLabel = "N", defaultValue = "1",
            description = "Re-measure the benchmarks behind a regression up to N times before believing it"
                + " (default: ${DEFAULT-VALUE}); the new figures replace the first ones.")
        int confirmations;

        @CommandLine.ParentCommand
        VringjPerf parent;

        @Override
        public Integer call() throws Exception {
            List<Question> selected = questions == null ? List.of(Question.values()) : Question.parse(questions);
            PrintStream out = parent.out;
            return RegressionRunner.run(new RegressionRunner.Settings(profile(), selected, include, reportDirectory(),
                baselineFile(), updateBaseline, note, verbose, confirmations, acceptNoise), out);
        }
    }

    /** Evaluates results JMH already wrote. */
    @Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Compare existing JMH JSON results with this machine's baseline entry and write the report;"
            + " runs no benchmark (the machine's load while it was measured is unknown: only the spread over rounds"
            + " can make it too noisy).",
            "With several --results files (say two quick runs) their rounds follow one another, as if one run had"
                + " measured them all; with --update-baseline the entry's spread then includes how far a whole run"
                + " moves, which the rounds of one run do not show."},
        exitCodeListHeading = "%nExit status:%n", exitCodeList = {
            "0:judged; no regression", "1:REGRESSION", "2:usage or run error",
            "3:NO BASELINE FOR THIS MACHINE", "4:TOO NOISY TO JUDGE (spread over rounds)"})
    static final class Report extends Common implements Callable<Integer> {
        @Option(names = "--results", required = true, arity = "1", paramLabel = "FILE",
            description = "JMH JSON results (-rf json, e.g. a run's jmh-result.json); repeat it to join several runs,"
                + " each one's rounds after the previous one's.")
        List<Path> results;

        @CommandLine.ParentCommand
        VringjPerf parent;

        @Override
        public Integer call() throws Exception {
            List<String> names = new ArrayList<>();
            List<List<BenchmarkResult>> runs = new ArrayList<>();
            for (Path file : results) {
                if (!Files.isRegularFile(file)) {
                    throw new IllegalArgumentException("results file " + file + " does not exist");
                }
                names.add(file.toString());
                runs.add(JmhJson.read(file));
            }
            PrintStream out = parent.out;
            return RegressionRunner.evaluate(Rounds.concat(names, runs),
                MachineLoad.unknown(Runtime.getRuntime().availableProcessors()), new RegressionRunner.Settings(profile(),
                List.of(Question.values()), null, reportDirectory(), baselineFile(), updateBaseline, note, false, 0,
                acceptNoise), out);
        }
    }

    /** Lists questions and ratios. */
    @Command(name = "list", mixinStandardHelpOptions = true,
        description = "List the questions, their benchmark classes and the tracked ratios with targets.")
    static final class ListCommand implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            java.io.PrintWriter out = spec.commandLine().getOut();
            for (Question q : Question.values()) {
                out.printf("%s  %s  (%s)%n", q.id(), q.title(), q.benchmarkClass());
                for (RatioSpec r : Ratios.all()) {
                    if (r.question() == q) {
                        out.printf(Locale.ROOT, "    %-36s %s [tolerance quick %.0f%%, full %.0f%%%s]%n", r.id(),
                            r.description(), Profile.QUICK.tolerance(r.twoThreaded()) * 100,
                            Profile.FULL.tolerance(r.twoThreaded()) * 100,
                            r.hasTarget() ? String.format(Locale.ROOT, "; target >= %.3f", r.target()) : "");
                    }
                }
            }
            out.println("q7  Allocation: every hot path above, -prof gc, target 0 B/op");
            return 0;
        }
    }

    /** JMH's own command line, for anything the runner does not cover. */
    @Command(name = "jmh", description = "Run JMH's own command line over the benchmarks in this jar, e.g."
        + " jmh RingThroughput -p payloadBytes=4096 -prof gc -rf json")
    static final class Jmh implements Callable<Integer> {
        @Parameters(paramLabel = "JMH-ARGS", description = "Arguments for org.openjdk.jmh.Main.")
        List<String> args = List.of();

        @Override
        public Integer call() throws Exception {
            org.openjdk.jmh.Main.main(jmhArgs(args).toArray(String[]::new));
            return 0;
        }

        /**
         * @param args JMH's arguments as given
         * @return them with the runner's fork flags prepended to the forks' JVM arguments, unless
         *     the caller sets {@code -jvmArgsPrepend} themselves
         */
        static List<String> jmhArgs(List<String> args) {
            if (args.contains("-jvmArgsPrepend")) {
                return args;
            }
            List<String> all = new java.util.ArrayList<>(args);
            all.add("-jvmArgsPrepend");
            all.add(String.join(" ", RegressionRunner.FORK_FLAGS));
            return all;
        }
    }
}
