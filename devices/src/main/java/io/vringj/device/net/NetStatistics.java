package io.vringj.device.net;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.EnumMap;
import java.util.Map;

/**
 * Counters of one side of one queue pair: frames and bytes through the tx and rx queues, and
 * drops by {@link NetDrop}. Queue names are the driver's: tx carries frames the driver sends,
 * rx frames it receives. Bytes are frame bytes (the virtio-net header is not counted).
 *
 * <p>One thread (the pair's worker) writes; any thread may read. Each update is a plain read of
 * the writer's own value and a release store, which on x86 is a plain store: cheap enough for
 * every frame.
 */
public final class NetStatistics {
    private static final VarHandle COUNTS = MethodHandles.arrayElementVarHandle(long[].class);

    private static final int TX_FRAMES = 0;
    private static final int TX_BYTES = 1;
    private static final int RX_FRAMES = 2;
    private static final int RX_BYTES = 3;
    private static final int DROPS = 4;
    private static final NetDrop[] REASONS = NetDrop.values();

    private final long[] counts = new long[DROPS + REASONS.length];

    /** Creates zeroed counters. */
    public NetStatistics() {
    }

    void tx(long bytes) {
        add(TX_FRAMES, 1);
        add(TX_BYTES, bytes);
    }

    void rx(long bytes) {
        add(RX_FRAMES, 1);
        add(RX_BYTES, bytes);
    }

    void drop(NetDrop reason) {
        add(DROPS + reason.ordinal(), 1);
    }

    private void add(int i, long n) {
        // release: pairs with the acquire in get(); the writer alone reads its own counter plainly
        COUNTS.setRelease(counts, i, counts[i] + n);
    }

    private long get(int i) {
        // acquire: pairs with the release in add()
        return (long) COUNTS.getAcquire(counts, i);
    }

    /** @return frames through the tx queue */
    public long txFrames() {
        return get(TX_FRAMES);
    }

    /** @return frame bytes through the tx queue */
    public long txBytes() {
        return get(TX_BYTES);
    }

    /** @return frames through the rx queue */
    public long rxFrames() {
        return get(RX_FRAMES);
    }

    /** @return frame bytes through the rx queue */
    public long rxBytes() {
        return get(RX_BYTES);
    }

    /**
     * @param reason a drop reason
     * @return how many times it happened
     */
    public long drops(NetDrop reason) {
        return get(DROPS + reason.ordinal());
    }

    /** @return all drops, whatever the reason */
    public long totalDrops() {
        long sum = 0;
        for (NetDrop reason : REASONS) {
            sum += drops(reason);
        }
        return sum;
    }

    /** @return the reasons that happened, with their counts (allocates; for reports) */
    public Map<NetDrop, Long> dropsByReason() {
        Map<NetDrop, Long> map = new EnumMap<>(NetDrop.class);
        for (NetDrop reason : REASONS) {
            long n = drops(reason);
            if (n != 0) {
                map.put(reason, n);
            }
        }
        return map;
    }

    /**
     * Adds these counters into {@code total} (for a sum over pairs; the total is then owned by the caller).
     *
     * @param total where to add
     */
    public void addTo(NetStatistics total) {
        for (int i = 0; i < counts.length; i++) {
            total.add(i, get(i));
        }
    }

    @Override
    public String toString() {
        return "tx " + txFrames() + " frames / " + txBytes() + " bytes, rx " + rxFrames() + " frames / " + rxBytes()
            + " bytes, drops " + dropsByReason();
    }
}
