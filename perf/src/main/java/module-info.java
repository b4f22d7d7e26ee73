/**
 * vringj perf: JMH benchmarks of the ring and the DMA path against peers, the regression runner
 * and its report, and the {@code vringj-perf} command line.
 *
 * <p>The benchmarks run from the shaded jar on the class path (JMH's forks and its generated
 * harness expect that); this descriptor keeps the module honest at compile and test time and
 * opens the benchmark packages to JMH, the command to picocli.
 */
module io.vringj.perf {
    requires io.vringj.swiotlb;
    requires io.vringj.vhostuser;
    requires io.aeron.client;
    requires io.aeron.driver;
    requires jmh.core;
    requires org.agrona;
    requires org.jctools.core;
    requires info.picocli;
    requires org.knowm.xchart;
    requires com.google.gson;
    requires java.desktop;
    requires java.management;
    requires java.logging;

    exports io.vringj.perf.cli;

    opens io.vringj.perf.ring to jmh.core;
    opens io.vringj.perf.dma to jmh.core;
    opens io.vringj.perf.swiotlb to jmh.core;
    opens io.vringj.perf.channel to jmh.core;
    opens io.vringj.perf.cli to info.picocli;
}
