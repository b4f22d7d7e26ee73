package io.vringj.perf.cli;

import io.vringj.perf.regress.JmhJson;
import io.vringj.perf.regress.Profile;
import io.vringj.perf.regress.Question;
import io.vringj.perf.regress.RatioSpec;
import io.vringj.perf.regress.Ratios;
import io.vringj.perf.regress.RegressionRunner;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
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
 *   regress [--quick] [--update-baseline] [--questions q1,q2] [--include REGEX] [--note TEXT]
 *   report  --results jmh-result.json [--quick] [--update-baseline]    (no benchmarks run)
 *   list                                                                (questions, ratios, targets)
 *   jmh     [JMH options]                                               (JMH's own command line)
 * </pre>
 *
 * Exit status: 0 no regression, 1 regression, 2 bad usage, 3 the run itself failed.
 */
@Command(name = "vringj-perf", mixinStandardHelpOptions = true, version = "vringj-perf 0.1.0",
    description = "vringj performance suite: JMH benchmarks against peers and the regression runner.",
    subcommands = {VringjPerf.Regress.class, VringjPerf.Report.class, VringjPerf.ListCommand.class,
        VringjPerf.Jmh.class})
public final class VringjPerf implements Runnable {
    /** Exit status when the run itself failed (JMH error, unreadable file). */
    public static final int FAILED = 3;

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
        System.exit(execute(System.out, args));
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
            if (!(e instanceof IllegalArgumentException)) {
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
            description = "Write this run's figures as the new baseline instead of failing on a regression.")
        boolean updateBaseline;

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
        description = {"Run the benchmarks of every question (JMH, with -prof gc), compute the tracked ratios, compare"
            + " them with the committed baseline and write the report (Markdown, PNG charts, raw JMH JSON).",
            "Exit 0: no regression; 1: a ratio fell below its baseline by more than the tolerance, or a hot path"
                + " started allocating."})
    static final class Regress extends Common implements Callable<Integer> {
        @Option(names = "--questions", split = ",", paramLabel = "qN",
            description = "Only these questions (default: q1..q6 and q8; q7, allocation, is checked in every run).")
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
                baselineFile(), updateBaseline, note, verbose, confirmations), out);
        }
    }

    /** Evaluates results JMH already wrote. */
    @Command(name = "report", mixinStandardHelpOptions = true,
        description = "Compare an existing JMH JSON result file with the baseline and write the report; runs no"
            + " benchmark.")
    static final class Report extends Common implements Callable<Integer> {
        @Option(names = "--results", required = true, paramLabel = "FILE", description = "JMH JSON results (-rf json).")
        Path results;

        @CommandLine.ParentCommand
        VringjPerf parent;

        @Override
        public Integer call() throws Exception {
            if (!Files.isRegularFile(results)) {
                throw new IllegalArgumentException("results file " + results + " does not exist");
            }
            PrintStream out = parent.out;
            return RegressionRunner.evaluate(JmhJson.read(results), new RegressionRunner.Settings(profile(),
                List.of(Question.values()), null, reportDirectory(), baselineFile(), updateBaseline, note, false, 0),
                out);
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
            org.openjdk.jmh.Main.main(args.toArray(String[]::new));
            return 0;
        }
    }
}
