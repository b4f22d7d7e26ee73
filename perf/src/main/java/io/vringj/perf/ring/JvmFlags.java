package io.vringj.perf.ring;

/**
 * The JVM flags a benchmark fork needs for its peers, as compile-time constants for
 * {@code @Fork(jvmArgsAppend = ...)}. vringj itself needs none: ring-core uses no restricted FFM
 * method.
 */
public final class JvmFlags {
    /** Agrona's {@code UnsafeBuffer} and ring buffers wrap {@code jdk.internal.misc.Unsafe}. */
    public static final String AGRONA = "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED";
    /** JCTools' queues use {@code sun.misc.Unsafe} memory access, which JDK 25 warns about by default. */
    public static final String JCTOOLS = "--sun-misc-unsafe-memory-access=allow";
    /** A fixed heap, so a fork's collector sizing does not vary with what else the machine runs. */
    public static final String HEAP = "-Xmx1g";
    /** Headless AWT, in case anything in a fork touches the charting code's classes. */
    public static final String HEADLESS = "-Djava.awt.headless=true";

    private JvmFlags() {
    }
}
