package io.vringj.perf.regress;

import java.io.PrintStream;
import java.util.Collection;
import java.util.Locale;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.format.OutputFormat;

/**
 * JMH output trimmed to one line per benchmark run and a dot per iteration, with a running count
 * and an estimate of the time left:
 * <pre>
 *   [q1  5/24, ~1m40s left] RingThroughputBenchmark.vringj batch=1 payloadBytes=1024 ..... 12.3 M messages/s
 * </pre>
 * Everything JMH reports as an error or a warning is passed through.
 */
final class ProgressOutput implements OutputFormat {
    private final PrintStream out;
    private final String question;
    private final String throughputMetric;
    private final int total;
    private final long secondsPerRun;
    private int started;
    private final StringBuilder forkOutput = new StringBuilder();

    ProgressOutput(PrintStream out, Question question, int total, long secondsPerRun) {
        this.out = out;
        this.question = question.id();
        this.throughputMetric = question.throughputMetric();
        this.total = total;
        this.secondsPerRun = secondsPerRun;
    }

    @Override
    public void startBenchmark(BenchmarkParams params) {
        started++;
        long left = Math.max(0, (long) (total - started + 1) * secondsPerRun);
        StringBuilder sb = new StringBuilder();
        String name = params.getBenchmark();
        int method = name.lastIndexOf('.');
        sb.append(String.format(Locale.ROOT, "[%s %2d/%d, ~%dm%02ds left] %s", question, started, total, left / 60,
            left % 60, name.substring(name.lastIndexOf('.', method - 1) + 1)));
        for (String key : params.getParamsKeys()) {
            sb.append(' ').append(key).append('=').append(params.getParam(key));
        }
        out.print(sb.append(' '));
        out.flush();
    }

    @Override
    public void iteration(BenchmarkParams benchmarkParams, IterationParams params, int iteration) {
        // progress is printed when an iteration ends
    }

    @Override
    public void iterationResult(BenchmarkParams benchmarkParams, IterationParams params, int iteration,
                                IterationResult data) {
        out.print('.');
        out.flush();
    }

    @Override
    public void endBenchmark(org.openjdk.jmh.results.BenchmarkResult result) {
        if (result == null) {
            out.println(" failed; the fork said:");
            out.println(forkOutput);
            forkOutput.setLength(0);
            return;
        }
        forkOutput.setLength(0);
        Result<?> r = BenchmarkResult.PRIMARY.equals(throughputMetric) ? result.getPrimaryResult()
            : result.getSecondaryResults().getOrDefault(throughputMetric, result.getPrimaryResult());
        Result<?> alloc = result.getSecondaryResults().get(BenchmarkResult.ALLOC_NORM);
        out.println(String.format(Locale.ROOT, " %.4g %s%s", r.getScore(), r.getScoreUnit(),
            alloc == null ? "" : String.format(Locale.ROOT, ", %.3f B/op", alloc.getScore())));
    }

    @Override
    public void startRun() {
        // the runner prints the question's header
    }

    @Override
    public void endRun(Collection<RunResult> result) {
        // the runner prints the summary
    }

    @Override
    public void print(String s) {
        // JMH's banner and per-fork chatter are left out
    }

    @Override
    public void println(String s) {
        if (s != null && (s.contains("ERROR") || s.contains("Exception") || s.contains("WARNING")
            || s.startsWith("<failure>"))) {
            out.println(s);
        }
    }

    @Override
    public void flush() {
        out.flush();
    }

    @Override
    public void close() {
        out.flush();
    }

    @Override
    public void verbosePrintln(String s) {
        // verbose output is only for --verbose, which uses JMH's own format
    }

    @Override
    public void write(int b) {
        // fork output is kept and shown only if the benchmark fails
        forkOutput.append((char) b);
    }

    @Override
    public void write(byte[] b) {
        // fork output is kept and shown only if the benchmark fails
        forkOutput.append(new String(b, java.nio.charset.StandardCharsets.UTF_8));
    }
}
