package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.StampedLock;

/**
 * A device's IOTLB, after Linux's {@code vhost_iotlb} and DPDK's vhost IOTLB cache: an interval
 * map from IOVA ranges to addresses in the device's own memory view ({@code uaddr}, resolved
 * through a downstream {@link AddressSpace}) with a permission each.
 *
 * <pre>
 *   entries, sorted by start, never overlapping (an UPDATE drops what it overlaps):
 *     start[i] .. last[i]  →  uaddr[i]   perm[i]   age[i] (insertion order, for eviction)
 *
 *   translate(iova, length, access, sink)
 *     no entry covers an address        → MISS  (one MISS message per pending address)
 *     an entry lacks the permission     → FAULT (an ACCESS_FAIL message; never a miss)
 *     otherwise one piece per entry crossed, in IOVA order, through the downstream space
 * </pre>
 *
 * <p><b>Capacity.</b> At most {@link #capacity()} entries (default {@value #DEFAULT_CAPACITY},
 * as Linux and DPDK); an UPDATE into a full IOTLB evicts the oldest entry (Linux's policy).
 *
 * <p><b>Epoch.</b> Every UPDATE and INVALIDATE moves {@link #epoch()}; a device queue compares it
 * to translate its three ring areas again — the per-queue ring translation cache Linux resets
 * on every update and invalidation.
 *
 * <p><b>Invalidation against in-flight work.</b> A device worker brackets everything it does with
 * translations — popping a chain, working on its pieces, adding it used and publishing — with
 * {@link Worker#enter()} / {@link Worker#exit()}. {@link #invalidate} removes the entries, then
 * waits until every worker that was inside a critical section has left it; so once it returns,
 * no worker uses a translation from the removed range. A worker must finish a chain in the
 * section that popped it, and must not call {@code invalidate} from inside its own section
 * (its own section is not waited for).
 *
 * <p><b>Threads.</b> {@link #translate} may run on any number of device threads at once (a
 * read lock, no allocation on a hit); updates and invalidations may come from any thread and
 * are serialised by a write lock. Message sinks are called outside the lock.
 */
public final class DeviceIotlb {
    /** Default capacity: 2048 entries, as Linux's vhost and DPDK. */
    public static final int DEFAULT_CAPACITY = 2048;

    private final AddressSpace downstream;
    private final int capacity;
    private final StampedLock lock = new StampedLock();

    // guarded by lock
    private final long[] start;
    private final long[] last;
    private final long[] uaddr;
    private final byte[] perm;
    private final long[] age;
    private int count;
    private long nextAge;

    private volatile long epoch;
    private volatile IotlbMessageSink sink;
    private final CopyOnWriteArrayList<Worker> workers = new CopyOnWriteArrayList<>();

    // MISSes sent and not yet answered, by page; guarded by pendingLock
    private final Object pendingLock = new Object();
    private long[] pendingPage = new long[16];
    private byte[] pendingPerm = new byte[16];
    private int pendingCount;

    // statistics; misses and faults are the slow path, so atomics cost nothing that matters
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong faults = new AtomicLong();
    private final AtomicLong evictions = new AtomicLong();

    /**
     * An IOTLB of {@value #DEFAULT_CAPACITY} entries.
     *
     * @param downstream how a {@code uaddr} from an UPDATE reaches memory (identity over guest
     *     memory in process; the vhost-user memory table in a back end)
     */
    public DeviceIotlb(AddressSpace downstream) {
        this(downstream, DEFAULT_CAPACITY);
    }

    /**
     * @param downstream how a {@code uaddr} from an UPDATE reaches memory
     * @param capacity the most entries, at least 1
     */
    public DeviceIotlb(AddressSpace downstream, int capacity) {
        this.downstream = Objects.requireNonNull(downstream, "downstream");
        if (capacity < 1) {
            throw new IllegalArgumentException("IOTLB capacity " + capacity + " must be at least 1");
        }
        this.capacity = capacity;
        start = new long[capacity];
        last = new long[capacity];
        uaddr = new long[capacity];
        perm = new byte[capacity];
        age = new long[capacity];
    }

    /**
     * Sets where MISS and ACCESS_FAIL messages go; {@code null} sends none (the synchronous
     * resolver mode, where {@link IotlbAddressSpace} asks the IOMMU itself).
     *
     * @param sink the channel to the IOMMU side, or {@code null}
     */
    public void setMessageSink(IotlbMessageSink sink) {
        this.sink = sink;
    }

    /** @return the most entries this IOTLB holds */
    public int capacity() {
        return capacity;
    }

    /** @return how many entries it holds now */
    public int size() {
        long stamp = lock.readLock();
        try {
            return count;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /** @return the translation epoch; it moves on every update and invalidation */
    public long epoch() {
        return epoch;
    }

    /** @return how many translations missed */
    public long misses() {
        return misses.get();
    }

    /** @return how many translations faulted on a permission */
    public long faults() {
        return faults.get();
    }

    /** @return how many entries were evicted to make room */
    public long evictions() {
        return evictions.get();
    }

    /** @return how many MISS messages were sent and not yet answered by an UPDATE */
    public int pendingMisses() {
        synchronized (pendingLock) {
            return pendingCount;
        }
    }

    /**
     * Translates {@code [iova, iova + length)} into pieces handed to {@code pieceSink}.
     * Allocation-free on a hit.
     *
     * @param iova the first IOVA
     * @param length bytes, at least 1
     * @param access read or write
     * @param pieceSink receives the pieces in IOVA order
     * @throws TranslationException MISS if some address of the range has no entry (a MISS
     *     message was sent unless one is already pending for its page); FAULT if an entry
     *     lacks the permission (an ACCESS_FAIL message was sent), the range wraps past 2^64, or
     *     the downstream space refuses the address
     */
    public void translate(long iova, long length, Access access, TranslationSink pieceSink) throws TranslationException {
        if (length <= 0 || Long.compareUnsigned(iova, -length) > 0) {
            throw new TranslationException(TranslationException.Kind.FAULT, iova, length, access,
                "length must be at least 1 and the range must not wrap past 2^64");
        }
        int need = access == Access.READ ? Permission.RO.bits() : Permission.WO.bits();
        long addr = iova;
        long left = length;
        long stamp = lock.readLock();
        try {
            while (left > 0) {
                int i = floor(addr);
                if (i < 0 || Long.compareUnsigned(addr, last[i]) > 0) {
                    lock.unlockRead(stamp);
                    stamp = 0;
                    throw miss(addr, left, access);
                }
                if ((perm[i] & need) == 0) {
                    Permission has = Permission.ofBits(perm[i]);
                    lock.unlockRead(stamp);
                    stamp = 0;
                    throw fault(addr, left, access, has);
                }
                // last[i] >= addr, so last - addr + 1 is 1..2^64; a 2^64 span wraps to 0: treat as unbounded
                long span = last[i] - addr + 1;
                long n = span == 0 || Long.compareUnsigned(span, left) > 0 ? left : span;
                downstream.translate(uaddr[i] + (addr - start[i]), n, access, pieceSink);
                addr += n;
                left -= n;
            }
        } finally {
            if (stamp != 0) {
                lock.unlockRead(stamp);
            }
        }
    }

    /**
     * Whether {@code [iova, iova + length)} is wholly covered by entries that allow
     * {@code access} (what a parked request waits for).
     *
     * @param iova the first IOVA
     * @param length bytes, at least 1
     * @param access read or write
     * @return whether a translation would succeed as far as this IOTLB is concerned
     */
    public boolean covers(long iova, long length, Access access) {
        int need = access == Access.READ ? Permission.RO.bits() : Permission.WO.bits();
        long addr = iova;
        long left = length;
        long stamp = lock.readLock();
        try {
            while (left > 0) {
                int i = floor(addr);
                if (i < 0 || Long.compareUnsigned(addr, last[i]) > 0 || (perm[i] & need) == 0) {
                    return false;
                }
                long span = last[i] - addr + 1;
                long n = span == 0 || Long.compareUnsigned(span, left) > 0 ? left : span;
                addr += n;
                left -= n;
            }
            return true;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /** Index of the entry with the greatest start ≤ addr (unsigned), or -1. Under the lock. */
    private int floor(long addr) {
        int lo = 0;
        int hi = count - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(start[mid], addr) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    private TranslationException miss(long addr, long left, Access access) {
        misses.incrementAndGet();
        IotlbMessageSink s = sink;
        if (s != null) {
            Permission wanted = Permission.of(access);
            long page = addr & ~(IovaAllocator.PAGE_SIZE - 1);
            boolean send;
            synchronized (pendingLock) {
                send = true;
                for (int k = 0; k < pendingCount; k++) {
                    if (pendingPage[k] == page && (pendingPerm[k] & wanted.bits()) == wanted.bits()) {
                        send = false;
                        break;
                    }
                }
                if (send) {
                    if (pendingCount == pendingPage.length) {
                        pendingPage = Arrays.copyOf(pendingPage, pendingCount * 2);
                        pendingPerm = Arrays.copyOf(pendingPerm, pendingCount * 2);
                    }
                    pendingPage[pendingCount] = page;
                    pendingPerm[pendingCount] = (byte) wanted.bits();
                    pendingCount++;
                }
            }
            if (send) {
                s.send(IotlbMessage.miss(addr, wanted));
            }
        }
        return new TranslationException(TranslationException.Kind.MISS, addr, left, access, "no IOTLB entry");
    }

    private TranslationException fault(long addr, long left, Access access, Permission has) {
        faults.incrementAndGet();
        IotlbMessageSink s = sink;
        if (s != null) {
            s.send(IotlbMessage.accessFail(addr, Permission.of(access)));
        }
        return new TranslationException(TranslationException.Kind.FAULT, addr, left, access,
            "the IOTLB entry allows " + has + " only");
    }

    /**
     * Adds the entry {@code [iova, iova + size) → uaddr} with {@code permission}, dropping every
     * entry it overlaps, and evicting the oldest entry if the IOTLB is full. Answers the
     * pending MISSes it covers. Moves the epoch.
     *
     * @param iova the first IOVA
     * @param size bytes, at least 1, not wrapping past 2^64
     * @param uaddr where {@code iova} maps to in the downstream space
     * @param permission RO, WO or RW
     * @throws IllegalArgumentException if the size is 0, the range wraps, or the permission is NONE
     */
    public void update(long iova, long size, long uaddr, Permission permission) {
        checkRange("UPDATE", iova, size);
        if (permission == Permission.NONE) {
            throw new IllegalArgumentException(String.format("UPDATE of [0x%x, +0x%x) with permission NONE", iova, size));
        }
        long stamp = lock.writeLock();
        try {
            insertLocked(iova, size, uaddr, permission);
            // volatile store under the write lock: a device queue that reads the new epoch (a
            // volatile load in refreshRings) translates its rings again and sees this entry
            epoch++;
        } finally {
            lock.unlockWrite(stamp);
        }
        answerPending(iova, size);
    }

    private void insertLocked(long iova, long size, long ua, Permission permission) {
        long lastAddr = iova + size - 1;
        removeOverlappingLocked(iova, lastAddr);
        if (count == capacity) {
            int oldest = 0;
            for (int k = 1; k < count; k++) {
                if (age[k] < age[oldest]) {
                    oldest = k;
                }
            }
            removeAt(oldest);
            evictions.incrementAndGet();
        }
        int pos = floor(iova) + 1;
        int tail = count - pos;
        System.arraycopy(start, pos, start, pos + 1, tail);
        System.arraycopy(last, pos, last, pos + 1, tail);
        System.arraycopy(uaddr, pos, uaddr, pos + 1, tail);
        System.arraycopy(perm, pos, perm, pos + 1, tail);
        System.arraycopy(age, pos, age, pos + 1, tail);
        start[pos] = iova;
        last[pos] = lastAddr;
        uaddr[pos] = ua;
        perm[pos] = (byte) permission.bits();
        age[pos] = nextAge++;
        count++;
    }

    /** Removes every entry overlapping [first, lastAddr]; returns how many. Under the write lock. */
    private int removeOverlappingLocked(long first, long lastAddr) {
        int removed = 0;
        int i = floor(first);
        if (i < 0 || Long.compareUnsigned(last[i], first) < 0) {
            i++;
        }
        while (i < count && Long.compareUnsigned(start[i], lastAddr) <= 0) {
            removeAt(i);
            removed++;
        }
        return removed;
    }

    private void removeAt(int i) {
        int tail = count - i - 1;
        System.arraycopy(start, i + 1, start, i, tail);
        System.arraycopy(last, i + 1, last, i, tail);
        System.arraycopy(uaddr, i + 1, uaddr, i, tail);
        System.arraycopy(perm, i + 1, perm, i, tail);
        System.arraycopy(age, i + 1, age, i, tail);
        count--;
    }

    private void answerPending(long iova, long size) {
        synchronized (pendingLock) {
            int k = 0;
            while (k < pendingCount) {
                // a pending page is answered if the update covers its first byte
                if (Long.compareUnsigned(pendingPage[k] - iova, size) < 0
                    || Long.compareUnsigned(iova - pendingPage[k], IovaAllocator.PAGE_SIZE) < 0) {
                    pendingCount--;
                    pendingPage[k] = pendingPage[pendingCount];
                    pendingPerm[k] = pendingPerm[pendingCount];
                } else {
                    k++;
                }
            }
        }
    }

    /**
     * Removes every entry overlapping {@code [iova, iova + size)} (whole entries, as Linux's
     * {@code vhost_iotlb_del_range}), moves the epoch, then waits until no worker is still in a
     * critical section it entered before the removal. Once this returns, no worker uses a
     * translation from the range.
     *
     * @param iova the first IOVA
     * @param size bytes, at least 1, not wrapping past 2^64
     * @return how many entries were removed
     * @throws IllegalArgumentException if the size is 0 or the range wraps
     */
    public int invalidate(long iova, long size) {
        checkRange("INVALIDATE", iova, size);
        int removed;
        long stamp = lock.writeLock();
        try {
            removed = removeOverlappingLocked(iova, iova + size - 1);
            // volatile store: pairs with the device queue's epoch load; its cached ring areas are
            // dropped on its next pop (a queue inside a section is waited out below)
            epoch++;
        } finally {
            lock.unlockWrite(stamp);
        }
        awaitWorkers();
        return removed;
    }

    /** Removes every entry, moves the epoch, and waits for the workers as {@link #invalidate} does. */
    public void invalidateAll() {
        long stamp = lock.writeLock();
        try {
            count = 0;
            epoch++;
        } finally {
            lock.unlockWrite(stamp);
        }
        awaitWorkers();
    }

    /**
     * Applies a batch of UPDATE and INVALIDATE messages atomically (one write lock, one epoch
     * step), then waits for the workers if anything was invalidated.
     *
     * @param batch the messages, already validated
     * @param n how many of them
     */
    void applyBatch(IotlbMessage[] batch, int n) {
        boolean invalidated = false;
        long stamp = lock.writeLock();
        try {
            for (int k = 0; k < n; k++) {
                IotlbMessage m = batch[k];
                if (m.type() == IotlbMessage.Type.UPDATE) {
                    insertLocked(m.iova(), m.size(), m.uaddr(), m.permission());
                } else {
                    removeOverlappingLocked(m.iova(), m.iova() + m.size() - 1);
                    invalidated = true;
                }
            }
            epoch++;
        } finally {
            lock.unlockWrite(stamp);
        }
        for (int k = 0; k < n; k++) {
            if (batch[k].type() == IotlbMessage.Type.UPDATE) {
                answerPending(batch[k].iova(), batch[k].size());
            }
        }
        if (invalidated) {
            awaitWorkers();
        }
    }

    /**
     * Checks an UPDATE / INVALIDATE range.
     *
     * @param what the message type, for the error
     * @param iova the first IOVA
     * @param size the size
     */
    static void checkRange(String what, long iova, long size) {
        if (size == 0) {
            throw new IllegalArgumentException(String.format(
                "%s of [0x%x, +0) has size 0; a zero-size %s is refused (it once hung the kernel's vhost worker)", what,
                iova, what));
        }
        // iova + size may reach 2^64 exactly (last = 2^64-1) but not beyond
        if (Long.compareUnsigned(iova, -size) > 0) {
            throw new IllegalArgumentException(String.format("%s of [0x%x, +0x%x) wraps past 2^64", what, iova, size));
        }
    }

    private void awaitWorkers() {
        Thread self = Thread.currentThread();
        for (Worker w : workers) {
            if (w.owner == self) {
                continue;
            }
            // volatile read: the removal above (a write-lock release) comes before this read in the
            // synchronization order, so a worker that enters after it sees the removal; one that
            // entered before it is odd here and is waited out
            long seen = w.sequence;
            if ((seen & 1) == 0) {
                continue;
            }
            int spins = 0;
            while (w.sequence == seen) {
                if (++spins < 100) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
        }
    }

    /**
     * Registers the calling thread as a device worker whose critical sections invalidations
     * wait for.
     *
     * @return the worker; {@link Worker#close()} it when the thread stops
     */
    public Worker registerWorker() {
        Worker w = new Worker(this, Thread.currentThread());
        workers.add(w);
        return w;
    }

    /**
     * One device worker's translation critical section: {@link #enter()} before popping,
     * {@link #exit()} after the chains popped are used and published. Owned by one thread.
     *
     * <pre>
     *   sequence  even: outside, odd: inside; only the owner writes it (volatile)
     * </pre>
     */
    public static final class Worker implements AutoCloseable {
        private final DeviceIotlb iotlb;
        private final Thread owner;
        private volatile long sequence;

        private Worker(DeviceIotlb iotlb, Thread owner) {
            this.iotlb = iotlb;
            this.owner = owner;
        }

        /** Enters the critical section; translations may be taken and used until {@link #exit()}. */
        public void enter() {
            // volatile store: ordered before the read lock of any translation in the section;
            // pairs with the volatile read in awaitWorkers
            sequence = sequence + 1;
        }

        /** Leaves the critical section; no translation taken inside may be used afterwards. */
        public void exit() {
            // volatile store: every use of a translation above happens-before an invalidator
            // that sees the new value returns
            sequence = sequence + 1;
        }

        /** @return whether the owner is inside its critical section */
        public boolean inside() {
            return (sequence & 1) != 0;
        }

        /** Unregisters the worker (it must be outside its critical section). */
        @Override
        public void close() {
            iotlb.workers.remove(this);
        }
    }

    @Override
    public String toString() {
        return "DeviceIotlb[" + size() + "/" + capacity + " entries, epoch " + epoch + "]";
    }
}
