package io.vringj.perf.cli;

/** Placeholder. */
public final class VringjPerf {
    private VringjPerf() {
    }

    /**
     * @param args arguments
     */
    public static void main(String[] args) {
    }
}
