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
 * JMH output trimmed to one line per batch (the runner prints its header): each benchmark's
 * name and throughput as its fork ends,
 * <pre>
 *   [q1 round 2/5, ~3m10s left] batch=1, payloadBytes=64: abq 3.1e+06, agrona 1.2e+07, ...
 * </pre>
 * Everything JMH reports as an error is passed through; a failed benchmark's fork output is shown.
 */
final class ProgressOutput implements OutputFormat {
    private final PrintStream out;
    private final String throughputMetric;
    private final StringBuilder forkOutput = new StringBuilder();

    ProgressOutput(PrintStream out, Question question) {
        this.out = out;
        this.throughputMetric = question.throughputMetric();
    }

    @Override
    public void startBenchmark(BenchmarkParams params) {
        String name = params.getBenchmark();
        out.print(' ' + name.substring(name.lastIndexOf('.') + 1));
        out.flush();
    }

    @Override
    public void iteration(BenchmarkParams benchmarkParams, IterationParams params, int iteration) {
        // progress is printed when an iteration ends
    }

    @Override
    public void iterationResult(BenchmarkParams benchmarkParams, IterationParams params, int iteration,
                                IterationResult data) {
        // one figure per benchmark is printed when it ends
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
        out.print(String.format(Locale.ROOT, " %.3g%s;", r.getScore(), alloc == null || alloc.getScore() < 1 ? ""
            : String.format(Locale.ROOT, " (%.0f B/op)", alloc.getScore())));
        out.flush();
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
        if (s != null && (s.contains("ERROR") || s.contains("Exception") || s.startsWith("<failure>"))) {
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
