package io.vringj.perf.ring;

/**
 * The JVM flags a benchmark fork needs for its peers, as compile-time constants for
 * {@code @Fork(jvmArgsAppend = ...)}. The ring itself needs none (ring-core uses no restricted FFM
 * method); the message channel across processes does ({@link #NATIVE_ACCESS}).
 */
public final class JvmFlags {
    /** Agrona's {@code UnsafeBuffer} and ring buffers wrap {@code jdk.internal.misc.Unsafe}. */
    public static final String AGRONA = "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED";
    /** JCTools' queues use {@code sun.misc.Unsafe} memory access, which JDK 25 warns about by default. */
    public static final String JCTOOLS = "--sun-misc-unsafe-memory-access=allow";
    /** A fixed heap, so a fork's collector sizing does not vary with what else the machine runs. */
    public static final String HEAP = "-Xmx1g";
    /**
     * vhost-user calls libc through restricted FFM methods (sockets, mmap, eventfd); the benchmarks
     * run from the shaded jar on the class path, so the unnamed module gets native access.
     */
    public static final String NATIVE_ACCESS = "--enable-native-access=ALL-UNNAMED";
    /** Headless AWT, in case anything in a fork touches the charting code's classes. */
    public static final String HEADLESS = "-Djava.awt.headless=true";

    private JvmFlags() {
    }
}
