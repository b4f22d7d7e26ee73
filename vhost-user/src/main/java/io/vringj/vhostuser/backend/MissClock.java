package io.vringj.vhostuser.backend;

/**
 * Times IOTLB miss round trips in three parts, by page: from the worker's miss to the MISS
 * written on the back-end channel (our sender hop), from there to the UPDATE that answers it
 * read on the main socket (the front end's share: QEMU resolving it through its vIOMMU, and the
 * socket both ways), and from that UPDATE to the parked worker running again (our wake-up).
 *
 * <pre>
 *   worker: miss ─queued()─► sender: write ─written()─► ... front end ... ─► connection: UPDATE ─answered()─► worker awake
 *           └──── missToSocket ────┘        └──────── missAnswer ────────┘              └─ updateToWorker ─┘
 * </pre>
 *
 * <p>A small table of recent misses by page: a miss whose slot is taken by a newer one is not
 * timed (counted nowhere); one never answered stays until its slot is reused. Called from
 * workers, the sender and the connection thread: every method is synchronized (misses are rare
 * next to chains; the lock is never held across a system call).
 */
final class MissClock {
    private static final int SLOTS = 256;
    private static final int PAGE_SHIFT = 12;

    private final VhostUserStatistics statistics;
    private final long[] page = new long[SLOTS];
    private final long[] queuedAt = new long[SLOTS];
    private final long[] writtenAt = new long[SLOTS];

    MissClock(VhostUserStatistics statistics) {
        this.statistics = statistics;
        java.util.Arrays.fill(page, -1);
    }

    private static int slot(long p) {
        return (int) (p ^ (p >>> 8)) & (SLOTS - 1);
    }

    /** A worker queued a MISS for {@code iova} at {@code now}. */
    synchronized void queued(long iova, long now) {
        long p = iova >>> PAGE_SHIFT;
        int s = slot(p);
        page[s] = p;
        queuedAt[s] = now;
        writtenAt[s] = 0;
    }

    /** The sender wrote the MISS for {@code iova} at {@code now}. */
    synchronized void written(long iova, long now) {
        long p = iova >>> PAGE_SHIFT;
        int s = slot(p);
        if (page[s] == p && writtenAt[s] == 0) {
            writtenAt[s] = now;
            statistics.missToSocket.add(now - queuedAt[s]);
        }
    }

    /**
     * An UPDATE of {@code [iova, iova + size)} was applied at {@code now}.
     *
     * @return whether it answered a timed miss
     */
    synchronized boolean answered(long iova, long size, long now) {
        long first = iova >>> PAGE_SHIFT;
        long last = (iova + size - 1) >>> PAGE_SHIFT;
        boolean any = false;
        for (int s = 0; s < SLOTS; s++) {
            long p = page[s];
            if (p >= first && p <= last && writtenAt[s] != 0) {
                statistics.missAnswer.add(now - writtenAt[s]);
                page[s] = -1;
                any = true;
            }
        }
        return any;
    }
}
